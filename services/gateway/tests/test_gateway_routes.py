"""Routing, CORS, health, named agents, wire hygiene and bounded memory, in process.

The app is driven straight through ASGI where a test needs what an HTTP client would not send
(a literal ``..`` in the path, a ``Content-Length`` with no body, a body that trickles), and
through the Litestar test client (which runs the lifespan) everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import msgspec
import pytest
import redis
from prometheus_client import REGISTRY
from smoltbot_config import load_settings
from smoltbot_contracts import AgentV1, ExchangeV1
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_contracts.streams import AGENTS, EXCHANGES, stream_key
from smoltbot_gateway.app import GatewayApp, create_app
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_testing import FakeUpstream
from smoltbot_testing.env import REDIS_URL

MESSAGE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "routes"}]}
BODY = msgspec.json.encode(MESSAGE)

Message = dict[str, Any]


class Answer:
    """What an ASGI app sent back for one request."""

    def __init__(self, messages: Sequence[Message]) -> None:
        start = next(m for m in messages if m["type"] == "http.response.start")
        self.status: int = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(
            m.get("body", b"") for m in messages if m["type"] == "http.response.body"
        )

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


async def call(
    app: GatewayApp,
    method: str,
    raw_path: bytes,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    receive: Callable[[], Awaitable[Message]] | None = None,
    query: bytes = b"",
) -> Answer:
    """One request straight through ASGI, bytes exactly as given."""
    sent: list[Message] = []
    done = asyncio.Event()

    async def default_receive() -> Message:
        if not done.is_set():
            done.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the client stays
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    await app(scope, receive or default_receive, send)
    return Answer(sent)


def settings(prefix: str, upstream: str, **env: str) -> GatewaySettings:
    return load_settings(
        GatewaySettings,
        {
            "REDIS_URL": REDIS_URL,
            "SMOLTBOT_STREAM_PREFIX": prefix,
            "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": upstream,
            "SMOLTBOT_UPSTREAM_OPENAI_URL": upstream,
            "SMOLTBOT_UPSTREAM_GEMINI_URL": upstream,
            **env,
        },
    )


@asynccontextmanager
async def serving(app: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan in this event loop (resources open), with an HTTP client on it.

    Litestar's own test client runs the app in another loop, so direct ASGI calls could not
    share the resources it opened.
    """
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)  # type: ignore[arg-type]
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


@pytest.fixture
async def gateway(prefix: str, fake: FakeUpstream) -> AsyncIterator[tuple[GatewayApp, Any]]:
    """The app with its lifespan running (resources open), and a client on it."""
    app = create_app(settings(prefix, fake.url))
    async with serving(app) as client:
        yield app, client


def events(client: redis.Redis, prefix: str, stream: str) -> list[Any]:
    return [decode_fields(fields) for _, fields in client.xrange(stream_key(prefix, stream))]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------- routing, CORS, health


@pytest.mark.parametrize("path", [b"/anthropic/v1/messages", b"/anything", b"/"])
async def test_preflight_is_answered_for_any_path(path: bytes) -> None:
    answer = await call(create_app(settings("p:", "http://127.0.0.1:9")), "OPTIONS", path)
    assert answer.status == 204
    assert answer.body == b""
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "x-api-key" in answer.headers["access-control-allow-headers"]
    assert "x-goog-api-key" in answer.headers["access-control-allow-headers"]
    assert "X-AIP-Verdict" in answer.headers["access-control-expose-headers"]
    assert answer.headers["access-control-max-age"] == "86400"


@pytest.mark.parametrize("path", [b"/health", b"/health/"])
async def test_health_is_json_and_needs_nothing(path: bytes) -> None:
    # No lifespan, no Redis: the reference's /health still answers.
    answer = await call(create_app(settings("p:", "http://127.0.0.1:9")), "GET", path)
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["status"] == "ok"
    assert body["aip_enabled"] is True
    assert isinstance(body["version"], str)
    assert body["version"]
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None


