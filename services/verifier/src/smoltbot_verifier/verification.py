"""AAP verification of one AP-Trace: the pure function lives in ``smoltbot_analysis.aap_verify``
(shared with the api's re-verification); this module keeps the verifier's import path."""

from __future__ import annotations

from smoltbot_analysis.aap_verify import (
    VERIFICATION_ERROR,
    trace_dict,
    verification_failure,
    verify,
)

__all__ = ["VERIFICATION_ERROR", "trace_dict", "verification_failure", "verify"]
