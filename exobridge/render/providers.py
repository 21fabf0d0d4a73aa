"""Tables for `exobridge providers list|status`: Rich on a terminal, plain columns when piped, or JSON.

Every cell that comes from a provider or a state file (problems, key labels, URLs, cooldown reasons) goes
through `terminal_text`, and Rich prints on a console with markup off: `[/oops]` in an error is text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from exobridge.core.sanitize import terminal_text
from exobridge.render import io as iostreams
from exobridge.render.io import IOStreams


def warn(message: str, io: IOStreams | None = None) -> None:
    (io or iostreams.current()).notice(f"exobridge: warning: {terminal_text(message)}", "yellow")


def _safe(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    return [[terminal_text(cell) for cell in row] for row in rows]


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


def _print_table(
    io: IOStreams, headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] = ()
) -> None:
    rows = _safe(rows)
    if io.is_stdout_tty:
        io.rich_console().print(_rich_table(headers, rows, styles))
        io.out.flush()
    else:
        io.write_out(plain_columns(headers, rows))


def _json(io: IOStreams, data: Any) -> None:
    io.write_out(iostreams.json_line(data))


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


def show_list(rows: list[dict[str, Any]], json_mode: bool, io: IOStreams | None = None) -> None:
    io = io or iostreams.current()
    if json_mode:
        _json(io, {"providers": rows})
        return
    styles = [None if r["enabled"] else "dim" for r in rows for _ in r["urls"]]
    _print_table(io, LIST_HEADERS, list_rows(rows), styles)


# --- providers status -------------------------------------------------------------------------------

STATUS_HEADERS = ("NAME", "URL", "REACHABLE", "DETAILS", "KEY", "COOLDOWN", "PROBLEM")


def _money(value: float | None) -> str:
    return "unlimited" if value is None else f"${value:.2f}"


def _status_probe(kind: str) -> str:
    """How this kind is probed (a strategy name of core/providers), so the cell shows what was learned."""
    try:
        from exobridge.core.providers import kind_class

        return str(kind_class(kind).status_probe)
    except Exception:  # an unknown kind: a model list, like the base class
        return "models"


def details(result: Any) -> str:
    """What the probe learned, in one cell: Exo line, nodes and models; key label and credits; models."""
    parts: list[str] = []
    strategy = _status_probe(result.kind)
    if strategy == "exo_cluster":
        if result.api_line:
            parts.append(f"{result.api_line} API")
        if result.nodes is not None:
            parts.append(f"{result.nodes} node{'s' if result.nodes != 1 else ''}")
        if result.models_ready is not None:
            if result.models_ready_note:
                parts.append(f"{result.models_ready} models listed (every card, not what is loaded)")
            else:
                parts.append(f"{result.models_ready} model{'s' if result.models_ready != 1 else ''} ready")
        parts.extend(loading_text(load) for load in result.loading)
    elif strategy == "key_info":
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


def loading_text(load: dict[str, Any]) -> str:
    """One load in progress (core.exo_state.loads_in_progress): `loading llama… (downloading 40% of 1.9 GB)`."""
    from exobridge.core.exo_loading import size_text

    model = terminal_text(str(load.get("model") or "?"))
    phase = str(load.get("phase") or "loading")
    if phase == "failed":
        return f"loading {model} failed: {terminal_text(str(load.get('error') or '?'))}"
    total, done = load.get("total_bytes") or 0, load.get("downloaded_bytes") or 0
    if phase == "downloading" and total:
        return f"loading {model} (downloading {round(100 * done / total)}% of {size_text(total)})"
    if phase == "loading" and load.get("layers_total"):
        return f"loading {model} ({load.get('layers_loaded') or 0}/{load['layers_total']} layers)"
    return f"loading {model} ({phase})"


def reachable_text(result: Any) -> str:
    if result.reachable is None:
        return "not probed"
    if not result.reachable:
        return "no"
    return f"yes ({result.latency_ms} ms)" if result.latency_ms is not None else "yes"


Hint = Callable[[Any], str | None]


def status_rows(results: list[Any], hint: Hint | None = None) -> list[list[str]]:
    """One row per node; `hint(result)` (the CLI's, from `result.failure_kind`) follows the problem."""
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
                _problem(r, hint),
            ]
        )
        previous = r.provider
    return rows


def _problem(result: Any, hint: Hint | None) -> str:
    if not result.problem:
        return "-"
    fix = hint(result) if hint is not None else None
    return f"{result.problem} → {fix}" if fix else result.problem


def _status_styles(results: list[Any]) -> list[str | None]:
    return [None if r.can_answer else ("yellow" if r.reachable else "red") for r in results]


def status_summary(results: list[Any]) -> str:
    ready = list(dict.fromkeys(r.provider for r in results if r.can_answer))  # priority order
    if ready:
        return f"can answer: {', '.join(ready)}"
    return "no provider can answer"


def status_json(results: list[Any]) -> dict[str, Any]:
    """`{"can_answer": [...], "nodes": [...]}` plus, as every --json object, `error` and `exit_code`."""
    ready = list(dict.fromkeys(r.provider for r in results if r.can_answer))  # priority order
    return {
        "can_answer": ready,
        "nodes": [r.to_json() for r in results],
        "error": None if ready else "no provider can answer",
        "exit_code": 0 if ready else 3,
    }


def show_status(results: list[Any], json_mode: bool, io: IOStreams | None = None, hint: Hint | None = None) -> None:
    io = io or iostreams.current()
    if json_mode:
        _json(io, status_json(results))
        return
    _print_table(io, STATUS_HEADERS, status_rows(results, hint), _status_styles(results))
    io.notice(terminal_text(status_summary(results)), "dim" if any(r.can_answer for r in results) else "bold red")


def watch_status(
    probe: Callable[[], list[Any]], interval: float, io: IOStreams | None = None, hint: Hint | None = None
) -> None:
    """Re-probe every `interval` seconds, redrawing in place, until Ctrl-C (which ends it quietly).

    SIGTERM and SIGHUP (a KeyboardInterrupt carrying `signum`) are not quiet: they propagate.
    """
    io = io or iostreams.current()
    try:
        if not io.is_stdout_tty:
            while True:
                results = probe()
                io.write_out(plain_columns(STATUS_HEADERS, _safe(status_rows(results, hint))) + "\n")
                time.sleep(interval)
        from rich.console import Group
        from rich.live import Live
        from rich.text import Text

        def frame(results: list[Any]) -> Any:
            stamp = Text(
                f"{terminal_text(status_summary(results))} · {time.strftime('%H:%M:%S')} · Ctrl-C to stop", style="dim"
            )
            table = _rich_table(STATUS_HEADERS, _safe(status_rows(results, hint)), _status_styles(results))
            return Group(table, stamp)

        console = io.rich_console()
        with Live(frame(probe()), console=console, auto_refresh=False, transient=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(probe()), refresh=True)
    except KeyboardInterrupt as exc:
        if getattr(exc, "signum", None):
            raise
