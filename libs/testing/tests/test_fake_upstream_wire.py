"""What every fake provider shares on the wire: split UTF-8, gzip, recorded bytes, routing."""

from __future__ import annotations

import base64
import itertools
import json
import time
import zlib
from typing import Any

import httpx
import pytest
from smoltbot_testing import FakeUpstream
from smoltbot_testing.fake_upstream import gemini, message_request
from smoltbot_testing.fake_upstream import openai as fake_openai
from smoltbot_testing.net import decoded_body

PROVIDERS = ["anthropic", "openai", "gemini"]
QUERY = "café ñandú 🎉"
KEYS = {
    "anthropic": {"x-api-key": "k"},
    "openai": {"authorization": "Bearer k"},
    "gemini": {"x-goog-api-key": "k"},
}


def call(provider: str, *, stream: bool) -> tuple[str, dict[str, Any]]:
    """(path and query, JSON body) of a request with ``QUERY`` and a tool, for ``provider``."""
    if provider == "anthropic":
        tools = [{"name": "search", "input_schema": {"type": "object"}}]
        return "/v1/messages", message_request(QUERY, stream=stream, tools=tools)
    if provider == "openai":
        tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
        return "/v1/chat/completions", fake_openai.chat_request(QUERY, stream=stream, tools=tools)
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    body = gemini.generate_request(
        QUERY,
        generationConfig={"thinkingConfig": {"includeThoughts": True}},
        tools=[{"functionDeclarations": [{"name": "search"}]}],
    )
    return f"/v1beta/models/gemini-2.5-flash:{action}", body


def streamed_text(provider: str, plain: bytes) -> str:
    """The answer text a streamed body carries (thinking left out), joined from its events."""
    out = []
    for line in plain.decode("utf-8").splitlines():  # strict: any broken character raises
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        data = json.loads(line.removeprefix("data: "))
        if provider == "anthropic" and data["type"] == "content_block_delta":
            out.append(data["delta"].get("text", ""))
        elif provider == "openai" and data["choices"]:
            out.append(data["choices"][0]["delta"].get("content") or "")
        elif provider == "gemini":
            parts = data["candidates"][0]["content"]["parts"]
            out += [p["text"] for p in parts if "text" in p and not p.get("thought")]
    return "".join(out)


def cuts_inside_a_character(pieces: list[bytes]) -> list[int]:
    """Offsets where one piece ends and the next starts with a UTF-8 continuation byte."""
    joined = b"".join(pieces)
    offsets = list(itertools.accumulate(len(p) for p in pieces))[:-1]
    return [at for at in offsets if 0x80 <= joined[at] < 0xC0]


async def receive(
    fake: FakeUpstream, provider: str, *, stream: bool, encoding: str, **headers: str
) -> tuple[list[bytes], httpx.Headers]:
    path, body = call(provider, stream=stream)
    async with (
        httpx.AsyncClient(base_url=fake.url) as client,
        client.stream(
            "POST",
            path,
            json=body,
            headers={**KEYS[provider], "accept-encoding": encoding, **headers},
        ) as response,
    ):
        assert response.status_code == 200
        return [chunk async for chunk in response.aiter_raw()], response.headers


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_multibyte_character_straddles_two_network_chunks(
    fake: FakeUpstream, provider: str
) -> None:
    chunks, _ = await receive(fake, provider, stream=True, encoding="identity")
    assert cuts_inside_a_character(chunks)  # the client saw a character cut in two
    record = fake.responses[-1]
    assert b"".join(chunks) == record.raw
    # The fake's writes arrive as separate chunks (chunked framing never merges them).
    sent_cuts = set(itertools.accumulate(record.write_sizes))
    received_cuts = set(itertools.accumulate(len(c) for c in chunks))
    assert sent_cuts <= received_cuts
    assert cuts_inside_a_character(record.writes)
    assert streamed_text(provider, b"".join(chunks)) == f"Echo: {QUERY}"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_gzip_stream_still_splits_a_character_between_decompressed_pieces(
    fake: FakeUpstream, provider: str
) -> None:
    chunks, headers = await receive(fake, provider, stream=True, encoding="gzip")
    assert headers["content-encoding"] == "gzip"
    decoder = zlib.decompressobj(31)
    plain = [piece for piece in (decoder.decompress(c) for c in chunks) if piece]
    assert cuts_inside_a_character(plain)
    assert b"".join(plain) == fake.responses[-1].decoded
    assert streamed_text(provider, b"".join(plain)) == f"Echo: {QUERY}"


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_raw_bytes_received_equal_recorded_bytes(
    fake: FakeUpstream, provider: str, stream: bool, encoding: str
) -> None:
    chunks, headers = await receive(fake, provider, stream=stream, encoding=encoding)
    record = fake.responses[-1]
    assert record.complete
    assert record.status == 200
    assert b"".join(chunks) == record.raw
    assert sum(record.write_sizes) == len(record.raw)
    plain = decoded_body(record.raw, headers, encoding)
    assert plain == record.decoded
    assert "🎉".encode() in plain  # raw UTF-8 on the wire, not \u escapes
    is_sse = headers["content-type"].startswith("text/event-stream")
    assert is_sse is stream
    sent = json.loads(record.request_body)
    assert sent == call(provider, stream=stream)[1]
    assert record.request_header("accept-encoding") == encoding


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_chunk_delay_spaces_the_stream_out(fake: FakeUpstream, provider: str) -> None:
    path, body = call(provider, stream=True)
    headers = {**KEYS[provider], "x-fake-chunk-delay-ms": "40"}
    async with (
        httpx.AsyncClient(base_url=fake.url) as client,
        client.stream("POST", path, json=body, headers=headers) as response,
    ):
        started = time.perf_counter()
        chunks = response.aiter_raw()
        await anext(chunks)
        assert not fake.responses[-1].complete  # the server is still sending
        rest = [chunk async for chunk in chunks]
    assert time.perf_counter() - started > 0.2
    assert len(rest) > 5


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_delay_and_forced_status_knobs(fake: FakeUpstream, provider: str) -> None:
    path, body = call(provider, stream=True)
    headers = {**KEYS[provider], "x-fake-delay-ms": "200", "x-fake-status": "503"}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post(path, json=body, headers=headers)
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 503
    error = response.json()["error"]
    assert "Forced error" in error["message"]
    assert fake.responses[-1].status == 503


