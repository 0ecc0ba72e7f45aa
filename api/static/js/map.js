// The live map: optional tiles (with a clean offline look), zones, vehicles with heading and trail, overlays.
import * as L from "/static/leaflet/leaflet-src.esm.js";
import { state, emit, activeMissionOf } from "./state.js";
import { h, textEl } from "./ui.js";
import { t, tv } from "./i18n.js";

export { L };

const DISTRICT_CENTER = [39.835, 109.965];
const TRAIL_POINTS = 120;
const ZONE_STYLE = {
  patrol: { color: "#3fa7ff", weight: 1.2, fillOpacity: 0.05, dashArray: null },
  no_fly: { color: "#ff5c5c", weight: 1.5, fillOpacity: 0.16, dashArray: "4 3" },
  event: { color: "#c48cff", weight: 1.5, fillOpacity: 0.1, dashArray: "6 4" },
};
const VEHICLE_COLORS = ["#3ecf8e", "#f0b43c", "#4fc3f7", "#ff8a65", "#ba68c8", "#aed581", "#ffd54f", "#4dd0e1"];

let map;
let zoneLayer;
let pathLayer;
let overlayLayer;
let vehicleLayer;
let incidentLayer;
const markers = new Map(); // vehicle id -> {marker, trail, el}

export function vehicleColor(id) {
  return VEHICLE_COLORS[(id - 1 + VEHICLE_COLORS.length) % VEHICLE_COLORS.length];
}

export function getMap() { return map; }

export function createMap(element) {
  map = L.map(element, { zoomControl: true, zoomSnap: 0.25, attributionControl: true }).setView(DISTRICT_CENTER, 13);
  map.attributionControl.setPrefix("");
  L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(map);
  const wrap = element.parentElement;
  wrap.classList.add("no-tiles");
  addTiles(state.config.tile_url, wrap);
  map.createPane("zones").style.zIndex = 350;
  map.createPane("paths").style.zIndex = 420;
  map.createPane("overlay").style.zIndex = 450;
  map.createPane("zoneLabels").style.zIndex = 550; // below the vehicle markers and their name tags
  map.getPane("zoneLabels").style.pointerEvents = "none";
  zoneLayer = L.layerGroup().addTo(map);
  pathLayer = L.layerGroup().addTo(map);
  overlayLayer = L.layerGroup().addTo(map);
  incidentLayer = L.layerGroup().addTo(map);
  vehicleLayer = L.layerGroup().addTo(map);
  map.on("zoomend", stackTags);
  addLegend();
  return map;
}

function addTiles(url, wrap) {
  const badge = L.control({ position: "bottomright" });
  badge.onAdd = () => {
    const div = L.DomUtil.create("div", "map-badge");
    div.dataset.testid = "tile-state";
    div.textContent = url ? t("map.tiles_loading") : t("map.offline");
    return div;
  };
  badge.addTo(map);
  const label = badge.getContainer();
  if (!url) return;
  const attribution = url.includes("openstreetmap") ? "© OpenStreetMap contributors" : t("map.tiles");
  const tiles = L.tileLayer(url, { maxZoom: 19, attribution });
  let loaded = 0;
  let failed = 0;
  tiles.on("tileload", () => {
    loaded += 1;
    wrap.classList.remove("no-tiles");
    label.hidden = true;
  });
  tiles.on("tileerror", () => {
    failed += 1;
    // A closed network: give up on tiles after a few failures and keep the clean offline view.
    if (!loaded && failed >= 4) {
      map.removeLayer(tiles);
      label.textContent = t("map.unreachable");
    }
  });
  tiles.addTo(map);
}

function addLegend() {
  const legend = L.control({ position: "bottomright" });
  legend.onAdd = () => {
    const div = L.DomUtil.create("div", "legend");
    const row = (swatch, label) => h("div", {}, h("i", { class: `swatch ${swatch}` }), label);
    div.append(
      row("patrol", t("map.legend.patrol")),
      row("no-fly", t("map.legend.no_fly")),
      row("event", t("map.legend.event")),
      row("vehicle", t("map.legend.vehicle")),
    );
    return div;
  };
  legend.addTo(map);
}

/** A zone's shape (GeoJSON Polygon/MultiPolygon, or {type: "Circle", center: [lon, lat], radius_m}) as a layer. */
export function zoneShapeLayer(shape, style) {
  if (shape.type === "Circle") {
    return L.circle([shape.center[1], shape.center[0]], { radius: shape.radius_m, pane: "zones", ...style });
  }
  return L.geoJSON(shape, { pane: "zones", style: () => style });
}

export function renderZones(zones, { onClick } = {}) {
  zoneLayer.clearLayers();
  for (const zone of zones) {
    const style = ZONE_STYLE[zone.kind] || ZONE_STYLE.patrol;
    const layer = zoneShapeLayer(zone.shape, style);
    layer.bindTooltip(textEl(zone.name), { permanent: zone.kind !== "patrol" || map.getZoom() >= 13, direction: "center", className: "zone-label", pane: "zoneLabels" });
    if (onClick) layer.on("click", (ev) => onClick(zone, ev));
    layer.addTo(zoneLayer);
  }
}

