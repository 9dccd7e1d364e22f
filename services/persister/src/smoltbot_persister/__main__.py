"""``python -m smoltbot_persister``: verdicts / agents / control -> PostgreSQL."""

from __future__ import annotations

import asyncio
import sys

from smoltbot_config import SettingsError
from smoltbot_logging import configure

from smoltbot_persister.settings import load_persister_settings
from smoltbot_persister.worker import run


def main() -> None:
    try:
        settings = load_persister_settings()
    except SettingsError as exc:
        # One line naming every bad variable, never their values (architecture §8).
        print(f"smoltbot-persister: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    configure("persister", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
