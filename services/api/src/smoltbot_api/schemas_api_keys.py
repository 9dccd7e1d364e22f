"""Bodies of ``/v1/api-keys`` (self-hosting.md §2.3 "API keys"). No body ever carries a key's
hash; only the answer to the creating POST carries the key itself."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from smoltbot_db.api_keys import MAX_NAME_LENGTH, Scope

__all__ = ["ApiKeyCreated", "ApiKeyInfo", "ApiKeyList", "CreateApiKey"]


class CreateApiKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/api-keys``: what the new key is called and what it may do."""

    name: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_NAME_LENGTH,
            description=f"A label for people (1-{MAX_NAME_LENGTH} characters).",
        ),
    ] = "Default"
    scope: Annotated[
        Scope,
        msgspec.Meta(
            description="read: GET routes; write: also changes to agents, cards and "
            "containment; admin: everything, including API keys and webhooks."
        ),
    ] = "read"


class ApiKeyInfo(msgspec.Struct, kw_only=True):
    """An API key as listed: never the key, never its hash."""

    id: str
    name: str
    scope: Scope
    key_prefix: str  # the key's first characters, to tell keys apart
    created_at: datetime
    last_used_at: datetime | None  # updated at most once a minute
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyInfo, kw_only=True):
    """The answer to ``POST /v1/api-keys``: the only time the key is shown."""

    key: str


class ApiKeyList(msgspec.Struct, kw_only=True):
    """``GET /v1/api-keys``: every key, revoked ones too, newest first."""

    keys: list[ApiKeyInfo]
