// The pilot's map: right-click (or a shortcut, then a click) on the map to act with the vehicle under
// control: fly here at an altitude, orbit here (radius, speed, direction), look here (gimbal), land here,
// return. Everything goes through the command API (the gate, then the Commander); a refusal is drawn on the
// map where it happens (the zone that blocks it, the point of the leg, the leg itself).
import { state, on, emit, roles } from "./state.js";
import { post } from "./api.js";
import { h, act, fill, toast, textEl } from "./ui.js";
import { L, getMap } from "./map.js";
import { t, errorText, refusalText } from "./i18n.js";

const DEFAULTS = { alt_m: 40, radius_m: 60, speed_m_s: 5, clockwise: true };
let refusalLayer = null;
let armed = null; // an action waiting for a click on the map ("goto", "orbit", "look", "land")
const prefs = { ...DEFAULTS };

export function controlledVehicle() {
  const id = state.selectedVehicle;
  return id && state.control.get(id)?.holder === state.me?.username ? state.vehicles.get(id) : null;
}

export function mountPilot() {
  const map = getMap();
  refusalLayer = L.layerGroup().addTo(map);
  map.on("contextmenu", (ev) => {
    if (!roles.pilot()) return;
    L.DomEvent.preventDefault(ev.originalEvent);
    openMenu(ev.latlng, ev.containerPoint);
  });
  map.on("click", (ev) => {
    if (!armed) return;
    const action = armed;
    disarm();
    run(action, ev.latlng);
  });
  document.getElementById("map-menu").addEventListener("contextmenu", (ev) => ev.preventDefault());
  on("vehicle:selected", () => { closeMenu(); refusalLayer.clearLayers(); });
}

/** Wait for one click on the map, then do ``action`` there (the G/O/K/N shortcuts). */
export function armAction(action) {
  if (!roles.pilot()) return;
  const v = controlledVehicle();
  if (!v) { toast(t("pilot.need_control"), "bad"); return; }
  armed = action;
  getMap().getContainer().parentElement.classList.add("aiming");
  toast(t("pilot.click_to", { action: t(`pilot.action.${action}`), name: v.name }), "");
}

export function disarm() {
  armed = null;
  getMap().getContainer().parentElement.classList.remove("aiming");
}

function closeMenu() {
  document.getElementById("map-menu").hidden = true;
}

function field(key, attrs) {
  const input = h("input", { ...attrs, value: prefs[key], "data-field": key, onchange: () => { prefs[key] = Number(input.value); } });
  return h("label", {}, t(`pilot.field.${key}`), input);
}

function openMenu(latlng, point) {
  const menu = document.getElementById("map-menu");
  const v = controlledVehicle();
  const selected = state.selectedVehicle ? state.vehicles.get(state.selectedVehicle) : null;
  if (!v) {
    fill(menu, h("p", { class: "muted", "data-testid": "map-menu-note" }, selected ? t("pilot.take_control_first", { name: selected.name }) : t("pilot.select_first")),
      h("div", { class: "row" }, h("button", { class: "small ghost", onclick: closeMenu }, t("common.close"))));
  } else {
    const direction = h("select", { "data-field": "clockwise", onchange: () => { prefs.clockwise = direction.value === "cw"; } },
      h("option", { value: "cw", selected: prefs.clockwise }, t("pilot.clockwise")), h("option", { value: "ccw", selected: !prefs.clockwise }, t("pilot.counter_clockwise")));
    const item = (action, cls = "") => h("button", { class: `small ${cls}`, "data-act": action, onclick: () => { closeMenu(); run(action, latlng); } }, t(`pilot.action.${action}`));
    fill(menu,
      h("div", { class: "menu-head" }, h("b", {}, v.name), h("span", { class: "mono muted" }, `${latlng.lat.toFixed(5)}, ${latlng.lng.toFixed(5)}`)),
      h("div", { class: "grid2" }, field("alt_m", { type: "number", min: 2, max: 120, step: 5 }), field("radius_m", { type: "number", min: 5, max: 2000, step: 10 })),
      h("div", { class: "grid2" }, field("speed_m_s", { type: "number", min: 1, max: 30, step: 1 }), h("label", {}, t("pilot.field.direction"), direction)),
      h("div", { class: "row" }, item("goto", "primary"), item("orbit"), item("look"), item("land", "danger"), item("return")),
      h("div", { class: "row" }, h("button", { class: "small ghost", onclick: closeMenu }, t("common.close"))));
  }
  const wrap = getMap().getContainer().getBoundingClientRect();
  menu.hidden = false;
  const x = Math.min(point.x + 8, wrap.width - menu.offsetWidth - 8);
  const y = Math.min(point.y + 8, wrap.height - menu.offsetHeight - 8);
  menu.style.left = `${Math.max(8, x)}px`;
  menu.style.top = `${Math.max(8, y)}px`;
}

