"""A small circuit breaker so callers stop waiting on a Redis that is known to be down."""

from __future__ import annotations

import time

from smoltbot_bus._metrics import BREAKER_OPEN


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown_s`` one trial is let
    through (half-open): success closes it, failure re-opens it for another cooldown."""

    def __init__(self, *, threshold: int = 1, cooldown_s: float = 2.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        """True while calls should not even be tried."""
        return self._failures >= self.threshold and time.monotonic() < self._open_until

    def allow(self) -> bool:
        return not self.is_open

    def success(self) -> None:
        if self._failures:
            BREAKER_OPEN.set(0)
        self._failures = 0

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold:
            self._open_until = time.monotonic() + self.cooldown_s
            BREAKER_OPEN.set(1)
