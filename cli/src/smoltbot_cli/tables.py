"""Readable tables for the CLI (every table command also has ``--json``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 60
) -> str:
    """A plain fixed-width table (one line per row, easy to grep)."""
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line.rstrip(), *(b.rstrip() for b in body)])


def print_rich_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    title: str | None = None,
    caption: str | None = None,
    numeric: Sequence[str] = (),
) -> None:
    """A ``rich`` table on stdout; ``numeric`` columns are right-aligned. Rows never wrap when
    stdout is not a terminal (a pipe or a file gets whole lines)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=400)
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for header in headers:
        table.add_column(header, justify="right" if header in numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(_cell(v, 10_000)) for v in row))  # values are never markup
    console.print(table)


def _cell(value: object, max_width: int) -> str:
    text = "-" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
