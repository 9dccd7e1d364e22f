"""The spool directory (architecture §3.2): which segment files belong to this process.

Segments are ``<instance>.<seq>.spool``. Each process holds an flock on ``<instance>.lock``; at
start it adopts (renames into its own sequence) the segments of instances whose lock is free,
i.e. whose process died, so a gateway stopped mid-outage loses nothing on a shared volume.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class SegmentDir:
    """One instance's view of a spool directory: its lock, its segments, their sequence."""

    def __init__(self, directory: Path, instance: str) -> None:
        self.directory = directory
        self.instance = instance.replace("/", "_")
        self._lock_fd: int | None = None
        self._seq = 0

    @property
    def is_open(self) -> bool:
        return self._lock_fd is not None

    def open(self) -> None:
        """Create the directory, take this instance's lock and adopt orphaned segments."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"{self.instance}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock_fd = fd
        self._seq = max((_seq_of(p) for p in self.segments()), default=0)
        self._adopt_orphans()

    def close(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def segments(self) -> list[Path]:
        """This instance's segments, oldest first."""
        return sorted(self.directory.glob(f"{self.instance}.*.spool"), key=_seq_of)

    def next_segment(self) -> Path:
        """The path of a new segment, after every existing one."""
        self._seq += 1
        return self.directory / f"{self.instance}.{self._seq:09d}.spool"

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments() if p.exists())

    def fsync(self) -> None:
        """Make a new or renamed segment's directory entry durable too."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

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
                for seg in sorted(self.directory.glob(f"{owner}.*.spool"), key=_seq_of):
                    seg.rename(self.next_segment())
                    log.warning("adopted orphaned spool segment", extra={"from": seg.name})
                lock.unlink(missing_ok=True)
                self.fsync()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _seq_of(path: Path) -> int:
    return int(path.name.rsplit(".", 2)[-2])
