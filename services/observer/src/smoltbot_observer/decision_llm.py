"""Decision analysis by an LLM (protocols.md §2.4; backends ``anthropic`` and ``openai``).

One call per exchange asks a model what the agent decided: the options it had, the one it took,
why, the card's values it applied, and — when the card has escalation triggers whose condition is
a bare identifier — a true/false content flag for each such condition (the trace builder turns a
true flag into a required escalation).

**Request.** The system prompt is built from the card on every call: the task, the answer's
schema, the rules (values picked only from the card's declared values, listed as ``name:
description`` lines; short snake_case names when it declares none; one flag per bare-identifier
condition) and one worked example. The user message is tagged sections, each present only when
there is something to put in it: ``<user_query>`` (first 500 characters), ``<reasoning>`` (the
thinking, first 3000), ``<tools_used>`` (one line per call: the tool's name and the *keys* of its
input — never the values) and ``<response_excerpt>`` (the answer's text, first 1000).

- ``anthropic``: ``POST {base}/v1/messages``, ``max_tokens`` 512, the system prompt as one text
  block marked ``cache_control: ephemeral`` (it repeats for every exchange of an agent);
- ``openai``: ``POST {base}/v1/chat/completions`` (vLLM, Ollama, llama.cpp server, OpenAI),
  ``max_tokens`` 512, ``temperature`` 0.

Both go through the analysis library's :class:`~smoltbot_analysis.ChatClient`, the HTTP layer of
the verifier's backends: timeout (``SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS``), circuit breaker (5
failures open it for 60 s), the gateway self-loop refusal, no key or URL in errors and logs.

**Answer.** The first text block (anthropic) or the message content (openai); the greedy
``{...}`` span; trailing commas before ``}``/``]`` dropped; JSON with ``alternatives``,
``selected`` and ``reasoning``. Values the card does not declare are dropped, flags for
conditions it does not have too. ``selected`` must name one of the alternatives: a near miss
(case, spaces, dashes) is repaired, anything else makes the answer unusable.

**Failure.** Anything that goes wrong — no passthrough, circuit open, timeout, HTTP error, self
loop, unusable answer — yields the fixed fallback analysis (``analyzed``; "Used tools: ..." or
"Analysis unavailable..."; values ``transparency`` as far as the card declares it). It never
quotes the response. The analyzer never raises for a failed call.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal

from smoltbot_analysis import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    AnalysisError,
    AnalysisHooks,
    ChatAnalysisError,
    ChatClient,
    ChatError,
)
from smoltbot_analysis.llm import DEFAULT_BREAKER_COOLDOWN_S, DEFAULT_BREAKER_THRESHOLD

from smoltbot_observer.analysis import (
    Analysis,
    AnalysisInput,
    JSONObject,
    Option,
    declared_values,
    direct_analysis,
    fallback_analysis,
    filter_values,
    passthrough_analysis,
)
from smoltbot_observer.parsing import ToolCall
from smoltbot_observer.trace_builder import escalation_triggers, flag_conditions

log = logging.getLogger(__name__)

DecisionBackend = Literal["anthropic", "openai"]
DECISION_BACKENDS: tuple[DecisionBackend, ...] = ("anthropic", "openai")
MAX_ANSWER_TOKENS = 512
DEFAULT_TIMEOUT_S = 15.0

USER_QUERY_CHARS = 500
REASONING_CHARS = 3000
RESPONSE_EXCERPT_CHARS = 1000
MAX_TOOL_LINES = 20
MAX_INPUT_KEYS = 20
# What an answer may put in a trace, bounded.
MAX_ALTERNATIVES = 8
ID_CHARS = 64
DESCRIPTION_CHARS = 300
REASONING_OUT_CHARS = 600

_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_NOT_ID = re.compile(r"[^a-z0-9]+")

_TASK = """\
You are given one exchange between a user and an AI agent: what the user asked, the agent's \
reasoning, the tools it called and the start of its answer (any of these may be missing). \
Work out the decision the agent made: the options it had, the one it took, and why. Think it \
through, then reply with a single JSON object and nothing else: no prose, no code fence."""

