"""JSON Schema generation for every event type (checked in under ``contracts/schemas``).

``python -m smoltbot_contracts.schemas <dir>`` rewrites the files; a test fails when the checked-in
copies drift from the structs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from smoltbot_contracts._events import EVENT_TYPES


def render_all() -> dict[str, bytes]:
    """``{file name: pretty JSON bytes}`` for every event type."""
    out: dict[str, bytes] = {}
    for tag, cls in EVENT_TYPES.items():
        schema = msgspec.json.schema(cls)
        schema["$id"] = f"https://smoltbot.local/schemas/{tag}.json"
        out[f"{tag}.json"] = msgspec.json.format(msgspec.json.encode(schema), indent=2) + b"\n"
    return out


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in render_all().items():
        path = directory / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("contracts/schemas")
    for p in write_all(target):
        print(p)  # noqa: T201
