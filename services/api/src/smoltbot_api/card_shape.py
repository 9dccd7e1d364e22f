"""Shape checks of what operators publish: alignment cards (protocols.md §1.1, legacy or unified),
org card templates (§1.3) and conscience values (§4.2).

Each check raises :class:`ValidationError` (422) naming the first bad field as a path, e.g.
``card.autonomy_envelope.bounded_actions[2]: must be a string``, so the operator knows the fix.
They check what the protocol code reads and what §1.1 marks required, not every optional field:
the AAP verification reports deeper card problems (e.g. an unknown value id) as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from smoltbot_contracts import ConscienceValue

from smoltbot_api.errors import ValidationError

__all__ = [
    "MAX_CONSCIENCE_VALUES",
    "card_shape",
    "check_card",
    "check_conscience_values",
    "check_org_template",
]

MAX_CONSCIENCE_VALUES = 20
"""At most this many conscience values per list (the reference's org limit, §2.3)."""

_PRINCIPAL_TYPES = ("human", "organization", "agent", "unspecified")
_RELATIONSHIPS = ("delegated_authority", "advisory", "autonomous")
_TRIGGER_ACTIONS = ("escalate", "deny", "log")
_MODES = ("off", "observe", "nudge", "enforce")


def _fail(path: str, problem: str) -> ValidationError:
    return ValidationError(f"{path}: {problem}")


def _object(value: Any, path: str, *, required: bool = True) -> Mapping[str, Any] | None:
    if value is None and not required:
        return None
    if not isinstance(value, Mapping):
        raise _fail(path, "must be an object" if value is not None else "is required")
    return value


def _text(value: Any, path: str, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "must be a non-empty string" if value is not None else "is required")


def _timestamp(value: Any, path: str, *, required: bool = True) -> None:
    _text(value, path, required=required)
    if value is None:
        return
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _fail(path, f"must be an ISO-8601 timestamp (got {str(value)[:40]!r})") from None


def _choice(value: Any, path: str, choices: tuple[str, ...], *, required: bool = True) -> None:
    if value is None and not required:
        return
    if value not in choices:
        raise _fail(path, f"must be one of {', '.join(choices)}")


def _strings(value: Any, path: str, *, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise _fail(path, "must be a list of strings" if value is not None else "is required")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _fail(f"{path}[{index}]", "must be a non-empty string")
    return list(value)


def _values(value: Any, path: str, *, required: bool = True) -> None:
    values = _object(value, path, required=required)
    if values is None:
        return
    declared = values.get("declared")
    if declared is None and not required:
        pass
    elif not isinstance(declared, list):
        raise _fail(f"{path}.declared", "must be a list" if declared is not None else "is required")
    else:
        for index, item in enumerate(declared):
            ok = (isinstance(item, str) and item.strip()) or (
                isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]
            )
            if not ok:
                raise _fail(f"{path}.declared[{index}]", "must be a value id or an object with id")
    definitions = values.get("definitions")
    if definitions is not None and not isinstance(definitions, Mapping):
        raise _fail(f"{path}.definitions", "must be an object")


def _triggers(value: Any, path: str, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, list):
        raise _fail(path, "must be a list" if value is not None else "is required")
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        trigger = _object(item, where)
        assert trigger is not None
        _text(trigger.get("condition"), f"{where}.condition")
        _choice(trigger.get("action"), f"{where}.action", _TRIGGER_ACTIONS, required=False)


def _autonomy(value: Any, path: str, *, legacy: bool, template: bool = False) -> None:
    envelope = _object(value, path, required=not template)
    if envelope is None:
        return
    bounded = _strings(envelope.get("bounded_actions"), f"{path}.bounded_actions", required=False)
    if not template and envelope.get("bounded_actions") is None:
        raise _fail(f"{path}.bounded_actions", "is required")
    forbidden = _strings(
        envelope.get("forbidden_actions"), f"{path}.forbidden_actions", required=False
    )
    _triggers(
        envelope.get("escalation_triggers"),
        f"{path}.escalation_triggers",
        required=legacy and not template,
    )
    both = sorted(set(bounded) & set(forbidden))
    if both:
        raise _fail(f"{path}.forbidden_actions", f"also listed as bounded: {', '.join(both)}")


def card_shape(card: Mapping[str, Any]) -> str:
    """``unified`` when the card has ``autonomy`` or ``card_version`` (§1.1 renames), else
    ``legacy``."""
    return "unified" if "autonomy" in card or "card_version" in card else "legacy"


def check_card(card: Any, agent_id: str) -> dict[str, Any]:
    """An alignment card of either shape (§1.1), published for ``agent_id``."""
    body = _object(card, "card")
    assert body is not None
    legacy = card_shape(body) == "legacy"
    _text(body.get("card_id"), "card.card_id")
    if body.get("agent_id") != agent_id:
        raise _fail("card.agent_id", f"must be {agent_id!r}, the agent it is published for")
    _timestamp(body.get("issued_at"), "card.issued_at")
    _timestamp(body.get("expires_at"), "card.expires_at", required=False)
    if legacy:
        _text(body.get("aap_version"), "card.aap_version")
    else:
        _text(body.get("card_version"), "card.card_version", required=False)
        _choice(body.get("autonomy_mode"), "card.autonomy_mode", _MODES, required=False)
        _choice(body.get("integrity_mode"), "card.integrity_mode", _MODES, required=False)
    principal = _object(body.get("principal"), "card.principal")
    assert principal is not None
    _choice(principal.get("type"), "card.principal.type", _PRINCIPAL_TYPES)
    _choice(principal.get("relationship"), "card.principal.relationship", _RELATIONSHIPS)
    _values(body.get("values"), "card.values")
    section = "autonomy_envelope" if legacy else "autonomy"
    _autonomy(body.get(section), f"card.{section}", legacy=legacy)
    audit_key = "audit_commitment" if legacy else "audit"
    audit = _object(body.get(audit_key), f"card.{audit_key}")
    assert audit is not None
    retention = audit.get("retention_days")
    if retention is not None and (
        not isinstance(retention, int) or isinstance(retention, bool) or retention < 0
    ):
        raise _fail(f"card.{audit_key}.retention_days", "must be an integer >= 0")
    extensions = body.get("extensions")
    if extensions is not None and not isinstance(extensions, Mapping):
        raise _fail("card.extensions", "must be an object")
    return dict(body)


def check_org_template(template: Any) -> dict[str, Any]:
    """An org card template (§1.3): a partial card whose values and autonomy rules are merged
    into every agent's card; only the merged sections are checked."""
    body = _object(template, "template")
    assert body is not None
    _values(body.get("values"), "template.values", required=False)
    for section in ("autonomy", "autonomy_envelope"):
        if section in body:
            _autonomy(body[section], f"template.{section}", legacy=False, template=True)
    return dict(body)


def _msgspec_path(message: str, field: str) -> str:
    """msgspec's ``... - at `$[0].type``` as ``field[0].type: ...``."""
    text, _, where = message.rpartition(" - at `")
    if not text:
        return f"{field}: {message}"
    return f"{field}{where.rstrip('`').removeprefix('$')}: {text}"


def check_conscience_values(values: Any, field: str = "conscience_values") -> list[ConscienceValue]:
    """A list of conscience values ``{type, content, id?}`` (§4.2; ``name`` is taken as the id),
    at most :data:`MAX_CONSCIENCE_VALUES`."""
    if not isinstance(values, list):
        raise _fail(field, "must be a list of {type, content} objects")
    if len(values) > MAX_CONSCIENCE_VALUES:
        raise _fail(field, f"at most {MAX_CONSCIENCE_VALUES} values (got {len(values)})")
    items: list[Any] = []
    for index, given in enumerate(values):
        item = given
        if isinstance(item, Mapping) and "id" not in item and isinstance(item.get("name"), str):
            item = {**item, "id": item["name"]}
        content = item.get("content") if isinstance(item, Mapping) else None
        if isinstance(content, str) and not content.strip():
            raise _fail(f"{field}[{index}].content", "must be a non-empty string")
        items.append(item)
    try:
        return msgspec.convert(items, list[ConscienceValue])
    except msgspec.ValidationError as exc:
        raise ValidationError(_msgspec_path(str(exc), field)) from None
