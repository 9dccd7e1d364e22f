"""API keys of the api: their format, their hash and the SQL over ``api_keys`` (migration 0003).

One module for both writers, the api (``/v1/api-keys``) and the CLI (``smoltbot api-keys``, which
writes PostgreSQL directly, like ``smoltbot migrate``), so a key made by one is accepted by the
other and both store exactly the same thing.

- A key is ``sk-smolt-`` followed by 43 URL-safe base64 characters (32 random bytes). The prefix
  makes a leaked key recognisable to secret scanners and to people.
- Only ``hash_key(key)`` (SHA-256, hex) is stored, never the key; 256 random bits need no salt
  or slow hash. ``key_prefix`` (the first 15 characters) is stored to tell keys apart in lists.
- Scopes are ordered: ``read`` < ``write`` < ``admin``; a key may do what its scope and every
  lower scope allow (:func:`scope_allows`).
- Revoking sets ``revoked_at``; rows are never deleted, so ids are never reused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

from psycopg import AsyncConnection
from psycopg.rows import dict_row

__all__ = [
    "ID_PREFIX",
    "KEY_PREFIX",
    "MAX_NAME_LENGTH",
    "SCOPES",
    "ApiKey",
    "NewApiKey",
    "Scope",
    "create_key",
    "find_key",
    "generate_key",
    "hash_key",
    "list_keys",
    "looks_like_key",
    "revoke_key",
    "scope_allows",
    "touch_key",
]

Scope = Literal["read", "write", "admin"]
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)
_RANK: Final[dict[str, int]] = {scope: rank for rank, scope in enumerate(SCOPES)}

KEY_PREFIX: Final = "sk-smolt-"
ID_PREFIX: Final = "ak-"
MAX_NAME_LENGTH: Final = 100
_RANDOM_BYTES: Final = 32
_SHOWN_CHARS: Final = len(KEY_PREFIX) + 6

_COLUMNS = "id, name, scope, key_prefix, created_at, last_used_at, revoked_at"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One row of ``api_keys`` as it may be shown: never the key, never its hash."""

    id: str
    name: str
    scope: Scope
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created: the row and the key itself, which exists only in this object."""

    row: ApiKey
    key: str

    def __repr__(self) -> str:  # the default repr would print the key
        return f"NewApiKey(row={self.row!r}, key='{self.row.key_prefix}...')"


def generate_key() -> str:
    """A new key: ``sk-smolt-`` and 32 random bytes, URL-safe base64 (no padding)."""
    return KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def hash_key(key: str) -> str:
    """What is stored and looked up: the SHA-256 of the key, as 64 hex digits."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    """True for a token shaped like a key (cheap check before a lookup)."""
    return token.startswith(KEY_PREFIX) and len(token) > len(KEY_PREFIX)


def scope_allows(granted: str, required: str) -> bool:
    """True when a key of scope ``granted`` may use a route that requires ``required``."""
    return _RANK.get(granted, -1) >= _RANK.get(required, len(SCOPES))


def _row(values: dict[str, Any]) -> ApiKey:
    return ApiKey(**values)


async def create_key(conn: AsyncConnection[Any], name: str, scope: Scope) -> NewApiKey:
    """Insert a new key and return it with its row; the caller shows the key once."""
    if scope not in _RANK:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValueError(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    key = generate_key()
    key_id = ID_PREFIX + secrets.token_hex(8)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"INSERT INTO api_keys (id, name, scope, key_hash, key_prefix)"  # noqa: S608 - constant
            f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            [key_id, name, scope, hash_key(key), key[:_SHOWN_CHARS]],
        )
        found = await cur.fetchone()
    if found is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT into api_keys returned no row")
    return NewApiKey(row=_row(found), key=key)


async def list_keys(conn: AsyncConnection[Any]) -> list[ApiKey]:
    """Every key (revoked ones too), newest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"  # noqa: S608
        )
        return [_row(r) for r in await cur.fetchall()]


async def find_key(conn: AsyncConnection[Any], key: str) -> ApiKey | None:
    """The row of ``key`` (revoked or not), or None when no such key was ever created."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s",  # noqa: S608 - constant
            [hash_key(key)],
        )
        found = await cur.fetchone()
    return None if found is None else _row(found)


async def revoke_key(conn: AsyncConnection[Any], key_id: str) -> ApiKey | None:
    """Revoke ``key_id`` (a key already revoked keeps its first ``revoked_at``); None when
    there is no such key."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"  # noqa: S608
            f" WHERE id = %s RETURNING {_COLUMNS}",
            [key_id],
        )
        found = await cur.fetchone()
    return None if found is None else _row(found)


async def touch_key(conn: AsyncConnection[Any], key_id: str) -> None:
    """Record a use of ``key_id`` now (callers do this at most once a minute per key)."""
    await conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = %s AND revoked_at IS NULL",
        [key_id],
    )
