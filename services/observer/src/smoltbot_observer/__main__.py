"""``python -m smoltbot_observer``: the observer worker's only entrypoint."""

from __future__ import annotations

import asyncio

from smoltbot_config import load_settings_or_exit
from smoltbot_logging import configure

from smoltbot_observer.settings import ObserverSettings
from smoltbot_observer.worker import SERVICE, run


def main() -> None:
    settings = load_settings_or_exit(ObserverSettings, SERVICE)  # exits 2 on a bad variable
    configure(SERVICE, settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
