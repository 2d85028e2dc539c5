"""Restart delays for a supervised process: 1 s doubling to 30 s, back to 1 s after a minute up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    initial_s: float = 1.0
    cap_s: float = 30.0
    reset_after_s: float = 60.0
    failures: int = 0

    def next_delay(self, uptime_s: float) -> float:
        """The delay before restarting a process that exited after ``uptime_s`` seconds up."""
        if uptime_s >= self.reset_after_s:
            self.failures = 0
        delay = min(self.initial_s * 2.0**self.failures, self.cap_s)
        if delay < self.cap_s:
            self.failures += 1
        return delay
