"""The HTTP chat layer every LLM backend shares: one client, one breaker, one way to fail.

Used by the verifier's conscience analyzers (:mod:`smoltbot_analysis.llm`) and the observer's
decision analyzer. A :class:`ChatClient` posts to one endpoint of one analysis server and owns:

- a long-lived ``httpx.AsyncClient`` (close it with :meth:`ChatClient.aclose`), redirects off;
- a per-call timeout (``asyncio.timeout`` around the whole call, answer parsing included);
- a :class:`~smoltbot_resilience.CircuitBreaker`: after ``breaker_threshold`` consecutive failures
  calls are refused at once (``circuit open``) until ``breaker_cooldown_s`` have passed;
- the run-time self-loop check: an answer carrying the gateway's ``x-smoltbot-event-id`` header
  fails with outcome ``self_loop`` and opens the circuit at once (see ``_selfloop``);
- the metrics hooks (:class:`AnalysisHooks`): one ``call`` report per call, one ``circuit``
  report per breaker change.

Every failure becomes a :class:`ChatAnalysisError` (an
:class:`~smoltbot_analysis.base.AnalysisError` carrying its metrics outcome) whose message never
holds the key, the prompt or the URL (which may carry userinfo). :meth:`ChatClient.anthropic` and
:meth:`ChatClient.openai` post the two prompt shapes and return the answer text; the caller turns
that text into its own result inside :meth:`ChatClient.run`, so an unusable answer counts as a
failure too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import httpx
from smoltbot_resilience import CircuitBreaker

from smoltbot_analysis._selfloop import GATEWAY_EVENT_HEADER, SELF_LOOP_MESSAGE
from smoltbot_analysis.base import AnalysisError

log = logging.getLogger(__name__)

T = TypeVar("T")

Outcome = Literal["ok", "timeout", "http_error", "invalid", "circuit_open", "self_loop"]
OUTCOMES: tuple[Outcome, ...] = (
    "ok",
    "timeout",
    "http_error",
    "invalid",
    "circuit_open",
    "self_loop",
)

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
# protocols.md §4.3: smoltbot's reference opened after 5 consecutive failures for 60 s.
DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN_S = 60.0


class AnalysisHooks(Protocol):
    """Where a backend reports what it did (each service turns this into its metrics)."""

    def call(self, backend: str, outcome: Outcome, seconds: float) -> None:
        """One call ended with ``outcome`` after ``seconds``."""
        ...

    def circuit(self, backend: str, is_open: bool) -> None:
        """The backend's circuit opened (True) or closed (False); also once at creation."""
        ...


class NoHooks:
    """Reports nothing."""

    def call(self, backend: str, outcome: Outcome, seconds: float) -> None:
        pass

    def circuit(self, backend: str, is_open: bool) -> None:
        pass


class ChatError(Exception):
    """Raise inside :meth:`ChatClient.run` for a failed call: its metrics outcome and a message
    safe to show an operator (no key, prompt or URL)."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome: Outcome = outcome
        self.message = message


class ChatAnalysisError(AnalysisError):
    """What :meth:`ChatClient.run` raises for every failure, with the outcome the hooks got."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome: Outcome = outcome


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """The text of one answer, the model the server named (None when it named none), and whether
    the answer was cut at the token limit."""

    text: str
    model: str | None
    cut: bool = False


def endpoint(base_url: str, path: str) -> str:
    """``base_url`` + ``path``; a trailing ``/v1`` on the base is accepted when ``path`` has one."""
    base = base_url.strip().rstrip("/")
    return (base.removesuffix("/v1") if path.startswith("/v1/") else base) + path


