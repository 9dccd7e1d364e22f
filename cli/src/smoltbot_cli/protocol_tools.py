"""Offline checks for card authors: ``smoltbot aap verify``, ``smoltbot aap drift`` and
``smoltbot aip check`` (docs/operations.md, "Card authoring: offline checks").

They read local JSON files only — no Redis, no database, no network, no LLM — and run the same
protocol code the services run: the AAP package's ``verify_trace`` / ``detect_drift`` at dict
level, and for AIP the verifier's own ``checkpoint_from_analysis`` (the AIP package's parser, then
our verdict gate). ``--org-template`` merges an org template into the card first, with the rules
the verifier applies at resolution (``smoltbot_analysis.cards.merge_org_template``).

Cards may have either shape (protocols.md §1.1): legacy (``autonomy_envelope``,
``audit_commitment``) or unified (``autonomy``, ``audit``); the AAP package reads both.

Every command prints one JSON document on stdout. Exit codes:

* 0 — the check ran and passed: the trace is verified (warnings allowed), no drift alert, or
  the checkpoint verdict is ``clear``;
* 1 — the check ran and failed: violations, at least one drift alert, or a ``review_needed`` /
  ``boundary_violation`` verdict (the JSON says which);
* 2 — bad input: a missing or unreadable file, text that is not JSON, JSON of the wrong shape,
  or an analysis response the AIP package rejects. One line on stderr, never a traceback.

Differences from the services, on purpose: ``aap verify`` judges card expiry against the clock
(the SDK's rule; the verifier uses the exchange's completion time) and reports the SDK's result
as is, without the verifier's ``selected_not_in_alternatives`` warning.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import aap
import click
import msgspec
from smoltbot_analysis import AnalysisResult
from smoltbot_analysis.cards import merge_org_template
from smoltbot_contracts import ExchangeMeta, TraceV1, ids
from smoltbot_verifier.cards import ResolvedCard
from smoltbot_verifier.integrity import checkpoint_from_analysis

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

OFFLINE_EXCHANGE_ID = "00000000-0000-7000-8000-000000000000"
"""The exchange id ``aip check`` derives its checkpoint id from (no exchange exists offline)."""


class BadInputError(Exception):
    """A file the command cannot use; the message is the one line printed."""


def _fail(message: str) -> NoReturn:
    click.echo(f"smoltbot: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_json(path: str) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def _need(condition: bool, path: str, what: str, problem: str) -> None:
    if not condition:
        raise BadInputError(f"{path}: not {what}: {problem}")


def _as_object(value: Any) -> dict[str, Any]:
    checked: dict[str, Any] = value
    return checked


def check_card(card: Any, path: str) -> dict[str, Any]:
    """An alignment card of either shape, checked for what the protocol code reads."""
    what = "an alignment card"
    _need(isinstance(card, dict), path, what, f"expected a JSON object, got {_kind(card)}")
    _need(
        isinstance(card.get("card_id"), str) and bool(card["card_id"]),
        path,
        what,
        "card_id must be a non-empty string",
    )
    values = card.get("values")
    _need(isinstance(values, dict), path, what, "values must be an object")
    _need(isinstance(values.get("declared"), list), path, what, "values.declared must be a list")
    section = "autonomy" if "autonomy" in card else "autonomy_envelope"
    envelope = card.get(section)
    _need(
        isinstance(envelope, dict),
        path,
        what,
        "autonomy_envelope (legacy) or autonomy (unified) must be an object",
    )
    for field in ("bounded_actions", "forbidden_actions", "escalation_triggers"):
        value = envelope.get(field)
        _need(value is None or isinstance(value, list), path, what, f"{section}.{field} not a list")
    return _as_object(card)


def check_trace(trace: Any, path: str, where: str = "") -> dict[str, Any]:
    """An AP-Trace as the AAP package needs it (protocols.md §2.1)."""
    what = f"an AP-Trace{where}"
    _need(isinstance(trace, dict), path, what, f"expected a JSON object, got {_kind(trace)}")
    action = trace.get("action")
    _need(isinstance(action, dict), path, what, "action must be an object")
    _need(isinstance(action.get("name"), str), path, what, "action.name must be a string")
    decision = trace.get("decision")
    _need(isinstance(decision, dict), path, what, "decision must be an object")
    _need(
        isinstance(decision.get("values_applied"), list),
        path,
        what,
        "decision.values_applied must be a list",
    )
    escalation = trace.get("escalation")
    _need(escalation is None or isinstance(escalation, dict), path, what, "escalation not object")
    return _as_object(trace)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def load_card(path: str, org_template: str | None) -> dict[str, Any]:
    """The card file, merged with the org template file when one is given (§1.3)."""
    card = check_card(read_json(path), path)
    if org_template is None:
        return card
    template = read_json(org_template)
    _need(isinstance(template, dict), org_template, "an org template", "expected a JSON object")
    merged = merge_org_template(card, template)
    assert merged is not None  # a card was given
    return merged


def _emit(document: Mapping[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def _text(value: Any) -> str:
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, str) else str(inner)


def verification_document(result: aap.VerificationResult) -> dict[str, Any]:
    """The SDK's result without its timing and similarity internals (stable output)."""
    violations = [
        {
            "type": _text(v.type),
            "severity": _text(v.severity),
            "description": v.description,
            "trace_field": v.trace_field,
        }
        for v in result.violations
    ]
    warns = [
        {"type": w.type, "description": w.description, "trace_field": w.trace_field}
        for w in result.warnings
    ]
    return {
        "verified": result.verified,
        "trace_id": result.trace_id,
        "card_id": result.card_id,
        "violations": violations,
        "warnings": warns,
        "similarity_score": result.similarity_score,
        "recommended_action": "deny" if violations else ("review" if warns else "proceed"),
        "checks_performed": list(result.verification_metadata.checks_performed),
        "algorithm_version": result.verification_metadata.algorithm_version,
    }


