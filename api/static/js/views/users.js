// Users (admins): list, create, change role, disable / re-enable, reset a password, end sessions; and the
// machine tokens with their last use, to revoke. Every name is shown as text (h() never sets HTML).
import { get, post, patch, del } from "../api.js";
import { roles } from "../state.js";
import { h, fill, act, pill, fmtDateTime } from "../ui.js";
import { t as tr, tv } from "../i18n.js";
import { libraryEditor } from "../payload.js";

const ROLES = ["admin", "pilot", "dispatcher", "observer"];

function roleSelect(value) {
  const sel = h("select", {}, ...ROLES.map((r) => h("option", { value: r, selected: r === value }, tv("role", r))));
  return sel;
}

export function mountUsers(el) {
  if (!roles.admin()) { fill(el, h("p", { class: "muted" }, tr("users.admins_only"))); return; }
  const list = h("tbody", { "data-testid": "users-table" });
  const tokens = h("tbody", { "data-testid": "tokens-table" });
  const newName = h("input", { placeholder: tr("users.username"), "data-testid": "user-new-name", autocomplete: "off" });
  const newPass = h("input", { placeholder: tr("users.password_hint"), type: "password", "data-testid": "user-new-password", autocomplete: "new-password" });
  const newRole = roleSelect("observer");

  const userRow = (u) => {
    const role = roleSelect(u.role);
    const password = h("input", { type: "password", placeholder: tr("users.new_password"), autocomplete: "new-password", "data-testid": "user-password" });
    return h("tr", { "data-testid": "user-row", "data-username": u.username },
      h("td", {}, h("b", { translate: "no" }, u.username), u.disabled ? h("div", {}, pill("disabled", "bad")) : null),
      h("td", {}, role, h("button", { class: "small", "data-testid": "user-set-role", onclick: (e) => act(e.currentTarget, () => patch(`/users/${u.id}`, { role: role.value }), tr("users.role_set", { name: u.username, role: tv("role", role.value) })).then(load).catch(() => {}) }, tr("users.set_role"))),
      h("td", {},
        h("button", { class: `small ${u.disabled ? "" : "danger"}`, "data-testid": "user-toggle", onclick: (e) => {
          if (!u.disabled && !confirm(tr("confirm.disable_user", { name: u.username }))) return;
          act(e.currentTarget, () => patch(`/users/${u.id}`, { disabled: !u.disabled }), tr(u.disabled ? "users.enabled" : "users.disabled", { name: u.username })).then(load).catch(() => {});
        } }, tr(u.disabled ? "users.enable" : "users.disable")),
        h("button", { class: "small", "data-testid": "user-end-sessions", onclick: (e) => {
          if (!confirm(tr("confirm.end_sessions", { name: u.username }))) return;
          act(e.currentTarget, () => del(`/users/${u.id}/sessions`), (r) => tr("users.sessions_ended", { n: r.revoked_token_ids.length })).catch(() => {});
        } }, tr("users.end_sessions"))),
      h("td", {}, password, h("button", { class: "small", "data-testid": "user-reset", onclick: (e) => {
        if (!confirm(tr("confirm.reset_password", { name: u.username }))) return;
        act(e.currentTarget, () => post(`/users/${u.id}/password`, { password: password.value }), tr("users.password_reset", { name: u.username })).then(() => { password.value = ""; }).catch(() => {});
      } }, tr("users.reset"))));
  };

  const tokenRow = (t) => h("tr", { "data-testid": "token-row" },
    h("td", {}, h("b", { translate: "no" }, t.name), h("div", { class: "muted" }, `${tv("token", t.kind)} · ${tv("role", t.role)}`)),
    h("td", { class: "mono" }, fmtDateTime(t.last_used_at)),
    h("td", { class: "mono" }, fmtDateTime(t.expires_at)),
    h("td", {}, t.revoked ? pill("revoked", "bad") : h("button", { class: "small danger", "data-testid": "token-revoke", onclick: (e) => {
      if (!confirm(tr("confirm.revoke_token", { name: t.name }))) return;
      act(e.currentTarget, () => del(`/tokens/${t.id}`), tr("users.token_revoked", { name: t.name })).then(load).catch(() => {});
    } }, tr("users.revoke"))));

  const load = async () => {
    const [users, machine] = await Promise.all([get("/users", { limit: 500 }), get("/tokens", { kind: "machine", limit: 100 })]);
    fill(list, ...users.items.map(userRow));
    fill(tokens, ...machine.items.map(tokenRow));
  };

  const tokenName = h("input", { placeholder: tr("users.token_name"), "data-testid": "token-new-name", autocomplete: "off" });
  const tokenRole = roleSelect("observer");
  const tokenDays = h("input", { type: "number", min: 1, max: 365, value: 30, "data-testid": "token-new-days", "aria-label": tr("users.token_days") });
  const issued = h("div", { "data-testid": "token-issued" });
  const createToken = (button) => act(button, () => post("/tokens", { name: tokenName.value.trim(), role: tokenRole.value, expires_in_s: Number(tokenDays.value) * 86400 }), (r) => tr("users.token_created", { name: r.name }))
    .then((r) => {
      tokenName.value = "";
      // The secret is shown once, here, and never again.
      fill(issued, h("p", { class: "muted" }, tr("users.token_once")), h("input", { readonly: true, value: r.token, class: "mono", "data-testid": "token-secret", translate: "no" }));
      return load();
    }).catch(() => {});

  const create = (button) => act(button, () => post("/users", { username: newName.value.trim(), password: newPass.value, role: newRole.value }), (u) => tr("users.created", { name: u.username }))
    .then(() => { newName.value = ""; newPass.value = ""; return load(); }).catch(() => {});

  fill(el,
    h("h2", {}, tr("users.heading")),
    h("div", { class: "grid2" }, newName, newPass),
    h("div", { class: "row" }, newRole, h("button", { class: "primary small", "data-testid": "user-create", onclick: (e) => create(e.currentTarget) }, tr("users.create"))),
    h("table", { class: "tbl users" }, h("thead", {}, h("tr", {}, h("th", {}, tr("users.user")), h("th", {}, tr("users.role")), h("th", {}, tr("users.access")), h("th", {}, tr("users.password")))), list),
    h("h2", {}, tr("users.tokens")),
    h("div", { class: "grid2" }, tokenName, tokenDays),
    h("div", { class: "row" }, tokenRole, h("button", { class: "primary small", "data-testid": "token-create", onclick: (e) => createToken(e.currentTarget) }, tr("users.create_token"))),
    issued,
    h("table", { class: "tbl users" }, h("thead", {}, h("tr", {}, h("th", {}, tr("users.token")), h("th", {}, tr("users.last_used")), h("th", {}, tr("users.expires")), h("th", {}))), tokens),
    libraryEditor());
  el.addEventListener("panel:show", () => load().catch(() => {}));
  load().catch(() => {});
}
