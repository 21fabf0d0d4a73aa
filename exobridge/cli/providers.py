"""`exobridge providers …`: see and change the configured providers."""

from __future__ import annotations

from typing import Annotated

import typer

from exobridge.cli import completions, exits

DEFAULT_WATCH_SECONDS = 5.0

app = typer.Typer(help="List, probe and change providers.", no_args_is_help=True, rich_markup_mode=None)


def _store():
    from exobridge.core.cooldown import CooldownStore

    return CooldownStore()


def _show_warnings(store, shown: set[str] | None = None) -> None:
    """Print the store's warnings; with `shown`, each only once (a --watch refresh must not repeat them)."""
    from exobridge.render.providers import warn

    for warning in store.warnings:
        if shown is not None:
            if warning in shown:
                continue
            shown.add(warning)
        warn(warning)


@app.command("list")
def list_providers(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Configured providers in priority order, with key status and cooldowns. No network."""
    from exobridge.core import keys as keys_mod
    from exobridge.render import providers as view

    config = exits.load_config()
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
                "key": {"source": key.source, "masked": key.masked or None},
                "cooldowns": cooldowns,
            }
        )
    _show_warnings(store)
    view.show_list(rows, json_out)


@app.command("status")
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C.")] = False,
    seconds: Annotated[
        float | None,
        typer.Argument(metavar="SECONDS", min=0.5, help="With --watch: seconds between refreshes (default 5)."),
    ] = None,
) -> None:
    """Probe every enabled provider (and every Exo node) at once. Exit 0 when one can answer, 3 when none."""
    from exobridge.core import probes
    from exobridge.render import providers as view

    config = exits.load_config()
    shown: set[str] = set()

    def probe() -> list[probes.ProbeResult]:
        store = _store()
        results = probes.probe_all(config, cooldowns=store)
        _show_warnings(store, shown)
        return results

    if seconds is not None and not watch:
        exits.fail("SECONDS goes with --watch: exobridge providers status --watch 2", exits.USAGE)
    if watch and not json_out:
        view.watch_status(probe, seconds if seconds is not None else DEFAULT_WATCH_SECONDS)
        raise typer.Exit(exits.OK)
    results = probe()
    view.show_status(results, json_out)
    raise typer.Exit(exits.OK if probes.any_can_answer(results) else exits.NO_PROVIDER)


@app.command("reset")
def reset(
    name: Annotated[
        str | None,
        typer.Argument(help="Only this provider (default: all).", autocompletion=completions.complete_provider),
    ] = None,
) -> None:
    """Forget remembered failures and cooldowns (all, or one provider's)."""
    config = exits.load_config()
    store = _store()
    if name is not None and name not in config.providers and not any(e.provider == name for e in store.entries()):
        exits.fail(config.unknown_provider(name), exits.USAGE)
    count = store.clear(name)
    _show_warnings(store)
    what = f"for {name}" if name else "for all providers"
    typer.echo(f"cleared {count} cooldown entr{'y' if count == 1 else 'ies'} {what}")


def register(root: typer.Typer) -> None:
    from exobridge.cli import providers_edit

    providers_edit.register(app)
    root.add_typer(app, name="providers")
