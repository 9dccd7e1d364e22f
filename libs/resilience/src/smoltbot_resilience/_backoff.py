"""The one delay policy: capped exponential, optionally with full jitter."""

from __future__ import annotations

import asyncio
import contextlib
import random


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``; :meth:`reset` after a success.

    With ``jitter`` each delay is drawn from ``[delay / 2, delay]``, so replicas that lost the
    same dependency at the same moment do not retry in lock step.
    """

    __slots__ = ("_delay", "factor", "initial", "jitter", "maximum")

    def __init__(
        self, initial: float, maximum: float, *, factor: float = 2.0, jitter: bool = False
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._delay = initial

    @property
    def current(self) -> float:
        """The delay the next call to :meth:`next` is based on (before jitter)."""
        return self._delay

    def next(self) -> float:
        """The delay to wait now; the following one grows by ``factor`` (capped)."""
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.maximum)
        if self.jitter:
            return random.uniform(delay / 2, delay)  # noqa: S311 - spreading retries, not crypto
        return delay

    def reset(self) -> None:
        self._delay = self.initial


async def sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when it was (the caller should end)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
