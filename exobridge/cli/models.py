"""`exobridge models`: what each provider offers, and the logical model table."""

from __future__ import annotations

from typing import Annotated

import typer

from exobridge.cli import completions, exits


def models(
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            metavar="NAME",
            help="Only this provider (repeatable).",
            autocompletion=completions.complete_provider,
        ),
    ] = None,
    free: Annotated[bool, typer.Option("--free", help="Only models that cost nothing (Exo, OpenRouter $0).")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Read the lists again instead of the 1 h cache.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The models each provider offers, and which providers serve each name of the model table."""
    from exobridge.core import models_catalog
    from exobridge.render.models import ModelsView

    config = exits.load_config()
    only = provider or []
    unknown = [name for name in only if name not in config.providers]
    if unknown:
        exits.fail(config.unknown_provider(unknown[0]), exits.USAGE)
    lists = models_catalog.provider_lists(config, only=only, refresh=refresh)
    table = models_catalog.model_table(config, lists, free_only=free)
    if free:
        lists = models_catalog.filter_free(lists, config)
    ModelsView(json_mode=json_out).show(lists, table, config)
    if only and not any(item.status == "ok" for item in lists):
        raise typer.Exit(exits.NO_PROVIDER)


def register(root: typer.Typer) -> None:
    """Add the `models` command."""
    root.command("models")(models)
