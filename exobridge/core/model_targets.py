"""From what the user typed (`-m`) to the list of (provider, model id) targets, in priority order."""

from __future__ import annotations

from dataclasses import dataclass, field

from exobridge.core.config import Config, ProviderConfig
from exobridge.core.model_table import BUILTIN_MODELS, TWIN_COLUMNS


@dataclass(frozen=True)
class Target:
    """One provider to try, with the model id to send it.

    `alternates` are other ids for the same model (Exo's legacy slug and its v1 id); the Exo provider picks
    whichever its node lists. `reason` set means the provider cannot be asked (no id for this model).
    """

    provider: ProviderConfig
    model: str | None
    alternates: tuple[str, ...] = field(default=())
    reason: str | None = None


def split_pinned(spec: str, config: Config) -> tuple[str | None, str]:
    """`openrouter:anthropic/claude-3.5-sonnet` → ("openrouter", "anthropic/claude-3.5-sonnet").

    Only a configured provider name counts as a pin, so ids with colons (`qwen2.5:7b`, `…:free`) pass through.
    """
    head, sep, tail = spec.partition(":")
    if sep and head in config.providers and tail:
        return head, tail
    return None, spec


def table(config: Config) -> dict[str, dict[str, str]]:
    """The built-in model table with the user's `[models]` entries laid over it, entry by entry."""
    merged = {name: dict(ids) for name, ids in BUILTIN_MODELS.items()}
    for name, ids in config.models.items():
        merged.setdefault(name, {}).update(ids)
    return merged


def _columns(provider: ProviderConfig) -> tuple[str, ...]:
    """The built-in table columns a provider reads: its kind's column, then that column's twins."""
    return (provider.kind, *TWIN_COLUMNS.get(provider.kind, ()))


def _ids_for(provider: ProviderConfig, name: str, config: Config) -> tuple[str | None, tuple[str, ...]]:
    """The id to send for logical `name`, and other ids of the same model the node may list instead.

    The user's `[models]` entry for this provider wins. Else the built-in table: a column named after the
    provider, else the kind's column and its twins (Exo: its legacy slug, then its v1 id as an alternate).
    """
    user = config.models.get(name, {})
    if provider.name in user:
        return user[provider.name], ()
    builtin = BUILTIN_MODELS.get(name, {})
    ids = [builtin[column] for column in _columns(provider) if builtin.get(column)]
    primary = builtin.get(provider.name) or (ids[0] if ids else None)
    alternates = tuple(dict.fromkeys(i for i in ids if i != primary))
    return primary, alternates


def no_id_reason(name: str, provider: str) -> str:
    """Why `provider` is skipped for logical `name`, with the exact commands for both fixes."""
    return (
        f"no id for {name} (exobridge config set models.{name}.{provider} <id>, "
        f"or give {provider} a default model: exobridge config set providers.{provider}.model <id>)"
    )


def targets(spec: str, config: Config, only: list[str] | None = None) -> list[Target]:
    """Every provider that could answer `spec`, in priority order.

    Disabled providers are left out, unless named explicitly (pinned or in `only`): then they stay, so the
    router can say they are disabled rather than silently doing nothing.
    """
    pinned, name = split_pinned(spec, config)
    known = table(config)
    providers = config.ordered(include_disabled=True)
    if pinned:
        providers = [config.providers[pinned]]
    if only:
        providers = [p for p in providers if p.name in only]
    elif not pinned:
        providers = [p for p in providers if p.enabled]
    result: list[Target] = []
    for provider in providers:
        if name in known:
            model, alternates = _ids_for(provider, name, config)
            if model is None and provider.model:
                model, alternates = provider.model, ()  # the provider's own default model (docs/config.md)
            if model is None:
                result.append(Target(provider, None, reason=no_id_reason(name, provider.name)))
                continue
        else:
            model, alternates = name, ()
        result.append(Target(provider, model, alternates))
    return result
