// Airspace: patrol, no-fly and event zones (admins draw circles or polygons, drag corners, split, merge,
// import and export GeoJSON/KML); scheduled patrols (dispatchers create, edit, pause and delete them; the
// schedule in words and its next runs come from the service, which uses the scheduler's own rules).
import { state, on, emit, roles } from "../state.js";
import { get, post, put, del, patch, api } from "../api.js";
import { h, pill, act, fmtDateTime, readOnlyNote, kv, fill, toast } from "../ui.js";
import { L, showOverlay, clearOverlay, zoneShapeLayer, getMap } from "../map.js";
import { draw } from "../draw.js";
import { t, tv, locale, errorText } from "../i18n.js";
import { KINDS } from "./missions.js";

let root;
let zonesEl;
let editorEl;
let patrolsEl;
let patrolFormEl;
let editing = null; // {id|null, name, kind, shape, floor_m, ceiling_m, description}
const mergeSet = new Set(); // zone ids ticked for a merge

export function mountAirspace(el) {
  root = el;
  zonesEl = h("div", { class: "list", "data-testid": "zone-list" });
  editorEl = h("div", { "data-testid": "zone-editor" });
  patrolsEl = h("div", { class: "list", "data-testid": "patrol-list" });
  patrolFormEl = h("div", { "data-testid": "patrol-form" });
  const importInput = h("input", { type: "file", accept: ".geojson,.json,.kml", hidden: true, "data-testid": "zone-import-file", onchange: (e) => importZones(e.currentTarget) });
  fill(root,
    h("div", { class: "row", style: "justify-content:space-between" }, h("h2", {}, t("airspace.scheduled_patrols")),
      roles.dispatcher() ? h("button", { class: "small", "data-testid": "patrol-new", onclick: () => editPatrol(null) }, t("patrols.new")) : null),
    patrolFormEl,
    patrolsEl,
    h("div", { class: "row", style: "justify-content:space-between" }, h("h2", {}, t("airspace.zones")),
      roles.admin() ? h("div", { class: "row" },
        h("button", { class: "small", "data-testid": "zone-new", onclick: () => edit({ id: null, name: "", kind: "no_fly", shape: null, floor_m: 0, ceiling_m: 120, description: "" }) }, t("airspace.new_zone")),
        h("button", { class: "small", "data-testid": "zone-import", onclick: () => importInput.click() }, t("airspace.import")),
        importInput) : null),
    roles.admin() ? null : readOnlyNote(t("airspace.read_only")),
    h("div", { class: "row" },
      h("button", { class: "small ghost", "data-testid": "zone-export-geojson", onclick: () => exportZones("geojson") }, t("airspace.export_geojson")),
      h("button", { class: "small ghost", "data-testid": "zone-export-kml", onclick: () => exportZones("kml") }, t("airspace.export_kml")),
      roles.admin() ? h("button", { class: "small", "data-testid": "zone-merge", onclick: (e) => mergeZones(e.currentTarget) }, t("airspace.merge")) : null),
    editorEl,
    zonesEl,
  );
  on("zones", renderZones);
  on("vehicles", () => { if (patrolForm) patrolForm.refreshVehicles(); });
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
    h("div", { class: "head" },
      h("span", {}, roles.admin() ? h("input", { type: "checkbox", class: "tick", "data-testid": "zone-tick", "aria-label": t("airspace.tick_merge"), checked: mergeSet.has(z.id),
        onclick: (e) => { e.stopPropagation(); if (e.currentTarget.checked) mergeSet.add(z.id); else mergeSet.delete(z.id); } }) : null, h("b", {}, z.name)),
      pill(z.kind, z.kind === "no_fly" ? "bad" : z.kind === "event" ? "warn" : "info", tv("zone", z.kind))),
    h("div", { class: "sub" }, h("span", { class: "mono" }, t("airspace.band", { floor: z.floor_m, ceiling: z.ceiling_m })),
      z.shape.type === "Circle" ? h("span", {}, t("airspace.circle_r", { r: z.shape.radius_m })) : h("span", {}, t("airspace.corners", { n: cornerCount(z.shape) })),
      z.active_from || z.active_until ? h("span", {}, `${fmtDateTime(z.active_from)} → ${fmtDateTime(z.active_until)}`) : h("span", { class: "muted" }, t("airspace.always_active"))))));
}

