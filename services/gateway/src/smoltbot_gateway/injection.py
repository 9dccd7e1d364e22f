"""Waves 1 and 3 at the door (architecture §5.3; gateway reference §1.4, §2.1, §2.3): thinking
and nudge injection into the request body.

Decided in two steps so an ordinary call pays nothing for it. First from what the body view
already read in its one pass (:class:`~smoltbot_gateway.body.Knobs`, the model, the path), the
agent's config and the nudges its call claimed: when nothing can be injected the body goes out
byte for byte, never decoded again. Only otherwise is it decoded in full, changed, and encoded
once (msgspec); a body that is not a JSON object is never touched.

**Wave 1, thinking** (agents whose ``aip_enabled`` is true; never when the client chose its own
setting, whatever it chose):

- Anthropic (``/v1/messages``): ``thinking: {type: enabled, budget_tokens: N}`` with
  ``N = min(10000, max_tokens // 2)``, only when ``N >= 1024`` (Anthropic's minimum budget), so
  ``max_tokens >= 2048``. The budget is always below ``max_tokens`` and the answer keeps at
  least half of what the client allowed (the reference's fixed 10000 broke every request with
  ``max_tokens <= 10000``, its quirk 7). Skipped where Anthropic refuses thinking: a
  ``temperature`` other than 1, ``top_k``, ``top_p`` below 0.95, a forced ``tool_choice``
  (``any``/``tool``), an assistant prefill as the last message, a last assistant turn with a
  ``tool_use`` that does not start with a thinking block (a tool loop begun without thinking),
  and models without extended thinking (``claude-2*``, ``claude-instant*``, ``claude-3-*`` other
  than ``claude-3-7-*``); ``max_tokens`` that is not a whole number.
- OpenAI (``/chat/completions``): ``reasoning_effort: "medium"`` for reasoning models only: names
  starting ``gpt-5`` (also ``gpt-5.<n>``), ``o1``, ``o3`` or ``o4`` followed by ``-`` or the end,
  except those that refuse the parameter or "medium" (``gpt-5*-chat*``, ``gpt-5*-pro*``,
  ``o1-mini*``, ``o1-preview*``). Not when ``reasoning_effort`` or ``reasoning`` is set.
- Gemini (``:generateContent``, ``:streamGenerateContent``; the model from the URL):
  ``generationConfig.thinkingConfig``, other generationConfig keys kept: ``gemini-3`` and later
  ``{thinkingLevel: HIGH, includeThoughts: true}``; ``gemini-2.5*``
  ``{thinkingBudget: 16384, includeThoughts: true}``, the budget capped at half a set
  ``maxOutputTokens`` and left out below 1024 (thoughts are still included). Older or unknown
  models get nothing (thinking would be refused). Not when a ``thinkingConfig`` is set (the
  reference replaced it: its quirk 5).

**Wave 3, nudges** (claimed by the config read, :mod:`smoltbot_gateway.nudges`): the notice text
goes into Anthropic ``system`` (absent, null or empty -> the text; a string -> appended after a
blank line; a block list -> a text block appended), OpenAI's first ``system``/``developer``
message (a string -> appended after a blank line; a part list -> a text part appended; none ->
a system message prepended) and Gemini ``systemInstruction`` (absent -> created; its ``parts`` ->
a text part appended; the reference injected nothing: its quirk 6). A field of any other shape is
left alone and the nudges are given back.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from smoltbot_contracts import AgentConfig, Nudge

from smoltbot_gateway import metrics
from smoltbot_gateway.body import BodyInfo, Knobs, prepare_upstream_body
from smoltbot_gateway.nudges import NudgeClaim, generates, notice_text
from smoltbot_gateway.providers import Provider

__all__ = [
    "ANTHROPIC_BUDGET_MAX",
    "ANTHROPIC_BUDGET_MIN",
    "GEMINI_BUDGET",
    "Prepared",
    "anthropic_budget",
    "openai_reasoning_model",
    "prepare_upstream",
    "thinking_for",
]

log = logging.getLogger(__name__)

ANTHROPIC_BUDGET_MAX = 10_000
ANTHROPIC_BUDGET_MIN = 1_024  # Anthropic refuses a smaller budget_tokens
GEMINI_BUDGET = 16_384
GEMINI_BUDGET_MIN = 1_024
OPENAI_EFFORT = "medium"

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_NOT_JSON = (msgspec.DecodeError, ValueError, RecursionError)

_ANTHROPIC_NO_THINKING = re.compile(r"^claude-(?:instant|2|3-(?!7))")
_OPENAI_REASONING = re.compile(r"^(?:gpt-5(?:\.\d+)?|o[134])(?:-|$)")
_OPENAI_NO_EFFORT = re.compile(r"^(?:gpt-5(?:\.\d+)?-(?:.*-)?(?:chat|pro)|o1-(?:mini|preview))")
_GEMINI_VERSION = re.compile(r"^gemini-(\d+)(?:\.(\d+))?(?:-|$)")
_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class Prepared(msgspec.Struct, frozen=True):
    """What goes upstream: the body, whether thinking was injected, which nudges it carries and
    the response headers that say so (a struct: built on every call, and cheaper than a
    named tuple)."""

    body: bytes | bytearray
    thinking: bool = False
    nudge_ids: tuple[str, ...] = ()

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-AIP-Enforcement: nudge`` and ``X-AIP-Nudge-Count`` when nudges were injected."""
        if not self.nudge_ids:
            return []
        return [
            (b"x-aip-enforcement", b"nudge"),
            (b"x-aip-nudge-count", str(len(self.nudge_ids)).encode()),
        ]


