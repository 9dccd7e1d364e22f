"""The OpenAPI contract: served at /v1/openapi.json, equal to the checked-in copy
(contracts/openapi/api.json, `make openapi`), every /v1 error documented with the catalogue's
body; and no answer ever carries a stack trace or SQL text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from smoltbot_api.openapi_file import document
from smoltbot_api.repo_reads import ReadRepository
from smoltbot_api.repository import Repository
from smoltbot_contracts.errors import ERROR_STATUS

CHECKED_IN = Path(__file__).resolve().parents[3] / "contracts" / "openapi" / "api.json"
AGENT = "smolt-aaaa1111"


def test_checked_in_document_is_up_to_date():
    assert CHECKED_IN.exists(), "run `make openapi`"
    assert CHECKED_IN.read_bytes() == document(), (
        "contracts/openapi/api.json differs from the api's routes: run `make openapi`"
    )


async def test_document_served_at_v1_openapi_json_without_a_token(client: Any):
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "json" in response.headers["content-type"]
    served = response.json()
    assert served == msgspec.json.decode(CHECKED_IN.read_bytes())
    assert served["openapi"].startswith("3.")
    assert "/v1/openapi.json" not in served["paths"]


@pytest.mark.parametrize("path", ["/schema", "/schema/openapi.json", "/schema/swagger"])
async def test_no_schema_site_elsewhere(client: Any, path: str):
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


def test_every_v1_operation_documents_the_catalogue_errors():
    spec = msgspec.json.decode(CHECKED_IN.read_bytes())
    error_schema = spec["components"]["schemas"]["ErrorBody"]
    assert error_schema["required"] == ["error", "type"]
    assert set(error_schema["properties"]["type"]["enum"]) == set(ERROR_STATUS)
    operations = 0
    for path, item in spec["paths"].items():
        assert path.startswith("/v1/"), path
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            operations += 1
            assert operation["security"] == [{"BearerAuth": []}], (method, path)
            responses = operation["responses"]
            for status in ("400", "401", "404", "503"):
                assert status in responses, (method, path, status)
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    assert operations >= 14


# ---------------------------------------------------------------------------------------------
# No stack trace or SQL text in any answer

_LEAKS = ("Traceback", 'File "', "SELECT", "FROM ", "psycopg", "smoltbot_api", ".py", "LINE 1")


def _assert_clean(text: str) -> None:
    for leak in _LEAKS:
        assert leak not in text, (leak, text)


async def test_unexpected_database_error_is_a_bare_500(
    client: Any, rows: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    rows.agent(AGENT)

    async def broken(*_: Any, **__: Any) -> Any:
        raise psycopg.errors.UndefinedColumn(
            'column "secret" does not exist\nLINE 1: SELECT secret FROM agents WHERE id = $1'
        )

    monkeypatch.setattr(Repository, "list_agents", broken)
    monkeypatch.setattr(ReadRepository, "integrity", broken)
    for path in ("/v1/agents", f"/v1/agents/{AGENT}/integrity"):
        response = await client.get(path, headers=auth)
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error", "type": "internal_error"}
        _assert_clean(response.text)


async def test_unexpected_python_error_is_a_bare_500(
    client: Any, rows: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    rows.agent(AGENT)

    async def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("internal detail from smoltbot_api/repo_reads.py")

    monkeypatch.setattr(ReadRepository, "timeline", broken)
    response = await client.get(f"/v1/agents/{AGENT}/timeline", headers=auth)
    assert response.status_code == 500
    _assert_clean(response.text)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/a%00b/timeline",
        "/v1/traces?session_id=%00",
        f"/v1/agents/{AGENT}/drift-alerts?session_id=%00x",
        f"/v1/agents/{AGENT}/traces?offset=99999999999999999999999",
        f"/v1/agents/{AGENT}/timeline?offset=99999999999999999999999",
        f"/v1/agents/{AGENT}/usage?since=0001-01-01T00:00:00Z",
        f"/v1/agents/{AGENT}/timeline?since=9999-12-31T23:59:59-23:59",
        "/v1/traces?since=2026-02-30T00:00:00Z",
        "/v1/agents/%27%3B%20SELECT%201%3B--/usage",
        "/v1/nothing/at/all",
    ],
)
async def test_odd_requests_never_leak_internals(
    client: Any, rows: Any, auth: dict[str, str], path: str
):
    rows.agent(AGENT)
    response = await client.get(path, headers=auth)
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert set(body) <= {"error", "type"}
        assert response.status_code == ERROR_STATUS[body["type"]]
    _assert_clean(response.text.replace("SELECT 1", ""))
