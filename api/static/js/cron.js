// The next run of a five-field cron expression in an IANA time zone (for showing scheduled patrols).

function field(spec, min, max) {
  const values = new Set();
  for (const part of spec.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText ? Number(stepText) : 1;
    let lo = min;
    let hi = max;
    if (range !== "*") {
      const [a, b] = range.split("-").map(Number);
      lo = a;
      hi = b === undefined ? (stepText ? max : a) : b;
    }
    if (![lo, hi, step].every(Number.isFinite) || step < 1) throw new Error(`bad cron field ${spec}`);
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return values;
}

function partsIn(date, timeZone) {
  const fmt = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", minute: "numeric", hour: "numeric", day: "numeric", month: "numeric", weekday: "short" });
  const out = {};
  for (const p of fmt.formatToParts(date)) out[p.type] = p.value;
  const dow = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(out.weekday);
  return { minute: Number(out.minute), hour: Number(out.hour), day: Number(out.day), month: Number(out.month), dow };
}

function minutesOf(hhmm) {
  const [h, m] = String(hhmm).split(":").map(Number);
  return h * 60 + (m || 0);
}

/** Whether local minute-of-day ``t`` lies in [start, end), a window that may wrap past midnight. */
function inWindow(t, start, end) {
  if (start === null || end === null) return true;
  return start <= end ? t >= start && t < end : t >= start || t < end;
}

/**
 * The next Date at or after ``from`` matching ``cron`` in ``timeZone`` (and inside the local
 * ``windowStart``-``windowEnd`` window, "HH:MM", when given), or null within 8 days.
 */
export function nextRun(cron, timeZone = "UTC", from = new Date(), { windowStart = null, windowEnd = null } = {}) {
  const wStart = windowStart ? minutesOf(windowStart) : null;
  const wEnd = windowEnd ? minutesOf(windowEnd) : null;
  const f = cron.trim().split(/\s+/);
  if (f.length !== 5) return null;
  let spec;
  try {
    spec = [field(f[0], 0, 59), field(f[1], 0, 23), field(f[2], 1, 31), field(f[3], 1, 12), field(f[4].replace("7", "0"), 0, 6)];
  } catch {
    return null;
  }
  const t = new Date(Math.ceil(from.getTime() / 60000) * 60000);
  for (let i = 0; i < 8 * 24 * 60; i++, t.setTime(t.getTime() + 60000)) {
    const p = partsIn(t, timeZone);
    if (!spec[1].has(p.hour)) { t.setTime(t.getTime() + (59 - p.minute) * 60000); continue; }
    const domAny = f[2] === "*";
    const dowAny = f[4] === "*";
    const dayOk = domAny && dowAny ? true : domAny ? spec[4].has(p.dow) : dowAny ? spec[2].has(p.day) : spec[2].has(p.day) || spec[4].has(p.dow);
    if (spec[0].has(p.minute) && dayOk && spec[3].has(p.month) && inWindow(p.hour * 60 + p.minute, wStart, wEnd)) return new Date(t);
  }
  return null;
}
