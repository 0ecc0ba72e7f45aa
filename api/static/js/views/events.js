// Large events: the list, one event's assigned drones and exemptions, its live ring gaps, posts and sweep
// coverage, its timeline, and start / stand-down for dispatchers. Kept in its own module; its strings are
// the events.* keys of the translation tables.
import { get, getAll, post } from "../api.js";
import { state, roles } from "../state.js";
import { h, toast, fmtTime } from "../ui.js";
import { t, errorText } from "../i18n.js";

/** A vehicle's name, or its number when the registry does not know it. */
function vehicleName(id) { return state.vehicles.get(id)?.name ?? t("events.vehicle_n", { id }); }

let root = null;
let selected = null;
let timer = null;

export function mountEvents(el) {
  root = el;
  el.addEventListener("panel:show", () => {
    load();
    clearInterval(timer);
    timer = setInterval(() => { if (!root.hidden) loadDetail(); }, 2000);
  });
}

async function load() {
  let events = [];
  try { events = await getAll("/security-events"); } catch (err) { root.replaceChildren(h("p", { class: "error" }, errorText(err))); return; }
  if (!selected && events.length) selected = events[0].id;
  root.replaceChildren(
    h("h2", {}, t("events.title")),
    events.length ? h("ul", { class: "list", "data-testid": "event-list" }, events.map((ev) =>
      h("li", { class: ev.id === selected ? "active" : "", onclick: () => { selected = ev.id; load(); } },
        h("b", {}, ev.name), " ", h("span", { class: "muted" }, ev.state)))) : h("p", { class: "muted" }, t("events.none")),
    h("div", { "data-testid": "event-detail", id: "event-detail" }));
  loadDetail();
}

async function loadDetail() {
  const box = root?.querySelector("#event-detail");
  if (!box || !selected) return;
  try {
    const [ev, live] = await Promise.all([get(`/security-events/${selected}`), get(`/security-events/${selected}/live`)]);
    box.replaceChildren(...detail(ev, live));
  } catch (err) {
    box.replaceChildren(h("p", { class: "error" }, errorText(err)));
  }
}

function pct(x) { return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`; }

function detail(ev, live) {
  const running = live.running === true;
  const gaps = Object.entries(live.ring_gaps_s || {});
  return [
    h("div", { class: "card" },
      h("div", { class: "head" }, h("b", {}, ev.name), h("span", { class: "pill" }, ev.state)),
      h("div", { class: "sub" }, h("span", {}, `${fmtTime(ev.doors_open_at)} – ${fmtTime(ev.ends_at)}`))),
    roles.dispatcher() ? h("div", { class: "row" },
      ev.state === "planned" ? h("button", { class: "primary", "data-testid": "event-start", onclick: () => act(`/security-events/${ev.id}/start`, t("events.started", { name: ev.name })) }, t("events.start")) : null,
      ev.state === "running" || ev.state === "planned" ? h("button", { class: "danger", "data-testid": "event-stand-down", onclick: () => act(`/security-events/${ev.id}/stand-down`, t("events.stood_down", { name: ev.name })) }, t("events.stand_down")) : null) : null,
    h("h3", {}, t("events.assigned")),
    h("ul", { class: "list", "data-testid": "event-assigned" }, (ev.assigned || []).map((id) => h("li", {}, vehicleName(id)))),
    h("h3", {}, t("events.exemptions")),
    h("ul", { class: "list" }, (ev.exemptions || []).map((x) => h("li", {}, vehicleName(x.vehicle_id), " · ",
      h("span", { class: "muted" }, x.revoked_at ? t("events.revoked") : t("events.active")), x.incident_id ? ` · #${x.incident_id}` : ""))),
    running ? h("h3", {}, t("events.rings")) : null,
    running && !gaps.length ? h("p", { class: "muted" }, t("events.rings_not_started")) : null,
    running ? h("table", { class: "tbl", "data-testid": "event-ring-gaps" }, h("tbody", {}, gaps.map(([ring, gap]) =>
      h("tr", { class: gap <= live.ring_target_s ? "" : "bad" }, h("td", {}, t("events.ring_n", { ring })), h("td", { class: "mono" }, `${gap} s / ${live.ring_target_s} s`))))) : null,
    running ? h("table", { class: "tbl", "data-testid": "event-measures" }, h("tbody", {},
      h("tr", {}, h("td", {}, t("events.sweep")), h("td", { class: "mono" }, `${pct(live.sweep_coverage_flown)} · ${live.sweep_done_before_doors ? t("events.sweep_before") : t("events.sweep_not_yet")}`)),
      h("tr", {}, h("td", {}, t("events.posts")), h("td", { class: "mono" }, pct(live.posts_manned_share))),
      h("tr", {}, h("td", {}, t("events.reliefs")), h("td", { class: "mono" }, live.reliefs)),
      h("tr", {}, h("td", {}, t("events.incursions")), h("td", { class: "mono" }, live.incursions)))) : null,
    running ? h("h3", {}, t("events.slots")) : null,
    running ? h("ul", { class: "list" }, (live.slots || []).map((s) => h("li", {}, h("b", {}, s.slot), " · ",
      s.vehicle_id ? vehicleName(s.vehicle_id) : "—", " · ", h("span", { class: "muted" }, s.stage)))) : null,
    running ? h("h3", {}, t("events.timeline")) : null,
    running ? h("ul", { class: "timeline", "data-testid": "event-timeline" }, (live.timeline || []).slice().reverse().map((entry) =>
      h("li", {}, h("span", { class: "mono muted" }, fmtTime(entry.at)), " ", h("b", {}, entry.what), entry.slot ? ` · ${entry.slot}` : "",
        entry.vehicle_id ? ` · ${vehicleName(entry.vehicle_id)}` : ""))) : null,
  ];
}

async function act(path, message) {
  try {
    await post(path);
    toast(message, "ok");
  } catch (err) {
    toast(errorText(err), "bad");
  }
  load();
}