_EXAMPLE_INPUT = """\
<user_query>
The nightly export job keeps timing out. Can you fix it?
</user_query>

<reasoning>
The export times out after 30 s. I could raise the timeout in config/export.yaml, or run the \
export by hand with the CLI and a longer limit. Changing the config fixes every future run, so \
I will edit the file.
</reasoning>

<tools_used>
- edit_file (input keys: path, old_text, new_text)
</tools_used>"""

_EXAMPLE_ANSWER: dict[str, object] = {
    "alternatives": [
        {"id": "edit_config", "description": "Raise the timeout in config/export.yaml"},
        {"id": "use_cli", "description": "Run the export once by hand with a longer limit"},
    ],
    "selected": "edit_config",
    "reasoning": "Editing the config fixes every future run, while the CLI fixes only this one.",
    "values_applied": ["reliability"],
}


def _value_lines(card: JSONObject) -> list[str]:
    """``- name: description`` for each declared value (``- name`` without a description)."""
    values = card.get("values")
    definitions = values.get("definitions") if isinstance(values, dict) else None
    definitions = definitions if isinstance(definitions, dict) else {}
    lines: list[str] = []
    for name in declared_values(card):
        definition = definitions.get(name)
        description = definition.get("description") if isinstance(definition, dict) else None
        if isinstance(description, str) and description.strip():
            lines.append(f"- {name}: {' '.join(description.split())}")
        else:
            lines.append(f"- {name}")
    return lines


def _flag_lines(card: JSONObject) -> list[str]:
    """``- condition: reason`` for each bare-identifier trigger condition."""
    reasons: dict[str, str] = {}
    for trigger in escalation_triggers(card):
        condition = trigger.get("condition")
        reason = trigger.get("reason")
        if isinstance(condition, str) and isinstance(reason, str) and reason.strip():
            reasons.setdefault(condition.strip(), " ".join(reason.split()))
    return [f"- {c}: {reasons[c]}" if c in reasons else f"- {c}" for c in flag_conditions(card)]


def system_prompt(card: JSONObject) -> str:
    """The decision-analysis instructions for ``card`` (its values and trigger conditions)."""
    flags = flag_conditions(card)
    schema = [
        "{",
        '  "alternatives": [{"id": "short_snake_case_id", "description": "the concrete action"}],',
        '  "selected": "the id of the alternative the agent took",',
        '  "reasoning": "one or two concrete sentences: why the agent took it",',
        '  "values_applied": ["value", "..."]' + ("," if flags else ""),
    ]
    if flags:
        schema.append('  "content_flags": {"condition": true}')
    schema.append("}")
    rules = [
        "- alternatives: the options the reasoning weighs; when it names none, infer the 2 or 3 "
        "the agent most plausibly had. Describe each as a concrete action (what would be done, "
        "to what), not as a category.",
        "- selected: exactly one of the alternatives' ids.",
        "- reasoning: concrete and short; do not copy long passages, secrets or personal data.",
    ]
    value_lines = _value_lines(card)
    if value_lines:
        rules.append(
            "- values_applied: the values the decision served, picked only from this list "
            "(an empty list if none applies):\n" + "\n".join(value_lines)
        )
    else:
        rules.append(
            "- values_applied: the values the decision served, as short snake_case names "
            "(for example accuracy, safety, user_autonomy)."
        )
    if flags:
        rules.append(
            "- content_flags: one entry for each condition below, true when the exchange shows "
            "it and false otherwise:\n" + "\n".join(_flag_lines(card))
        )
    example: dict[str, object] = dict(_EXAMPLE_ANSWER)
    declared = declared_values(card)
    if declared:  # the example must not teach a value the card does not have
        example["values_applied"] = declared[:1]
    if flags:
        example["content_flags"] = dict.fromkeys(flags, False)
    return "\n\n".join(
        [
            _TASK,
            "Answer schema:\n" + "\n".join(schema),
            "Rules:\n" + "\n".join(rules),
            "Example exchange:\n" + _EXAMPLE_INPUT,
            "Example answer:\n" + json.dumps(example),
        ]
    )


