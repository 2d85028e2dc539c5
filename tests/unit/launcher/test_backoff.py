"""Restart delays: 1 s doubling to 30 s, starting over after a minute up."""

from __future__ import annotations

from services.launcher.backoff import Backoff


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(uptime_s=0.5) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_minute_up_starts_the_schedule_over() -> None:
    backoff = Backoff()
    for _ in range(4):
        backoff.next_delay(uptime_s=1)
    assert backoff.next_delay(uptime_s=60) == 1
    assert backoff.next_delay(uptime_s=3) == 2


def test_a_short_run_after_a_long_one_keeps_counting() -> None:
    backoff = Backoff()
    assert backoff.next_delay(uptime_s=120) == 1
    assert backoff.next_delay(uptime_s=59) == 2