function cornerCount(shape) {
  if (shape.type === "Polygon") return shape.coordinates[0].length - 1;
  if (shape.type === "MultiPolygon") return shape.coordinates.reduce((n, p) => n + p[0].length - 1, 0);
  return 0;
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

const round = (v) => Math.round(v * 1e7) / 1e7;

/** Draggable corner handles on a polygon being edited: moving one moves that corner of ``editing.shape``. */
function vertexHandles(onMove) {
  const shape = editing?.shape;
  if (!shape || shape.type !== "Polygon") return [];
  const ring = shape.coordinates[0];
  return ring.slice(0, -1).map(([lon, lat], i) => {
    const m = L.marker([lat, lon], { draggable: true, pane: "overlay", icon: L.divIcon({ className: "vertex-handle", iconSize: [12, 12] }), keyboard: false });
    m.on("dragend", () => {
      const p = m.getLatLng();
      ring[i] = [round(p.lng), round(p.lat)];
      if (i === 0) ring[ring.length - 1] = ring[0];
      onMove();
    });
    return m;
  });
}

function edit(zone) {
  editing = zone;
  const name = h("input", { value: zone.name, "data-testid": "zone-name", maxlength: 100 });
  const kind = h("select", { "data-testid": "zone-kind" }, ["no_fly", "patrol", "event"].map((k) => h("option", { value: k, selected: k === zone.kind }, tv("zone", k))));
  const floor = h("input", { type: "number", value: zone.floor_m, min: 0, "data-testid": "zone-floor" });
  const ceiling = h("input", { type: "number", value: zone.ceiling_m, min: 1, "data-testid": "zone-ceiling" });
  const from = h("input", { type: "datetime-local", value: toLocalInput(zone.active_from), "data-testid": "zone-from" });
  const until = h("input", { type: "datetime-local", value: toLocalInput(zone.active_until), "data-testid": "zone-until" });
  const shapeNote = h("p", { class: "muted", "data-testid": "zone-shape" });
  const showShape = () => {
    const s = editing.shape;
    shapeNote.textContent = !s ? t("airspace.no_shape") : s.type === "Circle" ? t("airspace.shape_circle", { r: s.radius_m }) : t("airspace.shape_corners", { n: cornerCount(s) });
    const layers = s ? [zoneShapeLayer(s, { color: "#ffffff", weight: 2, dashArray: "4 4", fillOpacity: 0.08, pane: "overlay" })] : [];
    showOverlay([...layers, ...(roles.admin() ? vertexHandles(showShape) : [])]);
  };
  const body = () => ({
    name: name.value.trim(), kind: kind.value, shape: editing.shape, floor_m: Number(floor.value), ceiling_m: Number(ceiling.value),
    active_from: from.value ? new Date(from.value).toISOString() : null, active_until: until.value ? new Date(until.value).toISOString() : null,
    description: zone.description || "",
  });
  const done = async () => { editing = null; fill(editorEl); clearOverlay(); emit("zones:refresh"); };
  fill(editorEl, h("div", { class: "card" },
    h("h3", {}, zone.id ? t("airspace.edit_zone", { id: zone.id }) : t("airspace.new_zone_title")),
    h("div", { class: "grid2" }, h("label", {}, t("airspace.name"), name), h("label", {}, t("airspace.kind"), kind)),
    h("div", { class: "grid2" }, h("label", {}, t("airspace.floor"), floor), h("label", {}, t("airspace.ceiling"), ceiling)),
    h("div", { class: "grid2" }, h("label", {}, t("airspace.active_from"), from), h("label", {}, t("airspace.active_until"), until)),
    shapeNote,
    h("div", { class: "row" },
      h("button", { "data-testid": "zone-draw", onclick: async () => { const g = await draw("polygon", { color: "#ff5c5c" }); if (g) { editing.shape = g; showShape(); } } }, t(zone.shape ? "airspace.redraw" : "airspace.draw")),
      h("button", { "data-testid": "zone-draw-circle", onclick: async () => { const g = await draw("circle", { color: "#ff5c5c" }); if (g) { editing.shape = g; showShape(); } } }, t("airspace.draw_circle")),
      zone.id && zone.shape?.type === "Polygon" ? h("button", { "data-testid": "zone-split", onclick: (e) => splitZone(e.currentTarget, zone) }, t("airspace.split")) : null),
    h("div", { class: "row", style: "margin-top:6px" },
      h("button", { class: "primary", "data-testid": "zone-save", onclick: (e) => act(e.currentTarget, () => (zone.id ? put(`/zones/${zone.id}`, body()) : post("/zones", body())), (z) => t("airspace.saved", { name: z.name })).then(done).catch(() => {}) }, t("common.save")),
      zone.id ? h("button", { class: "danger", "data-testid": "zone-delete", onclick: (e) => { if (confirm(t("confirm.delete_zone", { name: zone.name }))) act(e.currentTarget, () => del(`/zones/${zone.id}`), t("airspace.deleted")).then(done).catch(() => {}); } }, t("common.delete")) : null,
      h("button", { class: "ghost", onclick: done }, t("common.cancel")))));
  showShape();
}

async function splitZone(button, zone) {
  const line = await draw("line", { color: "#f0b43c" });
  if (!line) return;
  if (!confirm(t("confirm.split_zone", { name: zone.name }))) return;
  await act(button, () => post(`/zones/${zone.id}/split`, { line }), (r) => t("airspace.split_done", { n: r.length })).then(() => { editing = null; fill(editorEl); clearOverlay(); emit("zones:refresh"); }).catch(() => {});
}

async function mergeZones(button) {
  const ids = [...mergeSet];
  if (ids.length < 2) { toast(t("airspace.merge_pick"), "bad"); return; }
  const names = ids.map((id) => state.zones.find((z) => z.id === id)?.name ?? id).join(", ");
  if (!confirm(t("confirm.merge_zones", { names }))) return;
  await act(button, () => post("/zones/merge", { zone_ids: ids }), (z) => t("airspace.merged", { name: z.name })).then(() => { mergeSet.clear(); emit("zones:refresh"); }).catch(() => {});
}

async function exportZones(format) {
  const res = await fetch(`/api/v1/zones/export.${format}`, { credentials: "same-origin" });
  if (!res.ok) { toast(t("err.http", { status: res.status }), "bad"); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: `zones.${format}` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function importZones(input) {
  const file = input.files?.[0];
  input.value = "";
  if (!file) return;
  const text = await file.text();
  const format = file.name.toLowerCase().endsWith(".kml") ? "kml" : "geojson";
  await act(null, () => post("/zones/import", { format, content: text }), (r) => t("airspace.imported", { n: r.created.length })).then(() => emit("zones:refresh")).catch(() => {});
}

// ---- patrols -------------------------------------------------------------------------------------------
let patrolForm = null;
let schedules = new Map(); // patrol id -> ScheduleOut

async function loadPatrols() {
  let patrols;
  let runs;
  try {
    [patrols, runs] = await Promise.all([get("/patrols", { limit: 100 }), get("/patrols/runs", { limit: 50 })]);
    schedules = new Map((await get("/patrols/schedule", { locale: locale(), count: 3 })).map((s) => [s.patrol_id, s]));
  } catch (err) {
    fill(patrolsEl, h("p", { class: "error" }, errorText(err)));
    return;
  }
  if (!patrols.items.length) { fill(patrolsEl, h("p", { class: "muted" }, t("patrols.none"))); return; }
  fill(patrolsEl, ...patrols.items.map((p) => {
    const sched = schedules.get(p.id);
    const last = runs.items.find((r) => r.patrol_id === p.id);
    const who = p.vehicle_id ? state.vehicles.get(p.vehicle_id)?.name ?? t("common.vehicle_n", { id: p.vehicle_id }) : p.dock ? t("patrols.any_at_dock", { dock: p.dock }) : t("patrols.any_vehicle");
    return h("div", { class: "card", "data-testid": "patrol-card", "data-patrol-id": p.id },
      h("div", { class: "head" }, h("b", {}, p.name), p.enabled ? pill("enabled", "ok") : pill("paused", "")),
      kv([
        [t("patrols.schedule"), h("span", { "data-testid": "patrol-description" }, sched?.description ?? p.cron, " ", h("span", { class: "muted mono" }, `(${p.cron}, ${p.timezone})`))],
        [t("patrols.window"), p.window_start ? `${p.window_start}–${p.window_end}` : t("patrols.any_time")],
        [t("patrols.next_runs"), h("span", { "data-testid": "patrol-next-runs" }, sched?.next_runs?.length ? sched.next_runs.map((r) => fmtDateTime(r)).join(" · ") : "—")],
        [t("patrols.last_run"), last ? `${fmtDateTime(last.scheduled_for)} · ${tv("state", last.status)}` : "—"],
        [t("patrols.plan"), t("patrols.plan_line", { kind: tv("plan", p.plan?.kind), min: Math.round(p.estimated_duration_s / 60) })],
        [t("patrols.vehicle"), who],
      ]),
      roles.dispatcher() ? h("div", { class: "row", style: "margin-top:6px" },
        h("button", { class: "small", "data-testid": "patrol-edit", onclick: () => editPatrol(p) }, t("common.edit")),
        h("button", { class: "small", "data-testid": "patrol-toggle", onclick: (e) => act(e.currentTarget, () => patch(`/patrols/${p.id}`, { enabled: !p.enabled }), t(p.enabled ? "patrols.paused" : "patrols.resumed", { name: p.name })).then(loadPatrols).catch(() => {}) }, t(p.enabled ? "patrols.pause" : "patrols.resume")),
        h("button", { class: "small danger", "data-testid": "patrol-delete", onclick: (e) => {
          if (!confirm(t("confirm.delete_patrol", { name: p.name }))) return;
          act(e.currentTarget, () => del(`/patrols/${p.id}`), t("patrols.deleted", { name: p.name })).then(loadPatrols).catch(() => {});
        } }, t("common.delete"))) : null);
  }));
}

function zonePlanGeometry(zone) {
  if (zone.shape.type !== "Circle") return zone.shape;
  // A circle as a 32-corner polygon (plans take GeoJSON).
  const [lon, lat] = zone.shape.center;
  const r = zone.shape.radius_m;
  const ring = [];
  for (let i = 0; i < 32; i++) {
    const a = (2 * Math.PI * i) / 32;
    ring.push([round(lon + (r * Math.sin(a)) / (111320 * Math.cos((lat * Math.PI) / 180))), round(lat + (r * Math.cos(a)) / 110540)]);
  }
  ring.push(ring[0]);
  return { type: "Polygon", coordinates: [ring] };
}

function editPatrol(p) {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const plan = p ? structuredClone(p.plan) : { kind: "perimeter", geometry: null, params: { alt_m: 60, inset_m: 10 } };
  const name = h("input", { value: p?.name ?? "", "data-testid": "patrol-name", maxlength: 100 });
  const kind = h("select", { "data-testid": "patrol-kind", onchange: () => { plan.kind = kind.value; plan.params = defaultsFor(kind.value, plan.params.alt_m); showPlan(); } },
    Object.keys(KINDS).map((k) => h("option", { value: k, selected: k === plan.kind }, t(`plan.${k}`))));
  const patrolZones = state.zones.filter((z) => z.kind === "patrol");
  const zonePick = h("select", { "data-testid": "patrol-zone", onchange: () => {
    const z = patrolZones.find((x) => String(x.id) === zonePick.value);
    if (!z) return;
    if (KINDS[plan.kind].draw !== "polygon") { plan.kind = "perimeter"; kind.value = "perimeter"; plan.params = defaultsFor("perimeter", plan.params.alt_m); }
    plan.geometry = zonePlanGeometry(z);
    showPlan();
  } }, h("option", { value: "" }, t("patrols.pick_zone")), patrolZones.map((z) => h("option", { value: z.id }, z.name)));
  const alt = h("input", { type: "number", value: plan.params?.alt_m ?? 60, min: 5, max: 500, "data-testid": "patrol-alt", onchange: () => { plan.params.alt_m = Number(alt.value); } });
  const cron = h("input", { value: p?.cron ?? "0 */2 * * *", "data-testid": "patrol-cron", class: "mono", oninput: () => queuePreview() });
  const timezone = h("input", { value: p?.timezone ?? tz, "data-testid": "patrol-timezone", oninput: () => queuePreview() });
  const wStart = h("input", { type: "time", value: p?.window_start ?? "", "data-testid": "patrol-window-start", onchange: () => queuePreview() });
  const wEnd = h("input", { type: "time", value: p?.window_end ?? "", "data-testid": "patrol-window-end", onchange: () => queuePreview() });
  const duration = h("input", { type: "number", value: Math.round((p?.estimated_duration_s ?? 900) / 60), min: 1, "data-testid": "patrol-duration" });
  const who = h("select", { "data-testid": "patrol-vehicle" });
  const refreshVehicles = () => {
    const docks = [...new Set([...state.vehicles.values()].map((v) => v.dock).filter(Boolean))].sort();
    const current = who.value || (p?.vehicle_id ? `v:${p.vehicle_id}` : p?.dock ? `d:${p.dock}` : "any");
    fill(who, h("option", { value: "any" }, t("patrols.any_vehicle")),
      ...docks.map((d) => h("option", { value: `d:${d}` }, t("patrols.any_at_dock", { dock: d }))),
      ...[...state.vehicles.values()].sort((a, b) => a.id - b.id).map((v) => h("option", { value: `v:${v.id}` }, v.name)));
    who.value = current;
  };
  refreshVehicles();
  const planNote = h("p", { class: "muted", "data-testid": "patrol-plan-note" });
  const previewEl = h("div", { class: "schedule-preview", "data-testid": "patrol-preview" });
  const showPlan = () => {
    planNote.textContent = plan.geometry ? t("patrols.plan_ready", { kind: t(`plan.${plan.kind}`) }) : t("patrols.plan_missing");
    showOverlay(plan.geometry ? [L.geoJSON(plan.geometry, { pane: "overlay", style: () => ({ color: "#3fa7ff", weight: 2, fillOpacity: 0.08 }) })] : []);
  };
  let timer = null;
  const queuePreview = () => { clearTimeout(timer); timer = setTimeout(runPreview, 300); };
  const runPreview = async () => {
    try {
      const s = await get("/patrols/preview", { cron: cron.value.trim(), timezone: timezone.value.trim() || "UTC", window_start: wStart.value, window_end: wEnd.value, locale: locale(), count: 5 });
      fill(previewEl, h("div", { "data-testid": "patrol-preview-description" }, h("b", {}, s.description)),
        h("ol", { class: "next-runs", "data-testid": "patrol-preview-runs" }, s.next_runs.map((r) => h("li", { class: "mono", "data-at": r }, fmtDateTime(r)))),
        s.skipped_outside_window ? h("p", { class: "muted" }, t("patrols.skipped_window", { n: s.skipped_outside_window })) : null);
    } catch (err) {
      fill(previewEl, h("p", { class: "error", "data-testid": "patrol-preview-error" }, errorText(err)));
    }
  };
  const body = () => {
    const out = {
      name: name.value.trim(), plan: { kind: plan.kind, geometry: plan.geometry, params: { ...plan.params, alt_m: Number(alt.value) } },
      cron: cron.value.trim(), timezone: timezone.value.trim() || "UTC",
      window_start: wStart.value || null, window_end: wEnd.value || null,
      estimated_duration_s: Number(duration.value) * 60, enabled: p ? p.enabled : true,
      required_capabilities: p?.required_capabilities ?? [], vehicle_id: null, dock: null,
    };
    if (who.value.startsWith("v:")) out.vehicle_id = Number(who.value.slice(2));
    if (who.value.startsWith("d:")) out.dock = who.value.slice(2);
    return out;
  };
  const done = () => { patrolForm = null; fill(patrolFormEl); clearOverlay(); loadPatrols(); };
  fill(patrolFormEl, h("div", { class: "card" },
    h("h3", {}, p ? t("patrols.edit_title", { name: p.name }) : t("patrols.new_title")),
    h("label", {}, t("patrols.name"), name),
    h("div", { class: "grid2" }, h("label", {}, t("patrols.kind"), kind), h("label", {}, t("patrols.zone"), zonePick)),
    h("div", { class: "row" }, h("button", { class: "small", "data-testid": "patrol-draw", onclick: async () => { const g = await draw(KINDS[plan.kind].draw); if (g) { plan.geometry = g; showPlan(); } } }, t("patrols.draw")), planNote),
    h("div", { class: "grid2" }, h("label", {}, t("missions.altitude"), alt), h("label", {}, t("patrols.duration"), duration)),
    h("div", { class: "grid2" }, h("label", {}, t("patrols.cron"), cron), h("label", {}, t("patrols.timezone"), timezone)),
    h("div", { class: "grid2" }, h("label", {}, t("patrols.window_start"), wStart), h("label", {}, t("patrols.window_end"), wEnd)),
    h("label", {}, t("patrols.vehicle"), who),
    previewEl,
    h("div", { class: "row" },
      h("button", { class: "primary", "data-testid": "patrol-save", onclick: (e) => {
        if (!plan.geometry) { toast(t("patrols.plan_missing"), "bad"); return; }
        act(e.currentTarget, () => (p ? put(`/patrols/${p.id}`, body()) : post("/patrols", body())), (r) => t("patrols.saved", { name: r.name })).then(done).catch(() => {});
      } }, t("common.save")),
      h("button", { class: "ghost", onclick: done }, t("common.cancel")))));
  patrolForm = { refreshVehicles };
  showPlan();
  runPreview();
}

function defaultsFor(kind, altM = 60) {
  const params = { alt_m: altM };
  for (const [key, value] of KINDS[kind].params) params[key] = key === "radii_m" ? String(value).split(",").map(Number) : value;
  return params;
}

export { L, api };
