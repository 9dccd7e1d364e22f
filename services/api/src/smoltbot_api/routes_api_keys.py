"""``/v1/api-keys`` (scope admin): list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from litestar import delete, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, PathParameter

from smoltbot_api.auth import scope
from smoltbot_api.repo_api_keys import ApiKeyRepository
from smoltbot_api.schemas_api_keys import ApiKeyCreated, ApiKeyList, CreateApiKey

__all__ = ["api_key_route_handlers"]

KeyId = Annotated[str, PathParameter(description="API key id, e.g. ak-0123456789abcdef.")]
Keys = NamedDependency[ApiKeyRepository]
_ADMIN = scope("admin")


@get("/api-keys", opt=_ADMIN, summary="List API keys (never the keys themselves)")
async def list_api_keys(api_keys: Keys) -> ApiKeyList:
    return await api_keys.list()


@post(
    "/api-keys",
    opt=_ADMIN,
    status_code=201,
    summary="Create an API key",
    description="The answer is the only place the key appears: store it now. Only its SHA-256 "
    "is kept.",
)
async def create_api_key(api_keys: Keys, data: JSONBody[CreateApiKey]) -> ApiKeyCreated:
    return await api_keys.create(data.name, data.scope)


@delete(
    "/api-keys/{key_id:str}",
    opt=_ADMIN,
    status_code=204,
    summary="Revoke an API key",
    description="Other api processes may accept the key for up to SMOLTBOT_API_KEY_CACHE_TTL_S "
    "(at most 5 s) more.",
)
async def revoke_api_key(api_keys: Keys, key_id: KeyId) -> None:
    await api_keys.revoke(key_id)


def api_key_route_handlers() -> list[HTTPRouteHandler]:
    return [list_api_keys, create_api_key, revoke_api_key]
