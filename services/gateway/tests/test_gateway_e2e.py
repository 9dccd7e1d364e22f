"""The gateway as a real process (granian) between the official SDK and the fake upstream.

Everything is real: loopback HTTP on both sides and Redis at 127.0.0.1:6379 under a unique
prefix that is deleted afterwards.
"""

from __future__ import annotations

import http.client
import time
import uuid
from typing import Any

import anthropic
import httpx
import msgspec
import pytest
import redis
from smoltbot_contracts import AgentConfig, AgentV1, ExchangeV1
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.ids import agent_hash, agent_id, checkpoint_id
from smoltbot_contracts.streams import AGENTS, EXCHANGES, cfg_key, stream_key
from smoltbot_testing import FakeUpstream, RecordedResponse
from smoltbot_testing.fake_upstream import FORCED_ERROR, error_body, message_request
from smoltbot_testing.net import decoded_body

API_KEY = f"sk-ant-e2e-{uuid.uuid4().hex}"  # unique per run: leak checks cannot pass by accident
TOOLS = [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}]
AGENT = agent_id(agent_hash(API_KEY))


def wait_for_event(
    client: redis.Redis, prefix: str, stream: str, event_id: str, timeout_s: float = 5.0
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for _, fields in client.xrange(stream_key(prefix, stream)):
            if fields[b"id"] == event_id.encode():
                return decode_fields(fields)
        time.sleep(0.02)
    raise AssertionError(f"event {event_id} did not appear on {stream} within {timeout_s}s")


def stream_entries(client: redis.Redis, prefix: str, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(stream_key(prefix, stream))]


def sdk(gateway: Any, key: str = API_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gateway.anthropic_url, max_retries=0)


def record_for(fake: FakeUpstream, response: httpx.Response) -> RecordedResponse:
    """The fake's record of the request behind a proxied response (via its request-id)."""
    index = int(response.headers["request-id"].removeprefix("req_fake"))
    return fake.responses[index]


def exchange_for(redis_client: redis.Redis, gateway: Any, response: httpx.Response) -> ExchangeV1:
    event = wait_for_event(
        redis_client, gateway.prefix, EXCHANGES, response.headers["x-smoltbot-event-id"]
    )
    assert isinstance(event, ExchangeV1)
    return event


def body(stream: bool, text: str = "what is the capital of France?") -> dict[str, object]:
    return {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        "tools": TOOLS,
    }


def post_message(gateway: Any, key: str | None = API_KEY) -> httpx.Response:
    """A non-streamed call straight over HTTP (no SDK), with ``key`` as ``x-api-key``."""
    headers = {} if key is None else {"x-api-key": key}
    return httpx.post(
        f"{gateway.anthropic_url}/v1/messages", json=body(False), headers=headers, timeout=10
    )


def test_non_streaming_call_comes_back_unchanged(
    gateway: Any, fake: FakeUpstream, redis_client: redis.Redis
) -> None:
    with sdk(gateway) as client:
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-20250514",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello gateway"}],
            tools=TOOLS,
        )
        message = raw.parse()
    direct = anthropic.Anthropic(api_key=API_KEY, base_url=fake.url, max_retries=0)
    with direct:
        expected = direct.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello gateway"}],
            tools=TOOLS,
        )
    assert message.model_dump() == expected.model_dump()
    assert raw.headers["x-smoltbot-agent"] == AGENT
    assert raw.headers["x-smoltbot-session"].startswith(agent_hash(API_KEY) + "-")
    event_id = raw.headers["x-smoltbot-event-id"]
    assert raw.headers["x-aip-checkpoint-id"] == checkpoint_id(event_id)
    assert raw.headers["x-aip-verdict"] == "pending"


