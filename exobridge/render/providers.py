"""Tables for `exobridge providers list|status`: Rich on a terminal, plain columns when piped, or JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from exobridge.render.chat import StderrLines, stream_is_tty


def warn(message: str) -> None:
    StderrLines().write(f"exobridge: warning: {message}", "yellow")


def _styled() -> bool:
    return stream_is_tty(sys.stdout) and not os.environ.get("NO_COLOR")


def plain_columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Space-padded columns, one line per row: easy to read, `cut` and `awk`."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()) -> Any:
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for i, row in enumerate(rows):
        table.add_row(*row, style=styles[i] if i < len(styles) else None)
    return table


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()) -> None:
    if _styled():
        from rich.console import Console

        Console(highlight=False).print(_rich_table(headers, rows, styles))
    else:
        sys.stdout.write(plain_columns(headers, rows))
        sys.stdout.flush()


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- providers list ---------------------------------------------------------------------------------


def key_text(key: dict[str, Any]) -> str:
    source = key["source"]
    if key.get("masked"):
        return f"{key['masked']} ({source})"
    return source


LIST_HEADERS = ("NAME", "KIND", "URL", "ENABLED", "KEY", "COOLDOWN")


def list_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    table = []
    for row in rows:
        cooling = {c["url"]: c["reason"] for c in row["cooldowns"]}
        for i, url in enumerate(row["urls"]):
            first = i == 0
            table.append(
                [
                    row["name"] if first else "",
                    row["kind"] if first else "",
                    url,
                    ("yes" if row["enabled"] else "no") if first else "",
                    key_text(row["key"]) if first else "",
                    cooling.get(url, "-"),
                ]
            )
    return table


def show_list(rows: list[dict[str, Any]], json_mode: bool) -> None:
    if json_mode:
        _json({"providers": rows})
        return
    styles = [None if r["enabled"] else "dim" for r in rows for _ in r["urls"]]
    _print_table(LIST_HEADERS, list_rows(rows), styles)


# --- providers status -------------------------------------------------------------------------------

STATUS_HEADERS = ("NAME", "URL", "REACHABLE", "DETAILS", "KEY", "COOLDOWN", "PROBLEM")


def _money(value: float | None) -> str:
    return "unlimited" if value is None else f"${value:.2f}"


def details(result: Any) -> str:
    """What the probe learned, in one cell: Exo line, nodes and models; key label and credits; models."""
    parts: list[str] = []
    if result.kind == "exo":
        if result.api_line:
            parts.append(f"{result.api_line} API")
        if result.nodes is not None:
            parts.append(f"{result.nodes} node{'s' if result.nodes != 1 else ''}")
        if result.models_ready is not None:
            if result.models_ready_note:
                parts.append(f"{result.models_ready} models listed (every card, not what is loaded)")
            else:
                parts.append(f"{result.models_ready} model{'s' if result.models_ready != 1 else ''} ready")
    elif result.kind == "openrouter":
        if result.key_valid:
            label = f" ({result.key_label})" if result.key_label else ""
            parts.append(f"key valid{label}")
            if result.credits_limit is None:
                parts.append("no credit limit")
            else:
                parts.append(f"{_money(result.credits_remaining)} of {_money(result.credits_limit)} left")
            if result.credits_usage is not None:
                parts.append(f"used ${result.credits_usage:.2f}")
            if result.free_tier:
                parts.append("free tier")
    else:
        if result.key_valid:
            parts.append("key valid")
        if result.models_ready is not None:
            parts.append(f"{result.models_ready} model{'s' if result.models_ready != 1 else ''}")
    return " · ".join(parts) or "-"


def reachable_text(result: Any) -> str:
    if result.reachable is None:
        return "not probed"
    if not result.reachable:
        return "no"
    return f"yes ({result.latency_ms} ms)" if result.latency_ms is not None else "yes"


def status_rows(results: list[Any]) -> list[list[str]]:
    rows = []
    previous = None
    for r in results:
        cooldown = r.cooldown or (f"- (last: {r.last_failure})" if r.last_failure else "-")
        key = f"{r.key_masked} ({r.key_source})" if r.key_masked else (r.key_source or "-")
        if r.key_valid is False:
            key += " REJECTED"
        rows.append(
            [
                r.provider if r.provider != previous else "",
                r.url,
                reachable_text(r),
                details(r),
                key,
                cooldown,
                r.problem or "-",
            ]
        )
        previous = r.provider
    return rows


def _status_styles(results: list[Any]) -> list[str | None]:
    return [None if r.can_answer else ("yellow" if r.reachable else "red") for r in results]


def status_summary(results: list[Any]) -> str:
    ready = list(dict.fromkeys(r.provider for r in results if r.can_answer))  # priority order
    if ready:
        return f"can answer: {', '.join(ready)}"
    return "no provider can answer"


def show_status(results: list[Any], json_mode: bool) -> None:
    if json_mode:
        ready = list(dict.fromkeys(r.provider for r in results if r.can_answer))  # priority order
        _json({"can_answer": ready, "nodes": [r.to_json() for r in results]})
        return
    _print_table(STATUS_HEADERS, status_rows(results), _status_styles(results))
    StderrLines().write(status_summary(results), "dim" if any(r.can_answer for r in results) else "bold red")


def watch_status(probe: Callable[[], list[Any]], interval: float) -> None:
    """Re-probe every `interval` seconds, redrawing in place, until Ctrl-C (which ends it quietly)."""
    try:
        if not _styled():
            while True:
                results = probe()
                sys.stdout.write(plain_columns(STATUS_HEADERS, status_rows(results)) + "\n")
                sys.stdout.flush()
                time.sleep(interval)
        from rich.console import Console, Group
        from rich.live import Live
        from rich.text import Text

        def frame(results: list[Any]) -> Any:
            stamp = Text(f"{status_summary(results)} · {time.strftime('%H:%M:%S')} · Ctrl-C to stop", style="dim")
            return Group(_rich_table(STATUS_HEADERS, status_rows(results), _status_styles(results)), stamp)

        console = Console(highlight=False)
        with Live(frame(probe()), console=console, auto_refresh=False, transient=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(probe()), refresh=True)
    except KeyboardInterrupt:
        return
