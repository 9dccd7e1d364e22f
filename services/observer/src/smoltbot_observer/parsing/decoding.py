"""Undo the HTTP content-encoding the gateway recorded (it forwards bytes without decompressing).

Never raises: a corrupt or truncated stream yields whatever decompressed before the damage, plus
an issue name, because a response cut at the capture cap is still worth parsing.
"""

from __future__ import annotations

import zlib

# Feed compressed input in small pieces so a corruption loses at most one piece of output.
_CHUNK = 1024
# Guard against decompression bombs: the capture cap bounds the input, not the output.
MAX_DECODED_BYTES = 64 * 1024 * 1024

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS


def _inflate(data: bytes, wbits: int, name: str) -> tuple[bytes, list[str]]:
    """Decompress (possibly multi-member) data, keeping the output produced before any error."""
    out: list[bytes] = []
    size = 0
    pending = data
    while pending:
        decoder = zlib.decompressobj(wbits)
        rest = b""
        try:
            for start in range(0, len(pending), _CHUNK):
                piece = decoder.decompress(pending[start : start + _CHUNK])
                out.append(piece)
                size += len(piece)
                if size > MAX_DECODED_BYTES:
                    return b"".join(out)[:MAX_DECODED_BYTES], [f"{name}_too_large"]
                if decoder.eof:
                    rest = decoder.unused_data + pending[start + _CHUNK :]
                    break
            out.append(decoder.flush())
        except zlib.error:
            return b"".join(out), [f"{name}_corrupt"]
        if not decoder.eof:
            return b"".join(out), [f"{name}_truncated"]
        # gzip allows several members back to back; anything after the last one is junk.
        pending = rest if wbits == _GZIP_WBITS else b""
        if pending and not pending.startswith(b"\x1f\x8b"):
            return b"".join(out), [f"{name}_trailing_garbage"]
    return b"".join(out), []


def _deflate_wbits(data: bytes) -> int:
    """HTTP "deflate" should be zlib-wrapped, but some servers send it raw: sniff the header."""
    if len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0:
        return _ZLIB_WBITS
    return _RAW_DEFLATE_WBITS


def decode_body(body: bytes, content_encoding: str | None) -> tuple[bytes, list[str]]:
    """Return the identity bytes of ``body`` and the issues met (empty list when clean).

    Stacked encodings (``gzip, deflate``) are undone last-applied first. An unknown encoding
    (e.g. ``br``: no decoder is installed) leaves the bytes as they are and reports it.
    """
    if not body or not content_encoding:
        return body, []
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    issues: list[str] = []
    data = body
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            data, found = _inflate(data, _GZIP_WBITS, "gzip")
        elif coding == "deflate":
            data, found = _inflate(data, _deflate_wbits(data), "deflate")
        else:
            return data, [*issues, f"unsupported_encoding:{coding}"]
        issues.extend(found)
        if found and not data:
            break
    return data, issues
