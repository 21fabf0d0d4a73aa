"""What `exobridge keys list` shows: a Rich table on a terminal, plain aligned columns when piped.

Rows hold masked keys only; this module never sees a raw key.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from exobridge.render.chat import stream_is_tty

COLUMNS = (("provider", "PROVIDER"), ("source", "SOURCE"), ("masked", "KEY"), ("note", "NOTE"))


def key_table(rows: list[dict[str, Any]], stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    cells = [[str(row.get(field) or "") for field, _ in COLUMNS] for row in rows]
    if stream_is_tty(stream):
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold" if not os.environ.get("NO_COLOR") else "")
        for _, title in COLUMNS:
            table.add_column(title)
        for line in cells:
            table.add_row(*line)
        Console(file=stream, highlight=False, no_color=bool(os.environ.get("NO_COLOR"))).print(table)
        return
    titles = [title for _, title in COLUMNS]
    widths = [max(len(titles[i]), *(len(line[i]) for line in cells)) for i in range(len(titles))]
    for line in [titles, *cells]:
        stream.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n")
    stream.flush()
