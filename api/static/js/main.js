// Panel entry: login, data loading, the live websocket, tabs.
import { get, put, getAll, connectLive, signIn, signOut, whoAmI } from "./api.js";
import { t, tv, LOCALES, initialLocale, loadLocale, locale, translateDom, errorText } from "./i18n.js";
import { mountShortcuts } from "./shortcuts.js";
import { mountPilot } from "./pilot.js";
import { mountPayload } from "./payload.js";
import { state, on, emit, roles } from "./state.js";
import { h, toast } from "./ui.js";
import { createMap, getMap, renderZones, fitDistrict, updateVehicle, refreshSelection, focusVehicle, renderMissionPaths } from "./map.js";
import { mountFleet } from "./views/fleet.js";
import { mountMissions } from "./views/missions.js";
import { mountDispatch } from "./views/dispatch.js";
import { mountAirspace, selectZone } from "./views/airspace.js";
import { mountFeed, mountAudit } from "./views/feed.js";
import { mountUsers } from "./views/users.js";
import { mountVideo } from "./views/video.js";
import { mountEvents } from "./views/events.js";
import { mountReports } from "./views/reports.js";
import { cancel as cancelDrawing, isDrawing } from "./draw.js";

const $ = (sel) => document.querySelector(sel);
let live = null;
let timers = [];

function fillLocales(select) {
  select.replaceChildren(...LOCALES.map((l) => h("option", { value: l, selected: l === locale() }, t(`locale.${l}`))));
}

async function boot() {
  // Everything the first paint needs, at once: config, who is signed in, their language, its table.
  const configLoad = fetch("/panel/config.json").then((r) => r.json()).catch(() => null);
  const meLoad = whoAmI().catch(() => null); // the HttpOnly session cookie, if there is a live one
  const savedLoad = meLoad.then((me) => (me ? get("/me/locale").catch(() => null) : null));
  const guess = initialLocale();
  const tableLoad = loadLocale(guess);
  const [config, me, saved] = await Promise.all([configLoad, meLoad, savedLoad, tableLoad]);
  if (config) state.config = config;
  state.me = me;
  // The signed-in user's own choice, kept by the service, wins over this browser's.
  if (saved?.locale && saved.locale !== guess) await loadLocale(saved.locale);
  translateDom();
  fillLocales($("#login-locale"));
  fillLocales($("#locale"));
  if (!me) return showLogin();
  return start();
}

$("#login-locale").addEventListener("change", async (ev) => {
  await loadLocale(ev.target.value);
  translateDom();
  fillLocales($("#login-locale"));
});

$("#locale").addEventListener("change", async (ev) => {
  try { await put("/me/locale", { locale: ev.target.value }); } catch (err) { toast(errorText(err), "bad"); return; }
  await loadLocale(ev.target.value);
  location.reload(); // every view is built again in the new language
});

function showLogin(message = null) {
  $("#app").hidden = true;
  $("#login").hidden = false;
  // Without a message the form keeps what it shows: a sign-in tried before boot() finished (a slow start)
  // has already put its answer there.
  if (message !== null) $("#login-error").textContent = message;
  $("#login-user").focus();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#login-submit").disabled = true;
  try {
    const res = await signIn($("#login-user").value.trim(), $("#login-pass").value);
    state.me = { username: res.username, role: res.role };
    location.reload(); // a clean start for the signed-in role
  } catch (err) {
    $("#login-error").textContent =
      err.status === 401 || err.status === 403 ? t("login.wrong") : err.status === 429 ? t("login.throttled", { s: err.retry_after_s ?? "" }) : errorText(err);
  } finally {
    $("#login-submit").disabled = false;
  }
});

$("#logout").addEventListener("click", async () => {
  try { await signOut(); } catch { /* the session may be gone already */ }
  location.reload();
});

window.addEventListener("skywarden:unauthorized", () => {
  live?.close();
  timers.forEach(clearInterval);
  showLogin(t("login.session_ended"));
});

function setTab(tab) {
  if (tab !== "pilot" && tab !== "airspace" && tab !== "dispatch") cancelDrawing();
  document.body.dataset.tab = tab;
  setTimeout(() => getMap()?.invalidateSize(), 0); // the audit view widens the side panel
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  document.querySelectorAll(".view").forEach((v) => {
    const show = v.dataset.view === tab;
    if (show && v.hidden) v.dispatchEvent(new Event("panel:show"));
    v.hidden = !show;
  });
}

