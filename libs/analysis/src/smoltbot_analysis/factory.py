"""Backend selection by name (``SMOLTBOT_ANALYZER_BACKEND``).

Only ``rules`` exists today; ``anthropic``, ``openai`` and ``hybrid`` are reserved names so that a
configuration naming them fails clearly at start instead of silently falling back to rules.
"""

from __future__ import annotations

from smoltbot_analysis.base import Analyzer
from smoltbot_analysis.rules import RulesIntegrityAnalyzer

BACKENDS = ("rules",)
PLANNED_BACKENDS = ("anthropic", "openai", "hybrid")


def make_analyzer(backend: str = "rules") -> Analyzer:
    """The analyzer for ``backend``; ``ValueError`` naming the choices for anything else."""
    name = backend.strip().lower()
    if name in ("", "rules"):
        return RulesIntegrityAnalyzer()
    if name in PLANNED_BACKENDS:
        raise ValueError(f"analyzer backend {name!r} is not implemented yet (available: rules)")
    raise ValueError(f"unknown analyzer backend {backend!r} (available: {', '.join(BACKENDS)})")
