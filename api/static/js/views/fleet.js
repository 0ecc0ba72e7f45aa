// Fleet: every vehicle with mode, battery and mission progress; the selected vehicle's detail and commands.
import { state, on, emit, roles, activeMissionOf } from "../state.js";
import { get, post, del } from "../api.js";
import { h, pill, num, kv, act, fmtTime, readOnlyNote, toast, liveRenderer, fill } from "../ui.js";
import { t as tr, tv } from "../i18n.js";
import { payloadPanel } from "../payload.js";
import { vehicleColor } from "../map.js";

let root;
const control = state.control; // vehicle id -> ControlRead

export function mountFleet(el) {
  root = el;
  renderer = liveRenderer(root, render, 1000); // 50 cards rebuilt at most once a second
  on("telemetry", queueRender);
  on("vehicles", queueRender);
  on("missions", queueRender);
  on("messages", queueRender);
  on("payload:uses", queueRender);
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
  const link = t ? (t.link_up ? pill(t.in_air ? "airborne" : "on_ground", t.in_air ? "ok" : "") : pill("link_down", "bad")) : pill("no_telemetry", "warn");
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
      m ? h("span", {}, tr("fleet.mission"), " ", pill(m.state)) : h("span", { class: "muted" }, tr("fleet.no_mission"))),
    batteryBar(t?.battery_pct),
    m ? h("div", { class: "bar", title: tr("fleet.mission_progress") }, h("i", { style: `width:${progress}%` })) : null);
}

function detail(v) {
  const t = state.telemetry.get(v.id) || {};
  const m = activeMissionOf(v.id);
  const c = control.get(v.id);
  const mine = c?.holder && c.holder === state.me.username;
  const box = h("div", { "data-testid": "vehicle-detail" });
  box.append(
    h("h2", {}, tr("fleet.telemetry_of", { name: v.name })),
    kv([
      [tr("fleet.mode"), t.mode ?? "—"], [tr("fleet.armed_in_air"), `${tr(t.armed ? "fleet.armed" : "fleet.disarmed")} / ${tr(t.in_air ? "fleet.in_air" : "fleet.ground")}`],
      [tr("fleet.position"), t.lat !== undefined && t.lat !== null ? `${t.lat.toFixed(5)}, ${t.lon.toFixed(5)}` : "—"],
      [tr("fleet.altitude"), `${num(t.alt_rel_m, 1, " m")} / ${num(t.alt_amsl_m, 0, " m")}`],
      [tr("fleet.heading_label"), num(t.heading_deg, 0, "°")], [tr("fleet.ground_speed"), num(t.ground_speed_m_s, 1, " m/s")],
      [tr("fleet.climb"), num(t.climb_m_s, 1, " m/s")],
      [tr("fleet.battery"), `${num(t.battery_pct, 0, "%")} · ${num(t.battery_v, 2, " V")}`],
      [tr("fleet.gps_home"), `${tr(t.gps_ok ? "fleet.gps_ok" : "fleet.no_fix")} / ${tr(t.home_ok ? "fleet.home_set" : "fleet.home_unset")}`],
      [tr("fleet.link"), t.link_up ? `${tr("fleet.link_up")}${t.link_quality ? ` (${Math.round(t.link_quality * 100)}%)` : ""}` : tr("fleet.link_down")],
      [tr("fleet.last_update"), fmtTime(t.received_at)],
      [tr("fleet.capabilities"), (v.capabilities || []).map((c) => tv("capability", c)).join(", ") || "—"],
    ]),
  );
  box.append(h("h2", {}, tr("fleet.mission_heading")));
  if (m) {
    box.append(
      h("div", { class: "card", "data-testid": "vehicle-mission", "data-state": m.state },
        h("div", { class: "head" }, h("b", {}, `#${m.id} ${m.name}`), pill(m.state)),
        h("div", { class: "sub" }, h("span", {}, tv("plan", m.plan?.kind)), h("span", { class: "mono" }, tr("fleet.item", { current: m.progress_current, total: m.progress_total }))),
        h("div", { class: "bar" }, h("i", { style: `width:${m.progress_total ? (100 * m.progress_current) / m.progress_total : 0}%` })),
        roles.pilot() ? missionActions(m) : null),
    );
  } else {
    box.append(h("p", { class: "muted" }, tr("fleet.no_mission_in_flight")));
  }
  box.append(h("h2", {}, tr("fleet.control")));
  box.append(
    h("p", { "data-testid": "control-holder", "data-holder": c?.holder ?? "" }, c?.holder ? [tr("fleet.held_by"), " ", h("b", { translate: "no" }, c.holder), c.since ? h("span", { class: "muted" }, " ", tr("fleet.since", { time: fmtTime(c.since) })) : null] : h("span", { class: "muted" }, tr("fleet.nobody_holds"))),
  );
  if (roles.pilot()) {
    const handoffTo = h("input", { placeholder: tr("fleet.pilot_username"), "aria-label": tr("fleet.hand_off_to"), "data-testid": "handoff-to" });
    box.append(
      h("div", { class: "row" },
        !mine ? h("button", { "data-testid": "control-take", onclick: (e) => takeControl(e.currentTarget, v, c) }, tr(c?.holder ? "fleet.take_over" : "fleet.take_control")) : null,
        mine ? h("button", { "data-testid": "control-release", onclick: (e) => act(e.currentTarget, () => del(`/vehicles/${v.id}/control`), tr("fleet.control_released")).then(() => loadControl(v.id)).then(() => renderer.now()) }, tr("fleet.release")) : null),
      mine ? h("div", { class: "row", style: "margin-top:6px" }, handoffTo,
        h("button", { "data-testid": "control-handoff", onclick: (e) => act(e.currentTarget, () => post(`/vehicles/${v.id}/control/handoff`, { to_username: handoffTo.value.trim() }), tr("fleet.handed_to", { name: handoffTo.value })).then(() => loadControl(v.id)).then(() => renderer.now()) }, tr("fleet.hand_off"))) : "", // append() would print null
      h("h2", {}, tr("fleet.commands")),
      h("div", { class: "row" }, ...["hold", "return", "land"].map((cmd) =>
        h("button", { class: cmd === "land" ? "danger" : "", "data-command": cmd, onclick: (e) => command(e.currentTarget, v, cmd, {}) }, tr(`command.${cmd}`))),
        h("button", { "data-command": "takeoff", onclick: (e) => command(e.currentTarget, v, "takeoff", { alt_m: 30 }) }, tr("fleet.takeoff_30"))),
      h("p", { class: "muted hint", "data-testid": "click-to-act-hint" }, tr(mine ? "pilot.hint" : "pilot.hint_take_control")),
    );
  } else {
    box.append(readOnlyNote());
  }
  if (roles.pilot() || roles.dispatcher()) {
    box.append(h("h2", {}, tr("payload.heading")), payloadPanel(v));
  }
  return box;
}

