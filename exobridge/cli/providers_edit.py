"""`exobridge providers add|remove|enable|disable|move`: edits of the config file."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from exobridge.cli import completions, exits


def _fail(exc: Exception) -> NoReturn:
    """EditError (bad name, kind, url, unknown provider) → exit 2; an invalid resulting config → exit 4."""
    from exobridge.core.config import ConfigError

    if isinstance(exc, ConfigError):
        exits.fail(f"config: {exc}", exits.CONFIG)
    exits.fail(str(exc), exits.USAGE)


def _edit(change) -> None:
    """Run `change(doc, config)` as one locked, validated, atomic edit of the config file."""
    from exobridge.core import config_edit, paths
    from exobridge.core.config import ConfigError

    def mutate(doc) -> None:
        change(doc, config_edit.document_config(doc, paths.config_path()))

    try:
        config_edit.edit_config(mutate)
    except (config_edit.EditError, ConfigError) as exc:
        _fail(exc)


def add(
    name: Annotated[str, typer.Argument(help="New provider name: letters, digits, '_' and '-'.")],
    kind: Annotated[str, typer.Option("--kind", help="openai, exo, openrouter or huggingface.")] = "openai",
    url: Annotated[
        str | None,
        typer.Option("--url", help="Base URL, e.g. http://localhost:11434/v1 (exo: http://host:52415); a,b: several."),
    ] = None,
    key_env: Annotated[str | None, typer.Option("--key-env", help="Environment variable holding its key.")] = None,
    priority: Annotated[int | None, typer.Option("--priority", help="Lower is tried first (default: last).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Probe its model list once before saving.")] = False,
) -> None:
    """Add any OpenAI-compatible endpoint (Ollama, llama.cpp, vLLM, LM Studio, Groq…) as a provider."""
    from exobridge.core import config_edit, keys
    from exobridge.core.config import ConfigError
    from exobridge.render import config as view

    if not url:
        exits.fail("--url is required (e.g. --url http://localhost:11434/v1)", exits.USAGE)
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if check:
        try:
            provider = config_edit.planned_provider(name, kind, urls, key_env, priority)
        except (config_edit.EditError, ConfigError) as exc:
            _fail(exc)
        probe = config_edit.probe_models(provider, keys.resolve(provider).value)
        if not probe.ok:
            exits.fail(f"check failed: {probe.url}: {probe.detail}; {name} was not added", exits.NO_PROVIDER)
        view.notice(f"check: {probe.url} answered ({probe.detail})")

    placed: dict[str, int] = {}

    def change(doc, config) -> None:
        placed["priority"] = config_edit.add_provider(doc, config, name, kind, urls, key_env, priority)

    _edit(change)
    view.notice(
        f"added provider {name} ({kind}, {', '.join(u.rstrip('/') for u in urls)}, priority {placed['priority']})"
    )
    if key_env is None and kind in ("openrouter", "huggingface"):
        view.warn(f"{name} has no --key-env; store its key with `exobridge keys set {name}`")


def remove(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completions.complete_provider)],
) -> None:
    """Remove a provider you added; a built-in one (exo, openrouter, huggingface) is disabled instead."""
    from exobridge.core import config_edit
    from exobridge.render import config as view

    outcome: dict[str, bool] = {}

    def change(doc, config) -> None:
        outcome["removed"] = config_edit.remove_provider(doc, config, name)

    _edit(change)
    if outcome["removed"]:
        view.notice(f"removed provider {name}")
    else:
        view.notice(f"{name} is built in and cannot be removed: disabled it (enabled = false) instead")


def enable(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completions.complete_provider)],
) -> None:
    """Turn a provider on."""
    from exobridge.core import config_edit
    from exobridge.render import config as view

    _edit(lambda doc, config: config_edit.set_enabled(doc, config, name, True))
    view.notice(f"enabled {name}")


def disable(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completions.complete_provider)],
) -> None:
    """Turn a provider off (it stays in the config)."""
    from exobridge.core import config_edit
    from exobridge.render import config as view

    _edit(lambda doc, config: config_edit.set_enabled(doc, config, name, False))
    view.notice(f"disabled {name}")


def move(
    name: Annotated[str, typer.Argument(help="Provider name.", autocompletion=completions.complete_provider)],
    priority: Annotated[int, typer.Option("--priority", help="New position: 0 is tried first.")],
) -> None:
    """Move a provider to position N; the others keep their order (priorities are renumbered 0, 1, 2…)."""
    from exobridge.core import config_edit
    from exobridge.render import config as view

    order: list[str] = []

    def change(doc, config) -> None:
        order[:] = config_edit.move_provider(doc, config, name, priority)

    _edit(change)
    view.notice("order: " + ", ".join(f"{index} {provider}" for index, provider in enumerate(order)))


def register(group: typer.Typer) -> None:
    """Add the editing commands to the `providers` group."""
    group.command("add")(add)
    group.command("remove")(remove)
    group.command("enable")(enable)
    group.command("disable")(disable)
    group.command("move")(move)
