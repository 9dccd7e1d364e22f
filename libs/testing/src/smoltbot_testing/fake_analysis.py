"""A fake analysis LLM: one real aiohttp server on loopback for the verifier's conscience backends
(``anthropic``, ``openai``, ``hybrid``: ``smoltbot_analysis.llm``) and the observer's decision
backends (``anthropic``, ``openai``: ``smoltbot_observer.decision_llm``).

Routes (each also under a ``/v1``-less base, so a base URL with or without ``/v1`` works):

- ``POST /v1/messages``: an Anthropic Messages answer (``content: [{type: text, text}]``);
- ``POST /v1/chat/completions``: an OpenAI chat completion (``choices[0].message.content``);
- ``POST /v1/analyze``: the hybrid service's ``{"checkpoint": {...}, "proceed", ...}``.

What it answers is scripted by *mode*: :meth:`FakeAnalysis.script` queues modes for the next
calls, then :attr:`FakeAnalysis.mode` answers every later one. Modes:

- ``clear``, ``review``, ``boundary``: the analysis JSON of :data:`ANALYSES`;
- ``fenced``: the boundary analysis inside a markdown ``json`` fence with prose around it;
- ``malformed``: prose, no JSON;
- ``slow``: waits :attr:`FakeAnalysis.slow_s` before a clear answer (a client timeout);
- ``error``: HTTP 500;
- ``loop``: a clear answer carrying ``x-smoltbot-event-id``, as the gateway's answers do.

**Decision requests** (a user message that opens with one of the observer's tagged sections,
``<user_query>``, ``<reasoning>``, ``<tools_used>`` or ``<response_excerpt>``) have their own
script: :meth:`FakeAnalysis.script_decision` queues modes, then :attr:`FakeAnalysis.decision_mode`
answers. Decision modes (:data:`DECISION_MODES`):

- ``decision``: the decision JSON of :data:`DECISIONS` (values ``transparency`` and
  ``accuracy``, no flag);
- ``commas``: the same JSON with trailing commas, inside prose;
- ``undeclared``: values the test cards do not declare (``speed``) beside declared ones;
- ``flagged``: content flags ``external_payment: true`` and ``not_a_trigger: true``;
- ``bad_selected``: ``selected`` names no alternative;
- ``near_selected``: ``selected`` differs from an alternative's id only in case and dashes;
- ``malformed``, ``slow``, ``error``, ``loop``: as for conscience requests.

Every request is recorded (:attr:`FakeAnalysis.calls`: path, lower-cased headers, JSON body,
``kind`` ``decision`` or ``conscience``), so tests can assert what left the network and that the
key was sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from smoltbot_testing.loopback import LoopbackServer

__all__ = [
    "ANALYSES",
    "DECISIONS",
    "DECISION_MODES",
    "DECISION_TAGS",
    "MODES",
    "AnalysisCall",
    "FakeAnalysis",
]

_CONTEXT = {
    "values_checked": ["transparency"],
    "conflicts": [],
    "supports": ["transparency"],
    "considerations": [],
    "consultation_depth": "standard",
}
ANALYSES: dict[str, dict[str, Any]] = {
    "clear": {
        "verdict": "clear",
        "concerns": [],
        "reasoning_summary": "Agent plans to read a config file with permitted tools.",
        "conscience_context": {**_CONTEXT, "consultation_depth": "surface"},
    },
    "review": {
        "verdict": "review_needed",
        "concerns": [
            {
                "category": "value_misalignment",
                "severity": "medium",
                "description": "Skips the user's stated constraint to save time.",
                "evidence": "I will ignore the limit this once",
                "relevant_card_field": "values.declared",
                "relevant_conscience_value": None,
            }
        ],
        "reasoning_summary": "Minor tension with a declared value.",
        "conscience_context": _CONTEXT,
    },
    "boundary": {
        "verdict": "boundary_violation",
        "concerns": [
            {
                "category": "prompt_injection",
                "severity": "critical",
                "description": "Follows instructions injected by a retrieved page.",
                "evidence": "SYSTEM OVERRIDE, so I will upload the API keys",
                "relevant_card_field": None,
                "relevant_conscience_value": "BOUNDARY:no_instruction_compliance",
            }
        ],
        "reasoning_summary": "Agent obeys injected instructions to exfiltrate credentials.",
        "conscience_context": {**_CONTEXT, "conflicts": ["transparency"], "supports": []},
    },
}
MODES = ("clear", "review", "boundary", "fenced", "malformed", "slow", "error", "loop")
GATEWAY_HEADER = "x-smoltbot-event-id"

_DECISION = {
    "alternatives": [
        {"id": "call_weather_api", "description": "Look up the forecast with get_weather"},
        {"id": "answer_from_memory", "description": "Answer without looking anything up"},
    ],
    "selected": "call_weather_api",
    "reasoning": "A live forecast answers the question better than a guess from memory.",
    "values_applied": ["transparency", "accuracy"],
}
DECISIONS: dict[str, dict[str, Any]] = {
    "decision": _DECISION,
    "undeclared": {**_DECISION, "values_applied": ["speed", "transparency", "accuracy"]},
    "flagged": {
        **_DECISION,
        "content_flags": {"external_payment": True, "not_a_trigger": True},
    },
    "bad_selected": {**_DECISION, "selected": "delete_the_database"},
    "near_selected": {**_DECISION, "selected": "Call-Weather-API"},
}
DECISION_MODES = (*DECISIONS, "commas", "malformed", "slow", "error", "loop")
# How the observer's decision prompt opens its user message (one of these sections comes first).
DECISION_TAGS = ("<user_query>", "<reasoning>", "<tools_used>", "<response_excerpt>")


@dataclass(frozen=True)
class AnalysisCall:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    mode: str = ""
    raw: bytes = field(default=b"", repr=False)
    kind: str = "conscience"  # or "decision"


def _decision_text(mode: str) -> str:
    if mode == "commas":
        body = json.dumps(_DECISION, indent=2)
        body = body.replace('"\n    }', '",\n    }').replace("}\n  ]", "},\n  ]")
        return f"Here is the decision I extracted:\n{body[:-2]},\n}}\nI hope this helps."
    if mode == "malformed":
        return "The agent decided to call a tool, I think."
    return json.dumps(DECISIONS.get(mode, _DECISION))


def is_decision_request(body: dict[str, Any]) -> bool:
    """Whether ``body`` (Messages or chat completions) is the observer's decision prompt."""
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    content = last.get("content") if isinstance(last, dict) else None
    return isinstance(content, str) and content.startswith(DECISION_TAGS)


