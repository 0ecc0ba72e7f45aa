"""Failed-login throttling per account and per address: too many failures in a window lock the key out.

Pure bookkeeping with an injected clock; nothing here hashes or touches the database, so a refused attempt
costs a dictionary lookup. A lockout doubles with each strike (up to ``max_lockout_s``) and the tables are
bounded, so a spray of made-up usernames cannot grow memory without limit.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_TRACKED_KEYS = 50_000


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures each key may have within ``window_s`` before it is locked for ``lockout_s``."""

    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    window_s: float = 900.0
    lockout_s: float = 300.0
    max_lockout_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Lockout:
    """A key that has just been locked: ``scope`` is "account" or "address"."""

    scope: str
    key: str
    failures: int
    seconds: float


@dataclass(slots=True)
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    strikes: int = 0
    last_seen: float = 0.0


class _Table:
    """Failure records of one scope, least recently seen first (evicted first when full)."""

    def __init__(self, scope: str, limit: int, policy: ThrottlePolicy, max_keys: int) -> None:
        self.scope, self.limit, self.policy, self.max_keys = scope, limit, policy, max_keys
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def locked_for(self, key: str, now: float) -> float:
        rec = self._records.get(key)
        return max(0.0, rec.locked_until - now) if rec is not None else 0.0

    def fail(self, key: str, now: float) -> Lockout | None:
        rec = self._records.pop(key, None) or _Record()
        rec.last_seen = now
        self._records[key] = rec  # most recently seen last
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)
        horizon = now - self.policy.window_s
        rec.failures = [t for t in rec.failures if t > horizon]
        rec.failures.append(now)
        if len(rec.failures) < self.limit or rec.locked_until > now:
            return None
        rec.strikes += 1
        seconds = min(self.policy.max_lockout_s, self.policy.lockout_s * 2 ** (rec.strikes - 1))
        rec.locked_until = now + seconds
        failures = len(rec.failures)
        rec.failures.clear()
        return Lockout(scope=self.scope, key=key, failures=failures, seconds=seconds)

    def clear(self, key: str) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


class LoginThrottle:
    """``retry_after`` before checking a password; ``failed`` or ``succeeded`` after."""

    def __init__(self, policy: ThrottlePolicy | None = None, *, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self.policy = policy or ThrottlePolicy()
        self.accounts = _Table("account", self.policy.max_failures_per_account, self.policy, max_keys)
        self.addresses = _Table("address", self.policy.max_failures_per_address, self.policy, max_keys)

    def retry_after(self, *, account: str, address: str, now: float) -> int | None:
        """Whole seconds until this account and address may try again, or None if they may now."""
        wait_s = max(self.accounts.locked_for(account, now), self.addresses.locked_for(address, now))
        return math.ceil(wait_s) if wait_s > 0 else None

    def failed(self, *, account: str, address: str, now: float) -> list[Lockout]:
        """Count a failed attempt; the lockouts it starts (none, or the account's and/or address's)."""
        started = [self.accounts.fail(account, now), self.addresses.fail(address, now)]
        return [lock for lock in started if lock is not None]

    def succeeded(self, *, account: str) -> None:
        """A correct password clears the account's failures (not the address's: one good account must not
        let an address keep guessing others)."""
        self.accounts.clear(account)
