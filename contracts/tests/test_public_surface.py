"""The contracts' public surface: events and state at the top, codec names only in ``codec``,
and nobody outside the package (tests included) imports a private module."""

from __future__ import annotations

import re
from pathlib import Path

import smoltbot_contracts
from smoltbot_contracts import codec

ROOT = Path(__file__).resolve().parents[2]
PRIVATE_IMPORT = re.compile(r"smoltbot_contracts\._[a-z]\w*")


def test_top_level_exports_events_and_state_not_codec() -> None:
    exported = set(smoltbot_contracts.__all__)
    assert {"ExchangeV1", "TraceV1", "VerdictV1", "AgentV1", "ControlV1", "AgentConfig"} <= exported
    assert not exported & {"decode_fields", "to_fields", "DecodeError", "entry_header"}
    assert codec.decode_fields is not None


def test_every_exported_name_exists() -> None:
    missing = [n for n in smoltbot_contracts.__all__ if not hasattr(smoltbot_contracts, n)]
    assert missing == []


def test_no_private_contracts_module_is_imported_outside_the_package() -> None:
    package = ROOT / "contracts" / "src" / "smoltbot_contracts"
    offenders = [
        f"{path.relative_to(ROOT)}: {match}"
        for path in ROOT.glob("**/*.py")
        if ".venv" not in path.parts and package not in path.parents
        for match in PRIVATE_IMPORT.findall(path.read_text(errors="replace"))
    ]
    assert offenders == []
