"""A patrol's schedule in words (Simplified Chinese or English) and its next runs, as the panel shows them.

The panel has no cron code of its own: it asks the service, which uses the scheduler's own rules
(``due_slots``/``in_window``), so what the panel says is what the scheduler will do.

>>> describe("15 */2 * * *", "en")
'every 2 hours at minute 15'
>>> describe("30 20 * * 1-5", "zh-CN")
'周一至周五 20:30'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mission.patrols.models import PatrolRead
from mission.patrols.scheduler import due_slots, in_window, next_slot

LOCALES = ("zh-CN", "en")
ZH_COMMA, ZH_LIST = "\uff0c", "\u3001"  # the full-width comma and the enumeration comma
_EN_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ZH_DAYS = ("周日", "周一", "周二", "周三", "周四", "周五", "周六")
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Field:
    """One cron field: any (``*``), every ``step`` from ``lo`` to ``hi``, or a list of values and ranges."""

    any: bool = False
    step: int | None = None
    lo: int | None = None
    hi: int | None = None
    parts: tuple[tuple[int, int], ...] = ()  # (first, last) per comma part

    @property
    def single(self) -> int | None:
        if len(self.parts) == 1 and self.parts[0][0] == self.parts[0][1]:
            return self.parts[0][0]
        return None


def _field(text: str, *, lo: int, hi: int, sunday7: bool = False) -> Field:
    if text == "*":
        return Field(any=True)
    if "/" in text and "," not in text:
        base, step = text.split("/")
        first, last = (lo, hi) if base == "*" else _range(base, hi)
        return Field(step=int(step), lo=first, hi=last)
    parts = []
    for part in text.split(","):
        a, b = _range(part, hi)
        if sunday7:
            a, b = a % 7 if a == 7 else a, b % 7 if b == 7 and a != 0 else b
        parts.append((a, b))
    return Field(parts=tuple(parts))


def _range(text: str, hi: int) -> tuple[int, int]:
    if "-" in text:
        a, b = text.split("-")
        return int(a), int(b)
    if "/" in text:  # "5/15": from 5 on
        return int(text.split("/")[0]), hi
    return int(text), int(text)


def _join(values: list[str], zh: bool) -> str:
    return (ZH_LIST if zh else ", ").join(values)


def _parts_text(f: Field, zh: bool, name: Callable[[int], str] | None = None) -> str:
    def one(v: int) -> str:
        return name(v) if name else str(v)

    out = []
    for a, b in f.parts:
        if a == b:
            out.append(one(a))
        else:
            out.append(f"{one(a)}至{one(b)}" if zh else f"{one(a)}\u2013{one(b)}")
    return _join(out, zh)


def describe(cron: str, locale: str = "en") -> str:
    """``cron`` (five fields) in words in ``locale`` (zh-CN or en); ValueError when it is not a cron."""
    zh = locale == "zh-CN"
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron {cron!r} needs 5 fields, has {len(fields)}")
    minute = _field(fields[0], lo=0, hi=59)
    hour = _field(fields[1], lo=0, hi=23)
    dom = _field(fields[2], lo=1, hi=31)
    month = _field(fields[3], lo=1, hi=12)
    dow = _field(fields[4], lo=0, hi=6, sunday7=True)
    if _every_day(dom, month, dow):
        return _time(minute, hour, zh, daily=True)
    days, time = _days(dom, month, dow, zh), _time(minute, hour, zh)
    return f"{days} {time}" if zh else f"{days}, {time}"


def _every_day(dom: Field, month: Field, dow: Field) -> bool:
    return dom.any and month.any and dow.any


def _time(minute: Field, hour: Field, zh: bool, *, daily: bool = False) -> str:
    m = minute.single
    if m is not None and not hour.any and hour.step is None:
        times = []
        for a, b in hour.parts:
            times += [f"{x:02d}:{m:02d}" for x in range(a, b + 1)]
        if zh:
            return ("每天 " if daily else "") + _join(times, zh)
        return ("every day at " if daily else "at ") + _join(times, zh)
    if m is not None and hour.any:
        return f"每小时第{m}分" if zh else f"every hour at minute {m}"
    if m is not None and hour.step is not None:
        span = _span(hour, 23, zh)
        return f"{span}每{hour.step}小时第{m}分" if zh else f"every {hour.step} hours at minute {m}{span}"
    if minute.step is not None:
        within = "" if hour.any else _hours(hour, zh)
        every = f"每{minute.step}分钟" if zh else f"every {minute.step} minutes"
        return f"{within}{every}" if zh else f"{every}{(' ' + within) if within else ''}"
    if minute.any:
        within = "" if hour.any else _hours(hour, zh)
        return f"{within}每分钟" if zh else f"every minute{(' ' + within) if within else ''}"
    mins = _parts_text(minute, zh)
    within = "每小时" if zh and hour.any else ("" if hour.any else _hours(hour, zh))
    return (
        f"{within}第{mins}分" if zh else f"at minutes {mins}{(' ' + within) if within else ' of every hour'}"
    )


def _span(f: Field, hi: int, zh: bool) -> str:
    if f.lo in (None, 0) and f.hi in (None, hi):
        return ""
    return f"{f.lo}时至{f.hi}时" if zh else f" from {f.lo}:00 to {f.hi}:59"


def _hours(hour: Field, zh: bool) -> str:
    if hour.step is not None:
        return f"每{hour.step}小时" if zh else f"every {hour.step} hours"
    text = _parts_text(hour, zh, lambda v: f"{v:02d}")
    return f"{text}时" if zh else f"during hour {text}"


def _days(dom: Field, month: Field, dow: Field, zh: bool) -> str:
    bits = []
    if not month.any:
        if month.step is not None:
            bits.append(f"每{month.step}个月" if zh else f"every {month.step} months")
        else:
            bits.append(
                _parts_text(month, zh, lambda v: f"{v}月")
                if zh
                else "in " + _parts_text(month, zh, lambda v: _EN_MONTHS[v - 1])
            )
    if not dom.any:
        if dom.step is not None:
            bits.append(f"每{dom.step}天" if zh else f"every {dom.step} days")
        else:
            bits.append(
                "每月" + _parts_text(dom, zh, lambda v: f"{v}日")
                if zh
                else "on day " + _parts_text(dom, zh) + " of the month"
            )
    if not dow.any:
        names = _ZH_DAYS if zh else _EN_DAYS
        if dow.step is not None:
            bits.append(f"每{dow.step}天" if zh else f"every {dow.step} days of the week")
        else:
            days = _parts_text(dow, zh, lambda v: names[v % 7])
            bits.append(days if zh else "on " + days)
    return (ZH_COMMA if zh else ", ").join(bits)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A patrol's schedule as the panel shows it."""

    description: str
    next_runs: list[datetime]
    skipped_outside_window: int  # cron times before the last listed run that the window skips


def schedule(patrol: PatrolRead, *, locale: str, after: datetime, count: int = 5) -> Schedule:
    """The schedule in words and the next ``count`` runs the scheduler will launch (inside the window)."""
    runs: list[datetime] = []
    skipped = 0
    cursor = after
    horizon = after + timedelta(days=366)
    while len(runs) < count and cursor < horizon:
        step_end = min(horizon, cursor + timedelta(days=8))
        for slot in due_slots(patrol, after=cursor, until=step_end):
            if in_window(patrol, slot):
                runs.append(slot)
                if len(runs) == count:
                    break
            else:
                skipped += 1
        cursor = step_end
    if not runs:
        next_slot(patrol, after=after)  # a cron that never fires raises here
    try:
        words = describe(patrol.cron, locale)
    except ValueError:  # a form croniter takes but we do not put in words (names, @hourly): as written
        words = patrol.cron
    return Schedule(description=words, next_runs=runs, skipped_outside_window=skipped)
