// Dispatcher: create an incident (click the map or type coordinates), ranked candidates with ETA, dispatch,
// and the response timeline.
import { state, on, emit, roles } from "../state.js";
import { get, post } from "../api.js";
import { h, pill, act, fmtEta, fmtDistance, fmtTime, readOnlyNote, liveRenderer, fill } from "../ui.js";
import { L, showOverlay, renderIncidents, getMap } from "../map.js";
import { pickPoint } from "../draw.js";
import { t, tv, errorText } from "../i18n.js";

let root;
let listEl;
let detailEl;
let selected = null; // incident id
let candidates = null; // DecisionOut for the selected incident
let timeline = [];
let listRenderer;

export function mountDispatch(el) {
  root = el;
  listEl = h("div", { class: "list", "data-testid": "incident-list" });
  detailEl = h("div", { "data-testid": "incident-detail" });
  fill(root, 
    h("h2", {}, t("dispatch.new")),
    roles.dispatcher() ? buildForm() : readOnlyNote(t("dispatch.read_only")),
    detailEl,
    h("h2", {}, t("dispatch.incidents")),
    listEl,
  );
  listRenderer = liveRenderer(listEl, renderList, 1000);
  on("incidents", () => {
    listRenderer.queue();
    renderIncidents(state.incidents, { onClick: (inc) => { emit("tab", "dispatch"); select(inc.id); } });
  });
  on("event", (ev) => {
    if (selected && ev.kind.startsWith("incident.") && ev.data?.incident_id === selected) loadDetail();
  });
  setInterval(() => { if (selected && !root.closest("[hidden]")) loadDetail(); }, 4000);
  renderList();
}

let latInput;
let lonInput;
let kindInput;
let prioInput;
let notesInput;
let autoInput;

function buildForm() {
  latInput = h("input", { "data-testid": "incident-lat", placeholder: "39.83", inputmode: "decimal" });
  lonInput = h("input", { "data-testid": "incident-lon", placeholder: "109.97", inputmode: "decimal" });
  kindInput = h("select", { "data-testid": "incident-kind" }, ["burglary", "assault", "traffic", "fire", "missing_person", "suspicious", "other"].map((k) => h("option", { value: k }, tv("incident", k))));
  prioInput = h("select", { "data-testid": "incident-priority" }, [1, 2, 3, 4, 5].map((p) => h("option", { value: p, selected: p === 2 }, `P${p}`)));
  notesInput = h("input", { placeholder: t("dispatch.notes"), maxlength: 500 });
  autoInput = h("input", { type: "checkbox", "data-testid": "incident-auto", style: "width:auto;margin-right:6px" });
  return h("div", {},
    h("div", { class: "grid2" }, h("label", {}, t("common.latitude"), latInput), h("label", {}, t("common.longitude"), lonInput)),
    h("div", { class: "grid2" }, h("label", {}, t("dispatch.kind"), kindInput), h("label", {}, t("dispatch.priority"), prioInput)),
    h("label", {}, t("dispatch.notes"), notesInput),
    h("label", { style: "display:flex;align-items:center" }, autoInput, t("dispatch.auto")),
    h("div", { class: "row" },
      h("button", { "data-testid": "incident-pick", onclick: async () => {
        const p = await pickPoint();
        if (!p) return;
        latInput.value = p.lat.toFixed(6);
        lonInput.value = p.lon.toFixed(6);
        showOverlay([L.circleMarker([p.lat, p.lon], { radius: 8, color: "#ff5c5c", pane: "overlay" })]);
      } }, t("dispatch.pick")),
      h("button", { class: "primary", "data-testid": "incident-create", onclick: (e) => create(e.currentTarget) }, t("dispatch.create"))));
}

async function create(button) {
  const lat = Number(latInput.value);
  const lon = Number(lonInput.value);
  const incident = await act(button, () => post("/incidents", {
    lat, lon, kind: kindInput.value, priority: Number(prioInput.value), notes: notesInput.value,
    auto_dispatch: autoInput.checked,
  }), (i) => t("dispatch.created", { id: i.id })).catch(() => null);
  if (!incident) return;
  showOverlay([]);
  emit("incidents:refresh");
  await select(incident.id);
}

async function select(id) {
  selected = id;
  emit("incident:selected", id);
  candidates = null;
  renderList();
  await loadDetail();
  const inc = state.incidents.find((i) => i.id === id);
  if (inc) getMap().panTo([inc.lat, inc.lon]);
}

async function loadDetail() {
  if (!selected) return;
  try {
    const [incident, events] = await Promise.all([get(`/incidents/${selected}`), get(`/incidents/${selected}/events`)]);
    timeline = events;
    // A new incident: the live ranking; once dispatched, the ranking the decision was made on.
    if (incident.state === "new") candidates = await get(`/dispatch/incidents/${selected}/candidates`).catch(() => candidates);
    else if (incident.decision) candidates = incident.decision;
    renderDetail(incident);
  } catch (err) {
    fill(detailEl, h("p", { class: "error" }, errorText(err)));
  }
}

