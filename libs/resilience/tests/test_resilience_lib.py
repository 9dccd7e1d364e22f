"""Backoff, retry_until and CircuitBreaker: pure tests, no dependency needed."""

from __future__ import annotations

import asyncio

import pytest
from smoltbot_resilience import Backoff, CircuitBreaker, retry_until, sleep_or_stop


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(0.1, 0.5)
    assert [b.next() for _ in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    b.reset()
    assert b.next() == pytest.approx(0.1)


def test_backoff_jitter_stays_within_half_to_full_delay() -> None:
    b = Backoff(1.0, 8.0, jitter=True)
    for expected in (1.0, 2.0, 4.0, 8.0, 8.0):
        delay = b.next()
        assert expected / 2 <= delay <= expected


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_backoff_rejects_nonsense(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, factor=factor)


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    now = [0.0]
    changes: list[bool] = []
    br = CircuitBreaker(threshold=2, cooldown_s=5.0, clock=lambda: now[0], on_change=changes.append)
    br.failure()
    assert br.allow()  # one failure is below the threshold
    br.failure()
    assert br.is_open
    assert not br.allow()
    now[0] = 4.9
    assert not br.allow()
    now[0] = 5.1
    assert br.allow()  # half-open: a trial call goes through
    br.failure()  # the trial failed: open for another cooldown
    assert not br.allow()
    now[0] = 10.2
    br.success()
    assert br.allow()
    assert changes == [True, True, False]


def test_breaker_success_below_threshold_reports_nothing() -> None:
    changes: list[bool] = []
    br = CircuitBreaker(threshold=3, on_change=changes.append)
    br.failure()
    br.success()
    br.failure()
    br.failure()
    assert br.allow()
    assert changes == []


async def test_retry_until_retries_listed_errors_then_returns() -> None:
    calls: list[int] = []
    seen: list[tuple[str, float, int]] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    result = await retry_until(
        flaky,
        retry_on=(ConnectionError,),
        backoff=Backoff(0.001, 0.002),
        on_retry=lambda exc, delay, n: seen.append((str(exc), delay, n)),
    )
    assert result == "up"
    assert len(calls) == 3
    assert seen == [("down", 0.001, 1), ("down", 0.002, 2)]


async def test_retry_until_lets_other_errors_through() -> None:
    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retry_until(broken, retry_on=(ConnectionError,), backoff=Backoff(0.001, 0.001))


async def test_retry_until_returns_none_when_stopped_during_a_wait() -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def never() -> str:
        calls.append(1)
        raise ConnectionError("down")

    task = asyncio.create_task(
        retry_until(never, retry_on=(ConnectionError,), backoff=Backoff(30, 30), stop=stop)
    )
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(task, 2) is None
    assert len(calls) == 1  # no further attempt after the stop


async def test_retry_until_does_not_start_when_already_stopped() -> None:
    stop = asyncio.Event()
    stop.set()

    async def attempt() -> str:
        raise AssertionError("must not be called")

    assert await retry_until(attempt, retry_on=(OSError,), backoff=Backoff(1, 1), stop=stop) is None


async def test_sleep_or_stop_wakes_on_stop() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await asyncio.wait_for(sleep_or_stop(30, stop), 2) is True
    assert await sleep_or_stop(0.001, asyncio.Event()) is False
