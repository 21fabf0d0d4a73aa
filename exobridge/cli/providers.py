"""`exobridge providers …`: see and change the configured providers.

`list`, `status` and `reset` parse into options and call `list_run`, `status_run`, `reset_run` with the
command's IOStreams; `add`, `remove`, `enable`, `disable` and `set` live in cli/providers_edit.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exobridge.cli import completion_hooks
from exobridge.core.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams

DEFAULT_WATCH_SECONDS = 5.0

app = typer.Typer(help="List, probe and change providers.", no_args_is_help=True, rich_markup_mode=None)


def _store():
    from exobridge.core.cooldown import CooldownStore

    return CooldownStore()


def _show_warnings(store: Any, io: IOStreams, shown: set[str] | None = None) -> None:
    """Print the store's warnings; with `shown`, each only once (a --watch refresh must not repeat them)."""
    from exobridge.render.providers import warn

    for warning in store.warnings:
        if shown is not None:
            if warning in shown:
                continue
            shown.add(warning)
        warn(warning, io)


# --- providers list ---------------------------------------------------------------------------------


@dataclass
class ListOptions:
    json: bool = False


def list_run(opts: ListOptions, io: IOStreams) -> int:
    """Configured providers in priority order, with key status and cooldowns. No network."""
    from exobridge.core import config as config_mod
    from exobridge.core import keys as keys_mod
    from exobridge.render import providers as view

    config = config_mod.load()
    store = _store()
    stored = keys_mod.read_keys_file()
    rows = []
    for provider in config.ordered(include_disabled=True):
        key = keys_mod.resolve(provider, stored=stored)
        cooldowns = []
        for url in provider.urls:
            entry = store.active(provider.name, url)
            if entry is not None:
                cooldowns.append({"url": url, "reason": entry.blocked_reason(), "left": round(entry.left(), 1)})
        rows.append(
            {
                "name": provider.name,
                "kind": provider.kind,
                "urls": list(provider.urls),
                "priority": provider.priority,
                "enabled": provider.enabled,
                "key": {"source": str(key.source), "masked": key.masked or None},
                "cooldowns": cooldowns,
            }
        )
    _show_warnings(store, io)
    from exobridge.core import budget, history

    try:
        standings = budget.current_standings(config)  # [budget]: what is left today and this month
    except history.HistoryUnavailable as exc:  # never shown as $0 spent
        from exobridge.render.providers import warn

        standings = []
        warn(f"budgets: spending unknown: {exc}", io)
    for row in rows:
        row["budgets"] = [s.to_json() for s in standings if s.scope in ("overall", row["name"])]
    view.show_list(rows, opts.json, io)
    if standings and not opts.json:
        from exobridge.render.usage import budget_lines

        io.write_out(budget_lines(standings))
    return ExitCode.OK


@app.command("list")
def list_providers(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> int:
    """Configured providers in priority order, with key status and cooldowns. No network."""
    from exobridge.render import io as iostreams

    return list_run(ListOptions(json=json_out), iostreams.current())


# --- providers status -------------------------------------------------------------------------------


@dataclass
class StatusOptions:
    json: bool = False
    watch: bool = False
    seconds: float | None = None


def status_run(opts: StatusOptions, io: IOStreams) -> int:
    """Probe every enabled provider (and every Exo node) at once: 0 when one can answer, 3 when none."""
    from exobridge.cli import hints
    from exobridge.core import config as config_mod
    from exobridge.core import provider_status, proxies
    from exobridge.render import providers as view

    if opts.seconds is not None and not opts.watch:
        raise UsageError("SECONDS goes with --watch: exobridge providers status --watch 2")
    config = config_mod.load()
    proxies.validate()  # a malformed *_PROXY is one config error (exit 4), as in every network command
    shown: set[str] = set()

    def probe() -> list[Any]:
        store = _store()
        results = provider_status.probe_all(config, cooldowns=store)
        _show_warnings(store, io, shown)
        return results

    def hint(result: Any) -> str | None:
        return hints.hint_for(getattr(result, "failure_kind", None), config.providers.get(result.provider))

    if opts.watch and not opts.json:
        interval = opts.seconds if opts.seconds is not None else DEFAULT_WATCH_SECONDS
        view.watch_status(probe, interval, io, hint)
        return ExitCode.OK
    results = probe()
    view.show_status(results, opts.json, io, hint)
    return ExitCode.OK if provider_status.any_can_answer(results) else ExitCode.NO_PROVIDER


@app.command("status")
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C.")] = False,
    seconds: Annotated[
        float | None,
        typer.Argument(metavar="SECONDS", min=0.5, help="With --watch: seconds between refreshes (default 5)."),
    ] = None,
) -> int:
    """Probe every enabled provider (and every Exo node) at once. Exit 0 when one can answer, 3 when none."""
    from exobridge.render import io as iostreams

    return status_run(StatusOptions(json=json_out, watch=watch, seconds=seconds), iostreams.current())


# --- providers reset --------------------------------------------------------------------------------


@dataclass
class ResetOptions:
    name: str | None = None


def reset_run(opts: ResetOptions, io: IOStreams) -> int:
    """Forget remembered failures and cooldowns (all, or one provider's)."""
    from exobridge.core import config as config_mod

    config = config_mod.load()
    store = _store()
    name = opts.name
    if name is not None and name not in config.providers and not any(e.provider == name for e in store.entries()):
        raise UsageError(config.unknown_provider(name))
    count = store.clear(name)
    _show_warnings(store, io)
    what = f"for {name}" if name else "for all providers"
    io.write_out(f"cleared {count} cooldown entr{'y' if count == 1 else 'ies'} {what}\n")
    return ExitCode.OK


@app.command("reset")
def reset(
    name: Annotated[
        str | None,
        typer.Argument(help="Only this provider (default: all).", autocompletion=completion_hooks.complete_provider),
    ] = None,
) -> int:
    """Forget remembered failures and cooldowns (all, or one provider's)."""
    from exobridge.render import io as iostreams

    return reset_run(ResetOptions(name=name), iostreams.current())


@functools.cache
def _group() -> typer.Typer:
    """The `providers` group plus the editing commands, added once however often the app is built
    (in-process runs)."""
    from exobridge.cli import providers_edit

    providers_edit.register(app)
    return app


def register(root: typer.Typer) -> None:
    """Add the `providers` group."""
    root.add_typer(_group(), name="providers")
