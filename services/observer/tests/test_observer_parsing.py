"""Provider parsing: protocols.md §7.2 fixtures, encodings, truncation and malformed input."""

from __future__ import annotations

import gzip
import random
import zlib

import msgspec
import pytest
from smoltbot_observer.parsing import THINKING_SEPARATOR, decode_body, parse_response
from smoltbot_observer.parsing import decoding as decoding_module

from services.observer.tests.observer_fixtures import anthropic_json, sse

LONG_THINKING = (
    "The user is asking me to refactor the authentication module to use JWT tokens. "
    "Let me think about the current structure: sessions are stored server-side and "
    "validated on each request. Moving to JWT means stateless validation, so I need to "
    "consider token expiry, refresh tokens and revocation. I should keep the public "
    "interface the same so callers do not change, add a signing key setting, and write "
    "tests for expired and tampered tokens before touching the middleware itself. Done."
)


def anthropic(body: bytes, **kwargs: object) -> object:
    return parse_response("anthropic", body, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Anthropic JSON


def test_json_single_thinking_block_is_native_thinking() -> None:
    assert 400 < len(LONG_THINKING) < 520
    body = anthropic_json(
        {"type": "thinking", "thinking": LONG_THINKING, "signature": "sig"},
        {"type": "text", "text": "Here is the plan."},
    )
    parsed = parse_response("anthropic", body, content_type="application/json")
    assert parsed.format == "json"
    assert parsed.thinking == LONG_THINKING
    assert parsed.thinking_confidence == 1.0
    assert parsed.model == "claude-sonnet-4-5-20250514"
    assert parsed.text == "Here is the plan."
    assert (parsed.input_tokens, parsed.output_tokens) == (42, 17)
    assert parsed.issues == ()


def test_json_text_only_has_no_thinking() -> None:
    parsed = parse_response("anthropic", anthropic_json({"type": "text", "text": "Hello"}))
    assert parsed.thinking is None
    assert parsed.thinking_confidence == 0.0
    assert parsed.text == "Hello"
    assert parsed.has_content


def test_json_thinking_blocks_joined_with_separator_text_with_blank_line() -> None:
    body = anthropic_json(
        {"type": "thinking", "thinking": "First, let me understand the problem."},
        {"type": "text", "text": "Part one."},
        {"type": "thinking", "thinking": "Now let me evaluate the second approach."},
        {"type": "text", "text": "Part two."},
    )
    parsed = parse_response("anthropic", body)
    assert parsed.thinking == (
        "First, let me understand the problem.\n\n---\n\nNow let me evaluate the second approach."
    )
    assert parsed.text == "Part one.\n\nPart two."


def test_json_tool_use_and_redacted_thinking() -> None:
    body = anthropic_json(
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"location": "SF"}},
        {"type": "tool_use", "id": "t2", "name": "search", "input": "not-an-object"},
        {"type": "tool_use", "id": "t3", "input": {"nameless": True}},
    )
    parsed = parse_response("anthropic", body)
    assert parsed.thinking is None
    assert [(c.name, c.input) for c in parsed.tool_calls] == [
        ("get_weather", {"location": "SF"}),
        ("search", {}),
    ]


def test_json_error_body_yields_error_and_no_content() -> None:
    body = msgspec.json.encode(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    parsed = parse_response("anthropic", body)
    assert parsed.error == "Overloaded"
    assert not parsed.has_content


@pytest.mark.parametrize(
    "body",
    [b"[1, 2, 3]", b'"just a string"', b"null"],
)
def test_json_that_is_not_an_object_is_unexpected(body: bytes) -> None:
    parsed = parse_response("anthropic", body)
    assert parsed.format == "unparsable"
    assert "unexpected_json" in parsed.issues


def test_json_with_wrong_field_types_does_not_crash() -> None:
    body = msgspec.json.encode(
        {"content": [None, 3, {"type": "text", "text": 5}], "usage": {"input_tokens": "x"}}
    )
    parsed = parse_response("anthropic", body)
    assert parsed.text == ""
    assert parsed.input_tokens is None


# --------------------------------------------------------------------------- Anthropic SSE


def _stream(*middle: dict[str, object], stop: bool = True) -> list[dict[str, object]]:
    events: list[dict[str, object]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "model": "claude-sonnet-4-5-20250514",
                "usage": {"input_tokens": 25, "output_tokens": 1},
            },
        },
        *middle,
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 77},
        },
    ]
    if stop:
        events.append({"type": "message_stop"})
    return events


