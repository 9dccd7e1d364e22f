"""The one wire codec: stream entry fields ``t`` (type), ``id`` (event id), ``b`` (msgpack body).

Encoders and decoders are built once and reused (msgspec's advice); every consumer decodes
through :func:`decode_fields`, which raises :class:`DecodeError` with a readable reason for any
entry it cannot turn into a known event.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from smoltbot_contracts._events import EVENT_TYPES, Event, event_type

FIELD_TYPE = b"t"
FIELD_ID = b"id"
FIELD_BODY = b"b"

_ENCODER = msgspec.msgpack.Encoder()
_DECODERS: dict[str, msgspec.msgpack.Decoder[Event]] = {
    tag: msgspec.msgpack.Decoder(cls) for tag, cls in EVENT_TYPES.items()
}


class DecodeError(ValueError):
    """A stream entry that is not a well-formed known event. Never retried: it goes to the DLQ."""


def encode_body(event: Event) -> bytes:
    """Msgpack bytes of an event struct."""
    return _ENCODER.encode(event)


def decode_body(type_tag: str, body: bytes) -> Event:
    """Decode a body of the given wire type, or raise :class:`DecodeError`."""
    decoder = _DECODERS.get(type_tag)
    if decoder is None:
        raise DecodeError(f"unknown event type {type_tag!r}")
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(f"{type_tag}: {exc}") from exc


def to_fields(event: Event, body: bytes | None = None) -> dict[bytes, bytes]:
    """Stream entry fields for an event (``body`` lets a caller pass pre-encrypted bytes)."""
    event_id = getattr(event, "event_id", "")
    return {
        FIELD_TYPE: event_type(event).encode(),
        FIELD_ID: str(event_id).encode(),
        FIELD_BODY: encode_body(event) if body is None else body,
    }


def _text(fields: Mapping[bytes, bytes], key: bytes) -> str:
    raw = fields.get(key)
    if raw is None:
        raise DecodeError(f"missing field {key.decode()!r}")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"field {key.decode()!r} is not UTF-8") from exc


def entry_header(fields: Mapping[bytes, bytes]) -> tuple[str, str]:
    """``(type, event id)`` of an entry without decoding its body."""
    return _text(fields, FIELD_TYPE), _text(fields, FIELD_ID)


def decode_fields(fields: Mapping[bytes, bytes], body: bytes | None = None) -> Event:
    """Decode a stream entry; ``body`` overrides ``b`` (e.g. after decryption)."""
    type_tag, event_id = entry_header(fields)
    raw = fields.get(FIELD_BODY) if body is None else body
    if raw is None:
        raise DecodeError("missing field 'b'")
    event = decode_body(type_tag, raw)
    if getattr(event, "event_id", None) != event_id:
        raise DecodeError(f"entry id {event_id!r} does not match the body's event_id")
    return event
