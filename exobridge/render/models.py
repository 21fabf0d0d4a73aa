"""What `exobridge models` shows: Rich tables on a terminal, plain aligned columns when piped, or JSON.

The lists and the model table go to stdout; unreachable providers and notes about a list go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from exobridge.render.chat import StderrLines, stream_is_tty


def _age(read_at: float | None) -> str:
    import time

    if read_at is None:
        return ""
    seconds = max(0, int(time.time() - read_at))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def availability(cell: dict[str, Any] | None, line: str | None) -> str:
    """One word for a table cell: the model is there, is not, or nobody knows."""
    if cell is None:
        return "-"
    if cell["available"] is None:
        return "?"
    if cell["available"]:
        return "placed" if line == "v1" else "listed"
    return "not placed" if line == "v1" and cell.get("listed") else "missing"


def plain_columns(rows: list[list[str]]) -> str:
    """Rows aligned in space-padded columns; the last column is not padded."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _yes(value: Any) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


class ModelsView:
    def __init__(self, *, json_mode: bool, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.err = StderrLines(stderr)
        self.json_mode = json_mode
        self.rich = not json_mode and stream_is_tty(self.stdout)

    def show(self, lists: list[Any], table: list[Any], config: Any) -> None:
        if self.json_mode:
            data = {"providers": [item.to_json() for item in lists], "table": [e.to_json() for e in table]}
            self.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            self.stdout.flush()
            return
        for item in lists:
            if item.status == "unreachable":
                line = f"exobridge: {item.name} ({item.url}): unreachable: {item.reason}"
                if item.hint:
                    line += f" → {item.hint}"
                self.err.write(line, "yellow")
            elif item.status == "disabled":
                self.err.write(f"exobridge: {item.name}: {item.reason}", "dim")
            elif item.note:
                self.err.write(f"exobridge: {item.name}: {item.note}", "dim")
        lines = {item.name: item.line for item in lists}
        names = [item.name for item in lists if item.status != "disabled"]
        if self.rich:
            self._rich(lists, table, names, lines)
        else:
            self._plain(lists, table, names, lines)

    def _plain(self, lists: list[Any], table: list[Any], names: list[str], lines: dict[str, str | None]) -> None:
        rows = [["PROVIDER", "MODEL", "FREE", "PLACED", "CONTEXT"]]
        for item in lists:
            for model in item.models:
                placed = model.get("placed") if item.line == "v1" else None
                context = str(model["context_length"]) if model.get("context_length") else "-"
                rows.append([item.name, model["id"], _yes(model.get("free")), _yes(placed), context])
        out = plain_columns(rows) if len(rows) > 1 else ""
        table_rows = [["NAME", *[n.upper() for n in names]]]
        for entry in table:
            label = f"{entry.name}*" if entry.default else entry.name
            table_rows.append([label, *[availability(entry.providers.get(n), lines[n]) for n in names]])
        if len(table_rows) > 1:
            out += ("\n" if out else "") + plain_columns(table_rows)
        self.stdout.write(out)
        self.stdout.flush()

    def _rich(self, lists: list[Any], table: list[Any], names: list[str], lines: dict[str, str | None]) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=self.stdout, highlight=False, no_color=bool(os.environ.get("NO_COLOR")))
        for item in lists:
            if item.status != "ok":
                continue
            title = f"{item.name} · {item.url}"
            if item.line:
                title += f" · Exo {item.line}"
            title += f" · {len(item.models)} models"
            if item.cached:
                title += f" · cached {_age(item.read_at)}"
            grid = Table(title=title, title_justify="left", header_style="bold")
            grid.add_column("model")
            grid.add_column("free")
            if item.line == "v1":
                grid.add_column("placed")
            grid.add_column("context", justify="right")
            for model in item.models:
                cells = [model["id"], "✓" if model.get("free") else ""]
                if item.line == "v1":
                    cells.append("[green]✓ placed[/]" if model.get("placed") else "")
                cells.append(str(model.get("context_length") or ""))
                grid.add_row(*cells)
            console.print(grid)
        styles = {"placed": "green", "listed": "green", "missing": "red", "not placed": "yellow", "?": "dim"}
        grid = Table(title="model table (* = default_model)", title_justify="left", header_style="bold")
        grid.add_column("name")
        for name in names:
            grid.add_column(name)
        for entry in table:
            cells = [f"[bold]{entry.name}[/] *" if entry.default else entry.name]
            for name in names:
                word = availability(entry.providers.get(name), lines[name])
                style = styles.get(word, "dim")
                cells.append(f"[{style}]{word}[/]")
            grid.add_row(*cells)
        console.print(grid)
