"""Header hygiene between client and upstream (architecture §5.4, reference §9 quirks 3-4).

ASGI gives lower-case byte names; aiohttp takes ``str`` pairs. Values are passed as latin-1 so
every byte survives the round trip unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Never forwarded upstream: the body may change size (injection), the host is the upstream's,
# and the Mnemom billing key is ours, not the provider's.
_DROP_UPSTREAM = HOP_BY_HOP | {b"host", b"content-length", b"x-mnemom-api-key"}
# Never copied back: our server frames the body itself.
_DROP_CLIENT = HOP_BY_HOP | {b"content-length"}


# CORS as the reference gateway answers it (gateway.md §1.2): browsers may call the gateway
# from any origin and read the headers it adds.
_EXPOSED = (
    b"x-smoltbot-agent, x-smoltbot-session, X-Smoltbot-Event-Id, X-AIP-Verdict, "
    b"X-AIP-Checkpoint-Id, X-AIP-Action, X-AIP-Proceed, X-AIP-Synthetic, X-AIP-Certificate-Id, "
    b"X-AIP-Chain-Hash, X-AIP-Enforcement, X-AIP-Nudge-Count"
)
CORS_RESPONSE_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", _EXPOSED),
)
CORS_PREFLIGHT_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Content-Type, x-api-key, anthropic-version, anthropic-beta, authorization, "
        b"x-goog-api-key, x-mnemom-api-key",
    ),
    (b"access-control-expose-headers", _EXPOSED),
    (b"access-control-max-age", b"86400"),
)
_CORS_NAMES = frozenset(name for name, _ in CORS_RESPONSE_HEADERS)


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Names listed in ``Connection:`` are hop-by-hop for this message too (RFC 9110 7.6.1)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


def upstream_request_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Client request headers to forward upstream (ASGI names are already lower-case)."""
    drop = _DROP_UPSTREAM | _connection_tokens(headers)
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers if n not in drop]


def client_response_headers(
    headers: Iterable[tuple[bytes, bytes]], ours: Iterable[tuple[bytes, bytes]] = ()
) -> list[tuple[bytes, bytes]]:
    """Upstream response headers to pass to the client (names lower-cased for ASGI), then
    ``ours``; where the upstream already answered a CORS header, its value wins."""
    pairs = [(n.lower(), v) for n, v in headers]
    drop = _DROP_CLIENT | _connection_tokens(pairs)
    kept = [(n, v) for n, v in pairs if n not in drop]
    upstream_cors = {n for n, _ in kept if n in _CORS_NAMES}
    kept.extend((n, v) for n, v in ours if n not in upstream_cors)
    return kept


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """First value of ``name`` (lower-case) as text, or None."""
    for n, v in headers:
        if n.lower() == name:
            return v.decode("latin-1")
    return None
