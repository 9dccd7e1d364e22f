"""``/v1/api-keys`` storage: the SQL is ``smoltbot_db.api_keys`` (shared with the CLI); this
shapes its rows into response bodies and tells the guard's cache about revocations."""

from __future__ import annotations

from collections.abc import Callable

from smoltbot_db import api_keys
from smoltbot_db.api_keys import ApiKey, Scope

from smoltbot_api.db import Database
from smoltbot_api.errors import NotFoundError
from smoltbot_api.schemas_api_keys import ApiKeyCreated, ApiKeyInfo, ApiKeyList

__all__ = ["ApiKeyRepository"]


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        scope=row.scope,
        key_prefix=row.key_prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class ApiKeyRepository:
    def __init__(self, db: Database, on_revoked: Callable[[str], None]) -> None:
        self._db = db
        self._on_revoked = on_revoked

    async def list(self) -> ApiKeyList:
        async with self._db.connection() as conn:
            rows = await api_keys.list_keys(conn)
        return ApiKeyList(keys=[_info(r) for r in rows])

    async def create(self, name: str, scope: Scope) -> ApiKeyCreated:
        async with self._db.connection() as conn:
            new = await api_keys.create_key(conn, name, scope)
        row = new.row
        return ApiKeyCreated(
            id=row.id,
            name=row.name,
            scope=row.scope,
            key_prefix=row.key_prefix,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            key=new.key,
        )

    async def revoke(self, key_id: str) -> None:
        async with self._db.connection() as conn:
            row = await api_keys.revoke_key(conn, key_id)
        if row is None:
            raise NotFoundError(f"API key {key_id!r} not found")
        self._on_revoked(key_id)
