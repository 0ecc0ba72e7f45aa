// Keyboard shortcuts for the common actions, with a legend (press ? or the keyboard button). Keys do
// nothing while the user types in a field; destructive ones ask first, as their buttons do.
import { state, emit, roles } from "./state.js";
import { h, fill, toast } from "./ui.js";
import { t } from "./i18n.js";
import { armAction, disarm, controlledVehicle } from "./pilot.js";
import { fire, selectedMessage } from "./payload.js";
import { command } from "./views/fleet.js";
import { post } from "./api.js";
import { act } from "./ui.js";

// key -> [legend key, who may, what it does]
function bindings({ setTab }) {
  const need = () => {
    const v = controlledVehicle();
    if (!v) toast(t("pilot.need_control"), "bad");
    return v;
  };
  const selected = () => (state.selectedVehicle ? state.vehicles.get(state.selectedVehicle) : null);
  return [
    ["?", "keys.legend", () => true, () => toggleLegend()],
    ["1-9", "keys.select", () => true, null],
    ["c", "keys.take_control", roles.pilot, () => {
      const v = selected();
      if (!v) return;
      const holder = state.control.get(v.id)?.holder;
      if (holder === state.me.username) return;
      if (holder && !confirm(t("fleet.confirm_take_over", { name: v.name, holder }))) return;
      act(null, () => post(`/vehicles/${v.id}/control`), t("fleet.control_taken")).then(() => emit("vehicle:selected", v.id)).catch(() => {});
    }],
    ["g", "keys.goto", roles.pilot, () => armAction("goto")],
    ["o", "keys.orbit", roles.pilot, () => armAction("orbit")],
    ["k", "keys.look", roles.pilot, () => armAction("look")],
    ["n", "keys.land_here", roles.pilot, () => armAction("land")],
    ["h", "keys.hold", roles.pilot, () => { const v = need(); if (v) command(null, v, "hold", {}).catch(() => {}); }],
    ["r", "keys.return", roles.pilot, () => { const v = need(); if (v && confirm(t("confirm.return", { name: v.name }))) command(null, v, "return", {}).catch(() => {}); }],
    ["l", "keys.land", roles.pilot, () => { const v = need(); if (v) command(null, v, "land", {}).catch(() => {}); }],
    ["p", "keys.play", () => roles.pilot() || roles.dispatcher(), () => { const v = selected(); if (v && selectedMessage()) fire(null, v, "speaker.play", selectedMessage()).catch(() => {}); }],
    ["s", "keys.stop", () => roles.pilot() || roles.dispatcher(), () => { const v = selected(); if (v) fire(null, v, "speaker.stop").catch(() => {}); }],
    ["Esc", "keys.escape", () => true, () => { disarm(); document.getElementById("map-menu").hidden = true; document.getElementById("shortcuts").hidden = true; }],
    ["F", "keys.tab_fleet", () => true, () => setTab("fleet")],
    ["M", "keys.tab_missions", () => true, () => setTab("pilot")],
    ["D", "keys.tab_dispatch", () => true, () => setTab("dispatch")],
    ["A", "keys.tab_airspace", () => true, () => setTab("airspace")],
  ];
}

let table = [];

function toggleLegend(show) {
  const el = document.getElementById("shortcuts");
  el.hidden = show === undefined ? !el.hidden : !show;
}

export function mountShortcuts({ setTab }) {
  table = bindings({ setTab });
  const el = document.getElementById("shortcuts");
  fill(el, h("div", { class: "row", style: "justify-content:space-between" }, h("b", {}, t("keys.title")),
    h("button", { class: "ghost small", onclick: () => toggleLegend(false) }, "×")),
  h("table", { class: "tbl keys" }, h("tbody", {}, table.filter(([, , allowed]) => allowed()).map(([key, label]) =>
    h("tr", { "data-key": key }, h("td", {}, h("kbd", {}, key)), h("td", {}, t(label)))))));
  document.getElementById("shortcuts-button").addEventListener("click", () => toggleLegend());
  document.addEventListener("keydown", (ev) => {
    const a = document.activeElement;
    if (a && (["INPUT", "TEXTAREA", "SELECT"].includes(a.tagName) || a.isContentEditable)) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (document.getElementById("draw-bar") && !document.getElementById("draw-bar").hidden) return; // drawing owns the keys
    const key = ev.key === "Escape" ? "Esc" : ev.key;
    if (/^[1-9]$/.test(key)) {
      const v = [...state.vehicles.values()].sort((x, y) => x.id - y.id)[Number(key) - 1];
      if (v) emit("vehicle:select", v.id);
      return;
    }
    const found = table.find(([k, , allowed]) => k === key && allowed());
    if (found && found[3]) { ev.preventDefault(); found[3](); }
  });
}