ORG_TEMPLATE_OPTION = click.option(
    "--org-template",
    "org_template",
    metavar="ORG.json",
    help="Merge this org card template into the card first (the verifier's merge rules).",
)


@click.group("aap")
def aap_group() -> None:
    """Offline AAP checks of an alignment card (no services needed).

    Exit 0: passed; 1: violations or drift alerts; 2: bad input (one line on stderr).
    """


@aap_group.command("verify")
@click.argument("card_path", metavar="CARD.json")
@click.argument("trace_path", metavar="TRACE.json")
@ORG_TEMPLATE_OPTION
def verify_command(card_path: str, trace_path: str, org_template: str | None) -> None:
    """Verify one AP-Trace against a card and print the result as JSON.

    Exit 0 when the trace is verified (warnings allowed), 1 when it has violations,
    2 when a file is missing, not JSON, or not a card / trace.
    """
    try:
        card = load_card(card_path, org_template)
        trace = check_trace(read_json(trace_path), trace_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK warns about tamper_evidence on every call
            result = aap.verify_trace(trace, card)
    except BadInputError as exc:
        _fail(str(exc))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        _fail(f"{trace_path}: the AAP package could not verify it ({exc})")
    document = verification_document(result)
    _emit(document)
    sys.exit(EXIT_PASSED if document["verified"] else EXIT_FAILED)


@aap_group.command("drift")
@click.argument("card_path", metavar="CARD.json")
@click.argument("traces_path", metavar="TRACES.json")
@ORG_TEMPLATE_OPTION
@click.option(
    "--similarity-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.30,
    show_default=True,
    help="A trace below this similarity to the baseline counts as drifting.",
)
@click.option(
    "--sustained",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Consecutive drifting traces that raise one alert.",
)
def drift_command(
    card_path: str,
    traces_path: str,
    org_template: str | None,
    similarity_threshold: float,
    sustained: int,
) -> None:
    """Run AAP drift detection over a JSON array of AP-Traces and print the alerts.

    Exit 0 when there is no alert, 1 when there is at least one, 2 on bad input.
    """
    try:
        card = load_card(card_path, org_template)
        traces = read_json(traces_path)
        _need(
            isinstance(traces, list),
            traces_path,
            "a list of AP-Traces",
            f"expected a JSON array, got {_kind(traces)}",
        )
        for index, trace in enumerate(traces):
            check_trace(trace, traces_path, f" at index {index}")
        alerts = aap.detect_drift(card, traces, similarity_threshold, sustained)
    except BadInputError as exc:
        _fail(str(exc))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        _fail(f"{traces_path}: the AAP package could not analyse it ({exc})")
    _emit(
        {
            "card_id": card.get("card_id"),
            "traces_analyzed": len(traces),
            "alerts": [alert.model_dump(mode="json") for alert in alerts],
        }
    )
    sys.exit(EXIT_FAILED if alerts else EXIT_PASSED)


@click.group("aip")
def aip_group() -> None:
    """Offline AIP checks (no services, no LLM).

    Exit 0: verdict clear; 1: review_needed or boundary_violation; 2: bad input.
    """


@aip_group.command("check")
@click.option("--card", "card_path", required=True, metavar="CARD.json", help="The agent's card.")
@click.argument("analysis_path", metavar="ANALYSIS.json")
@ORG_TEMPLATE_OPTION
@click.option(
    "--thinking",
    "thinking_path",
    metavar="THINKING.txt",
    help="The thinking text the analysis judged (for its hash and token counts).",
)
@click.option(
    "--provider",
    type=click.Choice(["anthropic", "openai", "gemini"]),
    default="anthropic",
    show_default=True,
    help="The provider the thinking came from (recorded in the checkpoint).",
)
def check_command(
    card_path: str,
    analysis_path: str,
    org_template: str | None,
    thinking_path: str | None,
    provider: str,
) -> None:
    """Turn an analysis response into an integrity checkpoint and print it as JSON.

    ANALYSIS.json is what an analysis LLM answered (a markdown ```json fence is accepted). It
    goes through the AIP package's parser and validator, then the verdict gate every verdict
    passes (architecture §6), exactly as in the verifier. Exit 0 for clear, 1 for
    review_needed / boundary_violation, 2 when a file is missing or the analysis is invalid.
    """
    try:
        card = load_card(card_path, org_template)
        text = read_text(analysis_path)
        thinking = read_text(thinking_path) if thinking_path is not None else ""
    except BadInputError as exc:
        _fail(str(exc))
    now = datetime.now(UTC)
    agent = card.get("agent_id")
    event = TraceV1(
        event_id=ids.trace_event_id(OFFLINE_EXCHANGE_ID),
        meta=ExchangeMeta(
            exchange_id=OFFLINE_EXCHANGE_ID,
            agent_id=agent if isinstance(agent, str) and agent else "offline",
            agent_hash="0" * 16,
            session_id="offline",
            provider=provider,  # type: ignore[arg-type]
            model="offline",
            started_at=now,
            completed_at=now,
        ),
        thinking=thinking,
        extraction_confidence=1.0 if thinking else 0.0,
    )
    resolved = ResolvedCard(card_id=str(card["card_id"]), card=card, conscience_values=None)
    analysis = AnalysisResult(
        text=text,
        model="offline",
        duration_ms=0.0,
        tokens_analyzed=math.ceil(len(thinking) / 4),
    )
    try:
        checkpoint = checkpoint_from_analysis(event, resolved, thinking, analysis)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        _fail(f"{analysis_path}: not a valid analysis response: {first[:300]}")
    _emit(msgspec.to_builtins(checkpoint))
    sys.exit(EXIT_PASSED if checkpoint.verdict == "clear" else EXIT_FAILED)


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_PASSED",
    "aap_group",
    "aip_group",
]