async def test_root_and_unknown_paths_are_404_provider_roots_are_not(
    gateway: tuple[GatewayApp, Any],
) -> None:
    _, client = gateway
    for path in ("/", "/nope", "/anthropicx/v1/messages", "/agent/a/unknown/v1/x", "/agent/a"):
        response = await client.post(path, json=MESSAGE)
        assert response.status_code == 404, path
        assert response.json()["type"] == "not_found"
    for path in ("/anthropic", "/anthropic/", "/openai", "/gemini/"):
        response = await client.get(path)  # no key: the proxy answers, not the 404
        assert response.status_code == 401, path


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/anthropic/v1/../../x",
        b"/anthropic/..",
        b"/anthropic/%2e%2e/x",
        b"/anthropic/v1/%2E%2e/%2e%2E/x",
        b"/openai/v1/..%2f..%2fadmin",
        b"/gemini/v1beta\\..\\..\\x",
        b"/agent/bot/anthropic/v1/../../x",
    ],
)
async def test_a_path_that_leaves_the_provider_prefix_is_refused(
    raw_path: bytes, fake: FakeUpstream
) -> None:
    before = len(fake.responses)
    answer = await call(
        create_app(settings("p:", fake.url)),
        "POST",
        raw_path,
        headers=[(b"x-api-key", b"k"), (b"authorization", b"Bearer k")],
    )
    assert answer.status == 400
    assert answer.json()["type"] == "invalid_request_error"
    assert isinstance(answer.json()["error"], dict)  # the provider's shape
    assert len(fake.responses) == before


async def test_dot_dot_inside_the_prefix_is_forwarded_as_encoded(
    gateway: tuple[GatewayApp, Any], fake: FakeUpstream
) -> None:
    app, _ = gateway
    answer = await call(
        app,
        "GET",
        b"/anthropic/v1/x/../models",
        headers=[(b"x-api-key", b"k-dots")],
    )
    assert answer.status == fake.responses[-1].status  # the upstream's own answer
    assert fake.responses[-1].path == "/v1/x/../models"  # not normalised on the way


# ---------------------------------------------------------------- keys and identity


async def test_missing_key_names_each_providers_header_in_its_error_shape(
    gateway: tuple[GatewayApp, Any],
) -> None:
    _, client = gateway
    anthropic = (await client.post("/anthropic/v1/messages", json=MESSAGE)).json()
    assert anthropic["error"] == {"type": "authentication_error", "message": anthropic["message"]}
    assert "x-api-key" in anthropic["message"]
    openai = (await client.post("/openai/v1/chat/completions", json=MESSAGE)).json()
    assert openai["error"] == {
        "message": "Missing Authorization: Bearer <key> header",
        "type": "authentication_error",
        "param": None,
        "code": None,
    }
    gemini = await client.post("/gemini/v1beta/models/g:generateContent", json={})
    assert gemini.status_code == 401
    assert gemini.json()["error"] == {
        "code": 401,
        "message": "Missing x-goog-api-key header",
        "status": "UNAUTHENTICATED",
    }


@pytest.mark.parametrize(
    ("path", "headers", "query"),
    [
        (b"/openai/v1/models", [(b"authorization", b"Bearer k-openai")], b""),
        (b"/gemini/v1beta/models", [(b"x-goog-api-key", b"k-gemini")], b""),
        (b"/gemini/v1beta/models", [], b"key=k-gemini-q&pageSize=5"),
        (b"/anthropic/v1/models", [(b"authorization", b"Bearer k-bearer")], b""),
    ],
)
async def test_identity_comes_from_where_each_sdk_puts_the_key(
    gateway: tuple[GatewayApp, Any],
    fake: FakeUpstream,
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    query: bytes,
) -> None:
    app, _ = gateway
    answer = await call(app, "GET", path, headers=headers, query=query)
    key = headers[0][1].decode().removeprefix("Bearer ") if headers else "k-gemini-q"
    assert answer.headers["x-smoltbot-agent"] == agent_id(agent_hash(key))
    recorded = fake.responses[-1]
    assert recorded.query == query.decode()  # ?key= is forwarded as given


