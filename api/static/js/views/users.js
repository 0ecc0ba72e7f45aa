// Users (admins): list, create, change role, disable / re-enable, reset a password, end sessions; and the
// machine tokens with their last use, to revoke. Every name is shown as text (h() never sets HTML).
import { get, post, patch, del } from "../api.js";
import { roles } from "../state.js";
import { h, fill, act, pill, fmtDateTime } from "../ui.js";

const ROLES = ["admin", "pilot", "dispatcher", "observer"];

function roleSelect(value) {
  const sel = h("select", {}, ...ROLES.map((r) => h("option", { value: r, selected: r === value }, r)));
  return sel;
}

export function mountUsers(el) {
  if (!roles.admin()) { fill(el, h("p", { class: "muted" }, "User management is for admins.")); return; }
  const list = h("tbody", { "data-testid": "users-table" });
  const tokens = h("tbody", { "data-testid": "tokens-table" });
  const newName = h("input", { placeholder: "username", "data-testid": "user-new-name", autocomplete: "off" });
  const newPass = h("input", { placeholder: "password (8+ characters)", type: "password", "data-testid": "user-new-password", autocomplete: "new-password" });
  const newRole = roleSelect("observer");

  const userRow = (u) => {
    const role = roleSelect(u.role);
    const password = h("input", { type: "password", placeholder: "new password", autocomplete: "new-password" });
    return h("tr", { "data-testid": "user-row", "data-username": u.username },
      h("td", {}, h("b", {}, u.username), u.disabled ? h("div", {}, pill("disabled", "bad")) : null),
      h("td", {}, role, h("button", { class: "small", onclick: (e) => act(e.currentTarget, () => patch(`/users/${u.id}`, { role: role.value }), `${u.username} is now ${role.value}`).then(load).catch(() => {}) }, "Set role")),
      h("td", {},
        h("button", { class: `small ${u.disabled ? "" : "danger"}`, "data-testid": "user-toggle", onclick: (e) => act(e.currentTarget, () => patch(`/users/${u.id}`, { disabled: !u.disabled }), u.disabled ? `${u.username} enabled` : `${u.username} disabled`).then(load).catch(() => {}) }, u.disabled ? "Enable" : "Disable"),
        h("button", { class: "small", onclick: (e) => act(e.currentTarget, () => del(`/users/${u.id}/sessions`), (r) => `${r.revoked_token_ids.length} session(s) ended`).catch(() => {}) }, "End sessions")),
      h("td", {}, password, h("button", { class: "small", onclick: (e) => act(e.currentTarget, () => post(`/users/${u.id}/password`, { password: password.value }), `Password of ${u.username} reset`).then(() => { password.value = ""; }).catch(() => {}) }, "Reset")));
  };

  const tokenRow = (t) => h("tr", { "data-testid": "token-row" },
    h("td", {}, h("b", {}, t.name), h("div", { class: "muted" }, `${t.kind} · ${t.role}`)),
    h("td", { class: "mono" }, fmtDateTime(t.last_used_at)),
    h("td", { class: "mono" }, fmtDateTime(t.expires_at)),
    h("td", {}, t.revoked ? pill("revoked", "bad") : h("button", { class: "small danger", onclick: (e) => act(e.currentTarget, () => del(`/tokens/${t.id}`), `Token ${t.name} revoked`).then(load).catch(() => {}) }, "Revoke")));

  const load = async () => {
    const [users, machine] = await Promise.all([get("/users", { limit: 500 }), get("/tokens", { kind: "machine", limit: 100 })]);
    fill(list, ...users.items.map(userRow));
    fill(tokens, ...machine.items.map(tokenRow));
  };

  const create = (button) => act(button, () => post("/users", { username: newName.value.trim(), password: newPass.value, role: newRole.value }), (u) => `User ${u.username} created`)
    .then(() => { newName.value = ""; newPass.value = ""; return load(); }).catch(() => {});

  fill(el,
    h("h2", {}, "Users"),
    h("div", { class: "grid2" }, newName, newPass),
    h("div", { class: "row" }, newRole, h("button", { class: "primary small", "data-testid": "user-create", onclick: (e) => create(e.currentTarget) }, "Create user")),
    h("table", { class: "tbl users" }, h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Role"), h("th", {}, "Access"), h("th", {}, "Password"))), list),
    h("h2", {}, "Machine tokens"),
    h("table", { class: "tbl users" }, h("thead", {}, h("tr", {}, h("th", {}, "Token"), h("th", {}, "Last used"), h("th", {}, "Expires"), h("th", {}))), tokens));
  el.addEventListener("panel:show", () => load().catch(() => {}));
  load().catch(() => {});
}
