"""What the `config`, `keys` and `providers add|remove|…` commands print, through the command's IOStreams.

stdout: the data (a table, a raw value, or exactly one JSON object, `io.json_line`'s one style). stderr:
notices. A Rich table when stdout is a terminal with colour; plain aligned columns otherwise, so pipes and
scripts get text. Cells are never read as Rich markup and are shown terminal-safe (`sanitize.terminal_text`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from exobridge.core.sanitize import terminal_text

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams


def raw_value(value: Any) -> str:
    """A value as a script wants it: strings bare, booleans `true`/`false`, lists and tables as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def shown_value(value: Any) -> str:
    """A value as the config file would spell it (strings quoted), for tables."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return raw_value(value)


def write_json(io: IOStreams, data: Any) -> None:
    from exobridge.render.io import json_line

    io.write_out(json_line(data))


def write_line(io: IOStreams, text: str) -> None:
    io.write_out(text + "\n")


def notice(io: IOStreams, text: str, style: str | None = "dim") -> None:
    io.notice(terminal_text(text), style)


def warn(io: IOStreams, text: str) -> None:
    io.notice(f"exobridge: warning: {terminal_text(text)}", "yellow")


def table(io: IOStreams, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rich table on a colour terminal; plain columns separated by two spaces otherwise."""
    cells = [[terminal_text(str(cell)) for cell in row] for row in rows]
    if io.is_stdout_tty and io.color_stdout:
        from rich.table import Table
        from rich.text import Text

        rich_table = Table(box=None, pad_edge=False, header_style="bold")
        for header in headers:
            rich_table.add_column(header, overflow="fold")
        for row in cells:
            rich_table.add_row(*(Text(cell) for cell in row))
        io.rich_console().print(rich_table)
        io.out.flush()
        return
    widths = [max(len(cell) for cell in column) for column in zip(headers, *cells, strict=False)]
    lines = []
    for row in (list(headers), *cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
    io.write_out("".join(line + "\n" for line in lines))


def paths(io: IOStreams, rows: list[dict[str, Any]], as_json: bool) -> None:
    """`config path`: rows of {name, path, exists}."""
    if as_json:
        write_json(io, {row["name"]: {"path": row["path"], "exists": row["exists"]} for row in rows})
        return
    table(
        io, ["WHAT", "PATH", "EXISTS"], [[row["name"], row["path"], "yes" if row["exists"] else "no"] for row in rows]
    )


def settings(
    io: IOStreams,
    path: str,
    file_exists: bool,
    values: list[dict[str, Any]],
    keys: list[dict[str, Any]],
    unknown: list[str],
    as_json: bool,
) -> None:
    """`config show`: every effective value with its source, then each provider's key (masked)."""
    if as_json:
        write_json(
            io,
            {
                "path": path,
                "file_exists": file_exists,
                "values": {row["key"]: {"value": row["value"], "source": row["source"]} for row in values},
                "keys": {row["provider"]: {"source": row["source"], "masked": row["masked"]} for row in keys},
                "unknown_keys": unknown,
            },
        )
        return
    notice(io, f"config: {path}" + ("" if file_exists else " (no file: built-in defaults)"))
    rows = [[row["key"], shown_value(row["value"]), row["source"]] for row in values]
    rows.extend(
        [f"providers.{row['provider']}.key", row["masked"] or f"({row['source']})", row["source"]] for row in keys
    )
    table(io, ["KEY", "VALUE", "SOURCE"], rows)
    for key in unknown:
        warn(io, f"unknown key {key!r} in the config file (ignored)")


KEY_COLUMNS = (("provider", "PROVIDER"), ("source", "SOURCE"), ("masked", "KEY"), ("note", "NOTE"))


def key_table(io: IOStreams, rows: list[dict[str, Any]]) -> None:
    """`keys list`: rows hold masked keys only; this function never sees a raw key."""
    table(io, [title for _, title in KEY_COLUMNS], [[row.get(f) or "" for f, _ in KEY_COLUMNS] for row in rows])
