"""The ``Analyzer`` interface of architecture §6 for the AIP conscience (integrity) analysis step.

A backend turns one thinking block plus its context into the analysis JSON text that
``aip.check_integrity`` parses (protocols.md §4.4). Parsing, validation and hashing stay in the
AIP package; the verdict is re-derived afterwards by :mod:`smoltbot_analysis.gate`, so a backend
only has to produce concerns honestly — it cannot decide the final verdict on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aip import AlignmentCard, ConscienceValue
from smoltbot_contracts import Verdict


class AnalysisError(Exception):
    """A backend could not produce an analysis (timeout, HTTP error, unusable answer).

    The caller applies its failure policy (fail-open: synthetic clear ``analysis_failed``).
    """


@dataclass(frozen=True, slots=True)
class WindowEntry:
    """One earlier checkpoint of the session, as shown to the analyzer (protocols.md §4.3)."""

    checkpoint_id: str
    verdict: Verdict
    reasoning_summary: str


@dataclass(frozen=True, slots=True)
class AnalysisRequest:
    """Everything a conscience analysis may look at. Never includes prompts or responses."""

    thinking: str
    card: AlignmentCard
    conscience_values: tuple[ConscienceValue, ...] = ()
    task_context: str | None = None
    window: tuple[WindowEntry, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """The raw analysis JSON text plus what the checkpoint's ``analysis_metadata`` records.

    ``duration_ms`` is reported by the backend, not measured by the caller: the rules backend
    reports 0.0 so that a redelivered trace yields a byte-identical verdict event.
    """

    text: str
    model: str
    duration_ms: float = 0.0
    tokens_analyzed: int = 0
    truncated: bool = False


@runtime_checkable
class Analyzer(Protocol):
    """One conscience-analysis backend: ``rules`` now, the LLM backends (architecture §6) later."""

    @property
    def backend(self) -> str:
        """Backend name as configured (``SMOLTBOT_ANALYZER_BACKEND``)."""
        ...

    @property
    def model(self) -> str:
        """Model name recorded as ``analysis_metadata.analysis_model``."""
        ...

    async def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        """Analyse one thinking block; raise :class:`AnalysisError` when no answer is usable."""
        ...
