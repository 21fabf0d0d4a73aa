"""`exobridge providers add|remove|enable|disable|move`: edits of the config file.

Each command parses into an options dataclass and calls its `…_run(opts, io)`. Bad names, kinds, URLs and
unknown providers raise EditError (exit 2); an invalid resulting config raises ConfigError (exit 4); a failed
`add --check` raises CheckFailed (exit 3). The runner prints each as one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exobridge.cli import completion_hooks
from exobridge.core.errors import ExitCode, NoProviderError, UsageError

if TYPE_CHECKING:
    from exobridge.core.config import Config
    from exobridge.render.io import IOStreams


def _io() -> IOStreams:
    from exobridge.render import io as iostreams

    return iostreams.current()


def _edit(change: Callable[[Any, Config], None]) -> None:
    """Run `change(doc, config)` as one locked, validated, atomic edit of the config file."""
    from exobridge.core import config_document, config_file, paths

    def mutate(doc: Any) -> None:
        change(doc, config_document.document_config(doc, paths.config_path()))

    config_file.edit_config(mutate)


class CheckFailed(NoProviderError):
    """`providers add --check`: the endpoint did not answer with a model list (exit 3); nothing was added."""


# --- add -----------------------------------------------------------------------------------------------------


@dataclass
class AddOptions:
    name: str
    kind: str = "openai"
    urls: list[str] = field(default_factory=list)
    key_env: str | None = None
    priority: int | None = None
    check: bool = False
    model: str | None = None


MODELS_SHOWN = 20  # at most this many ids are listed when asking which one is the default


def _pick_default(io: IOStreams, name: str, ids: list[str]) -> str | None:
    """Ask (on a terminal) which served id the provider sends by default; None: none."""
    from exobridge.cli import prompts

    if not prompts.interactive(io):
        return None
    prompter = prompts.Prompter(io)
    shown = ids[:MODELS_SHOWN]
    more = f" (first {MODELS_SHOWN} of {len(ids)})" if len(ids) > MODELS_SHOWN else ""
    prompter.say(f"{name} serves {len(ids)} models{more}; which one should it get when a name has no id for it?")
    index = prompter.choose("default model", shown)
    return None if index is None else shown[index]


def add_run(opts: AddOptions, io: IOStreams) -> int:
    from exobridge.core import config_schema, keys, provider_admin, provider_check, providers
    from exobridge.render import config as view

    if not opts.urls:
        raise UsageError("--url is required (e.g. --url http://localhost:11434/v1)")
    if opts.model is not None:
        try:
            opts.model = config_schema.check(config_schema.PROVIDER_FIELDS["model"], opts.model.strip())
        except config_schema.FieldProblem as problem:
            raise UsageError(f"--model: {problem}") from None
    plan: provider_check.ModelPlan | None = None
    if opts.check:
        provider = provider_admin.planned_provider(opts.name, opts.kind, opts.urls, opts.key_env, opts.priority)
        probe = provider_check.probe_models(provider, keys.resolve(provider).value)
        if not probe.ok:
            raise CheckFailed(f"check failed: {probe.url}: {probe.detail}; {opts.name} was not added")
        view.notice(io, f"check: {probe.url} answered ({probe.detail})")
        served = probe.models or []
        model = opts.model
        if model is None and len(served) > 1:
            model = _pick_default(io, opts.name, served)
        plan = provider_check.plan_models(provider, served, _current_config(), model=model)
    elif opts.model is not None:
        plan = provider_check.ModelPlan(opts.name, [], model=opts.model)

    placed: dict[str, int] = {}

    def change(doc: Any, config: Config) -> None:
        placed["priority"] = provider_admin.add_provider(
            doc, config, opts.name, opts.kind, opts.urls, opts.key_env, opts.priority
        )
        if plan is not None:
            provider_check.apply_models(doc, plan)

    _edit(change)
    urls = ", ".join(u.rstrip("/") for u in opts.urls)
    view.notice(io, f"added provider {opts.name} ({opts.kind}, {urls}, priority {placed['priority']})")
    if plan is not None:
        for key, value in plan.settings():
            view.notice(io, f"set {key} = {view.shown_value(value)}")
        for name, kept in plan.kept.items():
            view.notice(io, f"kept models.{name}.{opts.name} = {view.shown_value(kept)} (already set)")
        if plan.model is None and opts.check:
            served = plan.served
            example = served[0] if served else "<id>"
            what = f"it serves {len(served)} models" if served else "it listed no models"
            view.notice(
                io,
                f"{opts.name} has no default model ({what}); to send one when a name has no id for it: "
                f"{provider_check.set_model_command(opts.name, example)}",
            )
    kind = providers.kind_class(opts.kind)
    if opts.key_env is None and kind.needs_key:
        view.warn(io, f"{opts.name} has no --key-env; store its key with `exobridge keys set {opts.name}`")
    return ExitCode.OK


def _current_config() -> Config:
    from exobridge.core import config

    return config.load()


def add(
    name: Annotated[str, typer.Argument(help="New provider name: letters, digits, '_' and '-'.")],
    kind: Annotated[
        str,
        typer.Option("--kind", help="A provider kind: openai (default), exo, openrouter, huggingface, or a plug-in."),
    ] = "openai",
    url: Annotated[
        str | None,
        typer.Option("--url", help="Base URL, e.g. http://localhost:11434/v1 (exo: http://host:52415); a,b: several."),
    ] = None,
    key_env: Annotated[str | None, typer.Option("--key-env", help="Environment variable holding its key.")] = None,
    priority: Annotated[int | None, typer.Option("--priority", help="Lower is tried first (default: last).")] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Read its model list once before saving; set its default model and map the names it serves.",
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option("--model", help="The model id it gets when a requested name has no id for it (e.g. llama3.2:3b)."),
    ] = None,
) -> int:
    """Add any OpenAI-compatible endpoint (Ollama, llama.cpp, vLLM, LM Studio, Groq…) as a provider."""
    urls = [part.strip() for part in (url or "").split(",") if part.strip()]
    return add_run(AddOptions(name, kind, urls, key_env, priority, check, model), _io())


# --- remove / enable / disable / move ------------------------------------------------------------------------


@dataclass
class NameOptions:
    name: str


def remove_run(opts: NameOptions, io: IOStreams) -> int:
    from exobridge.core import provider_admin
    from exobridge.render import config as view

    outcome: dict[str, bool] = {}

    def change(doc: Any, config: Config) -> None:
        outcome["removed"] = provider_admin.remove_provider(doc, config, opts.name)

    _edit(change)
    if outcome["removed"]:
        view.notice(io, f"removed provider {opts.name}")
    else:
        view.notice(io, f"{opts.name} is built in and cannot be removed: disabled it (enabled = false) instead")
    return ExitCode.OK


def remove(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completion_hooks.complete_provider)],
) -> int:
    """Remove a provider you added; a built-in one (exo, openrouter, huggingface) is disabled instead."""
    return remove_run(NameOptions(name), _io())


def set_enabled_run(opts: NameOptions, io: IOStreams, enabled: bool) -> int:
    from exobridge.core import provider_admin
    from exobridge.render import config as view

    _edit(lambda doc, config: provider_admin.set_enabled(doc, config, opts.name, enabled))
    view.notice(io, f"{'enabled' if enabled else 'disabled'} {opts.name}")
    return ExitCode.OK


def enable(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completion_hooks.complete_provider)],
) -> int:
    """Turn a provider on."""
    return set_enabled_run(NameOptions(name), _io(), True)


def disable(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completion_hooks.complete_provider)],
) -> int:
    """Turn a provider off (it stays in the config)."""
    return set_enabled_run(NameOptions(name), _io(), False)


@dataclass
class MoveOptions:
    name: str
    priority: int


def move_run(opts: MoveOptions, io: IOStreams) -> int:
    from exobridge.core import provider_admin
    from exobridge.render import config as view

    order: list[str] = []

    def change(doc: Any, config: Config) -> None:
        order[:] = provider_admin.move_provider(doc, config, opts.name, opts.priority)

    _edit(change)
    view.notice(io, "order: " + ", ".join(f"{index} {provider}" for index, provider in enumerate(order)))
    return ExitCode.OK


def move(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completion_hooks.complete_provider)],
    priority: Annotated[int, typer.Option("--priority", help="New position: 0 is tried first.")],
) -> int:
    """Move a provider to position N; the others keep their order (priorities are renumbered 0, 1, 2…)."""
    return move_run(MoveOptions(name, priority), _io())


def register(group: typer.Typer) -> None:
    """Add the editing commands to the `providers` group."""
    group.command("add")(add)
    group.command("remove")(remove)
    group.command("enable")(enable)
    group.command("disable")(disable)
    group.command("move")(move)
