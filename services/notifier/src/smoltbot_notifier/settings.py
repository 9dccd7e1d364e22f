"""Notifier settings (architecture §8)."""

from __future__ import annotations

import msgspec
from smoltbot_config import BatchSize, BusSettings, Port


class NotifierSettings(BusSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_NOTIFIER_*`` plus the shared variables."""

    port: Port = msgspec.field(default=9104, name="SMOLTBOT_NOTIFIER_PORT")
    # Probes must be reachable from the cluster.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_NOTIFIER_HOST")  # noqa: S104
    batch_size: BatchSize = msgspec.field(default=100, name="SMOLTBOT_NOTIFIER_BATCH_SIZE")
