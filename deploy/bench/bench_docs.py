"""One way for a benchmark script to put its generated section into docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

NOTES = "## Notes and limitations"


def replace_section(path: Path, section: str, begin: str, end: str) -> None:
    """Replace the section between ``begin`` and ``end`` (``section`` carries both markers), or
    insert it before the notes (else at the end)."""
    text = path.read_text()
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    elif NOTES in text:
        head, tail = text.split(NOTES, 1)
        text = head + section + "\n\n" + NOTES + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