def _block(index: int, kind: str, **extra: object) -> dict[str, object]:
    return {"type": "content_block_start", "index": index, "content_block": {"type": kind, **extra}}


def _delta(index: int, kind: str, key: str, value: str) -> dict[str, object]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}}


def test_sse_thinking_deltas_concatenate() -> None:
    body = sse(
        *_stream(
            _block(0, "thinking", thinking=""),
            _delta(0, "thinking_delta", "thinking", "Let me "),
            _delta(0, "thinking_delta", "thinking", "analyze this."),
            {"type": "content_block_stop", "index": 0},
        )
    )
    parsed = parse_response("anthropic", body, content_type="text/event-stream; charset=utf-8")
    assert parsed.format == "sse"
    assert parsed.thinking == "Let me analyze this."
    assert parsed.thinking_confidence == 1.0
    assert parsed.model == "claude-sonnet-4-5-20250514"
    assert (parsed.input_tokens, parsed.output_tokens) == (25, 77)
    assert parsed.issues == ()


def _gateway_stream() -> bytes:
    """The gateway parser fixture: thinking, text, a streamed tool call and junk lines."""
    return sse(
        *_stream(
            _block(0, "thinking", thinking=""),
            _delta(0, "thinking_delta", "thinking", "I should analyze this carefully. "),
            "data: {not json",
            _delta(0, "thinking_delta", "thinking", "Let me consider the implications."),
            _block(1, "text", text=""),
            _delta(1, "text_delta", "text", "Here is my "),
            _delta(1, "text_delta", "text", "response."),
            _delta(7, "text_delta", "text", "delta for an unknown block"),
            _block(2, "tool_use", id="tu_1", name="get_weather", input={}),
            _delta(2, "input_json_delta", "partial_json", '{"location": '),
            _delta(2, "input_json_delta", "partial_json", '"SF"}'),
            ": keep-alive comment",
            "data: [DONE]",
        )
    )


def test_sse_gateway_fixture_blocks_text_tools_and_junk() -> None:
    parsed = parse_response("anthropic", _gateway_stream(), content_type="text/event-stream")
    assert parsed.thinking == "I should analyze this carefully. Let me consider the implications."
    assert parsed.text == "Here is my response."
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("get_weather", {"location": "SF"})]


def test_sse_detected_without_content_type_and_with_crlf_and_no_space() -> None:
    body = _gateway_stream().replace(b"\n", b"\r\n").replace(b"data: ", b"data:")
    parsed = parse_response("anthropic", body, content_type=None)
    assert parsed.format == "sse"
    assert parsed.text == "Here is my response."


def test_sse_body_with_json_content_type_falls_back_to_sse() -> None:
    body = b"\n\n" + _gateway_stream()  # leading blank lines: looks like neither at first glance
    parsed = parse_response("anthropic", body, content_type="application/json")
    assert parsed.format == "sse"
    assert parsed.tool_calls[0].name == "get_weather"


def test_sse_bad_tool_json_becomes_empty_object() -> None:
    body = sse(
        *_stream(
            _block(0, "tool_use", name="run", input={}),
            _delta(0, "input_json_delta", "partial_json", '{"cmd": "ls'),
        )
    )
    parsed = parse_response("anthropic", body)
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("run", {})]


def test_sse_tool_without_deltas_keeps_start_input() -> None:
    body = sse(*_stream(_block(0, "tool_use", name="noop", input={"a": 1})))
    assert parse_response("anthropic", body).tool_calls[0].input == {"a": 1}


