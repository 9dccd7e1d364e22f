"""Fixtures of the chaos suite."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from smoltbot_testing.fake_upstream import FakeUpstream

from tests.chaos.helpers import StartPipeline, pipeline


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream().in_thread() as upstream:
        yield upstream


@pytest.fixture
def start_pipeline(
    database_url: str, stream_prefix: str, fake: FakeUpstream, tmp_path: Path
) -> StartPipeline:
    """``helpers.pipeline`` on this test's database, key prefix, fake upstream and log folder;
    call it with ``env`` and ``overrides`` as needed."""
    return functools.partial(
        pipeline,
        database_url=database_url,
        prefix=stream_prefix,
        upstream_url=fake.url,
        log_dir=tmp_path,
    )
