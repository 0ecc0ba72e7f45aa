// Fleet: every vehicle with mode, battery and mission progress; the selected vehicle's detail and commands.
import { state, on, emit, roles, activeMissionOf } from "../state.js";
import { get, post, del } from "../api.js";
import { h, pill, num, kv, act, fmtTime, readOnlyNote, toast, liveRenderer, fill } from "../ui.js";
import { vehicleColor } from "../map.js";

let root;
const control = new Map(); // vehicle id -> ControlRead

export function mountFleet(el) {
  root = el;
  renderer = liveRenderer(root, render);
  on("telemetry", queueRender);
  on("vehicles", queueRender);
  on("missions", queueRender);
  on("vehicle:selected", async (id) => {
    if (id) await loadControl(id);
    renderer.now();
  });
  setInterval(() => { if (state.selectedVehicle) loadControl(state.selectedVehicle).then(queueRender); }, 5000);
  renderer.now();
}

async function loadControl(id) {
  try { control.set(id, await get(`/vehicles/${id}/control`)); } catch { /* shown as unknown */ }
}

let renderer;
const queueRender = () => renderer?.queue();

function batteryBar(pct) {
  const cls = pct === null || pct === undefined ? "" : pct < 25 ? "crit" : pct < 45 ? "low" : "";
  return h("div", { class: `bar batt ${cls}` }, h("i", { style: `width:${Math.max(0, Math.min(100, pct ?? 0))}%` }));
}

function vehicleCard(v) {
  const t = state.telemetry.get(v.id);
  const m = activeMissionOf(v.id);
  const link = t ? (t.link_up ? pill(t.in_air ? "airborne" : "on ground", t.in_air ? "ok" : "") : pill("link down", "bad")) : pill("no telemetry", "warn");
  const progress = m && m.progress_total ? (100 * m.progress_current) / m.progress_total : t?.mission?.total ? (100 * t.mission.current) / t.mission.total : 0;
  return h("div", {
      class: `card clickable ${state.selectedVehicle === v.id ? "selected" : ""}`,
      "data-testid": "vehicle-card", "data-vehicle-id": v.id,
      onclick: () => emit("vehicle:select", v.id),
    },
    h("div", { class: "head" },
      h("div", {}, h("span", { style: `color:${vehicleColor(v.id)}` }, "▲ "), h("b", {}, v.name), " ", h("span", { class: "muted" }, v.dock ?? "")),
      link),
    h("div", { class: "sub" },
      h("span", { class: "mono" }, t?.mode ?? "—"),
      h("span", { class: "mono", "data-testid": "battery" }, `⚡ ${num(t?.battery_pct, 0, "%")}`),
      h("span", { class: "mono" }, `${num(t?.alt_rel_m, 0, " m")}`),
      h("span", { class: "mono" }, `${num(t?.ground_speed_m_s, 1, " m/s")}`),
      m ? h("span", {}, "mission ", pill(m.state)) : h("span", { class: "muted" }, "no mission")),
    batteryBar(t?.battery_pct),
    m ? h("div", { class: "bar", title: "mission progress" }, h("i", { style: `width:${progress}%` })) : null);
}

