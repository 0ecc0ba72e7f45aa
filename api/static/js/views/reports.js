// Reports (dispatchers and admins): over a chosen period, dispatch-to-on-scene p50/p90 per priority, zone
// and dock; flights, flight hours and battery cycles per drone; patrol completion. Charts are plain SVG
// (no library, no CDN); every section exports as CSV.
import { get } from "../api.js";
import { roles } from "../state.js";
import { h, fill, fmtDuration, act } from "../ui.js";
import { t, errorText } from "../i18n.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A horizontal bar chart: one row per label, one bar per series (values in the same unit). */
export function barChart(rows, series, { format = (v) => String(v), testid } = {}) {
  const width = 320;
  const rowH = 16 * series.length + 8;
  const left = 96;
  const height = rows.length * rowH + 22;
  const max = Math.max(1e-9, ...rows.flatMap((r) => series.map((s) => Number(r[s.key]) || 0)));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "data-testid": testid ?? "" });
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    chart.append(svg("text", { x: left - 6, y: y + rowH / 2, "text-anchor": "end", "dominant-baseline": "middle" }, r.label));
    series.forEach((s, j) => {
      const v = Number(r[s.key]);
      const w = Number.isFinite(v) ? ((width - left - 60) * v) / max : 0;
      const by = y + j * 16;
      chart.append(svg("rect", { x: left, y: by, width: Math.max(0, w), height: 12, fill: s.color, rx: 2, "data-value": Number.isFinite(v) ? v : "" }));
      chart.append(svg("text", { x: left + w + 4, y: by + 6, "dominant-baseline": "middle" }, Number.isFinite(v) ? format(v) : "—"));
    });
  });
  const legend = svg("g", { transform: `translate(${left}, ${height - 10})` });
  series.forEach((s, j) => {
    legend.append(svg("rect", { x: j * 110, y: -8, width: 10, height: 10, fill: s.color }), svg("text", { x: j * 110 + 14, y: 0 }, s.label));
  });
  chart.append(legend);
  return chart;
}

function toInput(date) {
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function table(headers, rows, cls = "") {
  // A wide table scrolls sideways inside the side panel instead of being cut off.
  return h("div", { style: "overflow-x:auto" }, h("table", { class: `tbl ${cls}` }, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", { class: typeof c === "number" ? "mono" : "" }, c ?? "—")))))));
}

export function mountReports(el) {
  if (!roles.dispatcher()) { fill(el, h("p", { class: "muted" }, t("reports.dispatchers_only"))); return; }
  const now = new Date();
  const since = h("input", { type: "datetime-local", value: toInput(new Date(now.getTime() - 7 * 86400000)), "data-testid": "report-since" });
  const until = h("input", { type: "datetime-local", value: "", "data-testid": "report-until" }); // empty: now
  const body = h("div", { "data-testid": "report" });
  const query = () => ({
    since: new Date(since.value).toISOString(),
    ...(until.value ? { until: new Date(until.value).toISOString() } : {}),
  });
  const csvLink = (section) => h("button", { class: "small ghost", "data-testid": `report-csv-${section}`, onclick: async () => {
    const qs = new URLSearchParams(query());
    const res = await fetch(`/api/v1/reports/${section}.csv?${qs}`, { credentials: "same-origin" });
    if (!res.ok) return;
    const url = URL.createObjectURL(await res.blob());
    const a = h("a", { href: url, download: `${section}.csv` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } }, t("reports.csv"));
  const load = async (button) => {
    let r;
    try {
      r = await act(button, () => get("/reports", query()));
    } catch (err) {
      fill(body, h("p", { class: "error" }, errorText(err)));
      return;
    }
    const groups = ["priority", "zone", "dock"].map((g) => {
      const rows = r.response.filter((x) => x.group === g).map((x) => ({ ...x, label: x.key === "-" ? t("reports.none") : x.key }));
      return h("div", {},
        h("h3", {}, t(`reports.by_${g}`)),
        rows.length ? barChart(rows, [{ key: "p50_s", label: "p50", color: "#3fa7ff" }, { key: "p90_s", label: "p90", color: "#f0b43c" }], { format: fmtDuration, testid: `chart-response-${g}` }) : h("p", { class: "muted" }, t("reports.no_incidents")),
        rows.length ? table([t(`reports.col_${g}`), t("reports.incidents"), t("reports.on_scene"), "p50", "p90"], rows.map((x) => [x.label, x.incidents, x.on_scene, fmtDuration(x.p50_s), fmtDuration(x.p90_s)])) : null);
    });
    const drones = r.drones.map((d) => ({ ...d, label: d.name }));
    const patrols = r.patrols.map((p) => ({ ...p, label: p.name, pct: p.completion === null ? NaN : p.completion * 100 }));
    fill(body,
      h("div", { class: "row", style: "justify-content:space-between" }, h("h2", {}, t("reports.response")), csvLink("response")),
      h("p", { class: "muted" }, t("reports.response_note")),
      groups,
      h("div", { class: "row", style: "justify-content:space-between" }, h("h2", {}, t("reports.drones")), csvLink("drones")),
      h("p", { class: "muted" }, t("reports.cycles_note")),
      barChart(drones, [{ key: "flight_hours", label: t("reports.hours"), color: "#3ecf8e" }, { key: "battery_cycles", label: t("reports.cycles"), color: "#c48cff" }], { format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2)), testid: "chart-drones" }),
      table([t("common.vehicle"), t("reports.col_flights_missions"), t("reports.col_hours"), t("reports.sorties"), t("reports.charge_used"), t("reports.col_cycles")],
        drones.map((d) => [
          h("span", {}, d.name, h("div", { class: "muted" }, d.dock === "-" ? t("reports.none") : d.dock)),
          `${d.flights} / ${d.missions}`, d.flight_hours.toFixed(2), d.sorties, `${d.charge_used_pct.toFixed(1)}%`, d.battery_cycles.toFixed(2)]), "compact"),
      h("div", { class: "row", style: "justify-content:space-between" }, h("h2", {}, t("reports.patrols")), csvLink("patrols")),
      patrols.length ? barChart(patrols, [{ key: "pct", label: t("reports.completion"), color: "#3fa7ff" }], { format: (v) => `${v.toFixed(0)}%`, testid: "chart-patrols" }) : h("p", { class: "muted" }, t("patrols.none")),
      patrols.length ? table([t("patrols.name"), t("reports.runs"), t("reports.launched"), t("reports.completed"), t("reports.skipped"), t("reports.failed"), t("reports.completion")],
        patrols.map((p) => [p.name, p.runs, p.launched, p.completed, p.skipped, p.failed, p.completion === null ? "—" : `${Math.round(p.completion * 100)}%`])) : null);
  };
  const run = h("button", { class: "primary small", "data-testid": "report-run", onclick: (e) => load(e.currentTarget) }, t("reports.run"));
  fill(el, h("h2", {}, t("reports.heading")),
    h("div", { class: "grid2" }, h("label", {}, t("reports.since"), since), h("label", {}, t("reports.until"), until)),
    h("div", { class: "row" }, run), body);
  el.addEventListener("panel:show", () => load(null));
}
