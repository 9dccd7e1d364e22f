"""Shared by the analysis tests: running an analysis text through the AIP package's checker."""

from __future__ import annotations

import aip


def check_integrity(
    analysis_response: str,
    *,
    thinking_hash: str = "0" * 64,
    tokens: int = 10,
    analysis_model: str = "m",
    analysis_duration_ms: float = 0.0,
) -> aip.IntegrityCheckpoint:
    """``aip.check_integrity`` of one analysis for a fixed agent, card, session and window."""
    return aip.check_integrity(
        aip.CheckIntegrityInput(
            analysis_response=analysis_response,
            thinking=aip.ThinkingInput(
                hash=thinking_hash,
                provider="anthropic",
                model="m",
                tokens_original=tokens,
                tokens_analyzed=tokens,
                truncated=False,
                confidence=1.0,
            ),
            agent_id="a",
            card_id="c",
            session_id="s",
            window_position=aip.WindowPosition(index=0, window_size=1),
            analysis_model=analysis_model,
            analysis_duration_ms=analysis_duration_ms,
        )
    )