def test_sse_error_event() -> None:
    body = sse(
        *_stream(stop=False),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    parsed = parse_response("anthropic", body)
    assert parsed.error == "Overloaded"
    assert "stream_incomplete" not in parsed.issues


def test_sse_multibyte_text_and_line_separator_survive() -> None:
    text = "héllo 日本語 🎉 a\u2028b"
    body = sse(*_stream(_block(0, "text", text=""), _delta(0, "text_delta", "text", text)))
    raw_body = body.replace(b"\\u2028", "\u2028".encode())  # as a server may send it: raw U+2028
    assert "\u2028".encode() in raw_body
    assert parse_response("anthropic", raw_body).text == text


def test_sse_split_mid_utf8_across_gzip_pieces() -> None:
    """Multi-byte characters straddle every internal chunk boundary; none may be mangled."""
    rnd = random.Random(7)
    alphabet = "é日本語🎉🌞ß∑"
    pieces = ["".join(rnd.choice(alphabet) for _ in range(80)) for _ in range(60)]
    body = sse(
        *_stream(
            _block(0, "text", text=""),
            *(_delta(0, "text_delta", "text", piece) for piece in pieces),
        )
    )
    compressed = gzip.compress(body)
    assert len(compressed) > 3 * decoding_module._CHUNK
    parsed = parse_response("anthropic", compressed, content_encoding="gzip")
    assert parsed.text == "".join(pieces)
    assert "\ufffd" not in parsed.text


def test_sse_truncated_at_capture_cap_mid_character_keeps_earlier_blocks() -> None:
    body = sse(
        *_stream(
            _block(0, "thinking", thinking=""),
            _delta(0, "thinking_delta", "thinking", "Plan: check the weather."),
            _block(1, "text", text=""),
            _delta(1, "text_delta", "text", "Sunny 🌞 today"),
            _delta(1, "text_delta", "text", " and warm"),
        )
    )
    cut = body.index("🌞".encode()) + 2  # inside the 4-byte emoji of the second-to-last delta
    parsed = parse_response("anthropic", body[:cut], truncated=True)
    assert parsed.thinking == "Plan: check the weather."
    assert parsed.model == "claude-sonnet-4-5-20250514"
    assert parsed.text == ""  # the cut event is incomplete JSON and is skipped
    assert "response_truncated" in parsed.issues
    assert "stream_incomplete" in parsed.issues


# --------------------------------------------------------------------------- encodings


def test_gzip_json() -> None:
    body = anthropic_json({"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "ok"})
    parsed = parse_response("anthropic", gzip.compress(body), content_encoding="gzip")
    assert (parsed.thinking, parsed.text, parsed.issues) == ("hmm", "ok", ())


def test_gzip_multi_member() -> None:
    body = _gateway_stream()
    half = len(body) // 2
    compressed = gzip.compress(body[:half]) + gzip.compress(body[half:])
    data, issues = decode_body(compressed, "gzip")
    assert (data, issues) == (body, [])


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_wrapped_and_raw(wbits: int) -> None:
    body = anthropic_json({"type": "text", "text": "deflated"})
    compressor = zlib.compressobj(wbits=wbits)
    compressed = compressor.compress(body) + compressor.flush()
    parsed = parse_response("anthropic", compressed, content_encoding="Deflate")
    assert parsed.text == "deflated"
    assert parsed.issues == ()


def test_gzip_truncated_stream_yields_prefix() -> None:
    body = sse(
        *_stream(
            _block(0, "thinking", thinking=""),
            *(_delta(0, "thinking_delta", "thinking", f"step {i}. ") for i in range(400)),
        )
    )
    compressed = gzip.compress(body)
    parsed = parse_response(
        "anthropic", compressed[: len(compressed) // 2], content_encoding="gzip", truncated=True
    )
    assert parsed.thinking is not None
    assert parsed.thinking.startswith("step 0. step 1. ")
    assert "gzip_truncated" in parsed.issues
    assert "response_truncated" in parsed.issues


def test_gzip_corrupt_mid_stream_keeps_what_decoded_before() -> None:
    rng_text = "".join(
        chr(0x4E00 + (i * 7919) % 20000) for i in range(20000)
    )  # poorly compressible
    body = sse(
        *_stream(
            _block(0, "text", text=""),
            *(_delta(0, "text_delta", "text", rng_text[i : i + 500]) for i in range(0, 20000, 500)),
        )
    )
    compressed = bytearray(gzip.compress(body))
    middle = len(compressed) * 3 // 4
    compressed[middle : middle + 64] = bytes(64)  # a run of zeros: invalid deflate data
    parsed = parse_response("anthropic", bytes(compressed), content_encoding="gzip")
    assert "gzip_corrupt" in parsed.issues or "gzip_truncated" in parsed.issues
    assert parsed.text  # the deltas before the damage were recovered
    assert rng_text.startswith(parsed.text[:1000])


def test_garbage_with_gzip_encoding_does_not_crash() -> None:
    parsed = parse_response("anthropic", b"this is not gzip at all", content_encoding="gzip")
    assert parsed.format == "empty"
    assert parsed.issues == ("gzip_corrupt",)


def test_decompression_output_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding_module, "MAX_DECODED_BYTES", 10_000)
    data, issues = decode_body(gzip.compress(b"a" * 1_000_000), "gzip")
    assert issues == ["gzip_too_large"]
    assert len(data) == 10_000


def test_unsupported_encoding_is_reported_not_guessed() -> None:
    parsed = parse_response("anthropic", b"\x8b\x05\x80binary", content_encoding="br")
    assert "unsupported_encoding:br" in parsed.issues
    assert not parsed.has_content


def test_stacked_encodings_undone_in_reverse() -> None:
    body = anthropic_json({"type": "text", "text": "twice"})
    deflater = zlib.compressobj()
    stacked = gzip.compress(deflater.compress(body) + deflater.flush())
    assert parse_response("anthropic", stacked, content_encoding="deflate, gzip").text == "twice"


@pytest.mark.parametrize("encoding", [None, "", "identity"])
def test_identity(encoding: str | None) -> None:
    assert parse_response("anthropic", b'{"content": "flat"}', content_encoding=encoding).text == (
        "flat"
    )


# --------------------------------------------------------------------------- malformed / empty


@pytest.mark.parametrize("body", [b"", b"   \n", gzip.compress(b"")])
def test_empty_bodies(body: bytes) -> None:
    parsed = parse_response(
        "anthropic", body, content_encoding="gzip" if body[:1] == b"\x1f" else None
    )
    assert parsed.format == "empty"
    assert not parsed.has_content


def test_truncated_json_is_unparsable_not_a_crash() -> None:
    body = anthropic_json({"type": "thinking", "thinking": "x" * 100})
    parsed = parse_response("anthropic", body[:40], truncated=True)
    assert parsed.format == "unparsable"
    assert set(parsed.issues) == {"response_truncated", "unparsable_body"}


def test_random_bytes_never_raise() -> None:
    rnd = random.Random(1234)
    for _ in range(300):
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
        for provider in ("anthropic", "openai", "gemini"):
            for encoding in (None, "gzip", "deflate"):
                parse_response(provider, body, content_encoding=encoding)


def test_unknown_provider_falls_back_to_anthropic() -> None:
    parsed = parse_response("mistral", anthropic_json({"type": "text", "text": "hi"}))
    assert parsed.text == "hi"
    assert "unknown_provider:mistral" in parsed.issues


def test_separator_constant() -> None:
    assert THINKING_SEPARATOR == "\n\n---\n\n"


# --------------------------------------------------------------------------- OpenAI


def test_openai_json_reasoning_content_and_tools() -> None:
    body = msgspec.json.encode(
        {
            "model": "deepseek-r1",
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "Answer",
                        "reasoning_content": "Let me think.",
                        "tool_calls": [
                            {"function": {"name": "lookup", "arguments": '{"id": 3}'}},
                            {"function": {"name": "broken", "arguments": "{oops"}},
                        ],
                    }
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        }
    )
    parsed = parse_response("openai", body)
    assert parsed.thinking == "Let me think."
    assert parsed.thinking_confidence == 0.9
    assert parsed.text == "Answer"
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("lookup", {"id": 3}), ("broken", {})]
    assert (parsed.model, parsed.input_tokens, parsed.output_tokens) == ("deepseek-r1", 10, 5)


def test_openai_json_without_reasoning() -> None:
    body = msgspec.json.encode({"choices": [{"message": {"content": "Hi"}}]})
    parsed = parse_response("openai", body)
    assert parsed.thinking is None
    assert parsed.text == "Hi"


def test_openai_error_body() -> None:
    body = msgspec.json.encode({"error": {"message": "Rate limited", "type": "rate_limit"}})
    assert parse_response("openai", body).error == "Rate limited"


def test_openai_sse_reasoning_and_streamed_tool_calls() -> None:
    def chunk(delta: dict[str, object], **extra: object) -> str:
        payload = {"model": "gpt-oss", "choices": [{"index": 0, "delta": delta, **extra}]}
        return "data: " + msgspec.json.encode(payload).decode() + "\n"

    body = "".join(
        [
            chunk({"reasoning_content": "Let me "}),
            chunk({"reasoning_content": "think about "}),
            chunk({"reasoning_content": "this carefully."}),
            chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '{"a"'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),  # no name
            chunk({"content": "Done"}, finish_reason="tool_calls"),
            'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}\n',
            "data: [DONE]\n",
        ]
    ).encode()
    parsed = parse_response("openai", body, content_type="text/event-stream")
    assert parsed.thinking == "Let me think about this carefully."
    assert parsed.model == "gpt-oss"
    assert parsed.text == "Done"
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("f", {"a": 1})]
    assert (parsed.input_tokens, parsed.output_tokens) == (9, 4)
    assert parsed.issues == ()


