// Live video: WebRTC tiles signaled over /ws/video, a dock over the map for the selected vehicle (fleet view)
// or the selected incident's drone (dispatch view), a multiview grid of every airborne drone (Video tab),
// recording indicator, snapshot, record, photo and gimbal point-on-map. DOM built with textContent only.
import { state, on, roles } from "../state.js";
import { post } from "../api.js";
import { h, toast, act } from "../ui.js";
import { pickPoint } from "../draw.js";
import { t, errorText } from "../i18n.js";

const statuses = new Map(); // vehicle id -> status (REST shape)
const tiles = new Map(); // client id -> tile
let ws = null;
let wsReady = null;
let seq = 0;
let dock = null;
let dockVehicle = null;
let grid = null;
let selectedIncident = null;

function connect() {
  if (ws && ws.readyState <= 1) return wsReady;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${proto}://${location.host}/ws/video`);  // the session cookie authenticates it
  wsReady = new Promise((resolve) => { ws.addEventListener("open", resolve, { once: true }); });
  ws.addEventListener("message", (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "status") {
      for (const s of msg.vehicles) statuses.set(s.vehicle_id, s);
      refreshLabels();
    } else if (msg.type === "answer") {
      tiles.get(msg.id)?.answer(msg.sdp);
    } else if (msg.type === "unavailable" || msg.type === "error") {
      tiles.get(msg.id)?.fail(msg.reason || msg.message);
    } else if (msg.type === "closed") {
      tiles.get(msg.id)?.fail(t("video.no_video", { reason: msg.reason }));
    }
  });
  ws.addEventListener("close", () => {
    for (const tile of tiles.values()) tile.fail(t("video.signaling_closed"));
    setTimeout(() => { if (tiles.size) { connect(); for (const tile of tiles.values()) tile.restart(); } }, 2000);
  });
  return wsReady;
}

/** A video element playing one vehicle's live stream, with its status line. */
function makeTile(vehicleId, { compact = false } = {}) {
  const id = `t${++seq}`;
  const video = h("video", { class: "video-el", "data-testid": "video-element", "data-vehicle-id": vehicleId });
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  const label = h("div", { class: "video-status", "data-testid": "video-status" }, t("video.connecting"));
  const rec = h("span", { class: "rec-dot", "data-testid": "rec-indicator", hidden: true }, t("video.rec"));
  const name = h("span", { class: "video-name" }, state.vehicles.get(vehicleId)?.name ?? t("common.vehicle_n", { id: vehicleId }));
  const el = h("div", { class: `video-tile ${compact ? "compact" : ""}`, "data-vehicle-id": vehicleId },
    h("div", { class: "video-head" }, name, rec), video, label);
  let pc = null;
  const tile = {
    id, vehicleId, el, video, label, rec,
    async start() {
      await connect();
      pc = new RTCPeerConnection({ iceServers: [] });
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.ontrack = (ev) => { video.srcObject = ev.streams[0] || new MediaStream([ev.track]); video.play().catch(() => {}); };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
        pc.addEventListener("icegatheringstatechange", done);
        setTimeout(resolve, 2000);
      });
      ws.send(JSON.stringify({ type: "watch", id, vehicle_id: vehicleId, sdp: pc.localDescription.sdp }));
    },
    async answer(sdp) {
      await pc.setRemoteDescription({ type: "answer", sdp });
      label.textContent = t("video.live");
      el.classList.remove("no-video");
    },
    fail(reason) {
      label.textContent = reason || t("video.no_video_short");
      el.classList.add("no-video");
    },
    restart() { pc?.close(); tile.start().catch((e) => tile.fail(String(e))); },
    stop() {
      tiles.delete(id);
      if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "stop", id }));
      pc?.close();
      video.srcObject = null;
    },
  };
  tiles.set(id, tile);
  tile.start().catch((e) => tile.fail(String(e)));
  return tile;
}

