"""Sign-in with a price only for the one signing in: throttled, hashed off the event loop, audited in batches.

A password check costs an scrypt hash (~50 ms of CPU, 16 MiB), and auditing it appends to the hash-chained
log under its global lock. Neither may reach the vehicle-command path, so:

- a locked-out account or address is refused (429) before any hashing or database work;
- lookups and hashes run on a small dedicated thread pool with a bounded queue (never the event loop, never
  the pool that serves the other routes); when it is full the attempt is refused at once;
- failed attempts are audited by a background writer: the first ``audit_burst`` of each
  ``audit_interval_s`` one by one (in one transaction), the rest as one summary entry per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from mission.audit import service as audit
from mission.auth import service as auth
from mission.auth.models import IssuedToken, UserRead
from mission.auth.passwords import verify_password
from mission.auth.throttle import Lockout, LoginThrottle, ThrottlePolicy
from mission.db import session_scope
from mission.errors import PermissionDenied, RateLimited

log = logging.getLogger(__name__)

WRONG_CREDENTIALS = "wrong username or password"
_TOP = 20  # accounts / addresses named in a summary entry


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Throttling, hashing and audit limits of sign-in."""

    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    hash_workers: int = 2
    queue_max: int = 16
    audit_burst: int = 10
    audit_interval_s: float = 10.0


@dataclass(frozen=True, slots=True)
class FailedLogin:
    username: str
    address: str
    lockouts: tuple[Lockout, ...] = ()


@dataclass(slots=True)
class _Summary:
    failures: int = 0
    refused_locked: int = 0
    accounts: Counter[str] = field(default_factory=Counter)
    addresses: Counter[str] = field(default_factory=Counter)
    lockouts: list[dict[str, object]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.failures or self.refused_locked)

    def details(self) -> dict[str, object]:
        return {
            "failures": self.failures,
            "refused_while_locked": self.refused_locked,
            "accounts": dict(self.accounts.most_common(_TOP)),
            "addresses": dict(self.addresses.most_common(_TOP)),
            "lockouts": self.lockouts[:_TOP],
        }


def _lockout_details(lock: Lockout) -> dict[str, object]:
    return {"scope": lock.scope, "key": lock.key, "failures": lock.failures, "seconds": lock.seconds}


