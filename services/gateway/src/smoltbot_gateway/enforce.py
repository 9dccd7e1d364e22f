"""What an agent's config and a call's verdict mean for its answer (architecture §3.3; gateway
reference §2.4 for the 403, §1.6 for the ``X-AIP-*`` headers).

- Which calls wait: non-streamed POSTs of an AIP-enabled agent in ``enforce`` mode, or of every
  AIP-enabled agent with ``AIP_INLINE_VERDICT=true``. Streams never wait (in enforce mode a
  violation found afterwards becomes a nudge).
- Calls that do not wait say at once: ``disabled`` (AIP off for the agent), ``pending`` (2xx) or
  ``skipped`` (anything else).
- A verdict: ``X-AIP-Verdict: <verdict>``, ``X-AIP-Action``, ``X-AIP-Proceed`` (and
  ``X-AIP-Synthetic: true`` for a checkpoint made without analysis); in enforce mode a
  ``boundary_violation`` replaces the answer by the reference's 403 ``integrity_violation``
  (the upstream call has happened; its answer is withheld). A verdict without a checkpoint (the
  answer held no AP-Trace to analyse) is ``skipped``.
- No verdict (timeout, Redis, failed analysis): ``X-AIP-Verdict: error`` and the failure policy,
  the agent's own (``AgentConfig.failure_policy``) else the gateway's: ``fail_open`` relays the
  answer, ``fail_closed`` answers 403 — in enforce mode only; inline verdicts never block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from smoltbot_contracts import AgentConfig, Checkpoint, FailurePolicy, Provider
from smoltbot_web import ErrorReply

from smoltbot_gateway import metrics
from smoltbot_gateway.providers import WIRES
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.waiting import WaitOutcome

__all__ = [
    "BLOCKED_MESSAGE",
    "Decision",
    "HeldResponse",
    "decide",
    "failure_policy",
    "immediate_verdict",
    "waits_for_verdict",
]

BLOCKED_MESSAGE = "Request blocked by integrity check"
NO_VERDICT_MESSAGE = (
    "Request blocked: no integrity verdict arrived and the failure policy is fail_closed"
)
VERDICT_HEADER = b"x-aip-verdict"
Headers = list[tuple[bytes, bytes]]


def immediate_verdict(config: AgentConfig, status: int) -> bytes:
    """``X-AIP-Verdict`` of an answer relayed as it arrives."""
    if not config.aip_enabled:
        return b"disabled"
    return b"pending" if 200 <= status < 300 else b"skipped"


def waits_for_verdict(
    config: AgentConfig, settings: GatewaySettings, *, streamed: bool, method: str
) -> bool:
    """Whether this call holds its answer until its verdict (before the upstream answers:
    only a 2xx answer is then held)."""
    if streamed or method != "POST" or not config.aip_enabled:
        return False
    return config.enforcement_mode == "enforce" or settings.aip_inline_verdict


def failure_policy(config: AgentConfig, settings: GatewaySettings) -> FailurePolicy:
    return config.failure_policy or settings.failure_policy


@dataclass(frozen=True, slots=True)
class Decision:
    """The ``X-AIP-*`` headers of the answer, and the 403 that replaces it when blocked."""

    headers: Headers
    block: ErrorReply | None = None


def _checkpoint_body(checkpoint: Checkpoint) -> dict[str, object]:
    """The 403's ``checkpoint`` object (gateway reference §2.4)."""
    return {
        "checkpoint_id": checkpoint.checkpoint_id,
        "verdict": checkpoint.verdict,
        "concerns": msgspec.to_builtins(checkpoint.concerns),
        "reasoning_summary": checkpoint.reasoning_summary,
        "recommended_action": checkpoint.recommended_action,
    }


def _verdict_headers(checkpoint: Checkpoint) -> Headers:
    headers = [
        (VERDICT_HEADER, checkpoint.verdict.encode()),
        (b"x-aip-action", checkpoint.recommended_action.encode()),
        (b"x-aip-proceed", b"true" if checkpoint.proceed else b"false"),
    ]
    if checkpoint.synthetic:
        headers.append((b"x-aip-synthetic", b"true"))
    return headers


def decide(
    outcome: WaitOutcome, config: AgentConfig, settings: GatewaySettings, provider: Provider
) -> Decision:
    """The answer a waiting call gets (blocks are counted here)."""
    enforce = config.enforcement_mode == "enforce"
    verdict = outcome.verdict
    if outcome.outcome == "verdict" and verdict is not None:
        checkpoint = verdict.checkpoint
        if checkpoint is None:
            return Decision([(VERDICT_HEADER, b"skipped")])
        headers = _verdict_headers(checkpoint)
        if enforce and checkpoint.verdict == "boundary_violation":
            metrics.ENFORCEMENT_BLOCKS.labels("boundary_violation").inc()
            reply = WIRES[provider].error(
                "integrity_violation", BLOCKED_MESSAGE, checkpoint=_checkpoint_body(checkpoint)
            )
            return Decision(headers, reply)
        return Decision(headers)
    if enforce and failure_policy(config, settings) == "fail_closed":
        metrics.ENFORCEMENT_BLOCKS.labels("fail_closed").inc()
        reply = WIRES[provider].error(
            "integrity_violation", NO_VERDICT_MESSAGE, reason=outcome.outcome
        )
        return Decision([(VERDICT_HEADER, b"error"), (b"x-aip-proceed", b"false")], reply)
    return Decision([(VERDICT_HEADER, b"error")])


@dataclass
class HeldResponse:
    """An ASGI ``send`` that keeps a response instead of sending it, so the relay path can
    produce the answer a waiting call holds until its verdict."""

    status: int = 0
    headers: Headers = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))
            self.complete = not message.get("more_body", False)

    def start(self, aip_headers: Headers) -> dict[str, Any]:
        """The ``http.response.start`` of the held answer with its verdict headers."""
        headers = [(n, v) for n, v in self.headers if n != VERDICT_HEADER]
        headers.append((b"content-length", str(len(self.body)).encode()))
        headers.extend(aip_headers)
        return {"type": "http.response.start", "status": self.status, "headers": headers}
