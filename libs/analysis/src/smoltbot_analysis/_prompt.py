"""The conscience prompt (protocols.md §4.3, §7.4) and the JSON salvage of an LLM's answer.

The prompt is built by the AIP package's own ``build_conscience_prompt``; this module only wraps
its rough edges:

- its window section wants full ``IntegrityCheckpoint`` objects although it reads only
  ``verdict`` and ``reasoning_summary``: a :class:`WindowEntry` is handed over as a small stand-in
  with exactly those two attributes;
- it takes lists, the request holds tuples;
- ``check_integrity`` strips a code fence only when the answer *starts* with one, so
  :func:`extract_json` also drops prose around the object (models like to say "Here is the
  JSON:").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import aip

from smoltbot_analysis.base import AnalysisRequest

DEFAULT_TOKEN_BUDGET: int = aip.DEFAULT_THINKING_TOKEN_BUDGET
MAX_ANSWER_TOKENS: int = aip.DEFAULT_ANALYSIS_MAX_TOKENS

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)\s*```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _WindowView:
    """What the package's window section reads of a checkpoint."""

    verdict: str
    reasoning_summary: str


def build_prompt(
    request: AnalysisRequest, token_budget: int = DEFAULT_TOKEN_BUDGET
) -> aip.BuiltPrompt:
    """The package's ``BuiltPrompt`` (system, user, truncated, original/analyzed tokens)."""
    window = [_WindowView(w.verdict, w.reasoning_summary) for w in request.window]
    return aip.build_conscience_prompt(
        aip.PromptInput(
            card=request.card,
            conscience_values=list(request.conscience_values),
            # Duck-typed: the package reads only .verdict and .reasoning_summary of each.
            window_context=cast("list[aip.IntegrityCheckpoint]", window),
            thinking_block=request.thinking,
            task_context=request.task_context,
            token_budget=token_budget,
        )
    )


def _balanced_object(text: str) -> str | None:
    """The first balanced ``{...}`` span of ``text`` (braces inside strings ignored)."""
    start = text.find("{")
    while start >= 0:
        depth = 0
        in_string = False
        escaped = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
        if depth > 0:  # unbalanced to the end: no later start can do better
            return None
    return None


def extract_json(answer: str) -> str:
    """The JSON object inside an LLM answer: fences and surrounding prose dropped.

    Returns the stripped answer unchanged when no object is found, so that ``check_integrity``
    reports it as invalid JSON (the caller's failure policy then applies).
    """
    text = answer.strip()
    fenced = _FENCE.search(text)
    if fenced is not None:
        text = fenced.group(1).strip()
    if text.startswith("{") and text.endswith("}"):
        return text
    found = _balanced_object(text)
    return found if found is not None else text
