"""The LLM conscience-analysis backends (architecture §6): ``anthropic``, ``openai``, ``hybrid``.

Each turns an :class:`AnalysisRequest` into the analysis JSON text ``aip.check_integrity`` parses:

- ``anthropic``: ``POST {base}/v1/messages`` with ``x-api-key`` and ``anthropic-version``, body
  ``{model, max_tokens, system, messages: [user]}``; the answer is the first ``text`` block. Any
  Messages-compatible server works.
- ``openai``: ``POST {base}/v1/chat/completions`` (``Authorization: Bearer`` when a key is set),
  body ``{model, messages: [system, user], max_tokens, temperature: 0}``; the answer is
  ``choices[0].message.content``. vLLM, Ollama, llama.cpp's server and OpenAI itself work.
- ``hybrid``: ``POST {base}/v1/analyze`` (key as ``Authorization: Bearer`` and
  ``X-Mnemom-Api-Key``) with only the thinking and the card/conscience context (see
  :class:`HybridAnalyzer`); the remote service builds the prompt and answers with a checkpoint.

The prompt is the AIP package's (``build_conscience_prompt``, protocols.md §4.3). A trailing
``/v1`` on the base URL is accepted (``http://vllm:8000/v1`` and ``http://vllm:8000`` are the same).

Every backend holds one :class:`~smoltbot_analysis._chat.ChatClient`, the HTTP chat layer it
shares with the observer's decision analyzer: one long-lived ``httpx.AsyncClient`` (close it with
:meth:`aclose`), a timeout per call and a :class:`~smoltbot_resilience.CircuitBreaker`: after
``breaker_threshold`` consecutive failures ``analyze`` raises ``AnalysisError("circuit open")``
at once, until ``breaker_cooldown_s`` have passed (half-open: the next success closes it).
Timeouts, HTTP errors (any status >= 400, 429 and 5xx included), connection errors and unusable
answers are :class:`AnalysisError` s; an answer carrying the gateway's ``x-smoltbot-event-id``
header means the base URL points at this gateway: refused, and the circuit opens at once (see
``_selfloop``).

Errors and logs never carry the API key, the prompt or the URL's userinfo.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from smoltbot_resilience import CircuitBreaker

from smoltbot_analysis._chat import (
    ANTHROPIC_PATH,
    ANTHROPIC_VERSION,
    DEFAULT_BREAKER_COOLDOWN_S,
    DEFAULT_BREAKER_THRESHOLD,
    OPENAI_PATH,
    OUTCOMES,
    AnalysisHooks,
    ChatAnswer,
    ChatClient,
    ChatError,
    NoHooks,
    Outcome,
)
from smoltbot_analysis._prompt import (
    DEFAULT_TOKEN_BUDGET,
    MAX_ANSWER_TOKENS,
    build_prompt,
    extract_json,
)
from smoltbot_analysis.base import AnalysisRequest, AnalysisResult

log = logging.getLogger(__name__)

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BREAKER_COOLDOWN_S",
    "DEFAULT_BREAKER_THRESHOLD",
    "HYBRID_KEY_HEADER",
    "OUTCOMES",
    "AnalysisHooks",
    "AnthropicAnalyzer",
    "HttpAnalyzer",
    "HybridAnalyzer",
    "NoHooks",
    "OpenAIAnalyzer",
    "Outcome",
]

HYBRID_KEY_HEADER = "X-Mnemom-Api-Key"
TASK_CONTEXT_CHARS = 200
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class _PromptCounts(Protocol):
    """What a result records of the prompt: ``aip.BuiltPrompt`` has both."""

    @property
    def truncated(self) -> bool: ...

    @property
    def analyzed_tokens(self) -> int: ...


def _analysis_object(text: str) -> dict[str, Any]:
    """``text`` parsed the way ``check_integrity`` will (trailing commas dropped), as a dict with
    a ``verdict``; a :class:`ChatError` otherwise. Full validation stays in the AIP package."""
    try:
        parsed = json.loads(_TRAILING_COMMA.sub(r"\1", text))
    except ValueError:
        raise ChatError("invalid", "the analysis answer holds no JSON object") from None
    if not isinstance(parsed, dict) or "verdict" not in parsed:
        raise ChatError("invalid", "the analysis answer is not an analysis object (no verdict)")
    return parsed


class HttpAnalyzer(abc.ABC):
    """What the three HTTP backends share: a :class:`~smoltbot_analysis._chat.ChatClient` (client,
    timeout, breaker, self-loop check, hooks) and the result they build."""

    name: str = ""
    path: str = ""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout_s: float = 8.0,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S,
        hooks: AnalysisHooks | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
    ) -> None:
        self._chat = ChatClient(
            name=self.name,
            base_url=base_url,
            path=self.path,
            api_key=api_key,
            timeout_s=timeout_s,
            breaker_threshold=breaker_threshold,
            breaker_cooldown_s=breaker_cooldown_s,
            hooks=hooks,
            transport=transport,
            clock=clock,
        )
        self._api_key = api_key or None
        self._model = model
        self._token_budget = token_budget

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(model={self._model!r})"

    @property
    def backend(self) -> str:
        return self.name

    @property
    def model(self) -> str:
        return self._model

    @property
    def url(self) -> str:
        """The full endpoint URL this backend posts to."""
        return self._chat.url

    @property
    def breaker(self) -> CircuitBreaker:
        return self._chat.breaker

    async def aclose(self) -> None:
        """Close the HTTP client (its pooled connections)."""
        await self._chat.aclose()

    async def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        """One analysis; every failure is an ``AnalysisError`` (a ``ChatAnalysisError`` naming its
        metrics outcome)."""
        started = time.perf_counter()
        return await self._chat.run(lambda: self._call(request, started))

    @abc.abstractmethod
    async def _call(self, request: AnalysisRequest, started: float) -> AnalysisResult:
        """Ask the server once (inside the breaker and timeout of :meth:`analyze`)."""

    def _result(
        self, answer: str, model: object, started: float, prompt: _PromptCounts
    ) -> AnalysisResult:
        text = extract_json(answer)
        _analysis_object(text)
        return AnalysisResult(
            text=text,
            model=model if isinstance(model, str) and model else self._model,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            tokens_analyzed=prompt.analyzed_tokens,
            truncated=prompt.truncated,
        )

    def _answered(
        self, answer: ChatAnswer, started: float, prompt: _PromptCounts
    ) -> AnalysisResult:
        if answer.cut:
            log.warning("analysis answer cut at max_tokens", extra={"backend": self.name})
        return self._result(answer.text, answer.model, started, prompt)


class AnthropicAnalyzer(HttpAnalyzer):
    """Anthropic Messages API (or any compatible server)."""

    name = "anthropic"
    path = ANTHROPIC_PATH

    async def _call(self, request: AnalysisRequest, started: float) -> AnalysisResult:
        prompt = build_prompt(request, self._token_budget)
        answer = await self._chat.anthropic(
            model=self._model, max_tokens=MAX_ANSWER_TOKENS, system=prompt.system, user=prompt.user
        )
        return self._answered(answer, started, prompt)


class OpenAIAnalyzer(HttpAnalyzer):
    """Chat completions (OpenAI, vLLM, Ollama, llama.cpp server, ...)."""

    name = "openai"
    path = OPENAI_PATH

    async def _call(self, request: AnalysisRequest, started: float) -> AnalysisResult:
        prompt = build_prompt(request, self._token_budget)
        answer = await self._chat.openai(
            model=self._model, max_tokens=MAX_ANSWER_TOKENS, system=prompt.system, user=prompt.user
        )
        return self._answered(answer, started, prompt)


@dataclasses.dataclass(frozen=True, slots=True)
class _HybridPrompt:
    truncated: bool
    analyzed_tokens: int


class HybridAnalyzer(HttpAnalyzer):
    """A remote analysis service: ``POST {base}/v1/analyze``; no Anthropic key needed.

    Request (JSON), and nothing else: ``thinking`` (the thinking block, untruncated),
    ``card`` (the AIP card view: card_id, values, autonomy_envelope, agent_description),
    ``conscience_values`` (``[{type, content, id}]``), ``task_context`` (the card's agent
    description, at most 200 characters — never the user's request), ``window_context``
    (``[{checkpoint_id, verdict, reasoning_summary}]``) and ``store_checkpoint: false``. No prompt,
    response, agent id, session id or provider key leaves the network.

    Answer (JSON): ``{"checkpoint": {verdict, concerns, reasoning_summary, conscience_context,
    analysis_metadata?}, ...}`` — the reference service's shape (protocols.md §6) — or the
    analysis object itself at the top level. Its ``proceed``/``recommended_action`` are ignored:
    the local verdict gate decides.
    """

    name = "hybrid"
    path = "/v1/analyze"

    def request_body(self, request: AnalysisRequest) -> dict[str, Any]:
        """The one JSON body sent (public so that tests can pin what leaves the network)."""
        description = request.card.agent_description
        return {
            "thinking": request.thinking,
            "card": dataclasses.asdict(request.card),
            "conscience_values": [dataclasses.asdict(v) for v in request.conscience_values],
            "task_context": description[:TASK_CONTEXT_CHARS] if description else None,
            "window_context": [
                {
                    "checkpoint_id": w.checkpoint_id,
                    "verdict": w.verdict,
                    "reasoning_summary": w.reasoning_summary,
                }
                for w in request.window
            ],
            "store_checkpoint": False,
        }

    async def _call(self, request: AnalysisRequest, started: float) -> AnalysisResult:
        headers: dict[str, str] = {}
        if self._api_key:
            headers = {"authorization": f"Bearer {self._api_key}", HYBRID_KEY_HEADER: self._api_key}
        data = await self._chat.post(headers, self.request_body(request))
        checkpoint = data.get("checkpoint", data)
        if not isinstance(checkpoint, dict):
            raise ChatError("invalid", "the hybrid analysis answer has no checkpoint object")
        analysis = {
            key: checkpoint[key]
            for key in ("verdict", "concerns", "reasoning_summary", "conscience_context")
            if key in checkpoint
        }
        metadata = checkpoint.get("analysis_metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        analyzed = metadata.get("thinking_tokens_analyzed")
        prompt = _HybridPrompt(
            truncated=metadata.get("truncated") is True,
            analyzed_tokens=(
                analyzed
                if isinstance(analyzed, int) and analyzed > 0
                else math.ceil(len(request.thinking) / 4)
            ),
        )
        return self._result(json.dumps(analysis), metadata.get("analysis_model"), started, prompt)
