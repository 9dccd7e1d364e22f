"""The api's one app factory: every wiring decision (routes, DI, auth, errors, lifespan) is here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components
from smoltbot_health import Health
from smoltbot_health.litestar_routes import probe_route_handlers
from smoltbot_logging import configure

from smoltbot_api.auth import Authenticator
from smoltbot_api.control import AgentControl, api_redis_client
from smoltbot_api.db import Database
from smoltbot_api.errors import exception_handlers
from smoltbot_api.metrics import metrics_middleware
from smoltbot_api.openapi import OPENAPI_PATH, finish_openapi
from smoltbot_api.openapi_auth import BEARER_SCHEME, document_auth
from smoltbot_api.repo_api_keys import ApiKeyRepository
from smoltbot_api.repo_cards import CardStore, card_redis_client
from smoltbot_api.repo_reverify import ReverifyRepository
from smoltbot_api.repo_webhooks import WebhookRepository
from smoltbot_api.repository import Repository
from smoltbot_api.routes import v1_route_handlers
from smoltbot_api.settings import ApiSettings, load_api_settings_or_exit

__all__ = ["ApiContext", "api_context", "create_app", "create_app_from_env"]

_STATE_KEY = "smoltbot_api"
VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The typed application state: everything a request or probe may need."""

    settings: ApiSettings
    health: Health
    db: Database
    repository: Repository
    control: AgentControl
    cards: CardStore

    @classmethod
    def build(cls, settings: ApiSettings) -> ApiContext:
        """Everything is created here, nothing is connected: routes and DI need the objects
        before the lifespan runs."""
        health = Health("api")
        db = Database(
            settings.database_url,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            timeout_s=settings.db_pool_timeout_s,
            on_connected=health.mark_started,
        )
        health.add_check("postgres", db.ping)
        control = AgentControl(db, api_redis_client(settings.redis_url), settings.stream_prefix)
        cards = CardStore(db, card_redis_client(settings.redis_url), settings.stream_prefix)
        return cls(
            settings=settings,
            health=health,
            db=db,
            repository=Repository(db),
            control=control,
            cards=cards,
        )

    @asynccontextmanager
    async def open(self) -> AsyncIterator[ApiContext]:
        """Connect in the background (probes answer 503 meanwhile, startup is marked once the
        database answered); on the way out drain first, then close the pool (architecture §11)."""
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self.db.close)
            self.db.start()
            stack.push_async_callback(self.control.close)
            self.control.start()
            stack.push_async_callback(self.cards.close)
            stack.callback(self.health.mark_draining)
            yield self


def api_context(app: Litestar) -> ApiContext:
    """The :class:`ApiContext` of an app built by :func:`create_app` (typed access to state)."""
    ctx = app.state.get(_STATE_KEY)
    if not isinstance(ctx, ApiContext):
        raise TypeError("this Litestar app was not built by smoltbot_api.create_app")
    return ctx


def create_app(settings: ApiSettings) -> Litestar:
    """Build the api for ``settings``. One app instance runs its lifespan once (one pool)."""
    ctx = ApiContext.build(settings)
    auth = Authenticator.from_settings(settings, ctx.db)  # the /v1 guard: keys, scopes, limits
    api_keys = ApiKeyRepository(ctx.db, auth.forget)
    webhooks = WebhookRepository(ctx.db)
    reverify = ReverifyRepository(ctx.db)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with ctx.open():
            yield

    def provide_repository() -> Repository:
        return ctx.repository

    v1 = Router(
        path="/v1",
        route_handlers=v1_route_handlers(),
        guards=[auth.as_guard()],
        security=[{"BearerAuth": []}],
        tags=["v1"],
    )
    app = Litestar(
        route_handlers=[v1, *probe_route_handlers(ctx.health)],
        dependencies={
            "repo": Provide(provide_repository, sync_to_thread=False),
            "api_keys": Provide(lambda: api_keys, sync_to_thread=False),
            "webhooks": Provide(lambda: webhooks, sync_to_thread=False),
            "reverify": Provide(lambda: reverify, sync_to_thread=False),
            "control": Provide(lambda: ctx.control, sync_to_thread=False),
            "cards": Provide(lambda: ctx.cards, sync_to_thread=False),
        },
        exception_handlers=exception_handlers(),
        middleware=[metrics_middleware],
        lifespan=[lifespan, auth.lifespan],
        state=State({_STATE_KEY: ctx}),
        openapi_config=OpenAPIConfig(
            title="smoltbot api",
            version=VERSION,
            description="Read API over the traces, checkpoints and usage the gateway recorded.",
            # JSON only: the HTML explorers load assets from a CDN, which an air-gapped
            # deployment cannot reach.
            path=OPENAPI_PATH,
            render_plugins=[JsonRenderPlugin()],
            components=Components(security_schemes={"BearerAuth": BEARER_SCHEME}),
        ),
        # Logging is configured once at the process edge (JSON lines); Litestar adds none.
        logging_config=None,
        debug=False,
    )
    finish_openapi(app)  # the catalogue's error body on every /v1 operation
    document_auth(app)  # the guard's 401/403/429 on every /v1 operation
    return app


def create_app_from_env() -> Litestar:
    """Factory granian calls in its worker: settings from the environment, JSON logging on.

    ``__main__`` validated the same environment before starting granian, so this only fails if
    the environment changed in between; it then exits 2 like ``__main__``.
    """
    settings = load_api_settings_or_exit()
    configure("api", settings.log_level)
    return create_app(settings)
