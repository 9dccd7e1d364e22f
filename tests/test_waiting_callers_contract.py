"""What the gateway and the verifier must agree on for waiting callers (architecture §3.3),
though services share no code: the reply stream's name, the marker of a failed analysis, and
the timeouts (the gateway waits longer than the verifier analyses, by a margin for the hops)."""

from __future__ import annotations

from smoltbot_config import load_settings
from smoltbot_contracts.streams import reply_key, stream_key
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.waiting import ANALYSIS_FAILED as GATEWAY_ANALYSIS_FAILED
from smoltbot_gateway.waiting import reply_stream as gateway_reply_stream
from smoltbot_verifier.handlers import reply_stream as verifier_reply_stream
from smoltbot_verifier.integrity import ANALYSIS_FAILED as VERIFIER_ANALYSIS_FAILED
from smoltbot_verifier.settings import VerifierSettings

HOP_MARGIN_MS = 1000  # docs/operations.md: the AIP timeout exceeds the analysis timeout by >= 1 s


def test_a_failed_analysis_is_marked_the_same_way_on_both_sides() -> None:
    assert GATEWAY_ANALYSIS_FAILED == VERIFIER_ANALYSIS_FAILED


def test_the_reply_stream_the_gateway_reads_is_the_one_the_verifier_writes() -> None:
    prefix, instance = "smoltbot:", "gw-7"
    logical = gateway_reply_stream(instance)
    assert verifier_reply_stream(logical, prefix) == logical
    assert stream_key(prefix, verifier_reply_stream(logical, prefix)) == reply_key(prefix, instance)


def test_the_default_wait_outlasts_the_default_analysis_by_the_margin() -> None:
    gateway = load_settings(GatewaySettings, {})
    verifier = load_settings(VerifierSettings, {})
    assert gateway.aip_timeout_ms >= verifier.analysis_timeout_ms + HOP_MARGIN_MS