def test_streaming_call_comes_back_unchanged(gateway: Any) -> None:
    with sdk(gateway) as client:
        with client.messages.stream(
            model="claude-sonnet-4-20250514",
            max_tokens=64,
            messages=[{"role": "user", "content": "stream to me"}],
            tools=TOOLS,
        ) as stream:
            final = stream.get_final_message()
    kinds = [block.type for block in final.content]
    assert kinds == ["thinking", "text", "tool_use"]
    assert final.content[1].type == "text"
    assert final.content[1].text == "Echo: stream to me"
    assert final.content[2].type == "tool_use"
    assert final.content[2].input == {"query": "stream to me", "n": 12}


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
@pytest.mark.parametrize("stream", [False, True])
def test_raw_bytes_equal_what_the_upstream_sent(
    gateway: Any,
    fake: FakeUpstream,
    redis_client: redis.Redis,
    encoding: str,
    stream: bool,
) -> None:
    headers = {"x-api-key": API_KEY, "accept-encoding": encoding, "anthropic-version": "2023-06-01"}
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", f"{gateway.anthropic_url}/v1/messages", json=body(stream), headers=headers
        ) as response,
    ):
        received = b"".join(response.iter_raw())
    record = record_for(fake, response)
    assert response.status_code == 200
    deadline = time.monotonic() + 2  # the fake marks its record after its last write returned
    while not record.complete and time.monotonic() < deadline:
        time.sleep(0.01)
    assert record.complete
    assert received == record.raw
    # The upstream's length header is not copied (the server frames the body); when the server
    # frames it with a length, it is the length of exactly these bytes.
    assert response.headers.get("content-length", str(len(received))) == str(len(received))
    plain = decoded_body(received, response.headers, encoding)
    assert plain.startswith(b"event: message_start") is stream

    exchange = exchange_for(redis_client, gateway, response)
    assert exchange.response_body == received  # under the 4 KiB cap of this gateway
    assert not exchange.response_truncated
    assert exchange.content_encoding == ("gzip" if encoding == "gzip" else None)
    assert exchange.content_type is not None
    assert exchange.content_type.startswith("text/event-stream" if stream else "application/json")
    assert exchange.meta.streamed is stream
    assert exchange.meta.status == 200
    assert exchange.meta.model == "claude-sonnet-4-20250514"
    assert exchange.meta.path == "/v1/messages"
    assert exchange.meta.provider == "anthropic"
    assert exchange.meta.agent_id == AGENT
    assert exchange.user_query == "what is the capital of France?"
    assert exchange.meta.completed_at >= exchange.meta.started_at
    assert exchange.meta.total_ms >= exchange.meta.upstream_ms > 0
    assert exchange.meta.ttfb_ms is not None


def test_request_is_forwarded_byte_for_byte_with_clean_headers(
    gateway: Any, fake: FakeUpstream, redis_client: redis.Redis
) -> None:
    raw_body = (
        b'{ "messages": [ {"role":"user","content":"exact bytes"} ],  "model":"m",'
        b' "max_tokens": 1.0e1 }'
    )
    response = httpx.post(
        f"{gateway.anthropic_url}/v1/messages?beta=true&key=query-secret",
        content=raw_body,
        headers={
            "x-api-key": API_KEY,
            "content-type": "application/json",
            "x-mnemom-api-key": "mnm-billing-secret",
            "x-custom": "kept",
            "connection": "keep-alive, x-drop-me",
            "x-drop-me": "1",
        },
        timeout=10,
    )
    assert response.status_code == 200
    record = record_for(fake, response)
    assert record.request_body == raw_body
    assert record.query == "beta=true&key=query-secret"
    sent = {k.lower(): v for k, v in record.request_headers}
    assert sent["x-api-key"] == API_KEY
    assert sent["x-custom"] == "kept"
    assert sent["host"] == fake.url.removeprefix("http://")
    assert "x-mnemom-api-key" not in sent
    assert "x-drop-me" not in sent
    exchange = exchange_for(redis_client, gateway, response)
    assert exchange.meta.path == "/v1/messages"
    assert exchange.user_query == "exact bytes"


def test_malformed_json_is_forwarded_untouched(
    gateway: Any, fake: FakeUpstream, redis_client: redis.Redis
) -> None:
    response = httpx.post(
        f"{gateway.anthropic_url}/v1/messages",
        content=b"{this is not json",
        headers={"x-api-key": API_KEY, "accept-encoding": "identity"},
        timeout=10,
    )
    assert response.status_code == 400  # the provider's answer, passed through
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert record_for(fake, response).request_body == b"{this is not json"
    assert response.headers["x-aip-verdict"] == "skipped"
    exchange = exchange_for(redis_client, gateway, response)
    assert exchange.user_query is None
    assert exchange.meta.model is None
    assert exchange.meta.status == 400


def test_upstream_error_status_passes_through(gateway: Any, redis_client: redis.Redis) -> None:
    with sdk(gateway) as client, pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(**message_request(extra_headers={"x-fake-status": "529"}))
    assert info.value.status_code == 529
    assert info.value.body == error_body(529, FORCED_ERROR)  # the fake's answer, unchanged
    event_id = info.value.response.headers["x-smoltbot-event-id"]
    exchange = wait_for_event(redis_client, gateway.prefix, EXCHANGES, event_id)
    assert isinstance(exchange, ExchangeV1)
    assert exchange.meta.status == 529