function refreshLabels() {
  for (const t of tiles.values()) {
    const s = statuses.get(t.vehicleId);
    if (!s) continue;
    t.rec.hidden = !s.recording;
    if (s.state !== "live" && s.message && t.el.classList.contains("no-video")) t.label.textContent = s.message;
  }
  if (dock && dockVehicle) renderDockControls();
  if (grid && !grid.hidden) syncGrid();
}

// ---- the dock over the map -------------------------------------------------------------------------
let dockTile = null;
let dockControls = null;

function showDock(vehicleId) {
  if (!dock) return;
  if (dockVehicle === vehicleId && dockTile) return;
  dockTile?.stop();
  dockTile = null;
  dockVehicle = vehicleId;
  if (!vehicleId) { dock.hidden = true; return; }
  dockTile = makeTile(vehicleId);
  dockControls = h("div", { class: "row video-controls" });
  dock.replaceChildren(
    h("div", { class: "video-dock-head" }, h("b", {}, t("video.live_video")),
      h("button", { class: "ghost small", "data-testid": "video-close", onclick: () => showDock(null) }, "×")),
    dockTile.el, dockControls);
  dock.hidden = false;
  renderDockControls();
}

function renderDockControls() {
  if (!dockControls || !dockVehicle) return;
  const vid = dockVehicle;
  const s = statuses.get(vid);
  const operator = roles.pilot() || roles.dispatcher();
  if (!operator) { dockControls.replaceChildren(); return; }
  const recording = s?.recording;
  const incident = state.incidents.find((i) => i.vehicle_id === vid && i.state !== "closed");
  dockControls.replaceChildren(
    h("button", { class: "small", "data-testid": "video-snapshot", onclick: (e) => act(e.currentTarget,
      () => post(`/video/vehicles/${vid}/snapshots`, { incident_id: incident?.id ?? null }),
      (r) => t("video.snapshot_stored", { id: r.id, sha: r.sha256.slice(0, 12) })).then((r) => {
        const link = h("a", { href: "#", "data-testid": "snapshot-link" }, t("video.snapshot_n", { id: r.id }));
        link.addEventListener("click", (ev) => { ev.preventDefault(); openSnapshot(r.id); });
        dockControls.append(link);
      }).catch(() => {}) }, t("video.snapshot")),
    recording
      ? h("button", { class: "small danger", "data-testid": "video-record-stop", onclick: (e) => act(e.currentTarget,
          () => post(`/video/recordings/${recording.id}/stop`), t("video.recording_stopped")).catch(() => {}) }, t("video.stop_recording"))
      : h("button", { class: "small", "data-testid": "video-record", onclick: (e) => act(e.currentTarget,
          () => post(`/video/vehicles/${vid}/recordings`, { incident_id: incident?.id ?? null }), t("video.recording")).catch(() => {}) }, t("video.record")),
    h("button", { class: "small", "data-testid": "video-photo", onclick: (e) => act(e.currentTarget,
      () => post(`/video/vehicles/${vid}/camera/photo`), t("video.photo_taken")).catch(() => {}) }, t("video.photo")),
    h("button", { class: "small", "data-testid": "gimbal-point", onclick: async (e) => {
      const btn = e.currentTarget;
      const p = await pickPoint();
      if (!p) return;
      act(btn, () => post(`/video/vehicles/${vid}/gimbal/roi`, { lat: p.lat, lon: p.lon, incident_id: incident?.id ?? null }),
        (r) => r.message).catch(() => {});
    } }, t("video.point_camera")),
  );
}

async function openSnapshot(id) {
  const res = await fetch(`/api/v1/video/snapshots/${id}.jpg`, { credentials: "same-origin" });
  if (!res.ok) { toast(t("video.snapshot_failed", { id, status: res.status }), "bad"); return; }
  const url = URL.createObjectURL(await res.blob());
  window.open(url, "_blank", "noopener");
}

// ---- the multiview grid ----------------------------------------------------------------------------
const gridTiles = new Map(); // vehicle id -> tile

