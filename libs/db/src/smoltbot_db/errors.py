"""Exceptions of ``smoltbot_db``: one base so callers can catch everything this package raises."""

from __future__ import annotations

__all__ = [
    "ChecksumMismatchError",
    "DatabaseUnavailableError",
    "DbError",
    "MigrationError",
    "MigrationFailedError",
]


class DbError(Exception):
    """Base of every error raised by ``smoltbot_db``."""


class DatabaseUnavailableError(DbError):
    """PostgreSQL could not be reached within the retry budget."""


class MigrationError(DbError):
    """The migration run could not complete; nothing after the failing step was applied."""


class ChecksumMismatchError(MigrationError):
    """An already-applied migration file was edited after it ran (``filenames`` names them)."""

    def __init__(self, filenames: list[str]) -> None:
        self.filenames = filenames
        names = ", ".join(filenames)
        super().__init__(
            f"already-applied migration(s) changed on disk: {names}. Applied migrations are "
            "immutable: restore the original file(s) and put the change in a new migration file"
        )


class MigrationFailedError(MigrationError):
    """One migration file raised an error; its transaction was rolled back."""

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = filename
        self.reason = reason
        super().__init__(f"migration {filename} failed and was rolled back: {reason}")
