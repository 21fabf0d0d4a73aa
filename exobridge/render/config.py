"""What the `config` and `providers add|remove|…` commands print.

stdout: the data (a table, a raw value, or exactly one JSON object). stderr: notices. Rich only when the
stream is a terminal and NO_COLOR is unset; plain aligned columns otherwise, so pipes and scripts get text.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from exobridge.render.chat import StderrLines, stream_is_tty


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


def write_json(data: Any, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    stream.flush()


def write_line(text: str, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def notice(text: str, style: str | None = "dim") -> None:
    StderrLines().write(text, style)


def warn(text: str) -> None:
    StderrLines().write(f"exobridge: warning: {text}", "yellow")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], stream: IO[str] | None = None) -> None:
    """Rich table on a terminal; plain columns separated by two spaces when piped."""
    stream = stream or sys.stdout
    if stream_is_tty(stream) and not os.environ.get("NO_COLOR"):
        from rich.console import Console
        from rich.table import Table

        rich_table = Table(box=None, pad_edge=False, header_style="bold")
        for header in headers:
            rich_table.add_column(header, overflow="fold")
        for row in rows:
            rich_table.add_row(*row)
        Console(file=stream, highlight=False).print(rich_table)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        stream.write("  ".join(cells).rstrip() + "\n")
    stream.flush()


def paths(rows: list[dict[str, Any]], as_json: bool) -> None:
    """`config path`: rows of {name, path, exists}."""
    if as_json:
        write_json({row["name"]: {"path": row["path"], "exists": row["exists"]} for row in rows})
        return
    table(["WHAT", "PATH", "EXISTS"], [[row["name"], row["path"], "yes" if row["exists"] else "no"] for row in rows])


def settings(
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
            {
                "path": path,
                "file_exists": file_exists,
                "values": {row["key"]: {"value": row["value"], "source": row["source"]} for row in values},
                "keys": {row["provider"]: {"source": row["source"], "masked": row["masked"]} for row in keys},
                "unknown_keys": unknown,
            }
        )
        return
    notice(f"config: {path}" + ("" if file_exists else " (no file: built-in defaults)"))
    rows = [[row["key"], shown_value(row["value"]), row["source"]] for row in values]
    rows.extend(
        [f"providers.{row['provider']}.key", row["masked"] or f"({row['source']})", row["source"]] for row in keys
    )
    table(["KEY", "VALUE", "SOURCE"], rows)
    for key in unknown:
        warn(f"unknown key {key!r} in the config file (ignored)")