function syncGrid() {
  const airborne = [...state.vehicles.values()].filter((v) => state.telemetry.get(v.id)?.in_air).map((v) => v.id);
  for (const [vid, tile] of gridTiles) {
    if (!airborne.includes(vid)) { tile.stop(); tile.el.remove(); gridTiles.delete(vid); }
  }
  for (const vid of airborne) {
    if (!gridTiles.has(vid)) {
      const tile = makeTile(vid, { compact: true });
      gridTiles.set(vid, tile);
      grid.querySelector(".video-grid-tiles").append(tile.el);
    }
  }
  grid.querySelector("[data-testid=video-grid-empty]").hidden = airborne.length > 0;
}

function stopGrid() {
  for (const tile of gridTiles.values()) { tile.stop(); tile.el.remove(); }
  gridTiles.clear();
}

/** The Video tab: the side panel lists cameras; the grid of airborne drones covers the map. */
export function mountVideo(view, mapWrap) {
  grid = h("div", { class: "video-grid", "data-testid": "video-grid", hidden: true },
    h("p", { class: "muted", "data-testid": "video-grid-empty" }, t("video.none_airborne")),
    h("div", { class: "video-grid-tiles" }));
  mapWrap.append(grid);
  dock = h("div", { class: "video-dock", "data-testid": "video-dock", hidden: true });
  mapWrap.append(dock);
  const list = h("div", { class: "list", "data-testid": "camera-list" });
  view.replaceChildren(h("h2", {}, t("video.cameras")), list);
  const renderList = () => {
    list.replaceChildren(...[...state.vehicles.values()].sort((a, b) => a.id - b.id).map((v) => {
      const s = statuses.get(v.id);
      return h("div", { class: "card clickable", "data-testid": "camera-card", "data-vehicle-id": v.id, onclick: () => showDock(v.id) },
        h("div", { class: "head" }, h("b", {}, v.name), h("span", { class: `pill ${s?.state === "live" ? "ok" : s?.state === "unavailable" ? "bad" : ""}`, "data-state": s?.state ?? "" }, s?.state ? t(`video.state.${s.state}`) : "…"),
          s?.recording ? h("span", { class: "rec-dot" }, t("video.rec")) : null),
        h("div", { class: "sub" }, h("span", {}, s && s.message && s.message !== s.state && s.state !== "live" ? s.message : ""), s?.stream ? h("span", { class: "mono" }, `${s.stream.width_px}×${s.stream.height_px} ${s.stream.encoding}`) : null,
          s?.transcoding ? h("span", { class: "pill", "data-testid": "video-transcoding" }, t("video.transcoding", { codec: s.codec })) : null));
    }));
  };
  view.addEventListener("panel:show", () => { grid.hidden = false; syncGrid(); });
  // The dock belongs to the fleet and dispatch views: it closes when another view is shown.
  new MutationObserver(() => {
    const tab = document.body.dataset.tab;
    if (tab !== "fleet" && tab !== "dispatch") showDock(null);
  }).observe(document.body, { attributes: true, attributeFilter: ["data-tab"] });
  const observer = new MutationObserver(() => {
    const shown = !view.hidden;
    grid.hidden = !shown;
    if (shown) syncGrid(); else stopGrid();
  });
  observer.observe(view, { attributes: true, attributeFilter: ["hidden"] });
  setInterval(renderList, 2000);
  on("vehicle:selected", (id) => { if (document.body.dataset.tab === "fleet") showDock(id); });
  on("incident:selected", (id) => {
    selectedIncident = id;
    const inc = state.incidents.find((i) => i.id === id);
    showDock(inc?.vehicle_id ?? null);
  });
  on("incidents", () => {
    if (document.body.dataset.tab !== "dispatch" || !selectedIncident) return;
    const inc = state.incidents.find((i) => i.id === selectedIncident);
    if (inc?.vehicle_id && inc.vehicle_id !== dockVehicle) showDock(inc.vehicle_id);
  });
  connect();
}
