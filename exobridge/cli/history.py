"""`exobridge history list|show|search|export|rm|clear|path`: the requests chat (and serve) recorded.

Each command parses into an options dataclass and calls `history_run(opts, io)`. Reading commands never
create the database; with no database they show an empty history. Trouble with the file is one line, exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from exobridge.core.errors import ExitCode, ExobridgeError, UsageError

if TYPE_CHECKING:
    from exobridge.core.history import Entry, Filters, Store
    from exobridge.render.io import IOStreams

app = typer.Typer(
    help="The requests chat kept: list, show, search, export, remove (docs/history.md).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class HistoryError(ExobridgeError):
    """The history database cannot be read or changed (exit 1)."""

    prefix = "history: "


@dataclass
class HistoryOptions:
    action: str  # list | show | search | export | rm | clear | path
    target: str | None = None  # show/rm: an id; search: the text
    limit: int | None = 20
    json: bool = False
    provider: str | None = None
    model: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    conversation: str | None = None
    format: str = "jsonl"
    yes: bool = False


def _filters(opts: HistoryOptions) -> Filters:
    from exobridge.core import history

    try:
        since = history.parse_when(opts.since) if opts.since else None
        until = history.parse_when(opts.until) if opts.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if opts.outcome and opts.outcome not in history.OUTCOMES:
        raise UsageError(f"--outcome: one of {', '.join(history.OUTCOMES)}")
    return history.Filters(opts.provider, opts.model, opts.outcome, since, until, opts.conversation)


def history_run(opts: HistoryOptions, io: IOStreams) -> int:
    from exobridge.core import history

    if opts.action == "path":
        path = history.default_path()
        if opts.json:
            io.write_json({"path": str(path), "exists": path.exists()})
        else:
            io.write_out(f"{path}\n")
        return ExitCode.OK
    filters = _filters(opts)
    store = history.Store(create=False)
    if not store.exists():
        return _empty(opts, io)
    try:
        with store:
            if store.moved_aside is not None:
                io.notice(f"exobridge: warning: history database was corrupt: moved aside to {store.moved_aside}")
            return _act(opts, io, store, filters)
    except history.HistoryUnavailable as exc:
        raise HistoryError(
            str(exc).replace("history not recorded: ", "").replace("history unavailable: ", "")
        ) from None


def _empty(opts: HistoryOptions, io: IOStreams) -> int:
    if opts.action in ("show", "rm"):
        raise UsageError(f"no request or conversation {opts.target!r} (the history is empty)")
    if opts.action == "clear":
        io.write_err("the history is already empty\n")
        return ExitCode.OK
    if opts.json:
        io.write_json([])
    elif opts.action != "export":
        io.write_err("no requests in the history\n")
    return ExitCode.OK


def _lookup(store: Store, ident: str) -> list[Entry]:
    if ident.isdigit():
        entry = store.get(int(ident))
        return [entry] if entry else []
    return store.conversation(ident)


def _act(opts: HistoryOptions, io: IOStreams, store: Store, filters: Filters) -> int:
    from exobridge.render import history as view

    if opts.action == "list":
        entries = store.list(filters, limit=opts.limit)
        if opts.json:
            io.write_json(view.entries_json(entries))
        else:
            view.table(entries, io)
        return ExitCode.OK
    if opts.action == "search":
        entries = store.search(opts.target or "", limit=opts.limit)
        if opts.json:
            io.write_json(view.entries_json(entries))
        else:
            view.table(entries, io)
        return ExitCode.OK
    if opts.action == "show":
        entries = _lookup(store, opts.target or "")
        if not entries:
            raise UsageError(f"no request or conversation {opts.target!r} (exobridge history list)")
        if opts.json:
            io.write_json(view.entries_json(entries))
        else:
            view.conversation(entries, io)
        return ExitCode.OK
    if opts.action == "export":
        entries = list(store.iter_all(filters))
        if opts.format == "markdown":
            io.write_out(view.markdown(entries))
        else:
            from exobridge.render.io import json_line

            io.write_out("".join(json_line(e) for e in view.entries_json(entries)))
        return ExitCode.OK
    if opts.action == "rm":
        removed = store.delete(opts.target or "")
        if not removed:
            raise UsageError(f"no request or conversation {opts.target!r} (exobridge history list)")
        if opts.json:
            io.write_json({"removed": removed})
        else:
            io.write_err(f"removed {removed} request{'s' if removed != 1 else ''}\n")
        return ExitCode.OK
    if opts.action == "clear":
        if not opts.yes:
            from exobridge.cli import prompts

            if not prompts.interactive(io):
                raise UsageError("history clear removes every request: add --yes (nothing was removed)")
            if not prompts.Prompter(io).confirm(f"Remove every request in {store.path}?", default=False):
                io.write_err("nothing was removed\n")
                return ExitCode.OK
        removed = store.clear()
        if opts.json:
            io.write_json({"removed": removed})
        else:
            io.write_err(f"removed {removed} request{'s' if removed != 1 else ''}\n")
        return ExitCode.OK
    raise UsageError(f"unknown history action {opts.action!r}")


def _run(opts: HistoryOptions) -> int:
    from exobridge.render import io as iostreams

    return history_run(opts, iostreams.current())


JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p", help="Only this provider.")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Only this model (requested or served).")]
OutcomeOpt = Annotated[str | None, typer.Option("--outcome", help="complete, partial, interrupted or failed.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From: 7d, 12h, or a date (2026-11-01).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Before: 7d, 12h, or a date.")]
ConversationOpt = Annotated[str | None, typer.Option("--conversation", "--cid", help="Only this conversation.")]


@app.command("list")
def list_requests(
    limit: LimitOpt = 20,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    outcome: OutcomeOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    conversation: ConversationOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Recorded requests, newest first."""
    return _run(HistoryOptions("list", None, limit, json_out, provider, model, outcome, since, until, conversation))


@app.command("show")
def show(
    ident: Annotated[str, typer.Argument(metavar="ID", help="A request number or a conversation id.")],
    json_out: JsonOpt = False,
) -> int:
    """One request, or a whole conversation."""
    return _run(HistoryOptions("show", ident, json=json_out))


@app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="Words that must all appear in the prompt or the reply.")],
    limit: LimitOpt = 20,
    json_out: JsonOpt = False,
) -> int:
    """Full-text search over prompts and replies."""
    return _run(HistoryOptions("search", text, limit, json_out))


@app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or markdown.")] = "jsonl",
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    outcome: OutcomeOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    conversation: ConversationOpt = None,
) -> int:
    """Every request (oldest first) as JSON lines or Markdown on stdout."""
    if fmt not in ("jsonl", "markdown"):
        raise UsageError("--format: jsonl or markdown")
    opts = HistoryOptions("export", None, None, False, provider, model, outcome, since, until, conversation, fmt)
    return _run(opts)


@app.command("rm")
def remove(
    ident: Annotated[str, typer.Argument(metavar="ID", help="A request number or a conversation id.")],
    json_out: JsonOpt = False,
) -> int:
    """Remove one request, or a whole conversation."""
    return _run(HistoryOptions("rm", ident, json=json_out))


@app.command("clear")
def clear(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Remove every request (asks on a terminal; --yes otherwise)."""
    return _run(HistoryOptions("clear", json=json_out, yes=yes))


@app.command("path")
def path(json_out: JsonOpt = False) -> int:
    """Where the history database is."""
    return _run(HistoryOptions("path", json=json_out))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="history")
