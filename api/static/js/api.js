// REST and websocket access for the panel: one error shape, and a session the page's scripts cannot read.
//
// Signing in (POST /auth/session) sets an HttpOnly, SameSite=Strict cookie that the browser sends by itself
// with every request and with the websocket handshake; no token is kept in script-readable storage. Changes
// carry the session's CSRF token (X-CSRF-Token), held in memory only and fetched again from /auth/me on load.

export class ApiError extends Error {
  constructor(status, code, message, where, body = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.where = where;
    this.details = body.details; // the gate's refusals, each with its stable code
    this.message_code = body.message_code; // a stable code for the message, translated by the panel
    this.message_params = body.message_params;
    this.retry_after_s = body.retry_after_s;
  }
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export const session = {
  csrf: null, // from POST /auth/session or GET /auth/me; never stored
};

export async function api(method, path, body, { query } = {}) {
  let url = `/api/v1${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
    if ([...qs].length) url += `?${qs}`;
  }
  const headers = { Accept: "application/json" };
  if (!SAFE.has(method) && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: `http_${res.status}`, message: res.statusText };
    if (res.status === 401 && path !== "/auth/session") window.dispatchEvent(new CustomEvent("skywarden:unauthorized"));
    throw new ApiError(res.status, err.code, err.message, err.where, err);
  }
  return data;
}

export const get = (path, query) => api("GET", path, undefined, { query });
export const post = (path, body, query) => api("POST", path, body, { query });
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** Sign in: the session lives in the HttpOnly cookie; the reply gives the role and the CSRF token. */
export async function signIn(username, password) {
  const res = await api("POST", "/auth/session", { username, password });
  session.csrf = res.csrf_token;
  return res;
}

/** Who is signed in (and this session's CSRF token), or throws ApiError 401. */
export async function whoAmI() {
  const me = await get("/auth/me");
  session.csrf = me.csrf_token;
  return me;
}

export async function signOut() {
  try { await post("/auth/logout"); } finally { session.csrf = null; }
}

/** Every item of a paginated list (follows limit/offset until total). */
export async function getAll(path, query = {}) {
  const items = [];
  for (let offset = 0; ; ) {
    const page = await get(path, { ...query, limit: 200, offset });
    items.push(...page.items);
    offset += page.items.length;
    if (!page.items.length || offset >= page.total) return items;
  }
}

/** A self-reconnecting websocket (the session cookie authenticates it); calls onMessage for each message. */
export function connectLive({ onMessage, onState }) {
  let ws = null;
  let closed = false;
  let delay = 500;
  const open = () => {
    if (closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/ws`);
    onState("connecting");
    ws.onopen = () => {
      delay = 500;
      onState("live");
      ws.send(JSON.stringify({ type: "subscribe", vehicles: null, kinds: null, rate_hz: 4, batch: true }));
    };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "batch") msg.messages.forEach(onMessage);
      else onMessage(msg);
    };
    ws.onclose = (ev) => {
      onState(ev.code === 4401 || ev.code === 4403 ? "unauthorized" : "offline");
      if (!closed && ev.code !== 4401 && ev.code !== 4403) setTimeout(open, delay);
      delay = Math.min(delay * 2, 8000);
    };
  };
  open();
  return { close() { closed = true; if (ws) ws.close(); } };
}
