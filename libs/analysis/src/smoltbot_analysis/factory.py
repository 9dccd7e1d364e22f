"""Backend selection by name (``SMOLTBOT_ANALYZER_BACKEND``) and the settings each one needs.

========== ==================================== ================== ===========================
backend    base URL                             API key            model
- ``rules``: nothing (deterministic, in process).
- ``anthropic``: base URL (default ``https://api.anthropic.com``), API key (required), model
  (default ``claude-haiku-4-5-20251001``).
- ``openai``: base URL (required: vLLM, Ollama, llama.cpp server, OpenAI), API key (optional, sent
  as a Bearer token), model (required: the served model's name).
- ``hybrid``: base URL (required: the remote ``/v1/analyze`` service), API key (required), model
  (optional: only recorded as the analysis model when the service names none).

A base URL that points at this gateway is refused (see :func:`gateway_url_problem`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from smoltbot_analysis._selfloop import gateway_url_problem
from smoltbot_analysis.base import Analyzer
from smoltbot_analysis.llm import (
    DEFAULT_BREAKER_COOLDOWN_S,
    DEFAULT_BREAKER_THRESHOLD,
    AnalysisHooks,
    AnthropicAnalyzer,
    HttpAnalyzer,
    HybridAnalyzer,
    OpenAIAnalyzer,
)
from smoltbot_analysis.rules import RulesIntegrityAnalyzer

BACKENDS = ("rules", "anthropic", "openai", "hybrid")
LLM_BACKENDS = ("anthropic", "openai", "hybrid")
DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5-20251001"
DEFAULT_HYBRID_MODEL = "hybrid"

# The settings' names, so that an error names the variable an operator sets.
BASE_URL_VAR = "SMOLTBOT_ANALYZER_BASE_URL"
API_KEY_VAR = "SMOLTBOT_ANALYZER_API_KEY"
MODEL_VAR = "SMOLTBOT_ANALYZER_MODEL"

_CLASSES: dict[str, type[HttpAnalyzer]] = {
    "anthropic": AnthropicAnalyzer,
    "openai": OpenAIAnalyzer,
    "hybrid": HybridAnalyzer,
}


def backend_problems(
    backend: str, *, base_url: str | None, api_key: str | None, model: str | None
) -> dict[str, str]:
    """``{variable: reason}`` for what ``backend`` lacks or refuses; empty when it can start.

    Reasons never echo a value (a URL may hold a password, a key is a secret).
    """
    name = backend.strip().lower()
    if name not in LLM_BACKENDS:
        return {}
    problems: dict[str, str] = {}
    if base_url:
        if (why := gateway_url_problem(base_url)) is not None:
            problems[BASE_URL_VAR] = why
    elif name != "anthropic":
        problems[BASE_URL_VAR] = f"required for the {name} backend"
    if not api_key and name in ("anthropic", "hybrid"):
        also = " (or ANTHROPIC_API_KEY)" if name == "anthropic" else ""
        problems[API_KEY_VAR] = f"required for the {name} backend{also}"
    if not model and name == "openai":
        problems[MODEL_VAR] = "required for the openai backend (the served model's name)"
    return problems


def make_analyzer(
    backend: str = "rules",
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    timeout_s: float = 8.0,
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
    breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S,
    hooks: AnalysisHooks | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Analyzer:
    """The analyzer for ``backend``; ``ValueError`` naming the missing or refused setting.

    LLM backends hold an HTTP client: close them with :func:`aclose_analyzer`.
    """
    name = backend.strip().lower()
    if name in ("", "rules"):
        return RulesIntegrityAnalyzer()
    if name not in LLM_BACKENDS:
        raise ValueError(f"unknown analyzer backend {backend!r} (available: {', '.join(BACKENDS)})")
    problems = backend_problems(name, base_url=base_url, api_key=api_key, model=model)
    if problems:
        detail = "; ".join(f"{var} {why}" for var, why in problems.items())
        raise ValueError(f"analyzer backend {name}: {detail}")
    default_model = DEFAULT_ANTHROPIC_MODEL if name == "anthropic" else DEFAULT_HYBRID_MODEL
    return _CLASSES[name](
        base_url=base_url or DEFAULT_ANTHROPIC_URL,
        api_key=api_key,
        model=model or default_model,
        timeout_s=timeout_s,
        breaker_threshold=breaker_threshold,
        breaker_cooldown_s=breaker_cooldown_s,
        hooks=hooks,
        transport=transport,
        clock=clock,
    )


async def aclose_analyzer(analyzer: Analyzer) -> None:
    """Release what ``analyzer`` holds (the LLM backends' HTTP client); no-op for ``rules``."""
    if isinstance(analyzer, HttpAnalyzer):
        await analyzer.aclose()
