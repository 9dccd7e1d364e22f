"""A2: SIGKILL a worker in the middle of a burst; a new one must finish the job exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from smoltbot_testing.procs import ServiceSet

from tests.chaos.helpers import (
    StartPipeline,
    assert_landed_once,
    counts,
    new_agent,
    post_message,
)
from tests.conftest import poll

pytestmark = pytest.mark.chaos

CALLS = 200


@pytest.fixture
def services(start_pipeline: StartPipeline, tmp_path: Path) -> Iterator[ServiceSet]:
    with start_pipeline(env={"SMOLTBOT_SPOOL_DIR": str(tmp_path / "spool")}) as stack:
        yield stack


def call(gateway: str, key: str, n: int) -> int:
    """Every third call streams."""
    status, _ = post_message(
        gateway, key, f"call {n}: think, then answer", stream=n % 3 == 0, max_tokens=1024
    )
    return status


@pytest.mark.parametrize("victim", ["verifier", "observer", "persister"])
def test_sigkill_mid_burst_loses_nothing_and_duplicates_nothing(
    services: ServiceSet, database_url: str, stream_prefix: str, victim: str
) -> None:
    key, agent = new_agent("chaos")
    gateway = services.url("gateway")
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(call, gateway, key, n) for n in range(CALLS)]
        # Kill once the victim is clearly mid-stream: some results persisted, many still coming.
        poll(lambda: counts(database_url, agent)[0] >= 20 or futures[60].done(), timeout_s=60)
        services.kill(victim)
        statuses = [f.result() for f in futures]
    assert statuses == [200] * CALLS  # the agent never noticed
    time.sleep(0.5)
    services.start(victim)  # a new process: a new consumer name, same group

    assert_landed_once(database_url, stream_prefix, agent, (CALLS, CALLS, CALLS))
