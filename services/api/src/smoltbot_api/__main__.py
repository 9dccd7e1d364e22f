"""``python -m smoltbot_api``: validate settings, log JSON, serve with granian (1 ASGI worker)."""

from __future__ import annotations

import logging
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from smoltbot_logging import configure

from smoltbot_api.settings import load_api_settings_or_exit

__all__ = ["main"]

logger = logging.getLogger("smoltbot_api")


def _granian_log_config() -> dict[str, Any]:
    """Route granian's own loggers into the JSON handler on the root logger."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {},
        "loggers": {
            "_granian": {"handlers": [], "level": "INFO", "propagate": True},
            "granian.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }


def main() -> None:
    """Exit 2 on bad configuration (naming every bad variable) before anything starts."""
    settings = load_api_settings_or_exit()
    configure("api", settings.log_level)
    logger.info("starting api", extra={"host": settings.host, "port": settings.port})
    server = Granian(
        "smoltbot_api.app:create_app_from_env",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        http=HTTPModes.http1,
        websockets=False,
        log_dictconfig=_granian_log_config(),
    )
    server.serve()


if __name__ == "__main__":
    main()