def _tool_line(call: ToolCall) -> str:
    keys = list(call.input)[:MAX_INPUT_KEYS]
    return f"- {call.name} (input keys: {', '.join(keys)})" if keys else f"- {call.name}"


def user_message(inputs: AnalysisInput) -> str:
    """The tagged sections of one exchange; empty when there is nothing to send.

    Tool inputs contribute their keys only: the values (paths, queries, messages, secrets) never
    leave the observer.
    """
    sections: list[str] = []
    if inputs.user_query and inputs.user_query.strip():
        sections.append(
            f"<user_query>\n{inputs.user_query.strip()[:USER_QUERY_CHARS]}\n</user_query>"
        )
    if inputs.thinking and inputs.thinking.strip():
        sections.append(f"<reasoning>\n{inputs.thinking.strip()[:REASONING_CHARS]}\n</reasoning>")
    if inputs.tool_calls:
        lines = [_tool_line(call) for call in inputs.tool_calls[:MAX_TOOL_LINES]]
        sections.append("<tools_used>\n" + "\n".join(lines) + "\n</tools_used>")
    if inputs.response_text.strip():
        excerpt = inputs.response_text.strip()[:RESPONSE_EXCERPT_CHARS]
        sections.append(f"<response_excerpt>\n{excerpt}\n</response_excerpt>")
    return "\n\n".join(sections)


# ---------------------------------------------------------------------------------------------
# The answer


