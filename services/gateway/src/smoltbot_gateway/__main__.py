"""``python -m smoltbot_gateway``: validate settings, then serve with granian (1 worker).

Settings are validated here first so a bad environment exits 2 before any worker starts; the
worker rebuilds them from the same environment through :func:`smoltbot_gateway.app.app_from_env`.
granian handles SIGTERM/SIGINT: it stops accepting, lets the lifespan flush events, and exits.
"""

from __future__ import annotations

import logging

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from smoltbot_config import load_settings_or_exit
from smoltbot_logging import configure

from smoltbot_gateway.settings import GatewaySettings

# granian's own loggers, in the same JSON lines as everything else.
_JSON_FORMATTER = {"()": "smoltbot_logging.JsonFormatter", "service": "smoltbot-gateway"}
GRANIAN_LOG_CONFIG = {"formatters": {"generic": _JSON_FORMATTER, "access": _JSON_FORMATTER}}


def main() -> None:
    settings = load_settings_or_exit(GatewaySettings, "gateway")
    configure("gateway", settings.log_level)
    logging.getLogger(__name__).info(
        "starting gateway", extra={"host": settings.host, "port": settings.port}
    )
    server = Granian(
        "smoltbot_gateway.app:app_from_env",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=GRANIAN_LOG_CONFIG,
    )
    server.serve()


if __name__ == "__main__":
    main()
