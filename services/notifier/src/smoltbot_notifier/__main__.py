"""``python -m smoltbot_notifier``: the webhook notifier worker."""

from __future__ import annotations

import asyncio

from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_config import load_settings_or_exit
from smoltbot_contracts.streams import CONTROL, VERDICTS
from smoltbot_logging import configure

from smoltbot_notifier.handlers import handle
from smoltbot_notifier.settings import NotifierSettings


async def run(settings: NotifierSettings) -> None:
    async with WorkerRuntime("notifier", settings, port=settings.port, host=settings.host) as rt:
        config = ConsumerConfig(
            group="notifier", streams=[VERDICTS, CONTROL], batch_size=settings.batch_size
        )
        await rt.run_consumer(config, handle)


def main() -> None:
    settings = load_settings_or_exit(NotifierSettings, "notifier")
    configure("notifier", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