@pytest.mark.parametrize(
    "raw",
    [
        b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',  # not UTF-8
        b'{"a":' * 2000 + b"1" + b"}" * 2000,  # nested past the decoder's limit
        b"[" * 5000 + b"]" * 5000,
        b"{not json",
        b"[]",
    ],
    ids=["not-utf8", "deep-object", "deep-array", "malformed", "not-an-object"],
)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_body_that_is_not_a_json_object_is_a_400_in_the_provider_shape(
    fake: FakeUpstream, provider: str, raw: bytes
) -> None:
    path, _ = call(provider, stream=False)
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post(path, content=raw, headers=KEYS[provider])
    assert response.status_code == 400
    assert "error" in response.json()
    assert fake.responses[-1].request_body == raw


@pytest.mark.parametrize(
    ("headers", "status", "first_model"),
    [
        ({"anthropic-version": "2023-06-01", "authorization": "Bearer k"}, 200, "claude-"),
        ({"x-api-key": "k"}, 200, "claude-"),
        ({"authorization": "Bearer k"}, 200, "gpt-5"),
        ({"x-goog-api-key": "k"}, 200, "models/gemini-"),
        ({}, 401, None),  # Anthropic's by default, and no key
    ],
)
async def test_root_models_route_goes_to_the_provider_the_request_looks_like(
    fake: FakeUpstream, headers: dict[str, str], status: int, first_model: str | None
) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.get("/v1/models", headers=headers)
    assert response.status_code == status
    listed = response.json()
    if first_model is None:
        assert listed["error"]["type"] == "authentication_error"
        return
    first = listed["models"][0]["name"] if "models" in listed else listed["data"][0]["id"]
    assert first.startswith(first_model)


@pytest.mark.parametrize(
    ("path", "headers", "shape"),
    [
        ("/v1/complete", {"x-api-key": "k"}, {"type": "error"}),
        ("/openai/v1/responses", {}, {}),
        ("/gemini/v1beta/models/m:countTokens", {}, {}),
    ],
)
async def test_unknown_routes_are_recorded_and_answered_404_in_the_provider_shape(
    fake: FakeUpstream, path: str, headers: dict[str, str], shape: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post(path, content=b"{}", headers=headers)
    assert response.status_code == 404
    body = response.json()
    assert shape.items() <= body.items()
    assert "serves no POST" in body["error"]["message"]
    if path.startswith("/gemini"):
        assert body["error"]["status"] == "NOT_FOUND"
    if path.startswith("/openai"):
        assert body["error"]["type"] == "invalid_request_error"
    [record] = fake.responses
    assert (record.method, record.path, record.status) == ("POST", path, 404)
    assert record.request_body == b"{}"


async def test_inspection_endpoint_lists_every_provider_with_write_sizes(
    fake: FakeUpstream,
) -> None:
    for provider in PROVIDERS:
        await receive(fake, provider, stream=True, encoding="identity")
    async with httpx.AsyncClient(base_url=fake.url) as client:
        rows = (await client.get("/__fake__/responses")).json()
    assert [row["path"] for row in rows] == [
        call(p, stream=True)[0].split("?")[0] for p in PROVIDERS
    ]
    assert rows[2]["query"] == "alt=sse"
    for row, record in zip(rows, fake.responses, strict=True):
        assert base64.b64decode(row["raw_b64"]) == record.raw
        assert row["write_sizes"] == record.write_sizes
        assert len(row["write_sizes"]) > 3
