"""Verifier settings, read once from the environment in ``__main__`` (architecture §6, §8)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec
from smoltbot_config import CommonSettings, Port, PositiveInt

FailurePolicy = Literal["fail_open", "fail_closed"]


class VerifierSettings(CommonSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_VERIFIER_*`` and ``SMOLTBOT_ANALYZER_*`` plus the shared variables."""

    __env_names__: ClassVar[dict[str, str]] = {
        "port": "SMOLTBOT_VERIFIER_PORT",
        "host": "SMOLTBOT_VERIFIER_HOST",
        "batch_size": "SMOLTBOT_VERIFIER_BATCH_SIZE",
        "min_evidence_tokens": "SMOLTBOT_VERIFIER_MIN_EVIDENCE_TOKENS",
        "analyzer_backend": "SMOLTBOT_ANALYZER_BACKEND",
        "analysis_timeout_ms": "SMOLTBOT_ANALYZER_TIMEOUT_MS",
        "failure_policy": "SMOLTBOT_ANALYZER_FAILURE_POLICY",
    }

    port: Port = 9102
    host: str = "0.0.0.0"  # noqa: S104 - probes must be reachable from the kubelet
    batch_size: PositiveInt = 50
    # Thinking shorter than this many estimated tokens (ceil(len/4)) is not analysed (AIP §4.6).
    min_evidence_tokens: Annotated[int, msgspec.Meta(ge=0)] = 25
    analyzer_backend: Literal["rules", "anthropic", "openai", "hybrid"] = "rules"
    analysis_timeout_ms: PositiveInt = 8_000
    failure_policy: FailurePolicy = "fail_open"

    def __post_init__(self) -> None:
        # An entry is taken over after SMOLTBOT_BUS_MIN_IDLE_MS; a slower analysis would be
        # handled twice, so the shared bus setting must leave room for three timeouts.
        if self.bus_min_idle_ms < 3 * self.analysis_timeout_ms:
            raise ValueError(
                "SMOLTBOT_BUS_MIN_IDLE_MS must be at least 3x SMOLTBOT_ANALYZER_TIMEOUT_MS"
            )
