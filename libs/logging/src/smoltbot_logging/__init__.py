"""JSON-lines logging for every service.

``configure()`` is called once at a process edge (``__main__``); libraries only use
``logging.getLogger(__name__)``. The event id being handled travels in a context variable, so every
line logged while handling an event carries it without threading it through calls.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any

import msgspec

__all__ = ["JsonFormatter", "bind_event", "configure", "current_event_id"]

_EVENT_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
_ENCODER = msgspec.json.Encoder()
# Attributes every LogRecord has; anything else passed via ``extra=`` is emitted as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def current_event_id() -> str | None:
    return _EVENT_ID.get()


class bind_event:  # noqa: N801 - used like a function: ``with bind_event(event_id):``
    """Tag every log line inside the block with ``event_id`` (a class, not a generator: it
    runs once per proxied call)."""

    __slots__ = ("_event_id", "_token")

    def __init__(self, event_id: str | None) -> None:
        self._event_id = event_id

    def __enter__(self) -> None:
        self._token = _EVENT_ID.set(self._event_id)

    def __exit__(self, *exc_info: object) -> None:
        _EVENT_ID.reset(self._token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, service, logger, message, event_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event_id = _EVENT_ID.get()
        if event_id is not None:
            payload["event_id"] = event_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(payload).decode()

    def formatException(self, ei: Any) -> str:  # noqa: N802 (stdlib name)
        return super().formatException(ei)


def configure(service: str, level: str = "info") -> None:
    """Route all logging to stdout as JSON lines at ``level`` (``warn`` accepted for warning)."""
    name = level.upper()
    name = "WARNING" if name == "WARN" else name
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(f"smoltbot-{service}"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, name, logging.INFO))
    # Per-request access logs of the HTTP libraries are noise at info level.
    for noisy in ("aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
