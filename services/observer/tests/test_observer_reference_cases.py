"""The reference gateway's own SSE-parser test cases (gateway.md §11), one per case, run
through the observer's parser for each provider."""

from __future__ import annotations

import msgspec
from smoltbot_observer.parsing import decode_body, parse_response

from services.observer.tests.observer_fixtures import sse


def data(*payloads: object) -> bytes:
    """An SSE body of ``data:`` lines only (OpenAI and Gemini send no ``event:`` lines)."""
    lines = [
        f"data: {p if isinstance(p, str) else msgspec.json.encode(p).decode()}\n\n"
        for p in payloads
    ]
    return "".join(lines).encode()


def anthropic_delta(index: int, kind: str, key: str, value: str) -> dict[str, object]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}}


def anthropic_block(index: int, kind: str, **extra: object) -> dict[str, object]:
    return {"type": "content_block_start", "index": index, "content_block": {"type": kind, **extra}}


def test_anthropic_thinking_is_the_concatenated_deltas_across_raw_blocks() -> None:
    body = sse(
        anthropic_block(0, "thinking"),
        anthropic_delta(0, "thinking_delta", "thinking", "Let me "),
        anthropic_delta(0, "thinking_delta", "thinking", "think."),
        anthropic_block(1, "text"),
        anthropic_delta(1, "text_delta", "text", "Answer"),
        {"type": "message_stop"},
    )
    parsed = parse_response("anthropic", body, content_type="text/event-stream")
    assert parsed.thinking == "Let me think."
    assert parsed.text == "Answer"


def test_anthropic_tool_use_input_is_assembled_from_json_deltas() -> None:
    body = sse(
        anthropic_block(0, "tool_use", id="t", name="get_weather", input={}),
        anthropic_delta(0, "input_json_delta", "partial_json", '{"location": '),
        anthropic_delta(0, "input_json_delta", "partial_json", '"SF"}'),
        {"type": "message_stop"},
    )
    parsed = parse_response("anthropic", body, content_type="text/event-stream")
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("get_weather", {"location": "SF"})]


def test_no_thinking_malformed_lines_and_done_are_skipped() -> None:
    body = sse(
        anthropic_block(0, "text"),
        "data: {not json",
        anthropic_delta(0, "text_delta", "text", "plain"),
        "data: [DONE]",
        {"type": "message_stop"},
    )
    parsed = parse_response("anthropic", body, content_type="text/event-stream")
    assert parsed.thinking is None  # the reference's "empty thinking"
    assert parsed.text == "plain"


def test_openai_reasoning_concatenates_and_a_tool_call_merges_by_index() -> None:
    body = data(
        {"choices": [{"index": 0, "delta": {"reasoning_content": "Think "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "more."}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "function": {"name": "search", "arguments": '{"q":'}}
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"test"}'}}]},
                }
            ]
        },
        "[DONE]",
    )
    parsed = parse_response("openai", body, content_type="text/event-stream")
    assert parsed.thinking == "Think more."
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("search", {"q": "test"})]


def test_openai_plain_content_has_no_thinking() -> None:
    body = data({"choices": [{"index": 0, "delta": {"content": "hi"}}]}, "[DONE]")
    parsed = parse_response("openai", body, content_type="text/event-stream")
    assert parsed.thinking is None
    assert parsed.text == "hi"


def test_gemini_thought_parts_are_thinking_and_a_function_call_is_a_tool() -> None:
    def chunk(*parts: object) -> dict[str, object]:
        return {"candidates": [{"content": {"role": "model", "parts": list(parts)}}]}

    body = data(
        chunk({"text": "Pondering ", "thought": True}),
        chunk({"text": "deeply.", "thought": True}),
        chunk({"text": "Result"}),
        chunk({"functionCall": {"name": "get_data", "args": {"id": "123"}}}),
    )
    parsed = parse_response("gemini", body, content_type="text/event-stream")
    assert parsed.thinking == "Pondering deeply."
    assert parsed.text == "Result"
    assert [(c.name, c.input) for c in parsed.tool_calls] == [("get_data", {"id": "123"})]


def test_stream_reading_joins_chunks_handles_empty_and_split_multibyte() -> None:
    text = (
        "data: "
        + msgspec.json.encode({"choices": [{"delta": {"content": "Hello "}}]}).decode()
        + "\n\ndata: "
        + msgspec.json.encode({"choices": [{"delta": {"content": "World \U0001f600"}}]}).decode()
        + "\n\n"
    )
    raw = text.encode()
    cut = raw.index("\U0001f600".encode()) + 2  # inside the 4-byte emoji
    joined, issues = decode_body(raw[:cut] + raw[cut:], None)
    assert issues == []
    parsed = parse_response("openai", joined, content_type="text/event-stream")
    assert parsed.text == "Hello World \U0001f600"
    assert parse_response("openai", b"", content_type="text/event-stream").text == ""
