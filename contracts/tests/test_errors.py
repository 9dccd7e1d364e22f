"""The HTTP error catalogue: one status per type, the reference's names, exact body bytes."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest
from smoltbot_contracts.errors import ERROR_STATUS, ErrorBody, ErrorType, error_type_for_status


def test_every_type_has_exactly_one_client_or_server_status() -> None:
    assert list(ERROR_STATUS) == list(get_args(ErrorType))
    assert all(400 <= status < 600 for status in ERROR_STATUS.values())


def test_reference_names_are_kept() -> None:
    # gateway.md §1.1 / §1.3 and the api's Litestar statuses; 503 is service_unavailable.
    assert {
        "authentication_error": 401,
        "containment_error": 403,
        "not_found": 404,
        "service_unavailable": 503,
    }.items() <= ERROR_STATUS.items()
    assert "unavailable" not in ERROR_STATUS


@pytest.mark.parametrize("error_type", get_args(ErrorType))
def test_a_status_maps_back_to_a_type_with_that_status(error_type: ErrorType) -> None:
    status = ERROR_STATUS[error_type]
    assert ERROR_STATUS[error_type_for_status(status)] == status


def test_shared_status_maps_to_the_generic_type() -> None:
    assert error_type_for_status(403) == "permission_error"  # containment is only on purpose


@pytest.mark.parametrize(
    ("status", "expected"), [(410, "invalid_request_error"), (418, "invalid_request_error")]
)
def test_uncatalogued_client_status_gets_the_generic_client_type(
    status: int, expected: ErrorType
) -> None:
    assert error_type_for_status(status) == expected


def test_uncatalogued_server_status_gets_the_generic_server_type() -> None:
    assert error_type_for_status(504) == "internal_error"


def test_body_bytes_leave_unset_fields_out_in_wire_order() -> None:
    encode = msgspec.json.encode
    assert encode(ErrorBody(error="Missing x-api-key header", type="authentication_error")) == (
        b'{"error":"Missing x-api-key header","type":"authentication_error"}'
    )
    assert encode(
        ErrorBody(error="Agent contained", type="containment_error", reason="agent_paused")
    ) == encode({"error": "Agent contained", "type": "containment_error", "reason": "agent_paused"})
    assert encode(ErrorBody(error="Not found", type="not_found", message="m")) == (
        b'{"error":"Not found","type":"not_found","message":"m"}'
    )
