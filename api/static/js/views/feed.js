// The live event feed (everyone) and the audit log (admins).
import { state, on, roles } from "../state.js";
import { get } from "../api.js";
import { h, fmtTime, fmtDateTime, act, pill, fill } from "../ui.js";
import { t, tv } from "../i18n.js";

const MAX_EVENTS = 300;
let feedEl;

function describe(ev) {
  const d = ev.data || {};
  const who = ev.vehicle_id ? state.vehicles.get(ev.vehicle_id)?.name ?? t("common.vehicle_n", { id: ev.vehicle_id }) : "";
  const bits = [];
  if (ev.kind === "mission.transition") bits.push(t("feed.transition", { id: ev.mission_id, from: tv("state", d.from_state ?? d.from), to: tv("state", d.to_state ?? d.to) }));
  else if (ev.kind === "mission.progress") bits.push(t("feed.progress", { id: ev.mission_id, current: d.current, total: d.total }));
  else if (ev.mission_id) bits.push(t("feed.mission", { id: ev.mission_id }));
  if (ev.kind === "payload.used" && d.action) bits.push(tv("payload", d.action));
  if (d.incident_id) bits.push(t("feed.incident", { id: d.incident_id }));
  if (d.reason) bits.push(String(d.reason));
  else if (d.message) bits.push(String(d.message));
  return [who, ...bits].filter(Boolean).join(" · ");
}

export function mountFeed(el) {
  feedEl = h("ul", { class: "feed", "data-testid": "event-feed" });
  const waiting = h("p", { class: "muted" }, t("feed.waiting"));
  fill(el, h("h2", {}, t("feed.heading")), waiting, feedEl);
  on("event", (ev) => {
    waiting.hidden = true;
    const tone = ev.kind.includes("fail") || ev.kind === "link.down" ? "bad" : ev.kind.startsWith("incident") ? "warn" : "";
    feedEl.prepend(h("li", { "data-kind": ev.kind }, h("span", { class: "t" }, fmtTime(ev.time)),
      h("div", {}, h("span", { class: `k ${tone === "bad" ? "error" : ""}` }, tv("event", ev.kind)), " ", h("span", { class: "muted" }, describe(ev)))));
    while (feedEl.children.length > MAX_EVENTS) feedEl.lastChild.remove();
  });
}

export function mountAudit(el) {
  if (!roles.admin()) { fill(el, h("p", { class: "muted" }, t("audit.admins_only"))); return; }
  const table = h("tbody");
  const status = h("span");
  const actor = h("input", { placeholder: t("audit.actor"), "data-testid": "audit-actor" });
  const action = h("input", { placeholder: t("audit.action_prefix"), "data-testid": "audit-action" });
  const vehicle = h("select", { "data-testid": "audit-vehicle" });
  const incident = h("input", { type: "number", min: 1, placeholder: t("audit.incident"), "data-testid": "audit-incident" });
  const since = h("input", { type: "datetime-local", "data-testid": "audit-since", "aria-label": t("audit.since") });
  const until = h("input", { type: "datetime-local", "data-testid": "audit-until", "aria-label": t("audit.until") });
  const fillVehicles = () => {
    const current = vehicle.value;
    fill(vehicle, h("option", { value: "" }, t("audit.any_vehicle")),
      ...[...state.vehicles.values()].sort((a, b) => a.id - b.id).map((v) => h("option", { value: v.id }, v.name)));
    vehicle.value = current;
  };
  fillVehicles();
  on("vehicles", fillVehicles);
  const filters = () => ({
    actor: actor.value.trim(), action: action.value.trim(), vehicle_id: vehicle.value, incident_id: incident.value,
    since: since.value ? new Date(since.value).toISOString() : "", until: until.value ? new Date(until.value).toISOString() : "",
  });
  let offset = 0;
  const load = async () => {
    const page = await get("/audit", { limit: 50, offset, ...filters() });
    fill(table, ...page.items.map((a) => h("tr", { "data-testid": "audit-row", "data-action": a.action },
      h("td", { class: "mono" }, a.seq), h("td", { class: "mono" }, fmtDateTime(a.at)), h("td", { translate: "no" }, a.actor),
      h("td", { translate: "no" }, h("b", {}, a.action), a.target ? h("div", { class: "muted" }, a.target) : null,
        Object.keys(a.details || {}).length ? h("div", { class: "muted mono", style: "font-size:11px;word-break:break-all" }, JSON.stringify(a.details).slice(0, 240)) : null))));
    pager.textContent = t("common.range_of", { from: page.total ? offset + 1 : 0, to: offset + page.items.length, total: page.total });
  };
  const exportCsv = async () => {
    const qs = new URLSearchParams(Object.entries(filters()).filter(([, v]) => v !== ""));
    const res = await fetch(`/api/v1/audit/export.csv?${qs}`, { credentials: "same-origin" });
    if (!res.ok) return;
    const url = URL.createObjectURL(await res.blob());
    const a = h("a", { href: url, download: "audit.csv" });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  const pager = h("span", { class: "muted", "data-testid": "audit-pager" });
  fill(el,
    h("h2", {}, t("audit.heading")),
    h("div", { class: "grid2" }, actor, action),
    h("div", { class: "grid2" }, vehicle, incident),
    h("div", { class: "grid2" }, h("label", {}, t("audit.since"), since), h("label", {}, t("audit.until"), until)),
    h("div", { class: "row", style: "margin:6px 0" },
      h("button", { class: "small", "data-testid": "audit-filter", onclick: () => { offset = 0; load().catch(() => {}); } }, t("audit.filter")),
      h("button", { class: "small", onclick: () => { offset = Math.max(0, offset - 50); load().catch(() => {}); } }, t("common.newer")),
      h("button", { class: "small", onclick: () => { offset += 50; load().catch(() => {}); } }, t("common.older")),
      h("button", { class: "small ghost", "data-testid": "audit-export", onclick: exportCsv }, t("audit.export")), pager),
    h("div", { class: "row" }, h("button", { class: "small", "data-testid": "audit-verify", onclick: (e) => act(e.currentTarget, () => get("/audit/verify")).then((r) => {
      fill(status, r.ok ? pill("intact", "ok", t("audit.chain_intact", { n: r.checked })) : pill("broken", "bad", t("audit.problems", { n: r.problems.length })));
    }).catch(() => {}) }, t("audit.verify")), status),
    h("table", { class: "tbl audit", "data-testid": "audit-table", style: "margin-top:8px" },
      h("colgroup", {}, h("col", { class: "seq" }), h("col", { class: "when" }), h("col", { class: "actor" }), h("col")), h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, t("audit.when")), h("th", {}, t("audit.actor")), h("th", {}, t("audit.action")))), table));
  el.addEventListener("panel:show", () => load().catch(() => {}));
  load().catch(() => {});
}
