// The panel's shared state and a tiny pub/sub: views subscribe to topics and re-render.

const listeners = new Map();

export const state = {
  me: null, // {username, role}
  config: { tile_url: "" },
  vehicles: new Map(), // registry id -> VehicleRead
  telemetry: new Map(), // registry id -> latest snapshot
  trails: new Map(), // registry id -> [[lat, lon], ...]
  missions: new Map(), // mission id -> MissionRead (recent)
  zones: [],
  incidents: [],
  events: [], // live feed, newest first
  selectedVehicle: null,
  control: new Map(), // vehicle id -> ControlRead (who holds it)
  messages: [], // the speaker's message library
};

export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
}

export function emit(topic, payload) {
  for (const fn of listeners.get(topic) || []) {
    try { fn(payload); } catch (err) { console.error(`listener of ${topic}`, err); }
  }
}

export const roles = {
  pilot: () => ["admin", "pilot"].includes(state.me?.role),
  dispatcher: () => ["admin", "dispatcher"].includes(state.me?.role),
  admin: () => state.me?.role === "admin",
  observer: () => state.me?.role === "observer",
};

/** The mission a vehicle is flying now (newest not-terminal mission), if any. */
export function activeMissionOf(vehicleId) {
  let best = null;
  for (const m of state.missions.values()) {
    if (m.vehicle_id !== vehicleId || ["completed", "aborted", "failed", "draft"].includes(m.state)) continue;
    if (!best || m.id > best.id) best = m;
  }
  return best;
}
