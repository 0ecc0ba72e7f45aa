// The payload panel of the selected vehicle: the speaker's message library (play once, loop, stop), the
// siren, the spotlight (on, off, strobe), and the vehicle's payload timeline. Every action goes through the
// payload API (the gate's payload rule, the Commander's audit entry before the command leaves).
import { state, on, emit, roles } from "./state.js";
import { api, get, post } from "./api.js";
import { h, act, fmtTime, fill } from "./ui.js";
import { t, tv, has } from "./i18n.js";

const uses = new Map(); // vehicle id -> recent PayloadUseRead, newest first
let chosen = null; // the message id picked in the select (kept across re-renders)

export async function loadMessages() {
  try {
    state.messages = (await get("/payload/messages", { limit: 100 })).items;
  } catch {
    state.messages = [];
  }
  emit("messages");
}

export async function loadUses(vehicleId) {
  try {
    uses.set(vehicleId, (await get("/payload/uses", { vehicle_id: vehicleId, limit: 15 })).items);
  } catch { /* shown as empty */ }
  emit("payload:uses", vehicleId);
}

export function mountPayload() {
  on("event", (ev) => { if (ev.kind === "payload.used" && ev.vehicle_id) loadUses(ev.vehicle_id); });
  on("vehicle:selected", (id) => { if (id) loadUses(id); });
  loadMessages();
}

export function messageLabel(m) {
  return `${m.slot}. ${m.name} · ${has(`locale.${m.language}`) ? t(`locale.${m.language}`) : m.language}`;
}

/** Send one payload action to the vehicle (speaker.play/loop need a message). */
export function fire(button, vehicle, action, messageId = null) {
  const body = { action };
  if (action === "speaker.play" || action === "speaker.loop") body.message_id = messageId;
  const message = state.messages.find((m) => m.id === messageId);
  return act(button, () => post(`/payload/vehicles/${vehicle.id}/actions`, body),
    () => t("payload.sent", { action: tv("payload", action), name: vehicle.name, message: message ? message.name : "" }))
    .then((use) => { loadUses(vehicle.id); return use; });
}

export function selectedMessage() {
  return chosen ?? state.messages[0]?.id ?? null;
}

/** The panel for ``vehicle`` (operators only: pilots and dispatchers; the gate decides who may). */
export function payloadPanel(vehicle) {
  const caps = new Set(vehicle.capabilities || []);
  const box = h("div", { class: "payload", "data-testid": "payload-panel" });
  if (!roles.pilot() && !roles.dispatcher()) return null;
  if (!caps.has("speaker") && !caps.has("spotlight")) {
    box.append(h("p", { class: "muted" }, t("payload.none")));
    return box;
  }
  if (caps.has("speaker")) {
    const select = h("select", { "data-testid": "payload-message", "aria-label": t("payload.message"), onchange: () => { chosen = Number(select.value); } },
      state.messages.map((m) => h("option", { value: m.id, selected: m.id === selectedMessage() }, messageLabel(m))));
    const msg = () => Number(select.value) || null;
    box.append(
      h("label", {}, t("payload.message"), select),
      h("div", { class: "row" },
        h("button", { class: "small primary", "data-testid": "payload-play", disabled: !state.messages.length, onclick: (e) => fire(e.currentTarget, vehicle, "speaker.play", msg()) }, t("payload.play")),
        h("button", { class: "small", "data-testid": "payload-loop", disabled: !state.messages.length, onclick: (e) => fire(e.currentTarget, vehicle, "speaker.loop", msg()) }, t("payload.loop")),
        h("button", { class: "small", "data-testid": "payload-stop", onclick: (e) => fire(e.currentTarget, vehicle, "speaker.stop") }, t("payload.stop")),
        h("button", { class: "small danger", "data-testid": "payload-siren-on", onclick: (e) => { if (confirm(t("confirm.siren", { name: vehicle.name }))) fire(e.currentTarget, vehicle, "siren.on"); } }, t("payload.siren_on")),
        h("button", { class: "small", "data-testid": "payload-siren-off", onclick: (e) => fire(e.currentTarget, vehicle, "siren.off") }, t("payload.siren_off"))),
      ...(state.messages.length ? [] : [h("p", { class: "muted" }, t("payload.no_messages"))]));
  }
  if (caps.has("spotlight")) {
    box.append(h("div", { class: "row", style: "margin-top:6px" },
      h("span", { class: "muted" }, t("payload.spotlight")),
      h("button", { class: "small", "data-testid": "payload-light-on", onclick: (e) => fire(e.currentTarget, vehicle, "spotlight.on") }, t("payload.on")),
      h("button", { class: "small", "data-testid": "payload-light-strobe", onclick: (e) => fire(e.currentTarget, vehicle, "spotlight.strobe") }, t("payload.strobe")),
      h("button", { class: "small", "data-testid": "payload-light-off", onclick: (e) => fire(e.currentTarget, vehicle, "spotlight.off") }, t("payload.off"))));
  }
  const list = uses.get(vehicle.id) || [];
  box.append(h("h3", {}, t("payload.timeline")),
    list.length ? h("ul", { class: "timeline", "data-testid": "payload-timeline" }, list.map((u) => {
      const m = state.messages.find((x) => x.id === u.message_id);
      return h("li", { "data-action": u.action, "data-ok": String(u.ok) }, h("span", { class: "mono muted" }, fmtTime(u.at)), " ",
        h("b", {}, tv("payload", u.action)), m ? ` · ${m.name}` : "", h("span", { class: "muted", translate: "no" }, ` · ${u.actor}`),
        u.ok ? null : h("span", { class: "error" }, ` · ${t("payload.failed")}`));
    })) : h("p", { class: "muted", "data-testid": "payload-timeline-empty" }, t("payload.no_uses")));
  return box;
}