class ChatClient:
    """One analysis endpoint: client, timeout, breaker, self-loop check and hooks."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        path: str,
        api_key: str | None,
        timeout_s: float,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S,
        hooks: AnalysisHooks | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        purpose: str = "analysis",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.name = name
        self.url = endpoint(base_url, path)
        self.timeout_s = timeout_s
        self._api_key = api_key or None
        self._purpose = purpose
        self._hooks: AnalysisHooks = hooks if hooks is not None else NoHooks()
        self.breaker = CircuitBreaker(
            threshold=breaker_threshold,
            cooldown_s=breaker_cooldown_s,
            clock=clock,
            on_change=lambda is_open: self._hooks.circuit(self.name, is_open),
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
            headers={"content-type": "application/json", "accept": "application/json"},
        )
        self._hooks.circuit(self.name, False)

    def __repr__(self) -> str:  # never the key, never the URL
        return f"ChatClient(name={self.name!r})"

    async def aclose(self) -> None:
        """Close the HTTP client (its pooled connections)."""
        await self._client.aclose()

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` under the breaker and the timeout; a failure is a :class:`ChatAnalysisError`.

        A cancellation (the caller's own deadline, or shutdown) counts as a ``timeout`` failure
        and propagates.
        """
        if not self.breaker.allow():
            self._hooks.call(self.name, "circuit_open", 0.0)
            raise ChatAnalysisError("circuit_open", "circuit open")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except ChatError as failure:
            self._failed(failure.outcome, started)
            raise ChatAnalysisError(failure.outcome, self.safe(failure.message)) from None
        except (TimeoutError, httpx.TimeoutException):
            self._failed("timeout", started)
            raise ChatAnalysisError("timeout", f"no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:  # connection refused, reset, protocol error...
            self._failed("http_error", started)
            # The exception text may name the URL (and its userinfo): only its type is kept.
            message = f"request failed ({type(exc).__name__})"
            raise ChatAnalysisError("http_error", message) from None
        except asyncio.CancelledError:
            self._failed("timeout", started)
            raise
        self.breaker.success()
        self._hooks.call(self.name, "ok", time.perf_counter() - started)
        return result

    def _failed(self, outcome: Outcome, started: float) -> None:
        if outcome == "self_loop":
            # Every answer would loop through the gateway: open at once, not after N tries.
            for _ in range(self.breaker.threshold):
                self.breaker.failure()
        else:
            self.breaker.failure()
        self._hooks.call(self.name, outcome, time.perf_counter() - started)
        log.warning(
            "%s call failed",
            self._purpose,
            extra={"backend": self.name, "outcome": outcome, "circuit_open": self.breaker.is_open},
        )

    def safe(self, message: str) -> str:
        """``message`` with the key masked (in case a server echoed it)."""
        return message.replace(self._api_key, "***") if self._api_key else message

    async def post(self, headers: Mapping[str, str], body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON; the answer's JSON object, or a :class:`ChatError`."""
        response = await self._client.post(self.url, headers=dict(headers), json=body)
        if GATEWAY_EVENT_HEADER in response.headers:
            raise ChatError("self_loop", SELF_LOOP_MESSAGE)
        if response.status_code >= 400:
            raise ChatError(
                "http_error", f"HTTP {response.status_code} from the {self.name} analysis server"
            )
        try:
            data = response.json()
        except ValueError:
            raise ChatError("invalid", f"{self.name} analysis server: non-JSON answer") from None
        if not isinstance(data, dict):
            raise ChatError("invalid", f"{self.name} analysis server: no JSON object")
        return data

    async def anthropic(
        self,
        *,
        model: str,
        max_tokens: int,
        system: str | list[dict[str, Any]],
        user: str,
    ) -> ChatAnswer:
        """Messages API: ``x-api-key`` (when set) and ``anthropic-version``; the first ``text``
        block is the answer."""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        data = await self.post(
            headers,
            {
                "model": model,
                "max_tokens": max_tokens,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            },
        )
        blocks = data.get("content")
        texts = [
            b.get("text")
            for b in (blocks if isinstance(blocks, list) else [])
            if isinstance(b, dict) and b.get("type") == "text"
        ]
        answer = next((t for t in texts if isinstance(t, str)), "")
        if not answer.strip():
            raise ChatError("invalid", f"the {self.name} analysis answer has no text block")
        named = data.get("model")
        return ChatAnswer(
            text=answer,
            model=named if isinstance(named, str) and named else None,
            cut=data.get("stop_reason") == "max_tokens",
        )

    async def openai(self, *, model: str, max_tokens: int, system: str, user: str) -> ChatAnswer:
        """Chat completions: ``Authorization: Bearer`` when a key is set; ``choices[0].message.
        content`` is the answer."""
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        data = await self.post(
            headers,
            {
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "max_tokens": max_tokens,
                "temperature": 0,
                "stream": False,
            },
        )
        choices = data.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        answer = message.get("content") if isinstance(message, dict) else None
        if not isinstance(answer, str) or not answer.strip():
            raise ChatError("invalid", f"the {self.name} analysis answer has no message content")
        named = data.get("model")
        return ChatAnswer(
            text=answer,
            model=named if isinstance(named, str) and named else None,
            cut=isinstance(first, dict) and first.get("finish_reason") == "length",
        )
