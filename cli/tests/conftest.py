"""Real PostgreSQL and Redis for the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix
from smoltbot_testing.pg import temporary_database


@pytest.fixture
def fresh_db_url() -> Iterator[str]:
    with temporary_database("cli") as url:
        yield url


@pytest.fixture
def prefix() -> Iterator[str]:
    value = unique_prefix()
    yield value
    delete_prefix_sync(value)