def _json_object(answer: str) -> dict[str, Any]:
    start, end = answer.find("{"), answer.rfind("}")
    if start < 0 or end < start:
        raise ChatError("invalid", "the decision answer holds no JSON object")
    try:
        parsed = json.loads(_TRAILING_COMMA.sub(r"\1", answer[start : end + 1]))
    except ValueError:
        raise ChatError("invalid", "the decision answer is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ChatError("invalid", "the decision answer is not a JSON object")
    return parsed


def _text(value: object, limit: int) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _normal(option_id: str) -> str:
    return _NOT_ID.sub("_", option_id.lower()).strip("_")


def _selected(selected: str, options: list[Option]) -> str | None:
    """``selected`` if it is an option id; a near miss repaired; None otherwise."""
    ids = [option.id for option in options]
    if selected in ids:
        return selected
    wanted = _normal(selected)
    matches = [o.id for o in options if wanted and _normal(o.id) == wanted]
    if len(matches) == 1:
        return matches[0]
    described = [o.id for o in options if wanted and _normal(o.description) == wanted]
    return described[0] if len(described) == 1 else None


def parse_answer(answer: str, card: JSONObject, *, analyzer: str) -> Analysis:
    """The :class:`Analysis` in an LLM answer; a ``ChatError("invalid")`` when it has none."""
    data = _json_object(answer)
    raw_alternatives = data.get("alternatives")
    selected = data.get("selected")
    reasoning = _text(data.get("reasoning"), REASONING_OUT_CHARS)
    if not isinstance(raw_alternatives, list) or not isinstance(selected, str) or not reasoning:
        raise ChatError("invalid", "the decision answer lacks alternatives, selected or reasoning")
    options: list[Option] = []
    for entry in raw_alternatives:
        if not isinstance(entry, dict):
            continue
        option_id = _text(entry.get("id"), ID_CHARS)
        if option_id and option_id not in {o.id for o in options}:
            description = _text(entry.get("description"), DESCRIPTION_CHARS) or option_id
            options.append(Option(id=option_id, description=description))
    options = options[:MAX_ALTERNATIVES]
    if not options:
        raise ChatError("invalid", "the decision answer has no usable alternative")
    chosen = _selected(selected.strip(), options)
    if chosen is None:
        raise ChatError("invalid", "the decision answer selected none of its alternatives")
    raw_values = data.get("values_applied")
    values = [
        text
        for v in (raw_values if isinstance(raw_values, list) else [])
        if (text := _text(v, ID_CHARS))
    ]
    raw_flags = data.get("content_flags")
    allowed = set(flag_conditions(card))
    flags = {
        name: value
        for name, value in (raw_flags.items() if isinstance(raw_flags, dict) else ())
        if name in allowed and isinstance(value, bool)
    }
    return Analysis(
        alternatives=tuple(options),
        selected=chosen,
        reasoning=reasoning,
        values_applied=filter_values(values, card),
        content_flags=flags,
        analyzer=analyzer,
    )


# ---------------------------------------------------------------------------------------------
# The analyzer


class LLMDecisionAnalyzer:
    """The ``anthropic`` and ``openai`` decision backends; never raises for a failed call."""

    def __init__(
        self,
        backend: DecisionBackend,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S,
        hooks: AnalysisHooks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if backend not in DECISION_BACKENDS:
            raise ValueError(f"no decision analysis backend {backend!r}")
        self._backend: DecisionBackend = backend
        self._model = model
        self._chat = ChatClient(
            name=backend,
            base_url=base_url,
            path=ANTHROPIC_PATH if backend == "anthropic" else OPENAI_PATH,
            api_key=api_key,
            timeout_s=timeout_s,
            breaker_threshold=breaker_threshold,
            breaker_cooldown_s=breaker_cooldown_s,
            hooks=hooks,
            clock=clock,
            purpose="decision analysis",
        )

    def __repr__(self) -> str:  # never the key
        return f"LLMDecisionAnalyzer(backend={self._backend!r}, model={self._model!r})"

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def model(self) -> str:
        return self._model

    @property
    def url(self) -> str:
        return self._chat.url

    @property
    def circuit_open(self) -> bool:
        """True while the breaker refuses calls (analyses fall back at once)."""
        return self._chat.breaker.is_open

    async def aclose(self) -> None:
        await self._chat.aclose()

    async def analyze(self, inputs: AnalysisInput, card: JSONObject) -> Analysis:
        if not inputs.thinking and not inputs.tool_calls and not inputs.user_query:
            return _served(passthrough_analysis(card), self._backend)
        user = user_message(inputs)
        if not user:
            return _served(direct_analysis(card), self._backend)
        system = system_prompt(card)
        try:
            return await self._chat.run(lambda: self._ask(system, user, card))
        except ChatAnalysisError as exc:
            log.info("decision analysis fell back", extra={"reason": exc.outcome})
            return fallback_analysis(inputs, card, analyzer=self._backend, outcome=exc.outcome)
        except AnalysisError:
            return fallback_analysis(inputs, card, analyzer=self._backend, outcome="error")
        except Exception:  # a bug must not cost the trace: fall back, loudly
            log.exception("decision analysis failed unexpectedly")
            return fallback_analysis(inputs, card, analyzer=self._backend, outcome="error")

    async def _ask(self, system: str, user: str, card: JSONObject) -> Analysis:
        if self._backend == "anthropic":
            block = {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
            answer = await self._chat.anthropic(
                model=self._model, max_tokens=MAX_ANSWER_TOKENS, system=[block], user=user
            )
        else:
            answer = await self._chat.openai(
                model=self._model, max_tokens=MAX_ANSWER_TOKENS, system=system, user=user
            )
        if answer.cut:
            log.info("decision answer cut at max_tokens", extra={"backend": self._backend})
        return parse_answer(answer.text, card, analyzer=self._backend)


def _served(analysis: Analysis, backend: str) -> Analysis:
    """``analysis`` (passthrough or direct) as served by ``backend``, without a call."""
    return Analysis(
        alternatives=analysis.alternatives,
        selected=analysis.selected,
        reasoning=analysis.reasoning,
        values_applied=analysis.values_applied,
        analyzer=backend,
        outcome=analysis.outcome,
    )
