// Airspace: patrol, no-fly and event zones (admins draw and edit them); scheduled patrols and their next runs.
import { state, on, emit, roles } from "../state.js";
import { get, post, put, del, patch } from "../api.js";
import { h, pill, act, fmtDateTime, readOnlyNote, kv, fill } from "../ui.js";
import { L, showOverlay, clearOverlay, zoneShapeLayer, getMap } from "../map.js";
import { draw } from "../draw.js";
import { nextRun } from "../cron.js";

let root;
let zonesEl;
let editorEl;
let patrolsEl;
let editing = null; // {id|null, name, kind, shape, floor_m, ceiling_m, description}

export function mountAirspace(el) {
  root = el;
  zonesEl = h("div", { class: "list", "data-testid": "zone-list" });
  editorEl = h("div", { "data-testid": "zone-editor" });
  patrolsEl = h("div", { class: "list", "data-testid": "patrol-list" });
  fill(root, 
    h("div", { class: "row", style: "justify-content:space-between" }, h("h2", {}, "Zones"),
      roles.admin() ? h("button", { class: "small", "data-testid": "zone-new", onclick: () => edit({ id: null, name: "", kind: "no_fly", shape: null, floor_m: 0, ceiling_m: 120, description: "" }) }, "+ New zone") : null),
    roles.admin() ? null : readOnlyNote("Zones are edited by admins; you can view them."),
    editorEl,
    h("h2", {}, "Scheduled patrols"),
    patrolsEl,
    h("h2", {}, "All zones"),
    zonesEl,
  );
  on("zones", renderZones);
  renderZones();
  loadPatrols();
  setInterval(() => { if (!root.closest("[hidden]")) loadPatrols(); }, 15000);
}

export function selectZone(zone) {
  if (roles.admin()) edit({ ...zone });
  else {
    editing = null;
    showOverlay([zoneShapeLayer(zone.shape, { color: "#ffffff", weight: 2, fillOpacity: 0.05, pane: "overlay" })]);
  }
}

function renderZones() {
  const order = { no_fly: 0, event: 1, patrol: 2 };
  const zones = [...state.zones].sort((a, b) => order[a.kind] - order[b.kind] || a.name.localeCompare(b.name));
  fill(zonesEl, ...zones.map((z) => h("div", { class: "card clickable", "data-testid": "zone-card", "data-zone-id": z.id, onclick: () => { selectZone(z); focus(z); } },
    h("div", { class: "head" }, h("b", {}, z.name), pill(z.kind.replace("_", "-"), z.kind === "no_fly" ? "bad" : z.kind === "event" ? "warn" : "info")),
    h("div", { class: "sub" }, h("span", { class: "mono" }, `${z.floor_m}–${z.ceiling_m} m`), z.shape.type === "Circle" ? h("span", {}, `circle r ${z.shape.radius_m} m`) : h("span", {}, z.shape.type.toLowerCase()),
      z.active_from || z.active_until ? h("span", {}, `${fmtDateTime(z.active_from)} → ${fmtDateTime(z.active_until)}`) : h("span", { class: "muted" }, "always active")))));
}

function focus(zone) {
  const layer = zoneShapeLayer(zone.shape, {});
  const map = getMap();
  layer.addTo(map);
  map.fitBounds(layer.getBounds(), { padding: [80, 80], maxZoom: 15 });
  map.removeLayer(layer);
}

