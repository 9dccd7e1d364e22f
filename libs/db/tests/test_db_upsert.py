from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb
from smoltbot_db import UpsertSpec, create_pool, ping, upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)

SEEN = UpsertSpec(
    table="seen",
    columns=("id", "first_at", "last_at", "doc"),
    key=("id",),
    action=(
        "DO UPDATE SET first_at = LEAST(seen.first_at, EXCLUDED.first_at), "
        "last_at = GREATEST(seen.last_at, EXCLUDED.last_at) "
        "WHERE seen.first_at > EXCLUDED.first_at OR seen.last_at < EXCLUDED.last_at"
    ),
)
FACTS = UpsertSpec(table="facts", columns=("id", "doc"), key=("id",))


@pytest.fixture
async def conn(fresh_db_url: str):
    async with await psycopg.AsyncConnection.connect(fresh_db_url) as c:
        await c.execute(
            "CREATE TABLE seen (id text PRIMARY KEY, first_at timestamptz NOT NULL,"
            " last_at timestamptz NOT NULL, doc jsonb NOT NULL);"
            "CREATE TABLE facts (id uuid PRIMARY KEY, doc jsonb NOT NULL)"
        )
        await c.commit()
        yield c


@pytest.mark.parametrize("threshold", [1, 10_000], ids=["copy", "executemany"])
async def test_duplicates_and_replays_leave_one_row(conn, threshold: int) -> None:
    ids = [f"00000000-0000-7000-8000-{i:012d}" for i in range(300)]
    rows = [(i, Jsonb({"n": n})) for n, i in enumerate(ids)]
    rows_with_dups = rows + rows[:50]
    async with conn.transaction():
        written = await upsert(conn, FACTS, rows_with_dups, copy_threshold=threshold)
    assert written == 300
    async with conn.transaction():
        again = await upsert(conn, FACTS, rows, copy_threshold=threshold)
    assert again == 0
    cur = await conn.execute("SELECT count(*), count(DISTINCT id) FROM facts")
    assert await cur.fetchone() == (300, 300)
    cur = await conn.execute("SELECT doc FROM facts WHERE id = %s", (ids[7],))
    assert await cur.fetchone() == ({"n": 7},)


@pytest.mark.parametrize("threshold", [1, 10_000], ids=["copy", "executemany"])
async def test_monotonic_update_never_regresses(conn, threshold: int) -> None:
    async with conn.transaction():
        await upsert(
            conn, SEEN, [("a", T0, T0 + timedelta(hours=1), Jsonb({}))], copy_threshold=threshold
        )
    # An older event arriving late widens first_at but must not move last_at back.
    async with conn.transaction():
        n = await upsert(
            conn,
            SEEN,
            [("a", T0 - timedelta(hours=1), T0, Jsonb({}))],
            copy_threshold=threshold,
        )
    assert n == 1
    # The same event again changes nothing (no new row version).
    async with conn.transaction():
        n = await upsert(
            conn, SEEN, [("a", T0 - timedelta(hours=1), T0, Jsonb({}))], copy_threshold=threshold
        )
    assert n == 0
    cur = await conn.execute("SELECT first_at, last_at FROM seen WHERE id = 'a'")
    assert await cur.fetchone() == (T0 - timedelta(hours=1), T0 + timedelta(hours=1))


async def test_rollback_leaves_nothing(conn) -> None:
    async def batch() -> None:
        async with conn.transaction():
            await upsert(conn, FACTS, [("00000000-0000-7000-8000-000000000001", Jsonb({}))])
            await upsert(conn, FACTS, [("not-a-uuid", Jsonb({}))])

    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        await batch()
    cur = await conn.execute("SELECT count(*) FROM facts")
    assert await cur.fetchone() == (0,)


def test_spec_rejects_key_outside_columns() -> None:
    with pytest.raises(ValueError, match="not in columns"):
        UpsertSpec(table="t", columns=("a",), key=("b",))
    with pytest.raises(ValueError, match="needs a conflict key"):
        UpsertSpec(table="t", columns=("a",), key=(), action="DO UPDATE SET a = 1")


async def test_wrong_row_width_is_a_clear_error(conn) -> None:
    with pytest.raises(ValueError, match="expected 2"):
        await upsert(conn, FACTS, [("x",)])


async def test_pool_ping(fresh_db_url: str) -> None:
    pool = create_pool(fresh_db_url, min_size=1, max_size=2)
    await pool.open(wait=True, timeout=10)
    try:
        await ping(pool)
    finally:
        await pool.close()
    dead = create_pool("postgresql://postgres@127.0.0.1:1/postgres", min_size=1, max_size=1)
    await dead.open(wait=False)
    try:
        with pytest.raises(Exception):
            await ping(dead, timeout_s=0.5)
    finally:
        await dead.close()
