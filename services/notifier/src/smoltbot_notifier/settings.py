"""Notifier settings (architecture §8)."""

from __future__ import annotations

from typing import ClassVar

from smoltbot_config import CommonSettings, Port


class NotifierSettings(CommonSettings, frozen=True, kw_only=True):
    __env_names__: ClassVar[dict[str, str]] = {
        "port": "SMOLTBOT_NOTIFIER_PORT",
        "host": "SMOLTBOT_NOTIFIER_HOST",
    }

    port: Port = 9104
    host: str = "0.0.0.0"  # noqa: S104 - probes must be reachable from the cluster
    batch_size: int = 100
