"""``python -m smoltbot_persister``: verdicts / agents / control -> PostgreSQL."""

from __future__ import annotations

import asyncio

from smoltbot_config import load_settings_or_exit
from smoltbot_logging import configure

from smoltbot_persister.settings import PersisterSettings
from smoltbot_persister.worker import run


def main() -> None:
    settings = load_settings_or_exit(PersisterSettings, "persister")  # exits 2 on a bad variable
    configure("persister", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