function detail(v) {
  const t = state.telemetry.get(v.id) || {};
  const m = activeMissionOf(v.id);
  const c = control.get(v.id);
  const mine = c?.holder && c.holder === state.me.username;
  const box = h("div", { "data-testid": "vehicle-detail" });
  box.append(
    h("h2", {}, `${v.name} · telemetry`),
    kv([
      ["Mode", t.mode ?? "—"], ["Armed / in air", `${t.armed ? "armed" : "disarmed"} / ${t.in_air ? "in air" : "ground"}`],
      ["Position", t.lat !== undefined && t.lat !== null ? `${t.lat.toFixed(5)}, ${t.lon.toFixed(5)}` : "—"],
      ["Altitude (rel / AMSL)", `${num(t.alt_rel_m, 1, " m")} / ${num(t.alt_amsl_m, 0, " m")}`],
      ["Heading", num(t.heading_deg, 0, "°")], ["Ground speed", num(t.ground_speed_m_s, 1, " m/s")],
      ["Climb", num(t.climb_m_s, 1, " m/s")],
      ["Battery", `${num(t.battery_pct, 0, "%")} · ${num(t.battery_v, 2, " V")}`],
      ["GPS / home", `${t.gps_ok ? "ok" : "no fix"} / ${t.home_ok ? "set" : "unset"}`],
      ["Link", t.link_up ? `up${t.link_quality ? ` (${Math.round(t.link_quality * 100)}%)` : ""}` : "down"],
      ["Last update", fmtTime(t.received_at)],
      ["Capabilities", (v.capabilities || []).join(", ") || "—"],
    ]),
  );
  box.append(h("h2", {}, "Mission"));
  if (m) {
    box.append(
      h("div", { class: "card", "data-testid": "vehicle-mission", "data-state": m.state },
        h("div", { class: "head" }, h("b", {}, `#${m.id} ${m.name}`), pill(m.state)),
        h("div", { class: "sub" }, h("span", {}, `${m.plan?.kind ?? ""}`), h("span", { class: "mono" }, `item ${m.progress_current}/${m.progress_total}`)),
        h("div", { class: "bar" }, h("i", { style: `width:${m.progress_total ? (100 * m.progress_current) / m.progress_total : 0}%` })),
        roles.pilot() ? missionActions(m) : null),
    );
  } else {
    box.append(h("p", { class: "muted" }, "No mission in flight."));
  }
  box.append(h("h2", {}, "Control"));
  box.append(
    h("p", { "data-testid": "control-holder" }, c?.holder ? ["Held by ", h("b", {}, c.holder), c.since ? h("span", { class: "muted" }, ` since ${fmtTime(c.since)}`) : null] : h("span", { class: "muted" }, "Nobody holds this vehicle.")),
  );
  if (roles.pilot()) {
    const handoffTo = h("input", { placeholder: "pilot username", "aria-label": "hand off to" });
    box.append(
      h("div", { class: "row" },
        !mine ? h("button", { onclick: (e) => act(e.currentTarget, () => post(`/vehicles/${v.id}/control`), "Control taken").then(() => loadControl(v.id)).then(() => renderer.now()) }, c?.holder ? "Take over" : "Take control") : null,
        mine ? h("button", { onclick: (e) => act(e.currentTarget, () => del(`/vehicles/${v.id}/control`), "Control released").then(() => loadControl(v.id)).then(() => renderer.now()) }, "Release") : null),
      mine ? h("div", { class: "row", style: "margin-top:6px" }, handoffTo,
        h("button", { onclick: (e) => act(e.currentTarget, () => post(`/vehicles/${v.id}/control/handoff`, { to_username: handoffTo.value.trim() }), `Handed to ${handoffTo.value}`).then(() => loadControl(v.id)).then(() => renderer.now()) }, "Hand off")) : null,
      h("h2", {}, "Commands"),
      h("div", { class: "row" }, ...["hold", "return", "land"].map((cmd) =>
        h("button", { class: cmd === "land" ? "danger" : "", "data-command": cmd, onclick: (e) => command(e.currentTarget, v, cmd, {}) }, cmd[0].toUpperCase() + cmd.slice(1))),
        h("button", { onclick: (e) => command(e.currentTarget, v, "takeoff", { alt_m: 30 }) }, "Take off 30 m")),
    );
  } else {
    box.append(readOnlyNote());
  }
  return box;
}

function command(button, v, cmd, params) {
  return act(button, () => post(`/vehicles/${v.id}/commands`, { command: cmd, params }), (r) => r.message || `${cmd} sent to ${v.name}`);
}

export function missionActions(m) {
  const b = (label, action, cls = "") => h("button", { class: `small ${cls}`, "data-action": action, onclick: (e) => {
    e.stopPropagation();
    act(e.currentTarget, () => post(`/missions/${m.id}/${action}`), `Mission #${m.id}: ${action}`).then((r) => emit("mission:changed", r));
  } }, label);
  const s = m.state;
  return h("div", { class: "row", style: "margin-top:6px" },
    ["draft"].includes(s) ? b("Validate", "validate") : null,
    ["validated", "draft"].includes(s) ? b("Launch", "launch", "primary") : null,
    ["active", "ready"].includes(s) ? b("Pause", "pause") : null,
    s === "paused" ? b("Resume", "resume", "primary") : null,
    ["active", "paused", "ready"].includes(s) ? b("Return", "return") : null,
    !["completed", "aborted", "failed"].includes(s) ? b("Abort", "abort", "danger") : null);
}

function render() {
  if (!root) return;
  const vehicles = [...state.vehicles.values()].sort((a, b) => a.id - b.id);
  const flying = vehicles.filter((v) => state.telemetry.get(v.id)?.in_air).length;
  fill(root, 
    h("h2", {}, `Fleet · ${vehicles.length} vehicles · ${flying} airborne`),
    h("div", { class: "list", "data-testid": "vehicle-list" }, vehicles.map(vehicleCard)),
    state.selectedVehicle && state.vehicles.get(state.selectedVehicle) ? detail(state.vehicles.get(state.selectedVehicle)) : h("p", { class: "muted", style: "margin-top:12px" }, "Click a vehicle on the map or in the list for its detail."),
  );
}

export { toast };
