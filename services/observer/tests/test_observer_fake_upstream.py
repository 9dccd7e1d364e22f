"""The parser against the team's fake Anthropic upstream (the e2e tests' provider), JSON and SSE."""

from __future__ import annotations

import gzip

import msgspec
import pytest
from smoltbot_observer.parsing import parse_response
from smoltbot_testing.fake_upstream import anthropic as fake

REQUEST = {
    "model": "claude-test-1",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Plan a refactor, then use the tool — ünïcödé 🎉."}],
    "tools": [{"name": "read_file", "input_schema": {"type": "object"}}],
}


@pytest.mark.parametrize("encoding", [None, "gzip"])
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
def test_fake_upstream_reply_round_trips(streamed: bool, encoding: str | None) -> None:
    raw = msgspec.json.encode(REQUEST)
    reply = fake.build_reply(raw, REQUEST)
    if streamed:
        body = b"".join(fake.sse_frame(name, data) for name, data in fake.sse_events(reply))
    else:
        body = msgspec.json.encode(fake.message_json(reply))
    if encoding == "gzip":
        body = gzip.compress(body)
    parsed = parse_response(
        "anthropic",
        body,
        content_encoding=encoding,
        content_type="text/event-stream" if streamed else "application/json",
    )
    assert parsed.issues == ()
    assert parsed.thinking == reply.thinking
    assert parsed.text == reply.text
    assert reply.tool is not None
    assert [(c.name, c.input) for c in parsed.tool_calls] == [
        (reply.tool["name"], reply.tool["input"])
    ]
    assert (parsed.model, parsed.input_tokens, parsed.output_tokens) == (
        reply.model,
        reply.input_tokens,
        reply.output_tokens,
    )
