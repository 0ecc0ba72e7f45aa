// Large events: the list, one event's assigned drones and exemptions, its live ring gaps, posts and sweep
// coverage, its timeline, and start / stand-down for dispatchers. Kept in its own module; every string
// this page shows is in STRINGS below.
import { get, getAll, post } from "../api.js";
import { state, roles } from "../state.js";
import { h, toast, fmtTime } from "../ui.js";

export const STRINGS = {
  title: "Large events",
  none: "No events yet (create one over the API: POST /api/v1/security-events).",
  assigned: "Assigned drones",
  exemptions: "Exemptions (event zone)",
  rings: "Ring revisit gaps (flown vs target)",
  sweep: "Sweep coverage flown",
  sweepBefore: "done before doors",
  sweepNotYet: "not done before doors",
  posts: "Posts manned (time-weighted)",
  reliefs: "Reliefs",
  incursions: "Incursions (non-exempt drones in the zone)",
  slots: "Slots",
  timeline: "Timeline",
  start: "Start",
  standDown: "Stand down",
  started: (name) => `Event ${name} started`,
  stoodDown: (name) => `Event ${name} standing down: every drone home, then the exemptions expire`,
  revoked: "revoked",
  active: "active",
  notRunning: "not running",
  ringsNotStarted: "the rings have not started their laps yet",
  vehicle: (id) => state.vehicles.get(id)?.name ?? `vehicle ${id}`,
};

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
  try { events = await getAll("/security-events"); } catch (err) { root.replaceChildren(h("p", { class: "error" }, err.message)); return; }
  if (!selected && events.length) selected = events[0].id;
  root.replaceChildren(
    h("h2", {}, STRINGS.title),
    events.length ? h("ul", { class: "list", "data-testid": "event-list" }, events.map((ev) =>
      h("li", { class: ev.id === selected ? "active" : "", onclick: () => { selected = ev.id; load(); } },
        h("b", {}, ev.name), " ", h("span", { class: "muted" }, ev.state)))) : h("p", { class: "muted" }, STRINGS.none),
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
    box.replaceChildren(h("p", { class: "error" }, err.message));
  }
}

function pct(x) { return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`; }

function detail(ev, live) {
  const running = live.state && live.state !== STRINGS.notRunning && live.state !== "not running here";
  const gaps = Object.entries(live.ring_gaps_s || {});
  return [
    h("div", { class: "card" },
      h("div", { class: "head" }, h("b", {}, ev.name), h("span", { class: "pill" }, ev.state)),
      h("div", { class: "sub" }, h("span", {}, `${fmtTime(ev.doors_open_at)} – ${fmtTime(ev.ends_at)}`))),
    roles.dispatcher() ? h("div", { class: "row" },
      ev.state === "planned" ? h("button", { class: "primary", "data-testid": "event-start", onclick: () => act(`/security-events/${ev.id}/start`, STRINGS.started(ev.name)) }, STRINGS.start) : null,
      ev.state === "running" || ev.state === "planned" ? h("button", { class: "danger", "data-testid": "event-stand-down", onclick: () => act(`/security-events/${ev.id}/stand-down`, STRINGS.stoodDown(ev.name)) }, STRINGS.standDown) : null) : null,
    h("h3", {}, STRINGS.assigned),
    h("ul", { class: "list", "data-testid": "event-assigned" }, (ev.assigned || []).map((id) => h("li", {}, STRINGS.vehicle(id)))),
    h("h3", {}, STRINGS.exemptions),
    h("ul", { class: "list" }, (ev.exemptions || []).map((x) => h("li", {}, STRINGS.vehicle(x.vehicle_id), " · ",
      h("span", { class: "muted" }, x.revoked_at ? STRINGS.revoked : STRINGS.active), x.incident_id ? ` · #${x.incident_id}` : ""))),
    running ? h("h3", {}, STRINGS.rings) : null,
    running && !gaps.length ? h("p", { class: "muted" }, STRINGS.ringsNotStarted) : null,
    running ? h("table", { class: "tbl", "data-testid": "event-ring-gaps" }, h("tbody", {}, gaps.map(([ring, gap]) =>
      h("tr", { class: gap <= live.ring_target_s ? "" : "bad" }, h("td", {}, `ring ${ring}`), h("td", { class: "mono" }, `${gap} s / ${live.ring_target_s} s`))))) : null,
    running ? h("table", { class: "tbl", "data-testid": "event-measures" }, h("tbody", {},
      h("tr", {}, h("td", {}, STRINGS.sweep), h("td", { class: "mono" }, `${pct(live.sweep_coverage_flown)} · ${live.sweep_done_before_doors ? STRINGS.sweepBefore : STRINGS.sweepNotYet}`)),
      h("tr", {}, h("td", {}, STRINGS.posts), h("td", { class: "mono" }, pct(live.posts_manned_share))),
      h("tr", {}, h("td", {}, STRINGS.reliefs), h("td", { class: "mono" }, live.reliefs)),
      h("tr", {}, h("td", {}, STRINGS.incursions), h("td", { class: "mono" }, live.incursions)))) : null,
    running ? h("h3", {}, STRINGS.slots) : null,
    running ? h("ul", { class: "list" }, (live.slots || []).map((s) => h("li", {}, h("b", {}, s.slot), " · ",
      s.vehicle_id ? STRINGS.vehicle(s.vehicle_id) : "—", " · ", h("span", { class: "muted" }, s.stage)))) : null,
    running ? h("h3", {}, STRINGS.timeline) : null,
    running ? h("ul", { class: "timeline", "data-testid": "event-timeline" }, (live.timeline || []).slice().reverse().map((t) =>
      h("li", {}, h("span", { class: "mono muted" }, fmtTime(t.at)), " ", h("b", {}, t.what), t.slot ? ` · ${t.slot}` : "",
        t.vehicle_id ? ` · ${STRINGS.vehicle(t.vehicle_id)}` : ""))) : null,
  ];
}

async function act(path, message) {
  try {
    await post(path);
    toast(message, "ok");
  } catch (err) {
    toast(err.message, "bad");
  }
  load();
}
