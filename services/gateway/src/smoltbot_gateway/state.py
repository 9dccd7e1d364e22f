"""The typed runtime state one gateway process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from smoltbot_contracts import Event

from smoltbot_gateway.admission import BodyBudget
from smoltbot_gateway.agent_config import ConfigReader
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.upstream import UpstreamClient
from smoltbot_gateway.waiting import VerdictWaiter


class EventSink(Protocol):
    """What the proxy needs from the bus publisher: a non-blocking enqueue."""

    def enqueue(self, stream: str, event: Event) -> bool: ...


@dataclass
class GatewayState:
    settings: GatewaySettings
    instance: str
    upstreams: dict[str, UpstreamClient]
    events: EventSink
    config: ConfigReader
    body_budget: BodyBudget
    seen_agents: set[str] = field(default_factory=set)
    verdicts: VerdictWaiter | None = None  # waiting callers (architecture §3.3)