/** Admins' library editor: add, change and remove messages in Chinese or English, recorded or text. */
export function libraryEditor() {
  const list = h("tbody", { "data-testid": "library-table" });
  const name = h("input", { placeholder: t("library.name"), "data-testid": "library-name", maxlength: 100 });
  const slot = h("input", { type: "number", min: 1, max: 16, value: 1, "data-testid": "library-slot" });
  const kind = h("select", { "data-testid": "library-kind" }, ["tts", "recorded"].map((k) => h("option", { value: k }, t(`library.kind.${k}`))));
  const language = h("select", { "data-testid": "library-language" }, ["zh-CN", "en"].map((l) => h("option", { value: l }, t(`locale.${l}`))));
  const text = h("textarea", { placeholder: t("library.text"), rows: 2, "data-testid": "library-text", maxlength: 1000 });
  const audio = h("input", { placeholder: t("library.audio_ref"), "data-testid": "library-audio", maxlength: 300 });
  let editingId = null;
  const reset = () => { editingId = null; name.value = ""; text.value = ""; audio.value = ""; save.textContent = t("library.add"); };
  const row = (m) => h("tr", { "data-testid": "library-row", "data-message-id": m.id },
    h("td", { class: "mono" }, m.slot), h("td", { translate: "no" }, h("b", {}, m.name), h("div", { class: "muted" }, m.kind === "tts" ? m.text : m.audio_ref)),
    h("td", {}, has(`locale.${m.language}`) ? t(`locale.${m.language}`) : m.language), h("td", {}, t(`library.kind.${m.kind}`)),
    h("td", {},
      h("button", { class: "small", onclick: () => {
        editingId = m.id; name.value = m.name; slot.value = m.slot; kind.value = m.kind; language.value = m.language; text.value = m.text; audio.value = m.audio_ref ?? "";
        save.textContent = t("common.save");
      } }, t("common.edit")),
      h("button", { class: "small danger", "data-testid": "library-delete", onclick: (e) => {
        if (!confirm(t("confirm.delete_message", { name: m.name }))) return;
        act(e.currentTarget, () => api("DELETE", `/payload/messages/${m.id}`), t("library.deleted", { name: m.name })).then(load).catch(() => {});
      } }, t("common.delete"))));
  const load = async () => { await loadMessages(); fill(list, ...state.messages.map(row)); };
  const body = () => ({ name: name.value.trim(), slot: Number(slot.value), kind: kind.value, language: language.value, text: text.value.trim(), audio_ref: audio.value.trim() || null });
  const save = h("button", { class: "primary small", "data-testid": "library-save", onclick: (e) => act(e.currentTarget,
    () => (editingId ? api("PUT", `/payload/messages/${editingId}`, body()) : post("/payload/messages", body())), (m) => t("library.saved", { name: m.name }))
    .then(() => { reset(); return load(); }).catch(() => {}) }, t("library.add"));
  const el = h("div", { "data-testid": "library" },
    h("h2", {}, t("library.heading")),
    h("div", { class: "grid2" }, name, slot),
    h("div", { class: "grid2" }, kind, language),
    text, audio,
    h("div", { class: "row", style: "margin:6px 0" }, save, h("button", { class: "ghost small", onclick: reset }, t("common.cancel"))),
    h("table", { class: "tbl users" }, h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, t("library.message")), h("th", {}, t("library.language")), h("th", {}, t("library.kind_label")), h("th", {}))), list));
  load();
  return el;
}