# --------------------------------------------------------------------------- Gemini


def _gemini(parts: list[dict[str, object]], **extra: object) -> dict[str, object]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, **extra}],
        "modelVersion": "gemini-2.5-pro",
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 8,
            "thoughtsTokenCount": 30,
        },
    }


def test_gemini_json_thought_text_and_function_call() -> None:
    body = msgspec.json.encode(
        _gemini(
            [
                {"text": "Let me consider this carefully.", "thought": True},
                {"text": "Answer"},
                {"functionCall": {"name": "find", "args": {"q": "x"}}},
            ]
        )
    )
    parsed = parse_response("gemini", body)
    assert parsed.thinking == "Let me consider this carefully."
    assert parsed.model == "gemini-2.5-pro"
    assert parsed.text == "Answer"
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("find", {"q": "x"})]
    assert (parsed.input_tokens, parsed.output_tokens) == (12, 38)


def test_gemini_json_without_thought() -> None:
    parsed = parse_response("gemini", msgspec.json.encode(_gemini([{"text": "plain"}])))
    assert parsed.thinking is None


def test_gemini_sse_and_json_array() -> None:
    chunks = [
        _gemini([{"text": "Let me ", "thought": True}]),
        _gemini([{"text": "think.", "thought": True}]),
        _gemini([{"text": "Result"}], finishReason="STOP"),
    ]
    body = "".join("data: " + msgspec.json.encode(c).decode() + "\r\n\r\n" for c in chunks)
    for parsed in (
        parse_response("gemini", body.encode(), content_type="text/event-stream"),
        parse_response("gemini", msgspec.json.encode(chunks)),
    ):
        assert parsed.thinking == "Let me think."
        assert parsed.text == "Result"
        assert parsed.issues == ()


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 3000 + b"1" + b"}" * 3000,  # nested past the decoder's limit
        b'{"content": "\xff\xfe"}',  # not UTF-8
        b"data: " + b"[" * 3000 + b"]" * 3000 + b"\n\n",  # an SSE payload nested too deep
    ],
)
@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_bodies_no_decoder_can_read_are_an_issue_not_a_crash(body: bytes, provider: str) -> None:
    parsed = parse_response(provider, body, content_type="application/json")
    assert not parsed.has_content
    assert parsed.format in ("unparsable", "sse")