def test_get_models_is_proxied(gateway: Any) -> None:
    with sdk(gateway) as client:
        models = client.models.list()
    assert models.data[0].id == "claude-sonnet-4-20250514"


def test_missing_key_is_401_and_nothing_goes_upstream(gateway: Any, fake: FakeUpstream) -> None:
    before = len(fake.responses)
    response = post_message(gateway, key=None)
    assert response.status_code == 401
    message = "Missing x-api-key header"
    assert response.json() == {
        "error": {"type": "authentication_error", "message": message},  # what the SDK reads
        "type": "authentication_error",
        "message": message,
    }
    assert response.headers["content-type"] == "application/json"
    assert len(fake.responses) == before


def test_unknown_paths_are_404_and_provider_paths_are_proxied(gateway: Any) -> None:
    missing = httpx.get(f"{gateway.url}/nope", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["type"] == "not_found"
    assert missing.json()["error"] == "Not found"
    for provider in ("openai", "gemini"):
        # No key: refused by the proxy in the provider's own error shape (not a 404 or 501).
        response = httpx.post(f"{gateway.url}/{provider}/v1/x", json={}, timeout=10)
        assert response.status_code == 401
        assert response.json()["type"] == "authentication_error"
        assert isinstance(response.json()["error"], dict)


@pytest.mark.parametrize("containment", ["paused", "killed"])
def test_contained_agent_gets_403(
    gateway: Any, fake: FakeUpstream, redis_client: redis.Redis, containment: str
) -> None:
    key = f"{API_KEY}-contained-{containment}"
    agent = agent_id(agent_hash(key))
    config = AgentConfig(containment=containment)  # type: ignore[arg-type]
    redis_client.hset(cfg_key(gateway.prefix, agent), "b", msgspec.msgpack.encode(config))
    before = len(fake.responses)
    response = post_message(gateway, key)
    assert response.status_code == 403
    assert response.json() == {
        "error": {"type": "containment_error", "message": "Agent contained"},
        "type": "containment_error",
        "message": "Agent contained",
        "reason": f"agent_{containment}",
    }
    assert response.headers["x-smoltbot-agent"] == agent
    assert len(fake.responses) == before

    redis_client.hset(cfg_key(gateway.prefix, agent), "b", msgspec.msgpack.encode(AgentConfig()))
    # Configs are cached briefly: a change reaches every call within a second (ttl + grace).
    changed_at = time.monotonic()
    while post_message(gateway, key).status_code != 200:
        assert time.monotonic() - changed_at < 1.5, "containment change not seen within 1 s"
        time.sleep(0.05)


def test_stream_is_relayed_incrementally(gateway: Any) -> None:
    headers = {"x-api-key": API_KEY, "accept-encoding": "gzip", "x-fake-chunk-delay-ms": "60"}
    started = time.perf_counter()
    with (
        httpx.Client(timeout=20) as client,
        client.stream(
            "POST", f"{gateway.anthropic_url}/v1/messages", json=body(True), headers=headers
        ) as response,
    ):
        chunks = response.iter_raw()
        next(chunks)
        first_at = time.perf_counter() - started
        for _ in chunks:
            pass
        total = time.perf_counter() - started
    # About 20 events 60 ms apart: the first must arrive long before the last.
    assert total > 0.9
    assert first_at < total / 3


def test_client_disconnect_mid_stream_still_emits_the_exchange(
    gateway: Any, redis_client: redis.Redis, fake: FakeUpstream
) -> None:
    headers = {"x-api-key": API_KEY, "accept-encoding": "identity", "x-fake-chunk-delay-ms": "100"}
    with httpx.Client(timeout=20) as client:
        with client.stream(
            "POST", f"{gateway.anthropic_url}/v1/messages", json=body(True), headers=headers
        ) as response:
            first = next(response.iter_raw())
            event_id = response.headers["x-smoltbot-event-id"]
        # leaving the block closes the connection while the upstream is still sending
    exchange = wait_for_event(redis_client, gateway.prefix, EXCHANGES, event_id, timeout_s=10)
    assert isinstance(exchange, ExchangeV1)
    assert exchange.meta.streamed
    assert exchange.response_body.startswith(first)
    assert b"message_stop" not in exchange.response_body
    assert exchange.meta.status == 499  # what the client got, not the upstream's 200
    assert exchange.response_truncated
    # The gateway hung up on the upstream too: the fake never finished its answer.
    upstream = next(r for r in fake.responses if r.request_header("x-fake-chunk-delay-ms") == "100")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and upstream.complete:
        time.sleep(0.05)
    assert not upstream.complete


def test_agent_event_on_first_sight(gateway: Any, redis_client: redis.Redis) -> None:
    key = f"{API_KEY}-first-sight"
    for _ in range(2):
        post_message(gateway, key).raise_for_status()
    agent = agent_id(agent_hash(key))
    deadline = time.monotonic() + 5
    events: list[AgentV1] = []
    while time.monotonic() < deadline and not events:
        events = [
            e
            for e in (
                msgspec.msgpack.decode(f[b"b"], type=AgentV1)
                for f in stream_entries(redis_client, gateway.prefix, AGENTS)
            )
            if e.agent_id == agent
        ]
        time.sleep(0.02)
    assert len(events) == 1  # once per process, not per call
    assert events[0].agent_hash == agent_hash(key)


def test_metrics_are_exported_without_agent_labels(gateway: Any) -> None:
    post_message(gateway).raise_for_status()
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'gateway_requests_total{provider="anthropic",status="200"}' in text
    assert (
        'gateway_overhead_seconds_bucket{le="5e-05",provider="anthropic",streamed="false"}' in text
    )
    assert "gateway_request_duration_seconds_count" in text
    assert "smolt-" not in text


def test_client_without_accept_encoding_gets_no_gzip(gateway: Any, fake: FakeUpstream) -> None:
    """The upstream client must not invent an Accept-Encoding the agent never sent."""
    host, port = gateway.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        payload_out = msgspec.json.encode(body(False))
        conn.putrequest("POST", "/anthropic/v1/messages", skip_accept_encoding=True)
        for name, value in (
            ("x-api-key", API_KEY),
            ("content-type", "application/json"),
            ("content-length", str(len(payload_out))),
        ):
            conn.putheader(name, value)
        conn.endheaders(payload_out)
        response = conn.getresponse()
        payload = response.read()
        request_id = response.getheader("request-id")
    finally:
        conn.close()
    assert response.status == 200
    assert response.getheader("content-encoding") is None
    assert msgspec.json.decode(payload)["type"] == "message"
    assert request_id is not None
    record = fake.responses[int(request_id.removeprefix("req_fake"))]
    sent = {k.lower() for k, _ in record.request_headers}
    assert "accept-encoding" not in sent
    assert "user-agent" not in sent


def test_client_gone_before_headers_cancels_the_upstream_call(
    gateway: Any, redis_client: redis.Redis, fake: FakeUpstream
) -> None:
    """A non-streamed call sends nothing until the model finishes: a client that gives up
    meanwhile must not keep the (paid) upstream call running, and is recorded as a 499."""
    before = len(fake.responses)
    headers = {"x-api-key": API_KEY, "x-fake-delay-ms": "3000", "x-e2e": "gone-early"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway.anthropic_url}/v1/messages",
            json=body(False),
            headers=headers,
            timeout=httpx.Timeout(5, read=0.3),
        )
    started = time.monotonic()
    exchange: ExchangeV1 | None = None
    while time.monotonic() - started < 10 and exchange is None:
        for fields in stream_entries(redis_client, gateway.prefix, EXCHANGES):
            event = msgspec.msgpack.decode(fields[b"b"], type=ExchangeV1)
            if event.meta.status == 499 and event.meta.total_ms < 2500:
                exchange = event
        time.sleep(0.05)
    assert exchange is not None, "no 499 exchange recorded within the upstream's delay"
    record = fake.responses[before]
    assert record.request_header("x-e2e") == "gone-early"
    assert not record.complete  # the upstream connection was closed before it answered


def test_oversized_request_body_is_413(gateway: Any, fake: FakeUpstream) -> None:
    before = len(fake.responses)
    huge = {"model": "m", "messages": [{"role": "user", "content": "x" * (33 * 1024 * 1024)}]}
    response = httpx.post(
        f"{gateway.anthropic_url}/v1/messages",
        json=huge,
        headers={"x-api-key": API_KEY},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["type"] == "request_too_large"
    assert len(fake.responses) == before  # nothing went upstream


def test_zz_keys_never_reach_logs_or_events(gateway: Any, redis_client: redis.Redis) -> None:
    """Runs last in this module: everything above has produced logs and events by now."""
    log = gateway.log_path.read_bytes()
    assert b"gateway started" in log  # the log is really being written
    assert API_KEY.encode() not in log
    assert b"query-secret" not in log
    assert b"mnm-billing-secret" not in log
    for stream in (EXCHANGES, AGENTS):
        for fields in stream_entries(redis_client, gateway.prefix, stream):
            assert API_KEY.encode() not in fields[b"b"]
            assert b"query-secret" not in fields[b"b"]
