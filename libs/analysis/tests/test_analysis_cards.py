"""AAP card -> AIP card view (protocols.md §1.4, fixtures §7.6)."""

from __future__ import annotations

from smoltbot_analysis import action_name, aip_card_view


def test_priorities_follow_declaration_order() -> None:
    card = aip_card_view(
        {
            "card_id": "ac-1",
            "values": {"declared": ["transparency", "accuracy", "helpfulness", "safety"]},
            "autonomy_envelope": {"bounded_actions": ["inference"]},
        }
    )
    assert [(v.name, v.priority) for v in card.values] == [
        ("transparency", 1),
        ("accuracy", 2),
        ("helpfulness", 3),
        ("safety", 4),
    ]
    assert card.card_id == "ac-1"
    assert card.autonomy_envelope.bounded_actions == ["inference"]


def test_definition_priority_and_description_win() -> None:
    card = aip_card_view(
        {
            "card_id": "ac-2",
            "values": {
                "declared": ["transparency", "rigor"],
                "definitions": {"rigor": {"priority": 1, "description": "Check the work"}},
            },
        }
    )
    by_name = {v.name: v for v in card.values}
    assert by_name["rigor"].priority == 1
    assert by_name["rigor"].description == "Check the work"
    assert by_name["transparency"].priority == 1
    assert by_name["transparency"].description is None


def test_null_forbidden_and_reason_become_absent_and_description_from_mnemom() -> None:
    card = aip_card_view(
        {
            "card_id": "ac-3",
            "values": {"declared": []},
            "autonomy_envelope": {
                "bounded_actions": ["read_files"],
                "forbidden_actions": None,
                "escalation_triggers": [
                    {"condition": "amount > 50", "action": "escalate", "reason": None}
                ],
            },
            "extensions": {"mnemom": {"description": "Coding helper"}, "other": {"x": 1}},
        }
    )
    assert card.autonomy_envelope.forbidden_actions == []
    trigger = card.autonomy_envelope.escalation_triggers[0]
    assert (trigger.condition, trigger.action, trigger.reason) == ("amount > 50", "escalate", None)
    assert card.agent_description == "Coding helper"


def test_unified_shape_and_object_declared_values() -> None:
    card = aip_card_view(
        {
            "card_id": "ac-4",
            "values": {"declared": [{"id": "honesty"}, "safety", 7]},
            "autonomy": {"bounded_actions": ["a"], "forbidden_actions": ["b"]},
            "autonomy_envelope": {"bounded_actions": ["legacy"]},
        }
    )
    assert [v.name for v in card.values] == ["honesty", "safety"]
    assert card.autonomy_envelope.bounded_actions == ["a"]
    assert card.autonomy_envelope.forbidden_actions == ["b"]


def test_malformed_card_gives_empty_view_not_an_error() -> None:
    card = aip_card_view({"values": "nope", "autonomy_envelope": ["x"], "card_id": 5})
    assert card.card_id == ""
    assert card.values == []
    assert card.autonomy_envelope.bounded_actions == []


def test_action_name_strips_description() -> None:
    assert action_name("exec: run shell commands") == "exec"
    assert action_name("read_files") == "read_files"
    assert action_name(": odd") == ": odd"
