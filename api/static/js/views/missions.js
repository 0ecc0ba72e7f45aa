// Pilot: draw a plan (area sweep, perimeter, corridor, orbit, rings, route), preview it, launch it; the mission list.
import { state, on, emit, roles } from "../state.js";
import { get, post } from "../api.js";
import { h, pill, act, fmtDuration, fmtDistance, fmtTime, readOnlyNote, toast, liveRenderer, fill } from "../ui.js";
import { L, showOverlay, clearOverlay, getMap } from "../map.js";
import { draw, cancel } from "../draw.js";
import { missionActions } from "./fleet.js";
import { t, tv, refusalText, errorText } from "../i18n.js";

// Each plan kind: what is drawn and its parameters (label key param.<name>, default).
export const KINDS = {
  sweep: { draw: "polygon", params: [["swath_m", 40]] },
  perimeter: { draw: "polygon", params: [["inset_m", 10]] },
  corridor: { draw: "line", params: [["width_m", 60], ["swath_m", 40]] },
  orbit: { draw: "point", params: [["radius_m", 100], ["dwell_s", 60]] },
  rings: { draw: "point", params: [["radii_m", "300"], ["revisit_s", 600]] },
  route: { draw: "points", params: [] },
};

const form = { kind: "sweep", geometry: null, preview: null, vehicleId: null };
let selectedMission = null;
let missionEvents = [];
let root;
let listEl;
let previewEl;
let listRenderer;

export function mountMissions(el) {
  root = el;
  fill(root, 
    h("h2", {}, t("missions.new")),
    roles.pilot() ? buildForm() : readOnlyNote(t("missions.read_only")),
    h("h2", {}, t("missions.heading")),
    (listEl = h("div", { class: "list", "data-testid": "mission-list" })),
  );
  const listRoot = listEl;
  listRenderer = liveRenderer(listRoot, renderList, 1000);
  on("missions", () => listRenderer.queue());
  on("vehicles", () => { if (roles.pilot()) fillVehicles(); });
  renderList();
}

let vehicleSelect;
let nameInput;
let altInput;
let paramBox;
let kindSeg;

function fillVehicles() {
  const current = vehicleSelect.value;
  fill(vehicleSelect, ...[...state.vehicles.values()].sort((a, b) => a.id - b.id).map((v) => h("option", { value: v.id }, `${v.name} (${v.dock ?? t("missions.no_dock")})`)));
  if (current) vehicleSelect.value = current;
}

function buildForm() {
  vehicleSelect = h("select", { "data-testid": "mission-vehicle", onchange: () => invalidate() });
  nameInput = h("input", { "data-testid": "mission-name", value: t("plan.sweep"), maxlength: 100 });
  altInput = h("input", { type: "number", value: 60, min: 5, max: 500, step: 5, "data-testid": "mission-alt", onchange: () => invalidate() });
  paramBox = h("div", { class: "grid2" });
  kindSeg = h("div", { class: "seg", role: "radiogroup" }, Object.entries(KINDS).map(([k, spec]) =>
    h("button", { "data-kind": k, class: k === form.kind ? "on" : "", onclick: () => setKind(k) }, t(`plan.${k}`))));
  previewEl = h("div", { "data-testid": "plan-preview" });
  fillVehicles();
  renderParams();
  return h("div", {},
    h("div", { class: "grid2" }, h("label", {}, t("missions.vehicle"), vehicleSelect), h("label", {}, t("missions.name"), nameInput)),
    kindSeg,
    h("div", { class: "grid2" }, h("label", {}, t("missions.altitude"), altInput)),
    paramBox,
    h("div", { class: "row" },
      h("button", { "data-testid": "draw-plan", onclick: startDrawing }, t("missions.draw")),
      h("button", { "data-testid": "preview-plan", onclick: (e) => runPreview(e.currentTarget) }, t("missions.preview")),
      h("button", { class: "primary", "data-testid": "launch-plan", onclick: (e) => launch(e.currentTarget) }, t("missions.launch"))),
    previewEl);
}

function setKind(kind) {
  form.kind = kind;
  form.geometry = null;
  kindSeg.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.kind === kind));
  if (Object.keys(KINDS).some((k) => nameInput.value === t(`plan.${k}`))) nameInput.value = t(`plan.${kind}`);
  renderParams();
  invalidate();
  clearOverlay();
}

function renderParams() {
  fill(paramBox, ...KINDS[form.kind].params.map(([key, value]) =>
    h("label", {}, t(`param.${key}`), h("input", { name: key, value, "data-param": key, onchange: () => invalidate() }))));
}

function params() {
  const out = { alt_m: Number(altInput.value) };
  for (const input of paramBox.querySelectorAll("input")) {
    const key = input.dataset.param;
    out[key] = key === "radii_m" ? input.value.split(",").map((s) => Number(s.trim())).filter((n) => n > 0) : Number(input.value);
  }
  return out;
}

function invalidate() {
  form.preview = null;
  renderPreview();
}

async function startDrawing() {
  const geometry = await draw(KINDS[form.kind].draw);
  if (!geometry) return;
  form.geometry = geometry;
  showGeometry();
  await runPreview();
}

function showGeometry(pathGeo) {
  const layers = [];
  if (form.geometry) {
    if (form.geometry.type === "Point") {
      const [lon, lat] = form.geometry.coordinates;
      layers.push(L.circleMarker([lat, lon], { radius: 6, color: "#f0b43c", pane: "overlay" }));
    } else {
      layers.push(L.geoJSON(form.geometry, { pane: "overlay", style: () => ({ color: "#f0b43c", weight: 2, fillOpacity: 0.08 }) }));
    }
  }
  if (pathGeo) layers.push(L.geoJSON(pathGeo, { pane: "overlay", style: () => ({ color: "#ffffff", weight: 2, opacity: 0.9 }) }));
  showOverlay(layers);
}