# ---------------------------------------------------------------------------- wave 1: rules


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def anthropic_budget(max_tokens: Any) -> int | None:
    """``budget_tokens`` for a request with this ``max_tokens``: ``min(10000, max_tokens // 2)``
    when that is at least 1024, else None (no thinking). Always below ``max_tokens``."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return None
    budget = min(ANTHROPIC_BUDGET_MAX, max_tokens // 2)
    return budget if budget >= ANTHROPIC_BUDGET_MIN else None


def _sampling_allows_thinking(knobs: Knobs) -> bool:
    """Anthropic refuses thinking with a changed temperature, top_k, a low top_p, or a forced
    tool choice."""
    if knobs.temperature is not None and _number(knobs.temperature) != 1.0:
        return False
    if knobs.top_k is not None:
        return False
    if knobs.top_p is not None:
        top_p = _number(knobs.top_p)
        if top_p is None or not 0.95 <= top_p <= 1.0:
            return False
    choice = knobs.tool_choice
    return choice is None or (isinstance(choice, dict) and choice.get("type") in ("auto", "none"))


def _anthropic_thinking(model: str | None, knobs: Knobs) -> dict[str, Any] | None:
    if knobs.thinking is not None:
        return None
    budget = anthropic_budget(knobs.max_tokens)
    if budget is None or not _sampling_allows_thinking(knobs):
        return None
    if model is not None and _ANTHROPIC_NO_THINKING.match(model.lower()):
        return None
    return {"type": "enabled", "budget_tokens": budget}


def openai_reasoning_model(model: str | None) -> bool:
    """A model that takes ``reasoning_effort: "medium"`` (see the module docstring)."""
    if not model:
        return False
    name = model.lower()
    return bool(_OPENAI_REASONING.match(name)) and not _OPENAI_NO_EFFORT.match(name)


def _gemini_generation_config(knobs: Knobs) -> Any:
    return (
        knobs.generation_config
        if knobs.generation_config is not None
        else knobs.generation_config_snake
    )


def _gemini_thinking(model: str | None, knobs: Knobs) -> dict[str, Any] | None:
    config = _gemini_generation_config(knobs)
    if config is not None and not isinstance(config, dict):
        return None
    if config and ("thinkingConfig" in config or "thinking_config" in config):
        return None
    version = _GEMINI_VERSION.match((model or "").lower().removeprefix("models/"))
    if version is None:
        return None
    major, minor = int(version[1]), int(version[2] or 0)
    if major >= 3:
        return {"thinkingLevel": "HIGH", "includeThoughts": True}
    if (major, minor) != (2, 5):
        return None
    budget = GEMINI_BUDGET
    limit = (config or {}).get("maxOutputTokens", (config or {}).get("max_output_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        budget = min(budget, limit // 2)
    if budget < GEMINI_BUDGET_MIN:
        return {"includeThoughts": True}
    return {"thinkingBudget": budget, "includeThoughts": True}


def thinking_for(
    provider: Provider, path: str, model: str | None, knobs: Knobs
) -> dict[str, Any] | str | None:
    """What wave 1 would inject, decided from the view alone (no decoding): Anthropic's
    ``thinking`` object, OpenAI's ``reasoning_effort`` value, Gemini's ``thinkingConfig``; None
    when nothing (the client set its own, the model or request cannot take it, not a generation
    endpoint)."""
    if not generates(provider, path):
        return None
    if provider == "anthropic":
        return _anthropic_thinking(model, knobs)
    if provider == "openai":
        if knobs.reasoning_effort is not None or knobs.reasoning is not None:
            return None
        return OPENAI_EFFORT if openai_reasoning_model(model) else None
    return _gemini_thinking(model, knobs)


# -------------------------------------------------------------------------- wave 1: apply


def _anthropic_history_allows_thinking(doc: dict[str, Any]) -> bool:
    """No assistant prefill, and no tool loop begun without thinking (Anthropic requires the
    last assistant turn to start with a thinking block once thinking is on)."""
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return True
    last_assistant: Any = None
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            if index == len(messages) - 1:
                return False  # a prefill
            last_assistant = message
    if last_assistant is None:
        return True
    content = last_assistant.get("content")
    if not isinstance(content, list):
        return True
    blocks = [b for b in content if isinstance(b, dict)]
    if not any(b.get("type") in ("tool_use", "server_tool_use") for b in blocks):
        return True
    return bool(blocks) and blocks[0].get("type") in _THINKING_BLOCKS


def _apply_thinking(provider: Provider, doc: dict[str, Any], thinking: Any) -> bool:
    if provider == "anthropic":
        if not _anthropic_history_allows_thinking(doc):
            return False
        doc["thinking"] = thinking
        return True
    if provider == "openai":
        doc["reasoning_effort"] = thinking
        return True
    key = "generation_config" if "generation_config" in doc else "generationConfig"
    config = doc.get(key)
    if config is None:
        doc[key] = {"thinkingConfig": thinking}
        return True
    if not isinstance(config, dict):
        return False
    config["thinkingConfig"] = thinking
    return True


# -------------------------------------------------------------------------- wave 3: apply


def _append_text(holder: dict[str, Any], key: str, text: str, block: dict[str, Any]) -> bool:
    """``holder[key]`` absent/null/empty -> ``text``; a string -> text appended after a blank
    line; a list -> ``block`` appended; anything else -> untouched (False)."""
    current = holder.get(key)
    if current is None or current == "":
        holder[key] = text
    elif isinstance(current, str):
        holder[key] = f"{current}\n\n{text}"
    elif isinstance(current, list):
        current.append(block)
    else:
        return False
    return True


def _apply_nudges(provider: Provider, doc: dict[str, Any], text: str) -> bool:
    if provider == "anthropic":
        return _append_text(doc, "system", text, {"type": "text", "text": text})
    if provider == "openai":
        messages = doc.get("messages")
        if not isinstance(messages, list):
            return False
        for message in messages:
            if isinstance(message, dict) and message.get("role") in ("system", "developer"):
                return _append_text(message, "content", text, {"type": "text", "text": text})
        messages.insert(0, {"role": "system", "content": text})
        return True
    key = "system_instruction" if "system_instruction" in doc else "systemInstruction"
    instruction = doc.get(key)
    if instruction is None:
        doc[key] = {"parts": [{"text": text}]}
        return True
    if not isinstance(instruction, dict):
        return False
    parts = instruction.get("parts")
    if parts is None:
        instruction["parts"] = [{"text": text}]
    elif isinstance(parts, list):
        parts.append({"text": text})
    else:
        return False
    return True


# ------------------------------------------------------------------------------ the step


def prepare_upstream(
    provider: Provider,
    path: str,
    raw: bytes | bytearray,
    info: BodyInfo,
    *,
    model: str | None,
    config: AgentConfig,
    claim: NudgeClaim | None = None,
) -> Prepared:
    """The body to forward: ``raw`` itself unless a wave injects something, else the changed
    document encoded once. Marks ``claim`` delivered when its nudges went in."""
    nudges: tuple[Nudge, ...] = claim.nudges if claim is not None else ()
    if not info.is_json_object:
        return Prepared(prepare_upstream_body(provider, raw, info))
    thinking = thinking_for(provider, path, model, info.knobs) if config.aip_enabled else None
    if thinking is None and not nudges:
        return Prepared(prepare_upstream_body(provider, raw, info))
    try:
        doc = _DECODER.decode(raw)
    except _NOT_JSON:  # the view read it, so this is not expected; forward it untouched
        return Prepared(prepare_upstream_body(provider, raw, info))
    if not isinstance(doc, dict):
        return Prepared(prepare_upstream_body(provider, raw, info))
    injected_thinking = thinking is not None and _apply_thinking(provider, doc, thinking)
    nudge_ids: tuple[str, ...] = ()
    if nudges and _apply_nudges(provider, doc, notice_text(nudges)):
        nudge_ids = tuple(n.id for n in nudges)
    if not injected_thinking and not nudge_ids:
        return Prepared(prepare_upstream_body(provider, raw, info))
    body = _ENCODER.encode(doc)
    if injected_thinking:
        metrics.INJECTIONS.labels("thinking", provider).inc()
    if nudge_ids and claim is not None:
        claim.delivered = True
        metrics.INJECTIONS.labels("nudge", provider).inc()
        metrics.NUDGES_DELIVERED.labels(provider).inc(len(nudge_ids))
        log.info(
            "nudges injected",
            extra={"agent_id": claim.agent, "nudge_ids": list(nudge_ids), "provider": provider},
        )
    return Prepared(body, injected_thinking, nudge_ids)
