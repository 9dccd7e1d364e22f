"""The one circuit breaker: callers stop waiting on a dependency known to be down."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures. While open, :meth:`allow` is False, so
    callers take their fallback at once; after ``cooldown_s`` calls are let through again
    (half-open): a success closes it, a failure opens it for another cooldown.

    ``on_change(is_open)`` reports transitions (e.g. to a gauge); ``clock`` is injectable.
    """

    def __init__(
        self,
        *,
        threshold: int = 1,
        cooldown_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if threshold < 1 or cooldown_s < 0:
            raise ValueError("breaker needs threshold >= 1 and cooldown_s >= 0")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        """True while calls should not even be tried."""
        return self._failures >= self.threshold and self._clock() < self._open_until

    def allow(self) -> bool:
        return not self.is_open

    def success(self) -> None:
        if self._failures >= self.threshold and self._on_change is not None:
            self._on_change(False)
        self._failures = 0

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold:
            self._open_until = self._clock() + self.cooldown_s
            if self._on_change is not None:
                self._on_change(True)
