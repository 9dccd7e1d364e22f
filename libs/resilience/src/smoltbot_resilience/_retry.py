"""Retry one call until it succeeds or the process is asked to stop (tenacity drives it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception_type

from smoltbot_resilience._backoff import Backoff, sleep_or_stop

T = TypeVar("T")


class _StoppedError(Exception):
    """Raised instead of another attempt once a stop was requested during a wait."""


async def retry_until(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    backoff: Backoff,
    stop: asyncio.Event | None = None,
    on_retry: Callable[[BaseException, float, int], None] | None = None,
) -> T | None:
    """Await ``attempt()`` until it returns, waiting ``backoff`` delays between failures.

    Only ``retry_on`` exceptions are retried (anything else propagates). Returns None when
    ``stop`` is set before a success, so a worker asked to shut down while its dependency is
    still unreachable exits cleanly. ``on_retry(error, delay_s, attempt_number)`` is called
    before each wait (logging).
    """
    delays: dict[int, float] = {}

    def wait(state: RetryCallState) -> float:
        delay = delays[state.attempt_number] = backoff.next()
        return delay

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        if on_retry is not None and outcome is not None:
            error = outcome.exception()
            if error is not None:
                on_retry(error, delays.get(state.attempt_number, 0.0), state.attempt_number)

    async def sleep(seconds: float) -> None:
        await sleep_or_stop(seconds, stop)

    def should_stop(_: RetryCallState) -> bool:
        return stop is not None and stop.is_set()

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        wait=wait,
        stop=should_stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=False,
    )

    async def guarded() -> T:
        if stop is not None and stop.is_set():
            raise _StoppedError
        return await attempt()

    try:
        return await retrying(guarded)
    except (RetryError, _StoppedError):
        return None