async function loadVehicles() {
  const items = await getAll("/vehicles");
  state.vehicles = new Map(items.map((v) => [v.id, v]));
  emit("vehicles");
}

async function loadZones() {
  state.zones = await getAll("/zones");
  renderZones(state.zones, { onClick: (z) => { if (isDrawing()) return; setTab("airspace"); selectZone(z); } });
  emit("zones");
}

async function loadMissions() {
  const page = await get("/missions", { limit: 50 });
  for (const m of page.items) state.missions.set(m.id, m);
  emit("missions");
  renderMissionPaths([...state.missions.values()].filter((m) => ["uploading", "ready", "active", "paused", "returning"].includes(m.state)));
}

async function loadIncidents() {
  state.incidents = (await get("/incidents", { limit: 50 })).items;
  emit("incidents");
}

function onLive(msg) {
  if (msg.type === "snapshot") {
    const id = msg.vehicle_id; // registry id, as everywhere in the API
    state.telemetry.set(id, msg);
    updateVehicle(id, msg);
    emit("telemetry", id);
  } else if (msg.type === "event") {
    state.events.unshift(msg);
    if (state.events.length > 300) state.events.pop();
    emit("event", msg);
    if (msg.kind.startsWith("mission.")) loadMissions().catch(() => {});
    if (msg.kind.startsWith("incident.")) loadIncidents().catch(() => {});
    if (msg.kind === "link.added") loadVehicles().catch(() => {});
  }
}

async function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  const me = state.me;
  $("#who").replaceChildren(h("span", { translate: "no" }, me.username), " ", h("span", { class: `pill role ${me.role === "observer" ? "" : "info"}`, "data-testid": "role", "data-role": me.role }, tv("role", me.role)));
  document.body.dataset.role = me.role;
  document.querySelectorAll(".admin-only").forEach((el) => { el.hidden = !roles.admin(); });
  document.querySelectorAll(".dispatcher-only").forEach((el) => { el.hidden = !roles.dispatcher(); });
  $("#tabs").addEventListener("click", (ev) => { const t = ev.target.closest(".tab"); if (t) setTab(t.dataset.tab); });
  on("tab", setTab);
  on("vehicle:select", (id) => {
    if (isDrawing()) return;
    state.selectedVehicle = id;
    refreshSelection();
    focusVehicle(id);
    setTab("fleet");
    emit("vehicle:selected", id);
  });
  on("mission:changed", (m) => { if (m) state.missions.set(m.id, m); emit("missions"); loadMissions().catch(() => {}); });
  on("incidents:refresh", () => loadIncidents().catch(() => {}));
  on("zones:refresh", () => loadZones().catch(() => {}));

  createMap($("#map"));
  await Promise.all([loadVehicles(), loadZones().then(() => fitDistrict(state.zones.filter((z) => z.kind === "patrol")))]).catch((err) => toast(errorText(err), "bad"));
  document.body.dataset.ready = "1"; // the map shows every vehicle and zone (first meaningful paint)
  live = connectLive({
    onMessage: onLive,
    onState: (s) => {
      const el = $("#ws-state");
      el.textContent = t(`ws.${s}`);
      el.dataset.state = s;
      el.className = `pill ${s === "live" ? "ok" : s === "connecting" ? "warn" : "bad"}`;
      if (s === "unauthorized") window.dispatchEvent(new CustomEvent("skywarden:unauthorized"));
    },
  });

  await Promise.all([loadMissions(), loadIncidents()]).catch(() => {});

  mountFleet($('[data-view="fleet"]'));
  mountMissions($('[data-view="pilot"]'));
  mountDispatch($('[data-view="dispatch"]'));
  mountAirspace($('[data-view="airspace"]'));
  mountFeed($('[data-view="feed"]'));
  mountAudit($('[data-view="audit"]'));
  mountUsers($('[data-view="users"]'));
  mountReports($('[data-view="reports"]'));
  mountVideo($('[data-view="video"]'), $(".map-wrap"));
  mountEvents($('[data-view="events"]'));
  mountPilot();
  mountPayload();
  mountShortcuts({ setTab });
  emit("vehicles");
  emit("incidents");

  timers.push(setInterval(() => loadMissions().catch(() => {}), 3000));
  timers.push(setInterval(() => loadIncidents().catch(() => {}), 5000));
  const tick = () => { $("#clock").textContent = t("clock.utc", { time: new Date().toISOString().slice(11, 19) }); };
  tick();
  timers.push(setInterval(tick, 1000));
}

boot();