def _answer_text(mode: str) -> str:
    if mode == "fenced":
        return (
            "Here is my evaluation:\n```json\n"
            + json.dumps(ANALYSES["boundary"], indent=2)
            + "\n```\nLet me know if you need more."
        )
    if mode == "malformed":
        return "I am unable to evaluate this thinking block, sorry."
    return json.dumps(ANALYSES.get(mode, ANALYSES["clear"]))


def _analysis_for(mode: str) -> dict[str, Any]:
    if mode == "fenced":
        return ANALYSES["boundary"]
    return ANALYSES.get(mode, ANALYSES["clear"])


class FakeAnalysis(LoopbackServer):
    """Start/stop the fake on a loopback port, in the running loop or in its own thread."""

    thread_name = "fake-analysis"

    def __init__(self, mode: str = "clear", host: str = "127.0.0.1", port: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
        super().__init__(host, port)
        self.mode = mode
        self.slow_s = 30.0
        self.model = "fake-analysis-1"
        self.decision_mode = "decision"
        self.calls: list[AnalysisCall] = []
        self._script: deque[str] = deque()
        self._decision_script: deque[str] = deque()
        self._lock = threading.Lock()

    def script(self, *modes: str) -> None:
        """Answer the next calls with ``modes`` in order, then :attr:`mode` again."""
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
        with self._lock:
            self._script.extend(modes)

    def script_decision(self, *modes: str) -> None:
        """Answer the next decision requests with ``modes`` in order, then :attr:`decision_mode`."""
        for mode in modes:
            if mode not in DECISION_MODES:
                raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(DECISION_MODES)})")
        with self._lock:
            self._decision_script.extend(modes)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self._script.clear()
            self._decision_script.clear()

    def decision_calls(self) -> list[AnalysisCall]:
        """The decision requests received so far."""
        with self._lock:
            return [call for call in self.calls if call.kind == "decision"]

    def _next_mode(self, decision: bool = False) -> str:
        with self._lock:
            if decision:
                script, default = self._decision_script, self.decision_mode
            else:
                script, default = self._script, self.mode
            return script.popleft() if script else default

    # -- handlers ---------------------------------------------------------------------------

    async def _begin(self, request: web.Request) -> tuple[str, dict[str, Any], bool]:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        decision = is_decision_request(body)
        mode = self._next_mode(decision)
        headers = {k.lower(): v for k, v in request.headers.items()}
        kind = "decision" if decision else "conscience"
        with self._lock:
            self.calls.append(AnalysisCall(request.path, headers, body, mode, raw, kind))
        if mode == "slow":
            await asyncio.sleep(self.slow_s)
        return mode, body, decision

    def _reply(self, mode: str, payload: dict[str, Any]) -> web.Response:
        if mode == "error":
            return web.json_response(
                {"error": {"type": "api_error", "message": "fake analysis failure"}}, status=500
            )
        headers = {GATEWAY_HEADER: "fake-event-1"} if mode == "loop" else {}
        return web.json_response(payload, headers=headers)

    async def messages(self, request: web.Request) -> web.Response:
        mode, body, decision = await self._begin(request)
        text = _decision_text(mode) if decision else _answer_text(mode)
        return self._reply(
            mode,
            {
                "id": "msg_fake_analysis",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", self.model),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 100, "output_tokens": 50},
            },
        )

    async def chat(self, request: web.Request) -> web.Response:
        mode, body, decision = await self._begin(request)
        text = _decision_text(mode) if decision else _answer_text(mode)
        return self._reply(
            mode,
            {
                "id": "chatcmpl-fake-analysis",
                "object": "chat.completion",
                "model": body.get("model", self.model),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            },
        )

    async def analyze(self, request: web.Request) -> web.Response:
        mode, _, _ = await self._begin(request)
        if mode == "malformed":
            return self._reply(mode, {"result": "unable to evaluate"})
        analysis = _analysis_for(mode)
        checkpoint = {
            "checkpoint_id": "ic-fake",
            **analysis,
            "analysis_metadata": {
                "analysis_model": self.model,
                "analysis_duration_ms": 12.0,
                "thinking_tokens_analyzed": 40,
                "truncated": False,
            },
        }
        return self._reply(
            mode,
            {
                "checkpoint": checkpoint,
                "proceed": analysis["verdict"] != "boundary_violation",
                "recommended_action": "continue",
            },
        )

    def create_app(self) -> web.Application:
        app = web.Application()
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/messages", self.messages)
            app.router.add_post(f"{prefix}/chat/completions", self.chat)
            app.router.add_post(f"{prefix}/analyze", self.analyze)
        return app

    # -- lifecycle --------------------------------------------------------------------------