/** An ISO instant as the local wall time a datetime-local input shows. */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function edit(zone) {
  editing = zone;
  const name = h("input", { value: zone.name, "data-testid": "zone-name", maxlength: 100 });
  const kind = h("select", { "data-testid": "zone-kind" }, ["no_fly", "patrol", "event"].map((k) => h("option", { value: k, selected: k === zone.kind }, k.replace("_", "-"))));
  const floor = h("input", { type: "number", value: zone.floor_m, min: 0 });
  const ceiling = h("input", { type: "number", value: zone.ceiling_m, min: 1 });
  const from = h("input", { type: "datetime-local", value: toLocalInput(zone.active_from) });
  const until = h("input", { type: "datetime-local", value: toLocalInput(zone.active_until) });
  const shapeNote = h("p", { class: "muted" });
  const showShape = () => {
    shapeNote.textContent = editing.shape ? `Shape: ${editing.shape.type === "Circle" ? `circle, r ${editing.shape.radius_m} m` : `${editing.shape.coordinates[0].length - 1} corners`}` : "No shape yet: draw it on the map.";
    showOverlay(editing.shape ? [zoneShapeLayer(editing.shape, { color: "#ffffff", weight: 2, dashArray: "4 4", fillOpacity: 0.08, pane: "overlay" })] : []);
  };
  const body = () => ({
    name: name.value.trim(), kind: kind.value, shape: editing.shape, floor_m: Number(floor.value), ceiling_m: Number(ceiling.value),
    active_from: from.value ? new Date(from.value).toISOString() : null, active_until: until.value ? new Date(until.value).toISOString() : null,
    description: zone.description || "",
  });
  const done = async () => { editing = null; fill(editorEl, ); clearOverlay(); emit("zones:refresh"); };
  fill(editorEl, h("div", { class: "card" },
    h("h3", {}, zone.id ? `Edit zone #${zone.id}` : "New zone"),
    h("div", { class: "grid2" }, h("label", {}, "Name", name), h("label", {}, "Kind", kind)),
    h("div", { class: "grid2" }, h("label", {}, "Floor (m)", floor), h("label", {}, "Ceiling (m)", ceiling)),
    h("div", { class: "grid2" }, h("label", {}, "Active from", from), h("label", {}, "Active until", until)),
    shapeNote,
    h("div", { class: "row" },
      h("button", { "data-testid": "zone-draw", onclick: async () => { const g = await draw("polygon", { color: "#ff5c5c" }); if (g) { editing.shape = g; showShape(); } } }, zone.shape ? "Redraw shape" : "Draw shape"),
      h("button", { class: "primary", "data-testid": "zone-save", onclick: (e) => act(e.currentTarget, () => (zone.id ? put(`/zones/${zone.id}`, body()) : post("/zones", body())), (z) => `Zone ${z.name} saved`).then(done).catch(() => {}) }, "Save"),
      zone.id ? h("button", { class: "danger", onclick: (e) => { if (confirm(`Delete zone ${zone.name}?`)) act(e.currentTarget, () => del(`/zones/${zone.id}`), "Zone deleted").then(done).catch(() => {}); } }, "Delete") : null,
      h("button", { class: "ghost", onclick: done }, "Cancel"))));
  showShape();
}

async function loadPatrols() {
  let patrols;
  let runs;
  try {
    [patrols, runs] = await Promise.all([get("/patrols", { limit: 100 }), get("/patrols/runs", { limit: 50 })]);
  } catch (err) {
    fill(patrolsEl, h("p", { class: "error" }, err.message));
    return;
  }
  if (!patrols.items.length) { fill(patrolsEl, h("p", { class: "muted" }, "No patrols scheduled.")); return; }
  fill(patrolsEl, ...patrols.items.map((p) => {
    const next = p.enabled ? nextRun(p.cron, p.timezone, new Date(), { windowStart: p.window_start, windowEnd: p.window_end }) : null;
    const last = runs.items.find((r) => r.patrol_id === p.id);
    return h("div", { class: "card", "data-testid": "patrol-card" },
      h("div", { class: "head" }, h("b", {}, p.name), p.enabled ? pill("enabled", "ok") : pill("disabled", "")),
      kv([
        ["Schedule", `${p.cron} (${p.timezone})`],
        ["Window", p.window_start ? `${p.window_start}–${p.window_end}` : "any time"],
        ["Next run", next ? fmtDateTime(next.toISOString()) : "—"],
        ["Last run", last ? `${fmtDateTime(last.scheduled_for)} · ${last.status}` : "—"],
        ["Plan", `${p.plan?.kind ?? "?"} · ~${Math.round(p.estimated_duration_s / 60)} min`],
      ]),
      roles.dispatcher() ? h("div", { class: "row", style: "margin-top:6px" },
        h("button", { class: "small", onclick: (e) => act(e.currentTarget, () => patch(`/patrols/${p.id}`, { enabled: !p.enabled }), p.enabled ? "Patrol disabled" : "Patrol enabled").then(loadPatrols).catch(() => {}) }, p.enabled ? "Disable" : "Enable")) : null);
  }));
}
export { L };
