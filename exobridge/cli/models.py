"""`exobridge models`: what each provider offers, and the logical model table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exobridge.cli import completion_hooks
from exobridge.core.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams


@dataclass
class ModelsOptions:
    providers: list[str] = field(default_factory=list)
    free: bool = False
    refresh: bool = False
    json: bool = False


def models_run(opts: ModelsOptions, io: IOStreams) -> int:
    """Read (or reuse) each provider's list and show it with the model table; 3 when every asked one failed."""
    from exobridge.cli import hints
    from exobridge.core import config as config_mod
    from exobridge.core import model_lists
    from exobridge.render.models import ModelsView

    config = config_mod.load()
    unknown = [name for name in opts.providers if name not in config.providers]
    if unknown:
        raise UsageError(config.unknown_provider(unknown[0]))
    lists = model_lists.provider_lists(config, only=opts.providers, refresh=opts.refresh)
    table = model_lists.model_table(config, lists, free_only=opts.free)
    if opts.free:
        lists = model_lists.filter_free(lists, config)

    def hint(item: Any) -> str | None:
        return hints.hint_for(getattr(item, "failure_kind", None), config.providers.get(item.name))

    none_read = bool(opts.providers) and not any(str(item.status) == "ok" for item in lists)
    code = ExitCode.NO_PROVIDER if none_read else ExitCode.OK
    ModelsView(json_mode=opts.json, io=io, hint=hint).show(lists, table, config, code)
    return code


def models(
    ctx: typer.Context,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            metavar="NAME",
            help="Only this provider (repeatable).",
            autocompletion=completion_hooks.complete_provider,
        ),
    ] = None,
    free: Annotated[bool, typer.Option("--free", help="Only models that cost nothing (Exo, OpenRouter $0).")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Read the lists again instead of the 1 h cache.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> int:
    """The models each provider offers, and which providers serve each name of the model table.

    `models load MODEL` / `models unload MODEL` place a model on your Exo cluster or take it off.
    """
    from exobridge.render import io as iostreams

    if ctx.invoked_subcommand:
        return 0

    opts = ModelsOptions(providers=list(provider or []), free=free, refresh=refresh, json=json_out)
    return models_run(opts, iostreams.current())


def register(root: typer.Typer) -> None:
    """Add the `models` group: the list itself (the group's own callback), `load` and `unload`."""
    from exobridge.cli import models_load

    group = typer.Typer(rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})
    group.callback(invoke_without_command=True)(models)
    models_load.register(group)
    root.add_typer(group, name="models")
