"""docs/operations.md lists every environment variable the services read, and nothing else:
each settings class is the source of truth for its variable names."""

from __future__ import annotations

import re
from pathlib import Path

from smoltbot_api.settings import ApiSettings
from smoltbot_cli.migrate import MigrateSettings
from smoltbot_config import env_names
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_notifier.settings import NotifierSettings
from smoltbot_observer.settings import ObserverSettings
from smoltbot_persister.settings import PersisterSettings
from smoltbot_verifier.settings import VerifierSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
SETTINGS = (
    ApiSettings,
    GatewaySettings,
    NotifierSettings,
    ObserverSettings,
    PersisterSettings,
    VerifierSettings,
    MigrateSettings,
)
_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|")


def documented() -> set[str]:
    text = DOC.read_text()
    section = text[text.index("## Settings") :]
    section = section[: section.index("\n## ", 1)]
    return {m.group(1) for line in section.splitlines() if (m := _ROW.match(line))}


def read_by_code() -> set[str]:
    return {var for cls in SETTINGS for var in env_names(cls).values()}


def test_every_variable_is_documented() -> None:
    assert sorted(read_by_code() - documented()) == []


def test_every_documented_variable_is_read() -> None:
    assert sorted(documented() - read_by_code()) == []
