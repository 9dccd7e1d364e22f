"""Observer settings, read once from the environment in ``__main__``.

The decision analysis reads the same ``SMOLTBOT_ANALYZER_{BACKEND,BASE_URL,API_KEY,MODEL}`` (and
``ANTHROPIC_API_KEY``) as the verifier, declared once in ``smoltbot_config.AnalyzerSettings``:
``anthropic`` and ``openai`` make it an LLM call per exchange, checked at start like the
verifier's (a missing URL, key or model, or a URL pointing at this gateway, exits 2 naming the
variable). ``rules`` and ``hybrid`` keep the deterministic analysis: the hybrid service has no
decision endpoint. Keys are never echoed, not even by ``repr``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from smoltbot_analysis import backend_problems
from smoltbot_config import AnalyzerSettings, BatchSize, Port, PositiveInt, SettingsCheckError

# The backends with a decision analysis of their own; the others use the rules.
LLM_DECISION_BACKENDS = ("anthropic", "openai")


class ObserverSettings(AnalyzerSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_OBSERVER_*`` and the analyzer variables, plus the shared ones (architecture §8).

    Delivery timing (``SMOLTBOT_BUS_*``) is shared bus tuning, applied by the worker runtime.
    """

    port: Port = msgspec.field(default=9101, name="SMOLTBOT_OBSERVER_PORT")
    # Probes must be reachable from the kubelet.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_OBSERVER_HOST")  # noqa: S104
    batch_size: BatchSize = msgspec.field(default=50, name="SMOLTBOT_OBSERVER_BATCH_SIZE")
    # How long an agent's card is reused before it is read from Redis again.
    card_cache_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = msgspec.field(
        default=5.0, name="SMOLTBOT_OBSERVER_CARD_CACHE_TTL_S"
    )
    # LLM decision analysis: the longest one batch waits for its analyses (then they fall back).
    decision_timeout_ms: PositiveInt = msgspec.field(
        default=15_000, name="SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS"
    )

    @property
    def decision_backend(self) -> str:
        """``anthropic`` or ``openai`` when the decision analysis asks an LLM, else ``rules``."""
        backend = self.analyzer_backend
        return backend if backend in LLM_DECISION_BACKENDS else "rules"

    def __post_init__(self) -> None:
        if self.decision_backend == "rules":
            return
        problems = self.analyzer_problems(backend_problems)
        # An entry is taken over after SMOLTBOT_BUS_MIN_IDLE_MS: a batch's analyses must end
        # well before that, or the batch would be handled twice.
        if self.bus_min_idle_ms < 3 * self.decision_timeout_ms:
            problems["bus_min_idle_ms"] = "must be at least 3x {decision_timeout_ms}"
        if problems:
            raise SettingsCheckError(**problems)