function plan() {
  return { kind: form.kind, geometry: form.geometry, params: params() };
}

async function runPreview(button) {
  if (!form.geometry) { toast(t("missions.draw_first"), "bad"); return null; }
  const preview = await act(button, () => post("/plans/preview", plan(), { vehicle_id: vehicleSelect.value }));
  form.preview = preview;
  showGeometry(preview.path);
  renderPreview();
  return preview;
}

function metric(value, label) {
  return h("div", { class: "metric" }, h("b", {}, value), h("span", {}, label));
}

function renderPreview() {
  if (!previewEl) return;
  const p = form.preview;
  if (!p) {
    fill(previewEl, h("p", { class: "muted" }, form.geometry ? t("missions.geometry_drawn") : t("missions.draw_the", { kind: t(`plan.${form.kind}`) })));
    return;
  }
  const m = p.metrics || {};
  fill(previewEl, 
    h("div", { class: "metrics", "data-testid": "plan-metrics" },
      metric(fmtDistance(m.length_m), t("metric.path_length")),
      metric(fmtDuration(m.flight_time_s), t("metric.flight_time")),
      metric(m.energy_wh !== undefined ? `${Math.round(m.energy_wh)} Wh` : "—", t("metric.energy_of", { wh: m.usable_wh ? Math.round(m.usable_wh) : "?" })),
      metric(m.waypoints ?? p.items.length, t("metric.waypoints")),
      m.coverage !== undefined ? metric(`${(m.coverage * 100).toFixed(1)}%`, t("metric.coverage")) : metric(`${m.alt_m ?? "—"} m`, t("metric.altitude")),
      metric(m.speed_m_s ? `${m.speed_m_s} m/s` : "—", t("metric.speed"))),
    p.violations.length
      ? h("ul", { class: "violations", "data-testid": "plan-violations" }, p.violations.map((v) => h("li", { "data-kind": v.kind, "data-code": v.code ?? "" }, h("b", {}, tv("violation", v.kind)), ": ", v.code ? refusalText(v) : v.message)))
      : h("div", { class: "okline", "data-testid": "plan-ok" }, t("missions.no_violations")));
}

async function launch(button) {
  const preview = form.preview || (await runPreview(button));
  if (!preview) return;
  if (preview.violations.length) { toast(t("missions.fix_violations"), "bad"); return; }
  button.disabled = true;
  try {
    const mission = await act(null, () => post("/missions", { name: nameInput.value.trim() || t("missions.default_name"), vehicle_id: Number(vehicleSelect.value), plan: plan() }));
    emit("mission:changed", mission);
    await act(null, () => post(`/missions/${mission.id}/validate`));
    const launched = await act(null, () => post(`/missions/${mission.id}/launch`), t("missions.launched", { id: mission.id }));
    emit("mission:changed", launched);
    form.geometry = null;
    form.preview = null;
    clearOverlay();
    renderPreview();
    emit("vehicle:select", launched.vehicle_id);
  } catch { /* toasted */ } finally {
    button.disabled = false;
  }
}

function renderList() {
  const missions = [...state.missions.values()].sort((a, b) => b.id - a.id).slice(0, 30);
  if (!missions.length) { fill(listEl, h("p", { class: "muted" }, t("missions.none"))); return; }
  fill(listEl, ...missions.map((m) => {
    const v = state.vehicles.get(m.vehicle_id);
    const open = selectedMission === m.id;
    return h("div", { class: `card clickable ${open ? "selected" : ""}`, "data-testid": "mission-card", "data-mission-id": m.id, "data-state": m.state, onclick: () => toggleMission(m) },
      h("div", { class: "head" }, h("b", {}, `#${m.id} ${m.name}`), pill(m.state)),
      h("div", { class: "sub" },
        h("span", {}, v?.name ?? t("common.vehicle_n", { id: m.vehicle_id })), h("span", {}, tv("plan", m.plan?.kind)),
        h("span", { class: "mono" }, `${m.progress_current}/${m.progress_total}`),
        h("span", {}, m.started_at ? t("missions.started", { time: fmtTime(m.started_at) }) : t("missions.by", { name: m.created_by })),
        m.reason ? h("span", { class: "muted" }, m.reason) : null),
      m.progress_total ? h("div", { class: "bar" }, h("i", { style: `width:${(100 * m.progress_current) / m.progress_total}%` })) : null,
      roles.pilot() ? missionActions(m) : null,
      open ? h("ul", { class: "timeline", "data-testid": "mission-events" }, missionEvents.map((e) =>
        h("li", {}, h("span", { class: "mono muted" }, fmtTime(e.at)), " ", h("b", { "data-to": e.to_state }, `${tv("state", e.from_state)} → ${tv("state", e.to_state)}`), h("span", { class: "muted" }, ` · ${e.actor}${e.reason ? ` · ${e.reason}` : ""}`)))) : null);
  }));
}

async function toggleMission(m) {
  if (selectedMission === m.id) {
    selectedMission = null;
    clearOverlay();
    listRenderer.now();
    return;
  }
  selectedMission = m.id;
  if (m.path) showOverlay([L.geoJSON(m.path, { pane: "overlay", style: () => ({ color: "#ffffff", weight: 2, opacity: 0.9 }) })]);
  try {
    missionEvents = (await get(`/missions/${m.id}/events`, { limit: 100 })).items;
  } catch (err) {
    missionEvents = [];
    toast(errorText(err), "bad");
  }
  listRenderer.now();
}

export function leaveMissions() { cancel(); }
export { getMap };
