// REST and websocket access for the panel: one bearer token, one error shape.

const TOKEN_KEY = "skywarden.token";

export class ApiError extends Error {
  constructor(status, code, message, where) {
    super(message);
    this.status = status;
    this.code = code;
    this.where = where;
  }
}

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export async function api(method, path, body, { query } = {}) {
  let url = `/api/v1${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
    if ([...qs].length) url += `?${qs}`;
  }
  const headers = { Accept: "application/json" };
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: `http_${res.status}`, message: res.statusText };
    if (res.status === 401 && path !== "/auth/login") window.dispatchEvent(new CustomEvent("skywarden:unauthorized"));
    throw new ApiError(res.status, err.code, err.message, err.where);
  }
  return data;
}

export const get = (path, query) => api("GET", path, undefined, { query });
export const post = (path, body, query) => api("POST", path, body, { query });
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

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

/** A self-reconnecting websocket; calls onMessage for each message (batches unpacked). */
export function connectLive({ onMessage, onState }) {
  let ws = null;
  let closed = false;
  let delay = 500;
  const open = () => {
    if (closed || !auth.token) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/ws?token=${encodeURIComponent(auth.token)}`);
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
      onState(ev.code === 4401 ? "unauthorized" : "offline");
      if (!closed && ev.code !== 4401) setTimeout(open, delay);
      delay = Math.min(delay * 2, 8000);
    };
  };
  open();
  return { close() { closed = true; if (ws) ws.close(); } };
}
