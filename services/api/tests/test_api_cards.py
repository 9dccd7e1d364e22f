"""Cards, the org card template and conscience values through the api, written through to
``card:{agent}`` (real PostgreSQL, real Redis under a private key prefix)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from smoltbot_analysis.cards import default_conscience_values
from smoltbot_api import ApiSettings, create_app
from smoltbot_api.card_cache import CardCache
from smoltbot_contracts import CardRecord
from smoltbot_contracts.streams import card_key
from smoltbot_testing.env import REDIS_URL

# Must equal conftest.TOKEN (test modules cannot import conftest under this pytest setup).
TOKEN = "test-admin-token-0123456789abcdef"
AGENT = "smolt-cafe0001"
OTHER = "smolt-cafe0002"
DEFAULT_IDS = [v.id for v in default_conscience_values()]


@pytest.fixture
async def api(database_url: str, db: Any, prefix: str) -> AsyncIterator[AsyncTestClient[Any]]:
    db.execute("TRUNCATE agent_card_settings, org_card_template, org_conscience_values")
    settings = ApiSettings(
        database_url=database_url, admin_token=TOKEN, redis_url=REDIS_URL, stream_prefix=prefix
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        deadline = asyncio.get_running_loop().time() + 15
        while (await client.get("/health/startup")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "api did not start"
            await asyncio.sleep(0.05)
        yield client


async def stored(redis: Redis, prefix: str, agent: str = AGENT) -> CardRecord | None:
    raw = await redis.get(card_key(prefix, agent))
    return None if raw is None else msgspec.msgpack.decode(raw, type=CardRecord)


def legacy_card(card_id: str = "ac-cafe0001-v1", agent: str = AGENT, **kw: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "aap_version": "0.1.0",
        "card_id": card_id,
        "agent_id": agent,
        "issued_at": "2026-11-01T12:00:00Z",
        "principal": {"type": "human", "relationship": "delegated_authority"},
        "values": {"declared": ["transparency", "honesty"]},
        "autonomy_envelope": {
            "bounded_actions": ["inference", "search"],
            "escalation_triggers": [],
            "forbidden_actions": [],
        },
        "audit_commitment": {"retention_days": 30, "queryable": True},
    }
    card.update(kw)
    return card


def unified_card(card_id: str = "ac-cafe0001-u1") -> dict[str, Any]:
    return {
        "card_version": "unified/2026-04-26",
        "card_id": card_id,
        "agent_id": AGENT,
        "issued_at": "2026-11-02T12:00:00+00:00",
        "principal": {"type": "organization", "identifier": "acme", "relationship": "advisory"},
        "values": {"declared": [{"id": "honesty"}]},
        "autonomy": {"bounded_actions": ["inference"], "forbidden_actions": ["delete_records"]},
        "audit": {"retention_days": 90},
    }


TEMPLATE = {
    "values": {"declared": ["harm_prevention"]},
    "autonomy_envelope": {"forbidden_actions": ["wire_transfer"], "bounded_actions": []},
}


# ---------------------------------------------------------------------------------------------
# Publish, history, get


async def test_publish_then_history_then_get(api: Any, rows: Any, redis: Redis, prefix: str):
    rows.agent(AGENT)
    first = await api.get(f"/v1/agents/{AGENT}/card")
    assert first.status_code == 200, first.text
    assert first.json()["is_default"] is True
    assert first.json()["version"] == 0

    response = await api.post(f"/v1/agents/{AGENT}/card", json={"card": legacy_card()})
    assert response.status_code == 201, response.text
    published = response.json()
    assert published["card_id"] == "ac-cafe0001-v1"
    assert published["version"] == 1
    assert published["cache"] == "written"

    second = await api.post(f"/v1/agents/{AGENT}/card", json={"card_json": unified_card()})
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2

    history = (await api.get(f"/v1/agents/{AGENT}/card/history")).json()
    assert history["total"] == 2
    assert [c["version"] for c in history["cards"]] == [2, 1]
    assert [c["is_active"] for c in history["cards"]] == [True, False]
    page = (await api.get(f"/v1/agents/{AGENT}/card/history?limit=1&offset=1")).json()
    assert [c["card_id"] for c in page["cards"]] == ["ac-cafe0001-v1"]

    view = (await api.get(f"/v1/agents/{AGENT}/card")).json()
    assert view["card_id"] == "ac-cafe0001-u1"
    assert view["version"] == 2
    assert view["is_default"] is False
    assert view["card"] == unified_card()
    assert view["merged"]["autonomy"]["forbidden_actions"] == ["delete_records"]
    assert view["layers"]["org_template"] is None

    record = await stored(redis, prefix)
    assert record is not None
    assert record.card_id == "ac-cafe0001-u1"
    assert record.card == unified_card()
    assert record.version == view["record_version"]


async def test_publish_with_conscience_values(api: Any, rows: Any, redis: Redis, prefix: str):
    rows.agent(AGENT)
    values = [{"type": "BOUNDARY", "content": "Never move money", "name": "no-money"}]
    response = await api.post(
        f"/v1/agents/{AGENT}/card", json={"card": legacy_card(), "conscience_values": values}
    )
    assert response.status_code == 201, response.text
    record = await stored(redis, prefix)
    assert record is not None
    assert record.conscience_values is not None
    assert [(v.id, v.content) for v in record.conscience_values] == [
        ("no-money", "Never move money")
    ]
    own = (await api.get(f"/v1/agents/{AGENT}/conscience-values")).json()
    assert own["is_default"] is False
    assert [v["content"] for v in own["conscience_values"]] == ["Never move money"]


async def test_reused_card_id_is_409(api: Any, rows: Any):
    rows.agent(AGENT)
    rows.agent(OTHER)
    assert (
        await api.post(f"/v1/agents/{AGENT}/card", json={"card": legacy_card()})
    ).status_code == 201
    again = await api.post(f"/v1/agents/{AGENT}/card", json={"card": legacy_card()})
    assert again.status_code == 409
    assert again.json()["type"] == "conflict"
    assert "version 1 of smolt-cafe0001" in again.json()["error"]


async def test_one_card_id_published_twice_at_once_is_one_201_and_one_409(api: Any, rows: Any):
    rows.agent(AGENT)
    rows.agent(OTHER)
    shared = "ac-shared-1"
    responses = await asyncio.gather(
        api.post(f"/v1/agents/{AGENT}/card", json={"card": legacy_card(shared)}),
        api.post(f"/v1/agents/{OTHER}/card", json={"card": legacy_card(shared, agent=OTHER)}),
    )
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["type"] == "conflict"


# ---------------------------------------------------------------------------------------------
# Invalid bodies


def _without(card: dict[str, Any], *path: str) -> dict[str, Any]:
    card = copy.deepcopy(card)
    target = card
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return card


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ("not a card", "card: must be an object"),
        (_without(legacy_card(), "card_id"), "card.card_id: is required"),
        (legacy_card(agent_id="smolt-someone"), "card.agent_id: must be 'smolt-cafe0001'"),
        (legacy_card(issued_at="yesterday"), "card.issued_at: must be an ISO-8601 timestamp"),
        (_without(legacy_card(), "aap_version"), "card.aap_version: is required"),
        (legacy_card(values={"declared": "honesty"}), "card.values.declared: must be a list"),
        (
            legacy_card(autonomy_envelope={"bounded_actions": ["a", 3], "escalation_triggers": []}),
            "card.autonomy_envelope.bounded_actions[1]: must be a non-empty string",
        ),
        (
            _without(legacy_card(), "autonomy_envelope", "escalation_triggers"),
            "card.autonomy_envelope.escalation_triggers: is required",
        ),
        (
            {**unified_card(), "autonomy": {"bounded_actions": ["x"], "forbidden_actions": ["x"]}},
            "card.autonomy.forbidden_actions: also listed as bounded: x",
        ),
        (_without(unified_card(), "audit"), "card.audit: is required"),
        (
            legacy_card(principal={"type": "robot", "relationship": "advisory"}),
            "card.principal.type: must be one of",
        ),
    ],
    ids=[
        "not-object",
        "card_id",
        "agent_id",
        "issued_at",
        "aap_version",
        "declared",
        "bounded-item",
        "triggers",
        "disjoint",
        "audit",
        "principal",
    ],
)
async def test_invalid_card_is_422_naming_the_field(
    api: Any, rows: Any, redis: Redis, prefix: str, card: Any, field: str
):
    rows.agent(AGENT)
    response = await api.post(f"/v1/agents/{AGENT}/card", json={"card": card})
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "validation_error"
    assert response.json()["error"].startswith(field)
    assert await stored(redis, prefix) is None
    history = (await api.get(f"/v1/agents/{AGENT}/card/history")).json()
    assert history["total"] == 0


async def test_body_errors(api: Any, rows: Any):
    rows.agent(AGENT)
    url = f"/v1/agents/{AGENT}/card"
    not_json = await api.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert (await api.post(url, json=[1])).status_code == 422
    missing = await api.post(url, json={})
    assert missing.status_code == 422
    assert missing.json()["error"].startswith("card:")
    bad_values = await api.put(
        f"/v1/agents/{AGENT}/conscience-values",
        json={"conscience_values": [{"type": "WISH", "content": "x"}]},
    )
    assert bad_values.status_code == 422
    assert bad_values.json()["error"].startswith("conscience_values[0].type:")
    too_many = [{"type": "BELIEF", "content": f"v{i}"} for i in range(21)]
    over = await api.put("/v1/org/conscience-values", json={"values": too_many})
    assert over.status_code == 422
    assert "at most 20" in over.json()["error"]
    mode = await api.put("/v1/org/conscience-values", json={"mode": "merge"})
    assert mode.status_code == 422
    assert mode.json()["error"].startswith("mode:")
    template = await api.put("/v1/org/card-template", json={"template": {"values": []}})
    assert template.status_code == 422
    assert template.json()["error"].startswith("template.values: must be an object")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/card", None),
        ("post", "/card", {"card": legacy_card(agent="smolt-nope0000")}),
        ("get", "/card/history", None),
        ("get", "/conscience-values", None),
        ("put", "/conscience-values", {"conscience_values": []}),
        ("post", "/conscience-values/reset", None),
        ("put", "/org-card-exempt", {"exempt": True}),
    ],
)
async def test_unknown_agent_is_404(api: Any, db: Any, method: str, path: str, body: Any):
    kwargs = {} if body is None else {"json": body}
    response = await getattr(api, method)(f"/v1/agents/smolt-nope0000{path}", **kwargs)
    assert response.status_code == 404, response.text
    assert response.json() == {"error": "agent 'smolt-nope0000' not found", "type": "not_found"}


# ---------------------------------------------------------------------------------------------
# The org card template


async def test_org_template_enabled_disabled_exempt(api: Any, rows: Any, redis: Redis, prefix: str):
    rows.agent(AGENT)
    rows.agent(OTHER)
    assert (
        await api.post(f"/v1/agents/{AGENT}/card", json={"card": legacy_card()})
    ).status_code == 201

    # Set but not enabled: no agent gets it.
    saved = await api.put("/v1/org/card-template", json={"template": TEMPLATE})
    assert saved.status_code == 200, saved.text
    assert saved.json()["enabled"] is False
    assert saved.json()["template"] == TEMPLATE
    record = await stored(redis, prefix)
    assert record is not None
    assert record.org_template is None

    # Enabled: every agent's card:{a} carries it (OTHER has only the default card).
    enabled = (await api.put("/v1/org/card-template", json={"enabled": True})).json()
    assert enabled["enabled"] is True
    assert enabled["template"] == TEMPLATE
    assert enabled["agents_rewritten"] == 2
    for agent in (AGENT, OTHER):
        record = await stored(redis, prefix, agent)
        assert record is not None, agent
        assert record.org_template == TEMPLATE, agent
    other = await stored(redis, prefix, OTHER)
    assert other is not None
    assert other.card_id == "ac-cafe0002"
    view = (await api.get(f"/v1/agents/{AGENT}/card")).json()
    assert view["layers"]["org_template_enabled"] is True
    assert view["merged"]["autonomy_envelope"]["forbidden_actions"] == ["wire_transfer"]
    assert view["merged"]["values"]["declared"][0] == "harm_prevention"
    assert view["card"]["autonomy_envelope"]["forbidden_actions"] == []

    # Exempt: that agent's record drops the template, the other keeps it.
    exempt = await api.put(f"/v1/agents/{AGENT}/org-card-exempt", json={"exempt": True})
    assert exempt.status_code == 200
    assert exempt.json()["cache"] == "written"
    record = await stored(redis, prefix)
    assert record is not None
    assert record.org_template is None
    other = await stored(redis, prefix, OTHER)
    assert other is not None
    assert other.org_template == TEMPLATE
    assert (await api.get("/v1/org/card-template")).json()["exempt_agents"] == [AGENT]

    # Disabled: nobody has it.
    await api.put(f"/v1/agents/{AGENT}/org-card-exempt", json={"exempt": False})
    assert (await stored(redis, prefix)).org_template == TEMPLATE  # type: ignore[union-attr]
    await api.put("/v1/org/card-template", json={"enabled": False})
    for agent in (AGENT, OTHER):
        record = await stored(redis, prefix, agent)
        assert record is not None
        assert record.org_template is None


# ---------------------------------------------------------------------------------------------
# Conscience values


async def test_conscience_values_augment_replace_reset(
    api: Any, rows: Any, redis: Redis, prefix: str
):
    rows.agent(AGENT)
    own = [{"type": "COMMITMENT", "content": "Cite sources", "id": "own-1"}]
    org = [{"type": "BOUNDARY", "content": "No payments", "id": "org-1"}]

    start = (await api.get(f"/v1/agents/{AGENT}/conscience-values")).json()
    assert start["is_default"] is True
    assert start["conscience_values"] == []
    assert [v["id"] for v in start["effective_conscience_values"]] == DEFAULT_IDS

    put = await api.put(f"/v1/agents/{AGENT}/conscience-values", json={"conscience_values": own})
    assert put.status_code == 200, put.text
    assert put.json()["cache"] == "written"
    assert [v["id"] for v in put.json()["effective_conscience_values"]] == ["own-1"]

    # Org values saved but disabled change nothing.
    saved = (await api.put("/v1/org/conscience-values", json={"values": org})).json()
    assert saved["enabled"] is False
    assert saved["mode"] == "augment"
    record = await stored(redis, prefix)
    assert record is not None
    assert record.org_conscience_values is None

    augment = (await api.put("/v1/org/conscience-values", json={"enabled": True})).json()
    assert augment["agents_rewritten"] == 1
    record = await stored(redis, prefix)
    assert record is not None
    assert record.conscience_mode == "augment"
    assert [v.id for v in record.org_conscience_values or []] == ["org-1"]
    view = (await api.get(f"/v1/agents/{AGENT}/conscience-values")).json()
    assert [v["id"] for v in view["effective_conscience_values"]] == [
        *DEFAULT_IDS,
        "org-1",
        "own-1",
    ]

    replace = (await api.put("/v1/org/conscience-values", json={"mode": "replace"})).json()
    assert replace["mode"] == "replace"
    assert replace["enabled"] is True
    record = await stored(redis, prefix)
    assert record is not None
    assert record.conscience_mode == "replace"
    view = (await api.get(f"/v1/agents/{AGENT}/conscience-values")).json()
    assert [v["id"] for v in view["effective_conscience_values"]] == ["org-1", "own-1"]

    reset = await api.post(f"/v1/agents/{AGENT}/conscience-values/reset")
    assert reset.status_code == 200, reset.text
    assert reset.json() == {"agent_id": AGENT, "reset_to_defaults": True, "cache": "written"}
    record = await stored(redis, prefix)
    assert record is not None
    assert record.conscience_values is None
    view = (await api.get(f"/v1/agents/{AGENT}/conscience-values")).json()
    assert view["is_default"] is True
    assert [v["id"] for v in view["effective_conscience_values"]] == ["org-1"]

    await api.put("/v1/org/conscience-values", json={"enabled": False})
    view = (await api.get(f"/v1/agents/{AGENT}/conscience-values")).json()
    assert [v["id"] for v in view["effective_conscience_values"]] == DEFAULT_IDS


# ---------------------------------------------------------------------------------------------
# Versions never go backwards


async def test_card_cache_refuses_older_versions(redis: Redis, prefix: str):
    cache = CardCache(redis, prefix)
    newer = CardRecord(card_id="ac-2", card={"card_id": "ac-2"}, version=5)
    older = CardRecord(card_id="ac-1", card={"card_id": "ac-1"}, version=4)
    assert await cache.put(AGENT, newer) == "written"
    assert await cache.put(AGENT, older) == "stale"
    assert await cache.put(AGENT, newer) == "same"
    assert await cache.read(AGENT) == newer
    # An unreadable value is replaced; a batch compares per key.
    await redis.set(card_key(prefix, OTHER), b"\xc1garbage")
    outcomes = await cache.put_many([(AGENT, older), (OTHER, older)])
    assert outcomes == {AGENT: "stale", OTHER: "written"}


async def test_record_version_only_grows_and_a_stale_key_is_repaired(
    api: Any, rows: Any, redis: Redis, prefix: str
):
    rows.agent(AGENT)
    seen: list[int] = []
    steps = [
        ("post", f"/v1/agents/{AGENT}/card", {"card": legacy_card()}),
        ("put", f"/v1/agents/{AGENT}/conscience-values", {"conscience_values": []}),
        ("put", "/v1/org/card-template", {"template": TEMPLATE, "enabled": True}),
        ("put", "/v1/org/conscience-values", {"enabled": True, "values": []}),
        ("post", f"/v1/agents/{AGENT}/card", {"card": legacy_card("ac-cafe0001-v2")}),
    ]
    for method, url, body in steps:
        response = await getattr(api, method)(url, json=body)
        assert response.status_code in (200, 201), response.text
        record = await stored(redis, prefix)
        assert record is not None
        seen.append(record.version)
    assert seen == sorted(set(seen)), seen

    # Someone writes an older record: the next read repairs it from PostgreSQL.
    current = await stored(redis, prefix)
    assert current is not None
    old = msgspec.structs.replace(current, version=current.version - 3, org_template=None)
    await redis.set(card_key(prefix, AGENT), msgspec.msgpack.encode(old))
    view = (await api.get(f"/v1/agents/{AGENT}/card")).json()
    assert view["cache"] == "written"
    assert await stored(redis, prefix) == current
    # A missing key too.
    await redis.delete(card_key(prefix, AGENT))
    assert (await api.get(f"/v1/agents/{AGENT}/card")).json()["cache"] == "written"
    assert await stored(redis, prefix) == current
    assert (await api.get(f"/v1/agents/{AGENT}/card")).json()["cache"] is None


async def test_concurrent_changes_leave_the_newest_record(
    api: Any, rows: Any, redis: Redis, prefix: str
):
    rows.agent(AGENT)
    publishes = [
        api.post(f"/v1/agents/{AGENT}/card", json={"card": legacy_card(f"ac-cafe0001-c{i}")})
        for i in range(6)
    ]
    org = [
        api.put("/v1/org/card-template", json={"template": TEMPLATE, "enabled": i % 2 == 0})
        for i in range(3)
    ]
    values = [
        api.put(
            f"/v1/agents/{AGENT}/conscience-values",
            json={"conscience_values": [{"type": "HOPE", "content": f"h{i}"}]},
        )
        for i in range(3)
    ]
    responses = await asyncio.gather(*publishes, *org, *values)
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    versions = sorted(r.json()["version"] for r in responses[:6])
    assert versions == [1, 2, 3, 4, 5, 6]
    record = await stored(redis, prefix)
    view = (await api.get(f"/v1/agents/{AGENT}/card")).json()
    assert view["cache"] is None  # nothing to repair: the key already holds the newest state
    assert record is not None
    assert record.version == view["record_version"]
    assert record.card_id == view["card_id"]


# ---------------------------------------------------------------------------------------------
# Scopes: reads need read, changes need write


async def test_changes_need_scope_write(api: Any, rows: Any, db: Any):
    db.execute("TRUNCATE api_keys")
    rows.agent(AGENT)
    keys = {}
    for scope in ("read", "write"):
        made = await api.post("/v1/api-keys", json={"name": scope, "scope": scope})
        assert made.status_code == 201, made.text
        keys[scope] = {"Authorization": f"Bearer {made.json()['key']}"}
    url = f"/v1/agents/{AGENT}/card"
    assert (await api.get(url, headers=keys["read"])).status_code == 200
    denied = await api.post(url, json={"card": legacy_card()}, headers=keys["read"])
    assert denied.status_code == 403
    assert denied.json()["type"] == "permission_error"
    for path in ("/v1/org/card-template", "/v1/org/conscience-values"):
        assert (
            await api.put(path, json={"enabled": True}, headers=keys["read"])
        ).status_code == 403
    allowed = await api.post(url, json={"card": legacy_card()}, headers=keys["write"])
    assert allowed.status_code == 201, allowed.text
