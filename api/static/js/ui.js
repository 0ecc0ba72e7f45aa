// Small DOM helpers and formatting shared by the views (every text through i18n.js).
import { t, tv, locale, errorText } from "./i18n.js";

// Every string from the API (names, notes, kinds) goes into the DOM as text, never as HTML: h() has no way to
// set innerHTML. Styles go through the CSSOM (allowed by the page's CSP, unlike style="" attributes), and
// handlers through addEventListener (CSP forbids inline on*="" handlers).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") el.style.cssText = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k.startsWith("on")) throw new Error(`h(): ${k} must be a function`);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A text-only element for Leaflet tooltips and icons (a string there would be parsed as HTML). */
export function textEl(text, className) {
  const el = document.createElement("span");
  if (className) el.className = className;
  el.textContent = String(text ?? "");
  return el;
}

export function fmtTime(value) {
  if (value === null || value === undefined) return "—";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function fmtDateTime(value) {
  if (!value) return "—";
  const d = new Date(value);
  return `${d.toLocaleDateString(locale(), { month: "short", day: "numeric" })} ${fmtTime(value)}`;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  s = Math.round(s);
  if (s < 60) return t("unit.s", { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t("unit.min_s", { m, s: String(s % 60).padStart(2, "0") });
  return t("unit.h_min", { h: Math.floor(m / 60), m: String(m % 60).padStart(2, "0") });
}

export function fmtDistance(m) {
  if (m === null || m === undefined || !isFinite(m)) return "—";
  return m >= 1000 ? `${(m / 1000).toFixed(2)} km` : `${Math.round(m)} m`;
}

export const num = (v, digits = 0, unit = "") =>
  v === null || v === undefined || !isFinite(v) ? "—" : `${Number(v).toFixed(digits)}${unit}`;

const STATE_TONE = {
  active: "ok", completed: "info", ready: "info", uploading: "warn", paused: "warn", returning: "warn",
  validated: "info", draft: "", aborted: "bad", failed: "bad",
  new: "bad", assigned: "warn", en_route: "warn", on_scene: "ok", closed: "",
  launched: "ok", claimed: "info", skipped: "warn", preempted: "warn",
};

/** A state pill: ``state`` is the API's value (translated as state.<value>), or already translated text. */
export function pill(state, tone, label) {
  return h("span", { class: `pill ${tone ?? STATE_TONE[state] ?? ""}`, "data-state": state }, label ?? tv("state", state));
}

let toastTimer = null;
export function toast(message, tone = "") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast ${tone}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, tone === "bad" ? 6000 : 3000);
}

/** Run an API action from a button: disable it meanwhile, toast the error body's message. */
export async function act(button, fn, okMessage) {
  if (button) button.disabled = true;
  try {
    const result = await fn();
    if (okMessage) toast(typeof okMessage === "function" ? okMessage(result) : okMessage, "ok");
    return result;
  } catch (err) {
    toast(errorText(err), "bad");
    throw err;
  } finally {
    if (button) button.disabled = false;
  }
}

export function readOnlyNote(text = t("common.read_only")) {
  return h("div", { class: "readonly-note", "data-testid": "readonly" }, text);
}

export function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of pairs) dl.append(h("dt", {}, k), h("dd", {}, v));
  return dl;
}

/**
 * A throttled re-render for a live view: at most every ``intervalMs``, and never while the pointer is
 * down inside ``root`` or an input there has focus, so a click or half-typed text is not lost.
 */
export function liveRenderer(root, render, intervalMs = 500) {
  let queued = false;
  let last = 0;
  let pointerDown = false;
  root.addEventListener("pointerdown", () => { pointerDown = true; });
  window.addEventListener("pointerup", () => setTimeout(() => { pointerDown = false; }, 0));
  const run = () => { last = performance.now(); render(); };
  const tick = () => {
    const a = document.activeElement;
    const typing = root.contains(a) && ["INPUT", "TEXTAREA", "SELECT"].includes(a.tagName);
    if (pointerDown || typing) { setTimeout(tick, 300); return; }
    queued = false;
    run();
  };
  return {
    queue() {
      if (queued) return;
      queued = true;
      setTimeout(tick, Math.max(0, intervalMs - (performance.now() - last)));
    },
    now: run,
  };
}

/** Replace ``el``'s children, skipping null/undefined/false (conditional parts of a view). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** An ETA as m:ss (compact, for tables). */
export function fmtEta(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  s = Math.round(s);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
