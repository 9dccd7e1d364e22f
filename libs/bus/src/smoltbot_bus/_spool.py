"""Local append-only spool for events Redis cannot take right now (architecture §3.2).

Records are ``[u32 length][u32 crc32][msgpack [stream, [[field, value], ...]]]`` in segment files
``<instance>.<seq>.spool``. Writes happen off the event loop, one write + one fsync per call (the
publisher hands over whole batches, so fsyncs are grouped). Draining seals the open segment,
re-publishes sealed segments oldest first and deletes each once fully sent; a crash mid-drain
re-sends that segment, which is safe because every sink is idempotent. A torn tail (crash while
writing) is skipped and counted. Each process holds an flock on ``<instance>.lock``; at start a
process adopts the segments of instances whose lock is free (a process that died).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import msgspec

from smoltbot_bus._metrics import SPOOL_BYTES, SPOOL_DROPPED, SPOOL_RECORDS, SPOOL_TORN

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
    """One process's spool directory view."""

    def __init__(
        self,
        directory: Path,
        instance: str,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        segment_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.instance = instance.replace("/", "_")
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock_fd: int | None = None
        self._seq = 0
        self._open_path: Path | None = None
        self._open_size = 0
        self._io_lock = asyncio.Lock()

    # ------------------------------------------------------------------ ownership

    def open(self) -> None:
        """Create the directory, take this instance's lock and adopt orphaned segments."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"{self.instance}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd
        existing = [self._seq_of(p) for p in self._segments()]
        self._seq = max(existing, default=0)
        self._adopt_orphans()
        self._update_gauge()

    def close(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _adopt_orphans(self) -> None:
        """Take over segments of instances whose lock nobody holds (their process is gone)."""
        owners = {p.name.rsplit(".", 2)[0] for p in self.directory.glob("*.spool")}
        owners |= {p.name.removesuffix(".lock") for p in self.directory.glob("*.lock")}
        for owner in sorted(owners - {self.instance}):
            lock = self.directory / f"{owner}.lock"
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # its process is alive and owns its spool
            try:
                for seg in sorted(self.directory.glob(f"{owner}.*.spool"), key=self._seq_of):
                    self._seq += 1
                    seg.rename(self._path(self._seq))
                    log.warning("adopted orphaned spool segment", extra={"from": seg.name})
                lock.unlink(missing_ok=True)
                self._fsync_dir()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    # ------------------------------------------------------------------ files

    def _path(self, seq: int) -> Path:
        return self.directory / f"{self.instance}.{seq:09d}.spool"

    @staticmethod
    def _seq_of(path: Path) -> int:
        return int(path.name.rsplit(".", 2)[-2])

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.instance}.*.spool"), key=self._seq_of)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments() if p.exists())

    def _fsync_dir(self) -> None:
        """Make a new or renamed segment's directory entry durable too."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _update_gauge(self) -> None:
        with contextlib.suppress(OSError):
            SPOOL_BYTES.set(self.size_bytes())

    # ------------------------------------------------------------------ writing

    async def append(self, records: list[Record]) -> int:
        """Durably append records (one fsync); returns how many fit under the size cap."""
        if not records:
            return 0
        async with self._io_lock:
            return await asyncio.to_thread(self._append_sync, records)

    def _append_sync(self, records: list[Record]) -> int:
        if self._lock_fd is None:
            self.open()  # e.g. a publisher closed before it was ever started
        budget = self.max_bytes - self.size_bytes()
        blobs: list[bytes] = []
        for record in records:
            blob = encode_record(record)
            if len(blob) > budget:
                break
            budget -= len(blob)
            blobs.append(blob)
        dropped = len(records) - len(blobs)
        if dropped:
            for stream, _ in records[len(blobs) :]:
                SPOOL_DROPPED.labels(stream).inc()
            log.error("spool full; events dropped", extra={"dropped": dropped})
        if blobs:
            new_segment = self._open_path is None or self._open_size >= self.segment_bytes
            if new_segment:
                self._seq += 1
                self._open_path = self._path(self._seq)
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
                self._fsync_dir()
            self._open_size += sum(len(b) for b in blobs)
            SPOOL_RECORDS.inc(len(blobs))
        self._update_gauge()
        return len(blobs)

    # ------------------------------------------------------------------ draining

    def has_data(self) -> bool:
        return any(p.stat().st_size > 0 for p in self._segments())

    def _seal(self) -> list[Path]:
        self._open_path = None
        self._open_size = 0
        return self._segments()

    def _load_segment(self, path: Path) -> list[Record]:
        return list(self._read_segment(path))

    def _read_segment(self, path: Path) -> Iterator[Record]:
        records, torn = read_records(path.read_bytes())
        if torn:
            SPOOL_TORN.inc()
            log.warning("skipped a torn or corrupt spool tail", extra={"segment": path.name})
        yield from records

    async def drain(
        self,
        publish: Callable[[list[Record]], Awaitable[None]],
        *,
        batch_size: int = 200,
        max_per_s: float = 5000.0,
    ) -> int:
        """Re-publish sealed segments oldest first at a bounded rate; returns records sent.

        ``publish`` raising stops the drain; the segment stays and is re-sent from its start
        next time.
        """
        sent = 0
        async with self._io_lock:
            segments = self._seal()
        for path in segments:
            records = await asyncio.to_thread(self._load_segment, path)
            for i in range(0, len(records), batch_size):
                chunk = records[i : i + batch_size]
                await publish(chunk)
                sent += len(chunk)
                await asyncio.sleep(len(chunk) / max_per_s)
            async with self._io_lock:
                path.unlink(missing_ok=True)
            self._update_gauge()
            log.info("spool segment re-published", extra={"segment": path.name, "n": len(records)})
        return sent
