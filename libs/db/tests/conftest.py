"""Real PostgreSQL for the db tests: a uniquely named database per test, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from smoltbot_testing.pg import ADMIN_URL, temporary_database

__all__ = ["ADMIN_URL"]


@pytest.fixture
def fresh_db_url() -> Iterator[str]:
    with temporary_database("db") as url:
        yield url
