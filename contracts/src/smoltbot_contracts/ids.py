"""Identity and derived ids (architecture §3.2, §5).

Every id a consumer creates is derived from the exchange's event id, so a redelivered or
replayed event produces the same rows. Only the gateway mints new ids (UUIDv7, time-ordered).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import datetime

# Fixed namespace for uuid5-derived ids. Changing it would change every derived id: never do.
ID_NAMESPACE = uuid.UUID("6f1d3a8e-3c55-4a4b-9b1e-5d0c2a7e9f10")
SESSION_BUCKET_MS = 3_600_000
_NAMESPACE_BYTES = ID_NAMESPACE.bytes


def _canonical(value: int) -> str:
    """A 128-bit integer in the 8-4-4-4-12 form (what ``str(uuid.UUID(int=...))`` gives)."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 string (RFC 9562): 48-bit unix ms, version 7, random rest."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return _canonical(value)


def derived_uuid(kind: str, event_id: str) -> str:
    """A uuid5 from the exchange event id and the kind of thing derived from it."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}:{event_id}"))


def trace_id(exchange_id: str) -> str:
    return f"tr-{exchange_id}"


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(ID_NAMESPACE, name))`` without building UUID objects (hot path)."""
    sha1 = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False)  # uuid5's hash
    digest = int.from_bytes(sha1.digest()[:16], "big")
    digest = (digest & ~(0xF000 << 64)) | (5 << 76)  # version 5
    digest = (digest & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    return _canonical(digest)


def checkpoint_id(exchange_id: str) -> str:
    return f"ic-{_uuid5(exchange_id)}"


def trace_event_id(exchange_id: str) -> str:
    return derived_uuid("trace.v1", exchange_id)


def verdict_event_id(exchange_id: str) -> str:
    return derived_uuid("verdict.v1", exchange_id)


def nudge_id(exchange_id: str) -> str:
    """The nudge a violating exchange may create: one per exchange, whatever the deliveries."""
    return f"nudge-{derived_uuid('nudge', exchange_id)}"


def drift_alert_id(source: str, agent: str, streak_start: str) -> str:
    """One drift alert per streak: ``ida-`` (AIP) or ``drift-`` (AAP) + uuid5 of the agent and
    the streak's first checkpoint or trace id."""
    prefix = "ida-" if source == "aip" else "drift-"
    return f"{prefix}{_uuid5(f'drift:{source}:{agent}:{streak_start}')}"


def containment_id(agent: str, streak_start: str) -> str:
    """One auto-containment per violation streak: ``ctl-`` + uuid5 of agent and streak start."""
    return f"ctl-{_uuid5(f'containment:{agent}:{streak_start}')}"


def agent_hash(api_key: str, name: str | None = None) -> str:
    """First 16 hex of SHA-256 of the provider key (named agents: key + NUL + name)."""
    material = api_key if name is None else f"{api_key}\x00{name}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def agent_id(hash16: str) -> str:
    return f"smolt-{hash16[:8]}"


def card_id(agent: str) -> str:
    return f"ac-{agent.removeprefix('smolt-')}"


def session_id(hash16: str, at: datetime) -> str:
    """Hourly session bucket: ``<agent_hash>-<floor(epoch_ms / 3_600_000)>``."""
    epoch_ms = int(at.timestamp() * 1000)
    return f"{hash16}-{epoch_ms // SESSION_BUCKET_MS}"