export function fitDistrict(zones) {
  const group = L.featureGroup();
  for (const z of zones) zoneShapeLayer(z.shape, {}).addTo(group);
  if (group.getLayers().length) map.fitBounds(group.getBounds(), { padding: [20, 20] });
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** The vehicle marker as DOM nodes: the name is text, so a name like <img onerror=...> stays a name. */
function vehicleIcon(vehicle, color) {
  const svg = svgEl("svg", { viewBox: "0 0 34 34", width: "34", height: "34" });
  const g = svgEl("g", {});
  g.append(
    svgEl("circle", { class: "halo", cx: "17", cy: "17", r: "15", fill: "none", stroke: color, "stroke-width": "1.5", "stroke-dasharray": "3 3" }),
    svgEl("path", { d: "M17 4 L26 27 L17 21.5 L8 27 Z", fill: color, stroke: "#0b0f14", "stroke-width": "1.6", "stroke-linejoin": "round" }),
  );
  svg.append(g);
  return h("div", { class: "veh" }, svg,
    h("div", { class: "veh-tag" }, h("b", {}, vehicle?.name ?? t("common.vehicle")), " ", h("span", { class: "veh-info" })));
}

/** Draw or move a vehicle from its latest snapshot. */
export function updateVehicle(id, snap) {
  if (snap.lat === null || snap.lon === null) return;
  const vehicle = state.vehicles.get(id);
  const color = vehicleColor(id);
  let entry = markers.get(id);
  if (!entry) {
    const icon = L.divIcon({ className: "veh-icon", html: vehicleIcon(vehicle, color), iconSize: [34, 34], iconAnchor: [17, 17] });
    const marker = L.marker([snap.lat, snap.lon], { icon, zIndexOffset: 1000, keyboard: false });
    const trail = L.polyline([], { color, weight: 2, opacity: 0.7, pane: "paths" });
    marker.on("click", () => emit("vehicle:select", id));
    trail.addTo(vehicleLayer);
    marker.addTo(vehicleLayer);
    entry = { marker, trail };
    markers.set(id, entry);
  }
  entry.marker.setLatLng([snap.lat, snap.lon]);
  const el = entry.marker.getElement();
  if (el) {
    el.dataset.vehicleId = id;
    el.dataset.lat = snap.lat;
    el.dataset.lon = snap.lon;
    el.dataset.alt = snap.alt_rel_m ?? "";
    el.dataset.inAir = snap.in_air ? "1" : "0";
    el.classList.toggle("selected", state.selectedVehicle === id);
    const svg = el.querySelector("svg");
    if (svg) svg.style.transform = `rotate(${snap.heading_deg ?? 0}deg)`;
    const mission = activeMissionOf(id);
    const progress = snap.mission && snap.mission.total ? ` ${snap.mission.current}/${snap.mission.total}` : "";
    const info = el.querySelector(".veh-info");
    if (info) info.textContent = `${snap.mode ?? ""} · ${snap.battery_pct === null ? "—" : Math.round(snap.battery_pct) + "%"}${mission ? progress : ""}`;
  }
  stackTags();
  let trail = state.trails.get(id);
  if (!trail) state.trails.set(id, (trail = []));
  const last = trail[trail.length - 1];
  if (!last || Math.abs(last[0] - snap.lat) > 1e-6 || Math.abs(last[1] - snap.lon) > 1e-6) {
    if (snap.in_air) trail.push([snap.lat, snap.lon]);
    else trail.length = 0;
    if (trail.length > TRAIL_POINTS) trail.splice(0, trail.length - TRAIL_POINTS);
    entry.trail.setLatLngs(trail);
  }
}

let stackQueued = false;

/** Vehicles on one spot (e.g. at one dock) get their name tags stacked instead of printed over each other. */
export function stackTags() {
  if (stackQueued) return;
  stackQueued = true;
  setTimeout(() => {
    stackQueued = false;
    const placed = [];
    for (const [, entry] of [...markers].sort((a, b) => a[0] - b[0])) {
      const el = entry.marker.getElement();
      if (!el) continue;
      const p = map.latLngToContainerPoint(entry.marker.getLatLng());
      const below = placed.filter((q) => Math.abs(q.x - p.x) < 60 && Math.abs(q.y - p.y) < 18).length;
      placed.push(p);
      el.querySelector(".veh-tag").style.top = `${2 + below * 19}px`;
    }
  }, 400);
}

export function refreshSelection() {
  for (const [id, entry] of markers) entry.marker.getElement()?.classList.toggle("selected", state.selectedVehicle === id);
}

export function focusVehicle(id) {
  const snap = state.telemetry.get(id);
  if (snap && snap.lat !== null) map.panTo([snap.lat, snap.lon]);
}

/** Mission paths of the vehicles in flight (thin dashed lines in the vehicle's colour). */
export function renderMissionPaths(missions) {
  pathLayer.clearLayers();
  for (const m of missions) {
    if (!m.path) continue;
    L.geoJSON(m.path, { pane: "paths", style: () => ({ color: vehicleColor(m.vehicle_id), weight: 1.5, opacity: 0.8, dashArray: "5 5" }) }).addTo(pathLayer);
  }
}

/** The drawn geometry and previewed path of the plan being edited. */
export function showOverlay(layers) {
  overlayLayer.clearLayers();
  for (const layer of layers) layer.addTo(overlayLayer);
}

export function clearOverlay() { overlayLayer.clearLayers(); }

export function renderIncidents(incidents, { onClick } = {}) {
  incidentLayer.clearLayers();
  for (const inc of incidents) {
    if (inc.state === "closed") continue;
    const icon = L.divIcon({ className: "incident-icon", html: h("div", {}, String(inc.priority)), iconSize: [22, 22], iconAnchor: [11, 11] });
    const m = L.marker([inc.lat, inc.lon], { icon, zIndexOffset: 500 });
    m.bindTooltip(textEl(`#${inc.id} ${tv("incident", inc.kind)} · ${tv("state", inc.state)}`), { direction: "top", offset: [0, -10] });
    if (onClick) m.on("click", () => onClick(inc));
    m.addTo(incidentLayer);
  }
}