async def test_named_agents_are_distinct_agents_with_their_names(
    fake: FakeUpstream, redis_client: redis.Redis, prefix: str
) -> None:
    key = "k-named"
    seen = {}
    async with serving(create_app(settings(prefix, fake.url))) as client:
        for name, path in (
            ("alice", "/agent/alice/anthropic/v1/messages"),
            ("bob", "/agent/bob/anthropic/v1/messages"),
            (None, "/anthropic/v1/messages"),
        ):
            response = await client.post(path, json=MESSAGE, headers={"x-api-key": key})
            assert response.status_code == 200
            seen[name] = response.headers["x-smoltbot-agent"]
        response = await client.post(
            "/agent/caf%C3%A9%20bot/anthropic/v1/messages",
            json=MESSAGE,
            headers={"x-api-key": key},
        )
        assert response.headers["x-smoltbot-agent"] == agent_id(agent_hash(key, "café bot"))
    assert seen["alice"] == agent_id(agent_hash(key, "alice"))
    assert seen["bob"] == agent_id(agent_hash(key, "bob"))
    assert len(set(seen.values())) == 3
    # The lifespan ended: the publisher flushed.
    agents = [e for e in events(redis_client, prefix, AGENTS) if isinstance(e, AgentV1)]
    names = {e.agent_id: e.name for e in agents}
    assert names[seen["alice"]] == "alice"
    assert names[seen["bob"]] == "bob"
    assert names[seen[None]] is None
    exchanges = [e for e in events(redis_client, prefix, EXCHANGES) if isinstance(e, ExchangeV1)]
    assert {e.meta.agent_name for e in exchanges} == {"alice", "bob", None, "café bot"}


async def test_bad_agent_names_are_refused() -> None:
    app = create_app(settings("p:", "http://127.0.0.1:9"))
    for raw in (b"/agent/%ff/anthropic/v1/messages", b"/agent/" + b"x" * 129 + b"/openai/v1/x"):
        answer = await call(app, "POST", raw, headers=[(b"x-api-key", b"k")])
        assert answer.status == 400
        assert answer.json()["type"] == "invalid_request_error"


# ---------------------------------------------------------------- provisioning


async def test_a_key_the_provider_rejects_leaves_nothing_but_a_counter(
    prefix: str, fake: FakeUpstream, redis_client: redis.Redis
) -> None:
    key = f"k-random-{prefix}"
    agent = agent_id(agent_hash(key))
    rejected_before = counter("smoltbot_gateway_unknown_keys_rejected_total", provider="anthropic")
    app = create_app(settings(prefix, fake.url))
    headers = {"x-api-key": key}
    async with serving(app) as client:
        for status in ("401", "403"):
            response = await client.post(
                "/anthropic/v1/messages", json=MESSAGE, headers={**headers, "x-fake-status": status}
            )
            assert response.status_code == int(status)  # the provider's answer, untouched
    assert (
        counter("smoltbot_gateway_unknown_keys_rejected_total", provider="anthropic")
        == rejected_before + 2
    )
    assert [e for e in events(redis_client, prefix, AGENTS) if e.agent_id == agent] == []
    assert [e for e in events(redis_client, prefix, EXCHANGES) if e.meta.agent_id == agent] == []

    # Once a call of the key was accepted, a later rejection is a recorded exchange.
    app = create_app(settings(prefix, fake.url))
    async with serving(app) as client:
        ok = await client.post("/anthropic/v1/messages", json=MESSAGE, headers=headers)
        assert ok.status_code == 200
        denied = await client.post(
            "/anthropic/v1/messages", json=MESSAGE, headers={**headers, "x-fake-status": "401"}
        )
        assert denied.status_code == 401
    assert len([e for e in events(redis_client, prefix, AGENTS) if e.agent_id == agent]) == 1
    statuses = sorted(
        e.meta.status for e in events(redis_client, prefix, EXCHANGES) if e.meta.agent_id == agent
    )
    assert statuses == [200, 401]


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}',  # not UTF-8
        b'{"a":' * 2000 + b"1" + b"}" * 2000,  # nested past the decoder's limit
        b"[" * 5000 + b"]" * 5000,
        b"{not json",
    ],
)
async def test_a_body_that_is_not_json_is_forwarded_untouched_and_traced(
    raw: bytes, prefix: str, fake: FakeUpstream, redis_client: redis.Redis
) -> None:
    app = create_app(settings(prefix, fake.url))
    async with serving(app) as client:
        response = await client.post(
            "/anthropic/v1/messages",
            content=raw,
            headers={"x-api-key": "k-odd", "content-type": "application/json"},
        )
        assert response.status_code < 500, response.text  # the provider judges the body
        event_id = response.headers["x-smoltbot-event-id"]
    assert fake.responses[-1].request_body == raw
    [exchange] = [e for e in events(redis_client, prefix, EXCHANGES) if e.event_id == event_id]
    assert exchange.meta.status == response.status_code


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    app = create_app(
        settings("p:", "http://127.0.0.1:9", SMOLTBOT_GATEWAY_MAX_REQUEST_BYTES="2048")
    )
    async with serving(app):

        async def must_not_read() -> Message:
            raise AssertionError("the body was read")

        answer = await call(
            app,
            "POST",
            b"/anthropic/v1/messages",
            headers=[(b"x-api-key", b"k-huge"), (b"content-length", b"104857600")],
            receive=must_not_read,
        )
    assert answer.status == 413
    assert answer.json()["type"] == "request_too_large"


