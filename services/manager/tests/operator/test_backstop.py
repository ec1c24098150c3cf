"""The syncInterval backstop's deadlines (no thread: due_now is driven with explicit times)."""

import time

from hsm_manager.operator import backstop

KEY = ("ns", "db")


def _tracked(interval: float) -> tuple[backstop.Backstop, float]:
    checks = backstop.Backstop(lambda _key: None)
    start = time.monotonic()
    checks.track(KEY, interval)
    return checks, start


def test_a_new_key_is_first_due_within_one_interval() -> None:
    checks, start = _tracked(10.0)
    assert checks.due_now(start + 10.001) == [KEY]


def test_a_due_key_is_due_again_only_one_interval_later() -> None:
    checks, start = _tracked(10.0)
    now = start + 10.001
    checks.due_now(now)
    assert checks.due_now(now + 9.9) == []
    assert checks.due_now(now + 10.0) == [KEY]


def test_a_forgotten_key_is_never_due() -> None:
    checks, start = _tracked(10.0)
    checks.forget(KEY)
    assert checks.due_now(start + 100.0) == []


def test_tracking_a_known_key_again_keeps_its_next_check() -> None:
    checks, start = _tracked(10.0)
    now = start + 10.001
    checks.due_now(now)
    checks.track(KEY, 1000.0)
    assert checks.due_now(now + 10.0) == [KEY]
    assert checks.due_now(now + 20.0) == []


def test_jittered_first_checks_spread_over_the_interval() -> None:
    checks = backstop.Backstop(lambda _key: None)
    start = time.monotonic()
    for i in range(200):
        checks.track(("ns", f"s{i}"), 100.0)
    assert 0 < len(checks.due_now(start + 50.0)) < 200
