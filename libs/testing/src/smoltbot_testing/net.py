"""Loopback helpers for tests that start real servers."""

from __future__ import annotations

import gzip
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; races are unlikely on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(url: str, *, timeout_s: float = 15.0, expect_status: int = 200) -> None:
    """Poll ``url`` until it answers ``expect_status``; raise TimeoutError with the last problem."""
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 (test helper, loopback)
                if resp.status == expect_status:
                    return
                last = f"status {resp.status}"
        except urllib.error.HTTPError as exc:
            if exc.code == expect_status:
                return
            last = f"status {exc.code}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {expect_status} within {timeout_s}s ({last})")


def decoded_body(raw: bytes, headers: Mapping[str, str], accept_encoding: str) -> bytes:
    """The plain bytes of a response body received as ``raw`` (with ``headers``, looked up in
    lower case) for a request that sent ``Accept-Encoding: accept_encoding`` (``gzip`` or
    ``identity``); asserts that the response was encoded just as asked."""
    if accept_encoding == "gzip":
        assert headers.get("content-encoding") == "gzip", headers
        return gzip.decompress(raw)
    assert "content-encoding" not in headers, headers
    return raw