def trickle(chunks: int, every_s: float, size: int = 10) -> Callable[[], Awaitable[Message]]:
    """A client that sends ``chunks`` pieces of its body, one every ``every_s`` seconds."""
    sent = 0

    async def receive() -> Message:
        nonlocal sent
        await asyncio.sleep(every_s)
        sent += 1
        return {"type": "http.request", "body": b"x" * size, "more_body": sent < chunks}

    return receive


async def test_a_trickled_body_times_out_with_408(fake: FakeUpstream) -> None:
    app = create_app(settings("p:", fake.url, SMOLTBOT_GATEWAY_BODY_TIMEOUT_S="0.5"))
    before = len(fake.responses)
    async with serving(app):
        answer = await call(
            app,
            "POST",
            b"/anthropic/v1/messages",
            headers=[(b"x-api-key", b"k-slow")],
            receive=trickle(chunks=100, every_s=0.1),  # 10 s in all
        )
    assert answer.status == 408
    assert answer.json()["type"] == "request_timeout"
    assert len(fake.responses) == before


async def test_bodies_over_the_budget_get_503_retry_after_and_the_budget_is_given_back(
    fake: FakeUpstream,
) -> None:
    mib = 1024 * 1024
    app = create_app(
        settings("p:", fake.url, SMOLTBOT_GATEWAY_MAX_INFLIGHT_BODY_BYTES=str(4 * mib))
    )
    big = [(b"x-api-key", b"k-budget"), (b"content-length", str(2 * mib).encode())]
    async with serving(app) as client:
        slow = asyncio.create_task(
            call(
                app,
                "POST",
                b"/anthropic/v1/messages",
                headers=big,
                receive=trickle(chunks=2, every_s=0.5, size=mib),
            )
        )
        await asyncio.sleep(0.2)  # the slow body holds 2 of the 3 MiB large bodies may use
        refused = await call(
            app,
            "POST",
            b"/anthropic/v1/messages",
            headers=big,
            receive=trickle(chunks=1, every_s=0, size=2 * mib),
        )
        assert refused.status == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["type"] == "service_unavailable"
        # Ordinary calls are still served: small bodies may use the last quarter.
        ordinary = await client.post(
            "/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": "k"}
        )
        assert ordinary.status_code == 200
        assert not slow.done()
        await slow  # finishes (the fake answers whatever the body); the budget is released
        assert app._runtime.proxy is not None
        assert app._runtime.proxy.state.body_budget.used == 0


# ---------------------------------------------------------------- redaction and streams


async def test_gemini_key_in_the_query_never_reaches_logs_or_events(
    prefix: str, fake: FakeUpstream, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"AIza-secret-{prefix}"
    caplog.set_level(logging.DEBUG)
    app = create_app(settings(prefix, fake.url))
    async with serving(app) as client:
        response = await client.post(
            f"/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key={secret}",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
        event_id = response.headers["x-smoltbot-event-id"]
    assert secret in fake.responses[-1].query  # forwarded as given
    ours = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test client
    assert ours
    assert all(secret not in r.getMessage() and secret not in str(r.__dict__) for r in ours)
    entries = redis_client.xrange(stream_key(prefix, EXCHANGES))
    assert all(secret.encode() not in b"".join(f.values()) for _, f in entries)
    [exchange] = [e for e in events(redis_client, prefix, EXCHANGES) if e.event_id == event_id]
    assert exchange.meta.streamed  # :streamGenerateContent / alt=sse
    assert exchange.meta.model == "gemini-2.5-pro"  # from the URL
    assert exchange.user_query == "hi"