function takeControl(button, v, c) {
  // Taking a vehicle from another pilot is destructive for them: confirm it.
  if (c?.holder && !confirm(tr("fleet.confirm_take_over", { name: v.name, holder: c.holder }))) return;
  act(button, () => post(`/vehicles/${v.id}/control`), tr("fleet.control_taken")).then(() => loadControl(v.id)).then(() => renderer.now()).catch(() => {});
}

/** Destructive commands (land where it is, land here, take off) ask first. */
const CONFIRM = new Set(["land", "takeoff"]);

export function command(button, v, cmd, params) {
  if (CONFIRM.has(cmd) && !confirm(tr(`confirm.${cmd}`, { name: v.name }))) return Promise.resolve(null);
  return act(button, () => post(`/vehicles/${v.id}/commands`, { command: cmd, params }), () => tr("fleet.command_sent", { command: tr(`command.${cmd}`), name: v.name }));
}

export function missionActions(m) {
  const b = (action, cls = "") => h("button", { class: `small ${cls}`, "data-action": action, onclick: (e) => {
    e.stopPropagation();
    if (action === "abort" && !confirm(tr("confirm.abort", { id: m.id, name: m.name }))) return;
    act(e.currentTarget, () => post(`/missions/${m.id}/${action}`), tr("mission.action_done", { id: m.id, action: tr(`mission.action.${action}`) })).then((r) => emit("mission:changed", r)).catch(() => {});
  } }, tr(`mission.action.${action}`));
  const s = m.state;
  return h("div", { class: "row", style: "margin-top:6px" },
    ["draft"].includes(s) ? b("validate") : null,
    ["validated", "draft"].includes(s) ? b("launch", "primary") : null,
    ["active", "ready"].includes(s) ? b("pause") : null,
    s === "paused" ? b("resume", "primary") : null,
    ["active", "paused", "ready"].includes(s) ? b("return") : null,
    !["completed", "aborted", "failed"].includes(s) ? b("abort", "danger") : null);
}

function render() {
  if (!root) return;
  const vehicles = [...state.vehicles.values()].sort((a, b) => a.id - b.id);
  const flying = vehicles.filter((v) => state.telemetry.get(v.id)?.in_air).length;
  fill(root, 
    h("h2", {}, tr("fleet.heading", { count: vehicles.length, airborne: flying })),
    h("div", { class: "list", "data-testid": "vehicle-list" }, vehicles.map(vehicleCard)),
    state.selectedVehicle && state.vehicles.get(state.selectedVehicle) ? detail(state.vehicles.get(state.selectedVehicle)) : h("p", { class: "muted", style: "margin-top:12px" }, tr("fleet.click_hint")),
  );
}

export { toast };
