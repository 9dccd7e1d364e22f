"""Which webhook target URLs the api accepts (SSRF hygiene; docs/api.md "Webhooks").

* ``https`` anywhere; ``http`` only to ``localhost`` or a loopback/private IP literal (an
  in-cluster receiver), since a public receiver must not get signed events in clear text.
* Never credentials in the URL (``user:pass@``), a fragment, whitespace or control characters.
* Never an IP literal that is unspecified, link-local (169.254.0.0/16 holds cloud metadata
  services, fe80::/10), multicast or reserved.

Host names are not resolved here: what a name points to can change after creation, so the
sender must check the address it actually connects to (the notifier's job).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["MAX_URL_LENGTH", "url_problem"]

MAX_URL_LENGTH = 2048


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook target, or None when it can."""
    if not url or len(url) > MAX_URL_LENGTH:
        return f"must be 1-{MAX_URL_LENGTH} characters"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return "must be an https:// URL"
    if "@" in parts.netloc:
        return "must not contain credentials (user:password@)"
    if parts.fragment or url.endswith("#"):
        return "must not contain a fragment"
    host = (parts.hostname or "").lower()
    if not host:
        return "must name a host"
    ip = _ip(host)
    if ip is not None and (
        ip.is_unspecified
        or ip.is_link_local
        or ip.is_multicast
        or (ip.is_reserved and not ip.is_loopback)  # ::1 lies in IPv6's reserved ::/8
    ):
        return "must not point to an unspecified, link-local, multicast or reserved address"
    if scheme == "http":
        local = host == "localhost" or (ip is not None and (ip.is_loopback or ip.is_private))
        if not local:
            return "must use https (http only to localhost or a loopback/private IP address)"
    return None