function renderDetail(inc) {
  const v = inc.vehicle_id ? state.vehicles.get(inc.vehicle_id) : null;
  const rows = (candidates?.candidates || []).slice().sort((a, b) => (a.feasible === b.feasible ? (a.eta_s ?? 1e9) - (b.eta_s ?? 1e9) : a.feasible ? -1 : 1));
  const routes = rows.filter((c) => c.feasible && c.route_latlon?.length).map((c) =>
    L.polyline(c.route_latlon, { color: c.vehicle_id === candidates.chosen_vehicle_id ? "#3ecf8e" : "#8596a6", weight: 2, dashArray: "4 6", pane: "overlay" }));
  showOverlay(routes);
  fill(detailEl, 
    h("h2", {}, t("dispatch.incident_n", { id: inc.id })),
    h("div", { class: "card" },
      h("div", { class: "head" }, h("b", {}, `${tv("incident", inc.kind)} · P${inc.priority}`), pill(inc.state)),
      h("div", { class: "sub" }, h("span", { class: "mono" }, `${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}`), h("span", {}, v ? t("dispatch.assigned_to", { name: v.name }) : t("dispatch.unassigned")), inc.notes ? h("span", {}, inc.notes) : null)),
    candidates ? h("p", { class: "muted", "data-testid": "dispatch-explanation" }, candidates.explanation) : null,
    rows.length ? h("table", { class: "tbl", "data-testid": "candidates" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, t("common.vehicle")), h("th", { title: t("dispatch.eta_title") }, t("dispatch.eta")), h("th", {}, t("dispatch.route")), h("th", {}, t("dispatch.margin")), h("th", {}, t("common.status")))),
      h("tbody", {}, rows.map((c, i) => h("tr", { class: c.vehicle_id === candidates.chosen_vehicle_id ? "best" : "", "data-vehicle-id": c.vehicle_id },
        h("td", {}, c.feasible ? i + 1 : "–"), h("td", {}, c.name), h("td", { class: "mono" }, c.feasible ? fmtEta(c.eta_s) : "—"),
        h("td", { class: "mono" }, c.feasible ? fmtDistance(c.route_m) : "—"), h("td", { class: "mono" }, c.feasible ? `${Math.round(c.margin_wh)} Wh` : "—"),
        h("td", {}, c.feasible ? tv("activity", c.activity) : h("span", { class: "muted" }, c.reason)))))) : null,
    roles.dispatcher() && inc.state !== "closed" ? h("div", { class: "row", style: "margin-top:8px" },
      inc.state === "new" ? h("button", { class: "primary", "data-testid": "dispatch-incident", onclick: (e) => act(e.currentTarget, () => post(`/incidents/${inc.id}/dispatch`), (d) => d.explanation).then(() => { emit("incidents:refresh"); loadDetail(); }).catch(() => {}) }, t("dispatch.dispatch_best")) : null,
      h("button", { class: "danger", "data-testid": "close-incident", onclick: (e) => {
        if (!confirm(t("confirm.close_incident", { id: inc.id }))) return;
        act(e.currentTarget, () => post(`/incidents/${inc.id}/close`, { reason: "resolved" }), t("dispatch.closed", { id: inc.id })).then(() => { emit("incidents:refresh"); loadDetail(); }).catch(() => {});
      } }, t("dispatch.close"))) : null,
    h("h2", {}, t("dispatch.timeline")),
    h("ul", { class: "timeline", "data-testid": "incident-timeline" }, timeline.map((e) =>
      h("li", {}, h("span", { class: "mono muted" }, fmtTime(e.at)), " ", h("b", { "data-kind": e.kind }, tv("timeline", e.kind)), e.vehicle_id ? ` · ${state.vehicles.get(e.vehicle_id)?.name ?? t("common.vehicle_n", { id: e.vehicle_id })}` : "", e.actor ? h("span", { class: "muted", translate: "no" }, ` · ${e.actor}`) : null))));
}

function renderList() {
  const open = state.incidents.filter((i) => i.state !== "closed");
  const recent = state.incidents.filter((i) => i.state === "closed").slice(0, 5);
  const card = (inc) => h("div", {
      class: `card clickable ${inc.id === selected ? "selected" : ""}`, "data-testid": "incident-card", "data-incident-id": inc.id, "data-state": inc.state,
      onclick: () => select(inc.id) },
    h("div", { class: "head" }, h("b", {}, `#${inc.id} ${tv("incident", inc.kind)} · P${inc.priority}`), pill(inc.state)),
    h("div", { class: "sub" }, h("span", {}, fmtTime(inc.created_at)), h("span", {}, inc.vehicle_id ? state.vehicles.get(inc.vehicle_id)?.name ?? t("common.vehicle_n", { id: inc.vehicle_id }) : t("dispatch.unassigned"))));
  fill(listEl, 
    ...(open.length ? open.map(card) : [h("p", { class: "muted" }, t("dispatch.no_open"))]),
    recent.length ? h("h2", {}, t("dispatch.recently_closed")) : null, ...recent.map(card));
}
