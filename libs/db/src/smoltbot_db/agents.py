"""The ``agents`` row as the ``AgentConfig`` the gateways read from ``cfg:{agent}``.

One mapping for everything that rebuilds ``cfg:{agent}`` from PostgreSQL: the api's write-through
and reconcile loop, and ``smoltbot cache rebuild``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smoltbot_contracts import AgentConfig

__all__ = ["CONFIG_COLUMNS", "config_of_row"]

CONFIG_COLUMNS = (
    "enforcement_mode",
    "containment_status",
    "nudge_strategy",
    "nudge_rate",
    "nudge_threshold",
    "failure_policy",
    "aip_enabled",
    "aap_enabled",
    "auto_containment_threshold",
    "cfg_version",
)
"""The ``agents`` columns an ``AgentConfig`` is made of."""


def config_of_row(row: Mapping[str, Any]) -> AgentConfig:
    """The ``AgentConfig`` an ``agents`` row stands for (a NULL threshold means the default)."""
    threshold = row["auto_containment_threshold"]
    return AgentConfig(
        enforcement_mode=row["enforcement_mode"],
        containment=row["containment_status"],
        nudge_strategy=row["nudge_strategy"],
        nudge_rate=row["nudge_rate"],
        nudge_threshold=row["nudge_threshold"],
        failure_policy=row["failure_policy"],
        aip_enabled=row["aip_enabled"],
        aap_enabled=row["aap_enabled"],
        auto_containment_threshold=(
            AgentConfig().auto_containment_threshold if threshold is None else threshold
        ),
        cfg_version=row["cfg_version"],
    )
