"""The fixture the fake-upstream tests share (tests cannot import each other: importlib mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from smoltbot_testing import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    """The fake upstream, serving every provider from the test's event loop."""
    async with FakeUpstream() as server:
        yield server
