#!/usr/bin/env python3
"""The images' HEALTHCHECK: ``GET http://127.0.0.1:<port><path>`` must answer 200.

``smoltbot-healthcheck [PATH]`` (default ``/health/live``). The port is the service's
``SMOLTBOT_<SERVICE>_PORT``, else its default; the service is the image's ``SMOLTBOT_SERVICE``.
An image without a server (``cli``) passes. Standard library only: it runs every few seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# The settings classes' defaults (tests/deploy checks them against the classes).
DEFAULT_PORTS = {
    "gateway": 8787,
    "observer": 9101,
    "verifier": 9102,
    "persister": 9103,
    "api": 8788,
    "notifier": 9104,
}


def url(service: str, path: str, environ: dict[str, str]) -> str | None:
    """The URL to probe for ``service``, or None when the image runs no server."""
    if service not in DEFAULT_PORTS:
        return None
    port = environ.get(f"SMOLTBOT_{service.upper()}_PORT") or str(DEFAULT_PORTS[service])
    return f"http://127.0.0.1:{port}{path}"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/health/live"
    target = url(os.environ.get("SMOLTBOT_SERVICE", ""), path, dict(os.environ))
    if target is None:
        return 0
    try:
        with urllib.request.urlopen(target, timeout=2) as resp:  # noqa: S310 - loopback
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{target}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
