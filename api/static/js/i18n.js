// Every string the panel shows goes through t(key, params): two tables, en and zh-CN, with the same keys
// (tests/browser/test_i18n_static.py checks both tables and every key the modules use).
//
// The locale is the signed-in user's (stored by the service, GET/PUT /api/v1/me/locale); before sign-in it
// is the one last used in this browser, else the browser's language. Server errors carry stable codes
// (``code``, ``message_code`` and each gate refusal's ``code``): errorText() shows them in this locale.

export const LOCALES = ["zh-CN", "en"];
const STORE_KEY = "skywarden.locale";

let current = "en";
let table = {};

/** The locale to start with: the one remembered in this browser, else the browser's own language. */
export function initialLocale() {
  let saved = null;
  try { saved = localStorage.getItem(STORE_KEY); } catch { /* storage may be off */ }
  if (LOCALES.includes(saved)) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

/** Load ``locale``'s table (and remember it in this browser). */
export async function loadLocale(locale) {
  const chosen = LOCALES.includes(locale) ? locale : "en";
  const res = await fetch(`/static/i18n/${chosen}.json`, { credentials: "same-origin" });
  table = await res.json();
  current = chosen;
  try { localStorage.setItem(STORE_KEY, chosen); } catch { /* storage may be off */ }
  document.documentElement.lang = chosen;
  return chosen;
}

export function locale() { return current; }

/** Whether the table has ``key`` (for codes that may or may not have a translation). */
export function has(key) { return Object.prototype.hasOwnProperty.call(table, key); }

/** The translation of ``key`` with ``{name}`` placeholders filled from ``params``. */
export function t(key, params) {
  let text = has(key) ? table[key] : key;
  if (params) text = text.replace(/\{(\w+)\}/g, (m, name) => (params[name] === undefined || params[name] === null ? m : String(params[name])));
  return text;
}

/** ``key.value`` when the table has it (a state, kind or role name from the API), else the value itself. */
export function tv(prefix, value) {
  if (value === null || value === undefined) return "—";
  const key = `${prefix}.${value}`;
  return has(key) ? table[key] : String(value).replace(/_/g, " ");
}

/** Fill every element under ``root`` marked data-i18n (text), data-i18n-placeholder / -title / -aria-label. */
export function translateDom(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attr of ["placeholder", "title", "aria-label"]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
  }
  document.title = t("app.title");
}

function refusalText(r) {
  const params = { ...(r.figures || {}), ...(r.where || {}) };
  if (r.where?.lat !== undefined) params.at = `${Number(r.where.lat).toFixed(5)}, ${Number(r.where.lon).toFixed(5)}`;
  const key = `gate.${r.code}`;
  return has(key) ? t(key, params) : r.message;
}

/** A server error (ApiError or its body) in the user's language: the gate's refusals, else by its codes. */
export function errorText(err) {
  if (!err) return "";
  const refusals = Array.isArray(err.details) ? err.details.filter((d) => d && d.code) : [];
  if (refusals.length) return refusals.map(refusalText).join("; ");
  if (err.message_code && has(`msg.${err.message_code}`)) return t(`msg.${err.message_code}`, err.message_params || {});
  if (err.code && has(`err.${err.code}`)) {
    const head = t(`err.${err.code}`);
    return err.message && err.message !== err.code ? `${head}: ${err.message}` : head;
  }
  return err.message || String(err);
}

/** The text of one gate refusal (the plan preview's violations have the same shape). */
export { refusalText };
