"""Error answers: the same bytes through raw ASGI and Litestar, and the one handler map."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.testing import TestClient
from smoltbot_web import ErrorReply, ServiceError, exception_handlers, send_error

log = logging.getLogger("test-web")


class _MissingError(ServiceError):
    error_type = "not_found"


class _DownError(ServiceError):
    error_type = "service_unavailable"


class _Locked(HTTPException):
    status_code = 423


def _client() -> TestClient[Litestar]:
    @get("/missing")
    async def missing() -> None:
        raise _MissingError("thing 'x' not found", detail="looked in table things")

    @get("/down")
    async def down() -> None:
        raise _DownError("database not connected yet")

    @get("/locked")
    async def locked() -> None:
        raise _Locked("resource locked")

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app = Litestar(
        [missing, down, locked, boom],
        exception_handlers=exception_handlers(
            log, headers={"service_unavailable": {"Retry-After": "1"}}
        ),
        logging_config=None,
    )
    return TestClient(app)


async def test_raw_asgi_answer_is_json_with_length_and_extra_headers() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await send_error(send, "upstream_error", "upstream unreachable", [(b"x-a", b"1")])
    start, body = sent
    assert start["status"] == 502
    assert start["headers"] == [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body["body"])).encode()),
        (b"x-a", b"1"),
    ]
    assert body == {
        "type": "http.response.body",
        "body": b'{"error":"upstream unreachable","type":"upstream_error"}',
        "more_body": False,
    }


def test_prepared_reply_is_encoded_once_and_matches_a_dict_encoding() -> None:
    reply = ErrorReply("containment_error", "Agent contained", reason="agent_killed")
    assert reply.status == 403
    assert reply.body == msgspec.json.encode(
        {"error": "Agent contained", "type": "containment_error", "reason": "agent_killed"}
    )
    assert reply.response().content is reply.body


def test_service_error_keeps_the_log_detail_out_of_the_answer() -> None:
    exc = _MissingError("thing 'x' not found", detail="looked in table things")
    assert (exc.message, str(exc), exc.status_code) == (
        "thing 'x' not found",
        "looked in table things",
        404,
    )
    with _client() as client:
        response = client.get("/missing")
    assert response.status_code == 404
    assert response.json() == {"error": "thing 'x' not found", "type": "not_found"}
    assert response.headers["content-type"] == "application/json"


def test_headers_per_type_are_added() -> None:
    with _client() as client:
        response = client.get("/down")
    assert response.status_code == 503
    assert response.json()["type"] == "service_unavailable"
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/nowhere", 404, {"error": "Not Found", "type": "not_found"}),
        ("POST", "/missing", 405, {"error": "Method Not Allowed", "type": "method_not_allowed"}),
        # A status the catalogue does not list keeps its status and gets the generic type.
        ("GET", "/locked", 423, {"error": "resource locked", "type": "invalid_request_error"}),
    ],
)
def test_framework_errors_get_the_type_of_their_status(
    method: str, path: str, status: int, body: dict[str, str]
) -> None:
    with _client() as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert response.json() == body


def test_anything_else_is_a_logged_500_that_reveals_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with _client() as client, caplog.at_level(logging.ERROR, logger="test-web"):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "type": "internal_error"}
    assert "secret" not in response.text
    assert any(r.message == "unhandled error" for r in caplog.records)
