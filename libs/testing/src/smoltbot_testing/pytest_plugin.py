"""The fixtures every suite shares: a private Redis key prefix and clients bound to its cleanup,
private PostgreSQL databases, and the shared constants.

Registration: the repository's root ``conftest.py`` says
``pytest_plugins = ["smoltbot_testing.pytest_plugin"]``. A root conftest is loaded before any
suite's, for every path pytest is given, and naming the plugin there imports it by its package
name, so ``--import-mode=importlib`` (test modules cannot import conftests or each other) does not
matter: suites and tests never import this module, they only ask for its fixtures by name. A
suite's ``conftest.py`` or a test module may still define a fixture of the same name; the nearer
definition wins, as pytest always does.

Constants (defined in :mod:`smoltbot_testing.env`, re-exported here):

- ``REDIS_URL``: the shared Redis (``SMOLTBOT_TEST_REDIS_URL``, default ``127.0.0.1:6379/0``).
- ``ADMIN_URL``: the shared PostgreSQL's admin connection (``SMOLTBOT_TEST_PG_ADMIN_URL``,
  default ``postgres@127.0.0.1:5432/postgres``, trust auth).
- ``BUS_TABLES``: every table the services write; :func:`truncate_bus_tables` empties them.

Fixtures:

- ``prefix``: a unique key prefix (``test-xxxxxxxx:``); afterwards every key under it on the
  shared Redis is deleted, whoever wrote it.
- ``redis``: an asyncio client for the shared Redis, made the way the bus makes its clients
  (``smoltbot_bus.redis_client``: bytes replies, bounded socket timeouts); closed afterwards,
  then ``prefix`` is cleaned.
- ``redis_sync``: the same as a blocking client (``redis.Redis``).
- ``fresh_db_url``: a private, empty (unmigrated) database per test, dropped afterwards.
- ``migrated_database``: session-scoped factory; ``migrated_database("api")`` creates a migrated
  private database that lives until the end of the session. Suites whose tests share one
  database keep a thin ``database_url`` fixture of their own scope that calls it (a
  ``database_url`` here would be one database for every suite of a run).

Databases are named ``smoltbot_<label>_<random>``; the label is the suite's name (``db``,
``cli``, ``api``, ...) so that a database left behind by a killed run says where it came from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import pytest_asyncio
import redis as redis_lib
from redis.asyncio import Redis as AsyncRedis

from smoltbot_testing.env import ADMIN_URL, REDIS_URL
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix
from smoltbot_testing.pg import BUS_TABLES, temporary_database, truncate_bus_tables

__all__ = [
    "ADMIN_URL",
    "BUS_TABLES",
    "REDIS_URL",
    "suite_label",
    "truncate_bus_tables",
]


def suite_label(path: Path, root: Path) -> str:
    """A short name for the suite a test file belongs to: the folder above its first ``tests``
    folder (``libs/db/tests/x.py`` -> ``db``), or, for the top-level ``tests``, the folder
    below it (``tests/e2e/x.py`` -> ``e2e``); ``test`` when neither applies."""
    parts = path.relative_to(root).parts if path.is_relative_to(root) else path.parts
    if "tests" not in parts:
        return "test"
    at = parts.index("tests")
    if at > 0:
        return parts[at - 1].replace("-", "_")
    return parts[1].replace("-", "_") if len(parts) > 2 else "test"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique key prefix; every key under it on the shared Redis is deleted afterwards."""
    value = unique_prefix()
    yield value
    delete_prefix_sync(value, REDIS_URL)


@pytest_asyncio.fixture
async def redis(prefix: str) -> AsyncIterator[AsyncRedis]:
    """An asyncio client for the shared Redis, made as the bus makes its own; ``prefix`` is
    cleaned afterwards."""
    from smoltbot_bus import redis_client  # noqa: PLC0415 - only suites that talk to Redis need it

    client = redis_client(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def redis_sync(prefix: str) -> Iterator[redis_lib.Redis]:
    """A blocking client for the shared Redis; ``prefix`` is cleaned after."""
    client = redis_lib.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A private, empty database for one test (no migrations run), dropped afterwards."""
    with temporary_database(suite_label(request.path, request.config.rootpath)) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_database() -> Iterator[Callable[[str], str]]:
    """Factory: ``migrated_database(label)`` creates a private database, migrated with
    ``smoltbot_db``, that is dropped at the end of the session."""
    with ExitStack() as stack:

        def create(label: str) -> str:
            return stack.enter_context(temporary_database(label, migrate=True))

        yield create
