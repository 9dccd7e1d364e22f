"""Fixtures of the chaos suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from smoltbot_testing.fake_upstream import FakeUpstream


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream().in_thread() as upstream:
        yield upstream