/** One action at a point, through the command API (or the gimbal's for look here). */
export async function run(action, latlng) {
  const v = controlledVehicle();
  if (!v) { toast(t("pilot.need_control"), "bad"); return null; }
  refusalLayer.clearLayers();
  const at = { lat: round(latlng.lat), lon: round(latlng.lng) };
  const target = L.circleMarker([at.lat, at.lon], { radius: 7, color: "#f0b43c", weight: 2, pane: "overlay", className: "pilot-target" });
  let request;
  if (action === "goto") request = { command: "goto", params: { ...at, alt_m: prefs.alt_m } };
  else if (action === "orbit") request = { command: "orbit", params: { ...at, alt_m: prefs.alt_m, radius_m: prefs.radius_m, speed_m_s: prefs.speed_m_s, clockwise: prefs.clockwise } };
  else if (action === "land") request = { command: "land", params: { ...at, alt_m: prefs.alt_m } };
  else if (action === "return") request = { command: "return", params: {} };
  if (action === "land" && !confirm(t("confirm.land_here", { name: v.name }))) return null;
  if (action === "return" && !confirm(t("confirm.return", { name: v.name }))) return null;
  if (action !== "return") target.addTo(refusalLayer);
  if (action === "orbit") L.circle([at.lat, at.lon], { radius: prefs.radius_m, color: "#f0b43c", weight: 1, dashArray: "4 4", fill: false, pane: "overlay" }).addTo(refusalLayer);
  const okText = t(`pilot.done.${action}`, { name: v.name, alt: prefs.alt_m, r: prefs.radius_m });
  try {
    const result = action === "look"
      ? await act(null, () => post(`/video/vehicles/${v.id}/gimbal/roi`, at), okText)
      : await act(null, () => post(`/vehicles/${v.id}/commands`, request), okText);
    emit("pilot:acted", { vehicleId: v.id, action, at });
    return result;
  } catch (err) {
    showRefusal(err, v, at);
    return null;
  }
}

/** A gate refusal on the map: the zone it names outlined, the point where the leg breaks it, the leg. */
export function showRefusal(err, vehicle, at) {
  refusalLayer.clearLayers();
  const refusals = Array.isArray(err.details) ? err.details : [];
  const text = errorText(err);
  const snap = state.telemetry.get(vehicle.id);
  if (snap?.lat != null && at) {
    L.polyline([[snap.lat, snap.lon], [at.lat, at.lon]], { color: "#ff5c5c", weight: 3, dashArray: "6 6", pane: "overlay", className: "refused-leg" }).addTo(refusalLayer);
  }
  let placed = false;
  for (const r of refusals) {
    const zone = r.where?.zone ? state.zones.find((z) => z.name === r.where.zone) : null;
    if (zone) {
      const layer = zone.shape.type === "Circle"
        ? L.circle([zone.shape.center[1], zone.shape.center[0]], { radius: zone.shape.radius_m, color: "#ff5c5c", weight: 4, fillOpacity: 0.25, pane: "overlay", className: "refused-zone" })
        : L.geoJSON(zone.shape, { pane: "overlay", style: () => ({ color: "#ff5c5c", weight: 4, fillOpacity: 0.25, className: "refused-zone" }) });
      layer.addTo(refusalLayer);
    }
    if (r.where?.lat != null) {
      const m = L.marker([r.where.lat, r.where.lon], { pane: "overlay", icon: L.divIcon({ className: "refusal-icon", html: textEl("!"), iconSize: [22, 22], iconAnchor: [11, 11] }) });
      m.bindTooltip(textEl(refusalText(r)), { permanent: true, direction: "top", className: "refusal-label" });
      m.addTo(refusalLayer);
      placed = true;
    }
  }
  if (!placed && at) {
    const m = L.marker([at.lat, at.lon], { pane: "overlay", icon: L.divIcon({ className: "refusal-icon", html: textEl("!"), iconSize: [22, 22], iconAnchor: [11, 11] }) });
    m.bindTooltip(textEl(text), { permanent: true, direction: "top", className: "refusal-label" });
    m.addTo(refusalLayer);
  }
  const box = document.getElementById("map-refusal");
  if (box) { box.textContent = text; box.hidden = false; setTimeout(() => { box.hidden = true; }, 8000); }
}

const round = (v) => Math.round(v * 1e7) / 1e7;
