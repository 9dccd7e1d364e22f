"""Pure logic: identity, header hygiene, body inspection, paths, settings."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import msgspec
import pytest
from smoltbot_config import SettingsError, load_settings
from smoltbot_gateway.body import extract_user_query, inspect_body, prepare_upstream_body
from smoltbot_gateway.headers import client_response_headers, upstream_request_headers
from smoltbot_gateway.identity import identify
from smoltbot_gateway.providers import WIRES, key_sources
from smoltbot_gateway.routing import match_target
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_testing.procs import run_entrypoint


def test_identity_matches_reference_vectors() -> None:
    at = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    ident = identify("test-api-key", at)
    assert ident.agent_hash == "4c806362b613f749"
    assert ident.agent_id == "smolt-4c806362"
    assert ident.session_id == f"4c806362b613f749-{int(at.timestamp() * 1000) // 3_600_000}"
    assert identify("test", at).agent_hash == "9f86d081884c7d65"


def test_session_changes_hourly_not_per_call() -> None:
    a = identify("k", datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)).session_id
    b = identify("k", datetime(2026, 1, 1, 10, 59, 59, tzinfo=UTC)).session_id
    c = identify("k", datetime(2026, 1, 1, 11, 0, 0, tzinfo=UTC)).session_id
    assert a == b != c


@pytest.mark.parametrize(
    ("headers", "provider", "expected"),
    [
        ([(b"x-api-key", b"sk-1")], "anthropic", "sk-1"),
        ([(b"authorization", b"Bearer sk-2")], "anthropic", "sk-2"),
        ([(b"authorization", b"bearer   sk-3 ")], "anthropic", "sk-3"),
        ([(b"x-api-key", b"sk-a"), (b"authorization", b"Bearer sk-b")], "anthropic", "sk-a"),
        ([(b"x-api-key", b"sk-a"), (b"authorization", b"Bearer sk-b")], "openai", "sk-b"),
        ([(b"authorization", b"Basic abc")], "anthropic", None),
        ([(b"authorization", b"Bearer ")], "anthropic", None),
        ([(b"x-api-key", b"  ")], "anthropic", None),
        ([(b"x-goog-api-key", b"g-1"), (b"x-api-key", b"sk")], "gemini", "g-1"),
        ([], "anthropic", None),
    ],
)
def test_extract_key(
    headers: list[tuple[bytes, bytes]], provider: str, expected: str | None
) -> None:
    assert WIRES[provider].key(key_sources(headers, b"")) == expected  # type: ignore[index]


def raw_headers(block: str) -> list[tuple[bytes, bytes]]:
    """``Name: value`` lines (blank ones skipped) as header pairs, bytes as on the wire."""
    pairs = (line.strip().partition(": ") for line in block.splitlines() if line.strip())
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, _, value in pairs]


def test_upstream_request_headers_drop_hop_by_hop_host_length_and_billing_key() -> None:
    dropped = """
        host: gateway:8787
        content-length: 12
        connection: keep-alive, x-custom-hop
        keep-alive: timeout=5
        transfer-encoding: chunked
        te: trailers
        upgrade: h2c
        x-custom-hop: 1
        x-mnemom-api-key: mnm-secret
    """
    kept = """
        x-api-key: sk-1
        anthropic-version: 2023-06-01
        accept-encoding: gzip
        x-multi: a
        x-multi: b
        x-latin: caf\u00e9
    """
    assert upstream_request_headers(raw_headers(dropped + kept)) == [
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers(kept)
    ]


def test_client_response_headers_keep_encoding_drop_framing() -> None:
    headers = raw_headers(
        """
        Content-Type: text/event-stream
        Content-Encoding: gzip
        Content-Length: 99
        Transfer-Encoding: chunked
        Connection: close
        Set-Cookie: a=1
        Set-Cookie: b=2
        request-id: req_1
        """
    )
    assert client_response_headers(headers) == raw_headers(
        """
        content-type: text/event-stream
        content-encoding: gzip
        set-cookie: a=1
        set-cookie: b=2
        request-id: req_1
        """
    )


def test_user_query_is_last_user_text_skipping_tool_results() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x"}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}],
            },
            {"role": "assistant", "content": "ok"},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}],
            },
        ]
    }
    assert extract_user_query(body) == "second\npart"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": "nope"},
        {"messages": [1, None, {"role": "user"}, {"role": "user", "content": 5}]},
        {"messages": [{"role": "user", "content": ""}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
        {"messages": [{"role": "assistant", "content": "only assistant"}]},
    ],
)
def test_user_query_absent_for_odd_shapes(body: dict[str, object]) -> None:
    assert extract_user_query(body) is None


def test_user_query_is_capped_at_500_chars() -> None:
    query = extract_user_query({"messages": [{"role": "user", "content": "x" * 2000}]})
    assert query == "x" * 500


def test_inspect_body_reads_model_stream_and_query() -> None:
    raw = b'{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    info = inspect_body(raw)
    assert (info.model, info.stream, info.user_query) == ("claude-x", True, "hi")
    assert not inspect_body(b'{"stream":"true"}').stream  # only the JSON literal true streams


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1,2]", b'"str"', b"\xff\xfe", b"null"])
def test_inspect_body_tolerates_anything(raw: bytes) -> None:
    info = inspect_body(raw)
    assert not info.is_json_object
    assert info.model is None
    assert info.user_query is None
    assert not info.stream


def test_body_is_forwarded_byte_for_byte() -> None:
    raw = b'{ "z": 1.50,  "a": [ ], "messages": [] }'
    assert prepare_upstream_body("anthropic", raw, inspect_body(raw)) is raw


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        (b"/anthropic/v1/messages", "/v1/messages"),
        (b"/anthropic", ""),
        (b"/anthropic/", "/"),
        (b"/anthropic/v1/a%2Fb", "/v1/a%2Fb"),
    ],
)
def test_upstream_path_uses_raw_path(raw_path: bytes, expected: str) -> None:
    target = match_target(raw_path)
    assert target is not None
    assert target.path == expected


def test_settings_defaults_and_env_names() -> None:
    settings = load_settings(GatewaySettings, {})
    assert settings.port == 8787
    assert settings.host == "0.0.0.0"
    assert settings.upstream_url("anthropic") == "https://api.anthropic.com"
    assert settings.max_captured_bytes == 1024 * 1024
    env = {
        "SMOLTBOT_GATEWAY_PORT": "9000",
        "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": "http://127.0.0.1:1234/base/",
        "SMOLTBOT_CONSUMER_NAME": "gw-1",
    }
    settings = load_settings(GatewaySettings, env)
    assert settings.port == 9000
    assert settings.upstream_url("anthropic") == "http://127.0.0.1:1234/base"
    assert settings.instance_name() == "gw-1"
    assert (
        load_settings(GatewaySettings, {**env, "SMOLTBOT_GATEWAY_INSTANCE": "x"}).instance_name()
        == "x"
    )


def test_bad_settings_name_every_variable() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            GatewaySettings,
            {"SMOLTBOT_GATEWAY_PORT": "99999", "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": "ftp://x"},
        )
    assert set(info.value.problems) == {"SMOLTBOT_GATEWAY_PORT", "SMOLTBOT_UPSTREAM_ANTHROPIC_URL"}


def test_entrypoint_exits_2_on_bad_environment() -> None:
    env = {**os.environ, "SMOLTBOT_GATEWAY_PORT": "not-a-port"}
    result = run_entrypoint("gateway", env)
    assert result.returncode == 2
    assert "SMOLTBOT_GATEWAY_PORT" in result.stderr
    assert "not-a-port" not in result.stderr  # values are never echoed


@pytest.mark.parametrize(
    "content",
    [
        "x" * 5_000_000,  # a huge message: only its head is decoded
        "é" * 3000,  # multi-byte characters across the cut
        '\\"\n' * 2000,  # escapes across the cut
        "\u2603" + "\\u00e9" * 1000,
    ],
)
def test_user_query_of_a_long_message_is_its_first_500_characters(content: str) -> None:
    raw = msgspec.json.encode({"model": "m", "messages": [{"role": "user", "content": content}]})
    info = inspect_body(raw)
    assert info.user_query == content[:500]
    assert info.model == "m"


def test_user_query_of_a_gemini_request_and_model_flags() -> None:
    raw = msgspec.json.encode(
        {
            "contents": [
                {"role": "user", "parts": [{"text": "first"}]},
                {"role": "model", "parts": [{"text": "answer"}]},
                {"parts": [{"text": "second "}, {"inlineData": {"data": "AAAA"}}, {"text": "q"}]},
            ],
            "generationConfig": {"temperature": 0.1},
        }
    )
    info = inspect_body(raw)
    assert info.is_json_object
    assert info.user_query == "second \nq"
    assert not info.stream
