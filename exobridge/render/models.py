"""What `exobridge models` shows: Rich tables on a terminal, plain aligned columns when piped, or JSON.

The lists and the model table go to stdout; unreachable providers and notes about a list go to stderr.
Model ids, URLs and reasons come from providers: they are shown through `terminal_text` and, on a terminal,
as `rich.text.Text` on a console with markup off, so `foo[/bar]` is a model id, not a markup error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exobridge.core.sanitize import terminal_text
from exobridge.render import io as iostreams
from exobridge.render.io import IOStreams


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


def cluster_word(model: dict[str, Any]) -> str | None:
    """What an Exo v1 cluster can do with a listed model, when its state said (core.exo_state.mark_cluster):
    "2 nodes" (placed on them), "downloaded", "fits", "too big"; None when the list has no such marks."""
    nodes = model.get("placed_nodes")
    if nodes is None and "downloaded_nodes" not in model and "fits" not in model:
        return None
    if nodes:
        return f"{nodes} node{'s' if nodes != 1 else ''}"
    if model.get("downloaded_nodes"):
        return "downloaded"
    if model.get("fits") is not None:
        return "fits" if model["fits"] else "too big"
    return "no"


def models_json(
    lists: list[Any],
    table: list[Any],
    hint: Callable[[Any], str | None] | None = None,
    exit_code: int = 0,
) -> dict[str, Any]:
    """The `--json` object: every provider's list (with the CLI's hint), the model table, `error`, `exit_code`."""
    providers = []
    for item in lists:
        data = item.to_json()
        if hint is not None:
            data["hint"] = hint(item)
        providers.append(data)
    error = None if exit_code == 0 else "none of the providers asked could give its list"
    return {"providers": providers, "table": [e.to_json() for e in table], "error": error, "exit_code": exit_code}


class ModelsView:
    """`hint(item)` gives the next step for an unreachable list (the CLI makes it from the failure kind)."""

    def __init__(
        self, *, json_mode: bool, io: IOStreams | None = None, hint: Callable[[Any], str | None] | None = None
    ) -> None:
        self.io = io or iostreams.current()
        self.json_mode = json_mode
        self.hint = hint or (lambda item: getattr(item, "hint", None))
        self.rich = not json_mode and self.io.is_stdout_tty

    def show(self, lists: list[Any], table: list[Any], config: Any = None, exit_code: int = 0) -> None:
        if self.json_mode:
            self.io.write_out(iostreams.json_line(models_json(lists, table, self.hint, exit_code)))
            return
        for item in lists:
            status = str(item.status)
            if status == "unreachable":
                line = terminal_text(f"exobridge: {item.name} ({item.url}): unreachable: {item.reason}")
                hint = self.hint(item)
                if hint:
                    line += f" → {terminal_text(hint)}"
                self.io.notice(line, "yellow")
            elif status == "disabled":
                self.io.notice(terminal_text(f"exobridge: {item.name}: {item.reason}"), "dim")
            elif item.note:
                self.io.notice(terminal_text(f"exobridge: {item.name}: {item.note}"), "dim")
        lines = {item.name: item.line for item in lists}
        names = [item.name for item in lists if str(item.status) != "disabled"]
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
                word = (cluster_word(model) if item.line == "v1" else None) or _yes(placed)
                rows.append([item.name, terminal_text(model["id"]), _yes(model.get("free")), word, context])
        out = plain_columns(rows) if len(rows) > 1 else ""
        table_rows = [["NAME", *[n.upper() for n in names]]]
        for entry in table:
            label = f"{entry.name}*" if entry.default else entry.name
            table_rows.append([terminal_text(label), *[availability(entry.providers.get(n), lines[n]) for n in names]])
        if len(table_rows) > 1:
            out += ("\n" if out else "") + plain_columns(table_rows)
        self.io.write_out(out)

    def _rich(self, lists: list[Any], table: list[Any], names: list[str], lines: dict[str, str | None]) -> None:
        from rich.table import Table
        from rich.text import Text

        console = self.io.rich_console()
        for item in lists:
            if str(item.status) != "ok":
                continue
            title = f"{item.name} · {item.url}"
            if item.line:
                title += f" · Exo {item.line}"
            title += f" · {len(item.models)} models"
            if item.cached:
                title += f" · cached {_age(item.read_at)}"
            grid = Table(title=Text(terminal_text(title)), title_justify="left", header_style="bold")
            grid.add_column("model")
            grid.add_column("free")
            if item.line == "v1":
                grid.add_column("placed")
            grid.add_column("context", justify="right")
            for model in item.models:
                cells: list[Any] = [Text(terminal_text(model["id"])), "✓" if model.get("free") else ""]
                if item.line == "v1":
                    word = cluster_word(model)
                    if model.get("placed"):
                        cells.append(Text(f"✓ placed ({word})" if word else "✓ placed", style="green"))
                    elif word in ("downloaded", "fits"):
                        cells.append(Text(word, style="yellow"))
                    else:
                        cells.append(Text(word or "", style="dim"))
                cells.append(str(model.get("context_length") or ""))
                grid.add_row(*cells)
            console.print(grid)
        styles = {"placed": "green", "listed": "green", "missing": "red", "not placed": "yellow", "?": "dim"}
        grid = Table(title="model table (* = default_model)", title_justify="left", header_style="bold")
        grid.add_column("name")
        for name in names:
            grid.add_column(Text(terminal_text(name)))
        for entry in table:
            name_cell = Text(terminal_text(entry.name), style="bold" if entry.default else "")
            if entry.default:
                name_cell.append(" *")
            row: list[Any] = [name_cell]
            for name in names:
                word = availability(entry.providers.get(name), lines[name])
                row.append(Text(word, style=styles.get(word, "dim")))
            grid.add_row(*row)
        console.print(grid)
        self.io.out.flush()
