// Click-to-add-vertex drawing (no Leaflet.draw): polygon, line, point or circle (centre, then a point on the
// edge); double-click or Finish closes.
import { L, getMap } from "./map.js";
import { t } from "./i18n.js";

const MIN_VERTICES = { polygon: 3, line: 2, points: 2, point: 1, circle: 2 };

let active = null;

export function isDrawing() { return active !== null; }

/** Start drawing; resolves with a GeoJSON geometry, or null when cancelled. */
export function draw(mode, { color = "#f0b43c" } = {}) {
  cancel();
  const map = getMap();
  const wrap = map.getContainer().parentElement;
  const bar = document.getElementById("draw-bar");
  document.getElementById("draw-hint").textContent = t(`draw.hint.${mode}`);
  bar.hidden = false;
  wrap.classList.add("drawing");
  map.doubleClickZoom.disable();
  const vertices = [];
  const layer = L.layerGroup().addTo(map);
  const shape = (mode === "polygon" ? L.polygon([], { color, weight: 2, fillOpacity: 0.12 }) : L.polyline([], { color, weight: 2, dashArray: mode === "points" ? "2 6" : null })).addTo(layer);
  const circleLayer = mode === "circle" ? L.circle(DISTRICT_ORIGIN, { radius: 1, color, weight: 2, fillOpacity: 0.12 }) : null;

  return new Promise((resolve) => {
    const redraw = () => {
      if (mode === "circle") {
        shape.setLatLngs([]);
        if (vertices.length) { circleLayer.setLatLng(vertices[0]); circleLayer.setRadius(vertices.length > 1 ? map.distance(vertices[0], vertices[1]) : 1); circleLayer.addTo(layer); }
      } else shape.setLatLngs(vertices);
      layer.eachLayer((l) => { if (l instanceof L.Marker) layer.removeLayer(l); });
      vertices.forEach((ll) => L.marker(ll, { icon: L.divIcon({ className: "vertex-icon", iconSize: [9, 9] }), interactive: false }).addTo(layer));
      document.getElementById("draw-finish").disabled = vertices.length < MIN_VERTICES[mode];
    };
    const finish = () => {
      if (vertices.length < MIN_VERTICES[mode]) return;
      const ring = vertices.map((ll) => [round(ll.lng), round(ll.lat)]);
      let geometry;
      if (mode === "polygon") geometry = { type: "Polygon", coordinates: [[...ring, ring[0]]] };
      else if (mode === "line") geometry = { type: "LineString", coordinates: ring };
      else if (mode === "points") geometry = { type: "LineString", coordinates: ring };
      else if (mode === "circle") geometry = { type: "Circle", center: ring[0], radius_m: Math.round(map.distance(vertices[0], vertices[1])) };
      else geometry = { type: "Point", coordinates: ring[0] };
      stop();
      resolve(geometry);
    };
    const onClick = (ev) => {
      const last = vertices[vertices.length - 1];
      // The two clicks of a double-click land on the same spot: keep one vertex.
      if (last && map.latLngToContainerPoint(last).distanceTo(map.latLngToContainerPoint(ev.latlng)) < 4) return;
      vertices.push(ev.latlng);
      redraw();
      if (mode === "point" || (mode === "circle" && vertices.length === 2)) finish();
    };
    const onDblClick = (ev) => { L.DomEvent.stop(ev); finish(); };
    const onKey = (ev) => {
      if (ev.key === "Escape") active.cancel();
      if (ev.key === "Enter") finish();
    };
    const undo = () => { vertices.pop(); redraw(); };
    const stop = () => {
      map.off("click", onClick);
      map.off("dblclick", onDblClick);
      document.removeEventListener("keydown", onKey);
      document.getElementById("draw-finish").onclick = null;
      document.getElementById("draw-undo").onclick = null;
      document.getElementById("draw-cancel").onclick = null;
      map.removeLayer(layer);
      map.doubleClickZoom.enable();
      wrap.classList.remove("drawing");
      bar.hidden = true;
      active = null;
    };
    map.on("click", onClick);
    map.on("dblclick", onDblClick);
    document.addEventListener("keydown", onKey);
    document.getElementById("draw-finish").onclick = finish;
    document.getElementById("draw-undo").onclick = undo;
    document.getElementById("draw-cancel").onclick = () => active.cancel();
    document.getElementById("draw-finish").hidden = mode === "point" || mode === "circle";
    document.getElementById("draw-undo").hidden = mode === "point";
    active = { cancel: () => { stop(); resolve(null); } };
    redraw();
  });
}

export function cancel() {
  if (active) active.cancel();
}

/** Pick one point on the map (for incidents); resolves with {lat, lon} or null. */
export async function pickPoint() {
  const g = await draw("point", { color: "#ff5c5c" });
  return g ? { lat: g.coordinates[1], lon: g.coordinates[0] } : null;
}

const round = (v) => Math.round(v * 1e7) / 1e7;
const DISTRICT_ORIGIN = [0, 0];
