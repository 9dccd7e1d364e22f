"""Local append-only spool for events Redis cannot take right now (architecture §3.2).

Records are ``[u32 length][u32 crc32][msgpack [stream, [[field, value], ...]]]`` in segment files
(which files are this process's: :class:`~smoltbot_bus._segments.SegmentDir`). Writes happen off
the event loop, one write + one fsync per call (the publisher hands over whole batches, so fsyncs
are grouped). Draining seals the open segment, re-publishes sealed segments oldest first and
deletes each once fully sent (a clean stop mid-segment rewrites it to the unsent rest); a crash
mid-drain re-sends that segment, which is safe because
every sink is idempotent. A torn tail (crash while writing) is skipped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from smoltbot_bus._metrics import SPOOL_BYTES, SPOOL_DROPPED, SPOOL_RECORDS, SPOOL_TORN
from smoltbot_bus._segments import SegmentDir

log = logging.getLogger(__name__)

Record = tuple[str, dict[bytes, bytes]]
_HEADER = struct.Struct(">II")
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(tuple[str, list[tuple[bytes, bytes]]])


def encode_record(record: Record) -> bytes:
    stream, fields = record
    payload = _ENC.encode((stream, list(fields.items())))
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(data: bytes) -> tuple[list[Record], bool]:
    """Decode a segment; returns the records and whether a torn or corrupt tail was skipped."""
    out: list[Record] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < _HEADER.size:
            return out, True
        length, crc = _HEADER.unpack_from(data, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            return out, True
        try:
            stream, pairs = _DEC.decode(data[start:end])
        except msgspec.DecodeError:
            return out, True
        out.append((stream, dict(pairs)))
        pos = end
    return out, False


class Spool:
    """One process's spool: appends batches durably under a size cap, drains them back."""

    def __init__(
        self,
        directory: Path,
        instance: str,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        segment_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._dir = SegmentDir(directory, instance)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._open_path: Path | None = None
        self._open_size = 0
        self._io_lock = asyncio.Lock()

    @property
    def directory(self) -> Path:
        return self._dir.directory

    @property
    def instance(self) -> str:
        return self._dir.instance

    def open(self) -> None:
        """Take this instance's lock and adopt orphaned segments."""
        self._dir.open()
        self._update_gauge()

    def close(self) -> None:
        self._dir.close()

    def size_bytes(self) -> int:
        return self._dir.size_bytes()

    def has_data(self) -> bool:
        return any(p.stat().st_size > 0 for p in self._dir.segments())

    async def append(self, records: list[Record]) -> int:
        """Durably append records (one fsync); returns how many fit under the size cap."""
        if not records:
            return 0
        async with self._io_lock:
            return await asyncio.to_thread(self._append_sync, records)

    async def drain(
        self,
        publish: Callable[[list[Record]], Awaitable[None]],
        *,
        batch_size: int = 200,
        max_per_s: float = 5000.0,
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Re-publish sealed segments oldest first at a bounded rate; returns records sent.

        ``publish`` raising stops the drain; the segment stays and is re-sent from its start
        next time. ``stop()`` turning true (shutdown) stops between chunks and rewrites the
        segment to what is still unsent, so a clean stop re-sends nothing.
        """
        sent = 0
        async with self._io_lock:
            segments = self._seal()
        for path in segments:
            records = await asyncio.to_thread(self._load_segment, path)
            for i in range(0, len(records), batch_size):
                if sent:  # the rate bound sits before a chunk, so a stop never waits on it
                    await asyncio.sleep(batch_size / max_per_s)
                if stop():
                    if i:
                        async with self._io_lock:
                            await asyncio.to_thread(self._rewrite, path, records[i:])
                        self._update_gauge()
                    return sent
                chunk = records[i : i + batch_size]
                await publish(chunk)
                sent += len(chunk)
            async with self._io_lock:
                path.unlink(missing_ok=True)
            self._update_gauge()
            log.info("spool segment re-published", extra={"segment": path.name, "n": len(records)})
        return sent

    def _rewrite(self, path: Path, records: list[Record]) -> None:
        """Replace a segment by ``records`` atomically (temp file, fsync, rename)."""
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            data = memoryview(b"".join(encode_record(r) for r in records))
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
        self._dir.fsync()

    def _append_sync(self, records: list[Record]) -> int:
        if not self._dir.is_open:
            self.open()  # e.g. a publisher closed before it was ever started
        blobs = self._fit(records)
        if blobs:
            self._write(blobs)
            SPOOL_RECORDS.inc(len(blobs))
        self._update_gauge()
        return len(blobs)

    def _fit(self, records: list[Record]) -> list[bytes]:
        """The encoded records that fit under the cap, in order; the rest are counted dropped."""
        budget = self.max_bytes - self.size_bytes()
        blobs: list[bytes] = []
        for record in records:
            blob = encode_record(record)
            if len(blob) > budget:
                break
            budget -= len(blob)
            blobs.append(blob)
        if dropped := records[len(blobs) :]:
            for stream, _ in dropped:
                SPOOL_DROPPED.labels(stream).inc()
            log.error("spool full; events dropped", extra={"dropped": len(dropped)})
        return blobs

    def _write(self, blobs: list[bytes]) -> None:
        """One write and one fsync to the open segment (a new one past ``segment_bytes``)."""
        new_segment = self._open_path is None or self._open_size >= self.segment_bytes
        if new_segment:
            self._open_path = self._dir.next_segment()
            self._open_size = 0
        assert self._open_path is not None
        data = memoryview(b"".join(blobs))
        fd = os.open(self._open_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            while data:  # a short write must not leave a torn record mid-segment
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except OSError:
            self._open_path = None  # never append after a failed write: start a new segment
            raise
        finally:
            os.close(fd)
        if new_segment:
            self._dir.fsync()
        self._open_size += sum(len(b) for b in blobs)

    def _seal(self) -> list[Path]:
        self._open_path = None
        self._open_size = 0
        return self._dir.segments()

    @staticmethod
    def _load_segment(path: Path) -> list[Record]:
        records, torn = read_records(path.read_bytes())
        if torn:
            SPOOL_TORN.inc()
            log.warning("skipped a torn or corrupt spool tail", extra={"segment": path.name})
        return records

    def _update_gauge(self) -> None:
        with contextlib.suppress(OSError):
            SPOOL_BYTES.set(self.size_bytes())
