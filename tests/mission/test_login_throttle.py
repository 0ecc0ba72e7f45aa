"""Failed-login bookkeeping: windows, lockouts that double, and tables that cannot grow without bound."""

from __future__ import annotations

from mission.auth.throttle import LoginThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(
    max_failures_per_account=3, max_failures_per_address=5, window_s=60, lockout_s=10, max_lockout_s=25
)


def test_failures_outside_the_window_do_not_count() -> None:
    throttle = LoginThrottle(POLICY)
    for t in (0, 30, 61, 95):  # never three within 60 s
        assert throttle.failed(account="pia", address="a", now=t) == []
    assert throttle.retry_after(account="pia", address="a", now=96) is None


def test_lockouts_double_up_to_the_cap_and_a_success_clears_only_the_account() -> None:
    throttle = LoginThrottle(POLICY)
    locks = [throttle.failed(account="pia", address="a", now=t) for t in (0, 1, 2)]
    assert [lock.seconds for lock in locks[-1]] == [10]
    assert throttle.retry_after(account="pia", address="b", now=2.5) == 10  # 9.5 s, rounded up
    assert throttle.retry_after(account="olga", address="a", now=2.5) is None  # the address has 3 of 5
    now = 13.0
    for expected in (20, 25, 25):
        while True:
            started = throttle.failed(account="pia", address=f"x{now}", now=now)
            now += 1
            if started:
                break
        assert started[0].seconds == expected
        now += expected
    throttle.succeeded(account="pia")
    assert throttle.retry_after(account="pia", address="z", now=now) is None


def test_an_address_is_locked_across_accounts() -> None:
    throttle = LoginThrottle(POLICY)
    for i in range(5):
        started = throttle.failed(account=f"guess-{i}", address="10.0.0.9", now=i)
    assert [(lock.scope, lock.key) for lock in started] == [("address", "10.0.0.9")]
    assert throttle.retry_after(account="someone", address="10.0.0.9", now=5) == 9


def test_a_spray_of_made_up_usernames_is_bounded() -> None:
    throttle = LoginThrottle(POLICY, max_keys=100)
    for i in range(10_000):
        throttle.failed(account=f"user-{i}", address=f"10.0.{i // 256}.{i % 256}", now=i * 0.001)
    assert len(throttle.accounts) == 100 and len(throttle.addresses) == 100
