"""Optional AES-256-GCM encryption of event bodies on the body-carrying streams.

The entry keeps ``t`` and ``id`` in clear (routing, logs, DLQ) and gains ``k``: the id of the key
that sealed ``b`` (first 8 hex of SHA-256 of the key). Readers accept the current key and any
retired key, so keys rotate without a flag day: add the new key, move the old one to
``SMOLTBOT_EVENT_KEYS_RETIRED``, drop it after the streams' retention window has passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from smoltbot_contracts.codec import FIELD_BODY, FIELD_ID, FIELD_TYPE, DecodeError
from smoltbot_contracts.streams import BODY_STREAMS

FIELD_KEY = b"k"
_NONCE = 12


class EventKeyError(ValueError):
    """A configured event key is not base64 of 32 bytes."""


def parse_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventKeyError("event key must be base64") from exc
    if len(raw) != 32:
        raise EventKeyError(f"event key must decode to 32 bytes, got {len(raw)}")
    return raw


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).hexdigest()[:8].encode()


class EventCipher:
    """Seals bodies for :data:`BODY_STREAMS` with the current key; opens with any known key."""

    def __init__(self, current: bytes | None, retired: Iterable[bytes] = ()) -> None:
        self._current = (key_id(current), AESGCM(current)) if current else None
        self._readers = {key_id(k): AESGCM(k) for k in [*retired, *([current] if current else [])]}

    @classmethod
    def from_settings(cls, current: str, retired: str) -> EventCipher:
        keys = [parse_key(k) for k in retired.split(",") if k.strip()]
        return cls(parse_key(current) if current.strip() else None, keys)

    @property
    def enabled(self) -> bool:
        return self._current is not None

    def seal(self, stream: str, fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
        """Encrypt ``b`` in place of the clear body when the stream carries bodies."""
        if self._current is None or stream not in BODY_STREAMS:
            return fields
        kid, aead = self._current
        nonce = os.urandom(_NONCE)
        aad = fields[FIELD_TYPE] + b"|" + fields[FIELD_ID]
        sealed = nonce + aead.encrypt(nonce, fields[FIELD_BODY], aad)
        return {**fields, FIELD_BODY: sealed, FIELD_KEY: kid}

    def open(self, fields: dict[bytes, bytes]) -> bytes | None:
        """The clear body (None when the entry is not encrypted); DecodeError if unreadable."""
        kid = fields.get(FIELD_KEY)
        if kid is None:
            return None
        aead = self._readers.get(kid)
        if aead is None:
            raise DecodeError(f"body sealed with unknown event key {kid.decode(errors='replace')}")
        sealed = fields.get(FIELD_BODY, b"")
        aad = fields.get(FIELD_TYPE, b"") + b"|" + fields.get(FIELD_ID, b"")
        try:
            return aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except Exception as exc:  # cryptography raises InvalidTag; any failure is undecodable
            raise DecodeError("event body failed authentication (wrong key or tampered)") from exc