class FailedLoginAudit:
    """Writes failed sign-ins to the audit log from its own task, at a bounded rate."""

    def __init__(
        self, engine: Engine, *, burst: int, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine, self.burst, self.interval_s, self.clock = engine, burst, interval_s, clock
        self._pending: list[FailedLogin] = []
        self._summary = _Summary()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.entries_written = 0

    def failed(self, item: FailedLogin) -> None:
        """Queue a failed attempt (never blocks)."""
        self._pending.append(item)
        self._wake.set()

    def refused_while_locked(self, *, username: str, address: str) -> None:
        """Count an attempt refused by a lockout (summarised only)."""
        self._summary.refused_locked += 1
        self._summary.accounts[username] += 1
        self._summary.addresses[address] += 1
        self._wake.set()

    async def __aenter__(self) -> FailedLoginAudit:
        self._task = asyncio.create_task(self._run(), name="login-audit")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        singles, self._pending = self._pending, []
        summary, self._summary = self._summary, _Summary()
        for item in singles:
            self._add_to(summary, item)
        if summary:
            await asyncio.to_thread(self._write, [], summary)

    @staticmethod
    def _add_to(summary: _Summary, item: FailedLogin) -> None:
        summary.failures += 1
        summary.accounts[item.username] += 1
        summary.addresses[item.address] += 1
        summary.lockouts.extend(_lockout_details(lock) for lock in item.lockouts)

    async def _run(self) -> None:
        window_end = 0.0
        written = 0
        while True:
            timeout = max(0.0, window_end - self.clock()) if self._summary else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            now = self.clock()
            summary = None
            if now >= window_end:
                if self._summary:
                    summary, self._summary = self._summary, _Summary()
                window_end, written = now + self.interval_s, 0
            batch, self._pending = self._pending, []
            singles = []
            for item in batch:
                if written < self.burst:
                    singles.append(item)
                    written += 1
                else:
                    self._add_to(self._summary, item)
            if singles or summary:
                try:
                    await asyncio.to_thread(self._write, singles, summary)
                except Exception:  # the audit writer must outlive a database hiccup
                    log.exception("could not audit %d failed sign-ins", len(singles))

    def _write(self, singles: list[FailedLogin], summary: _Summary | None) -> None:
        with session_scope(self.engine) as session:
            for item in singles:
                details: dict[str, object] = {"address": item.address}
                if item.lockouts:
                    details["lockouts"] = [_lockout_details(lock) for lock in item.lockouts]
                audit.record(
                    session=session, actor=item.username, action="auth.login_failed", details=details
                )
            if summary:
                audit.record(
                    session=session,
                    actor="system:login-throttle",
                    action="auth.login_failed_summary",
                    details=summary.details(),
                )
        self.entries_written += len(singles) + (1 if summary else 0)


class LoginGuard:
    """``async with LoginGuard(engine=..., policy=...) as guard: await guard.login(...)``."""

    def __init__(
        self,
        *,
        engine: Engine,
        policy: LoginPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.policy = policy or LoginPolicy()
        self.clock = clock
        self.throttle = LoginThrottle(self.policy.throttle)
        self.audit = FailedLoginAudit(
            engine, burst=self.policy.audit_burst, interval_s=self.policy.audit_interval_s, clock=clock
        )
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = 0
        self.password_checks = 0  # how many attempts got as far as the hash (the rest cost nothing)

    async def __aenter__(self) -> LoginGuard:
        self._pool = ThreadPoolExecutor(max_workers=self.policy.hash_workers, thread_name_prefix="login")
        await self.audit.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.audit.__aexit__(*exc)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _check_credentials(self, username: str, password: str) -> UserRead | None:
        self.password_checks += 1
        with session_scope(self.engine) as session:
            found = auth.login_candidate(session=session, username=username)
        ok = verify_password(password, found.password_hash if found else auth.DUMMY_HASH)
        if found is None or not ok or found.user.disabled:
            return None
        return found.user

    async def verify(self, *, username: str, password: str, address: str) -> UserRead:
        """The user if the password is right; RateLimited (locked out, or too busy) or PermissionDenied."""
        if self._pool is None:
            raise RuntimeError("LoginGuard used outside its async with block")
        wait_s = self.throttle.retry_after(account=username, address=address, now=self.clock())
        if wait_s is not None:
            self.audit.refused_while_locked(username=username, address=address)
            raise RateLimited(
                f"too many failed sign-ins for this account or from this address; try again in {wait_s} s",
                retry_after_s=wait_s,
                code="auth.locked_out",
            )
        if self._in_flight >= self.policy.hash_workers + self.policy.queue_max:
            raise RateLimited(
                "too many sign-ins in progress; try again in a second",
                retry_after_s=1,
                code="auth.busy",
            )
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            user = await loop.run_in_executor(self._pool, self._check_credentials, username, password)
        finally:
            self._in_flight -= 1
        if user is None:
            lockouts = self.throttle.failed(account=username, address=address, now=self.clock())
            self.audit.failed(FailedLogin(username=username, address=address, lockouts=tuple(lockouts)))
            raise PermissionDenied(WRONG_CREDENTIALS, code="auth.wrong_username_password")
        self.throttle.succeeded(account=username)
        return user

    async def login(
        self, *, username: str, password: str, address: str, ttl_s: float
    ) -> tuple[IssuedToken, UserRead]:
        """Check the password, then start a session (audited as ``auth.login``)."""
        user = await self.verify(username=username, password=password, address=address)
        return await asyncio.to_thread(self._start_session, user, address, ttl_s)

    def _start_session(self, user: UserRead, address: str, ttl_s: float) -> tuple[IssuedToken, UserRead]:
        with session_scope(self.engine) as session:
            token = auth.start_session(session=session, user=user, ttl_s=ttl_s)
            audit.record(
                session=session,
                actor=user.username,
                action="auth.login",
                target=f"token:{token.id}",
                details={"address": address},
            )
        return token, user
