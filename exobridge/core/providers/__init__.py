"""Provider kinds: a registry of plug-in classes (`ProviderKind` subclasses), one per kind name.

    from exobridge.core import providers
    providers.kind_class("exo").default_timeouts     # Timeouts(connect=1.0, first_token=60.0, idle=30.0)
    providers.kind_names()                            # ("exo", "openrouter", "huggingface", "openai")
    providers.client_for(provider_config, key, http)  # an instance that can chat with that provider

A new kind is a class plus one registration (see `base.ProviderKind` for every attribute it may refine):

    @providers.register
    class Mistral(ProviderKind):
        name = "mistral"
        default_url = "https://api.mistral.ai/v1"
        default_key_env = "MISTRAL_API_KEY"
        needs_key = True

Nothing outside this package branches on a kind's name. This package imports neither core/config nor
core/routing at module level (they import it), nor httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exobridge.core.providers.base import ProviderKind, StatusProbe, Timeouts

if TYPE_CHECKING:
    import httpx

    from exobridge.core.config import ProviderConfig

__all__ = [
    "ProviderKind",
    "StatusProbe",
    "Timeouts",
    "UnknownKind",
    "client_for",
    "kind_class",
    "kind_names",
    "register",
]

_KINDS: dict[str, type[ProviderKind]] = {}
_BUILTINS_LOADED = False


class UnknownKind(KeyError):
    """No kind of that name is registered. `str()` names the known ones."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown kind {self.name!r} (one of {', '.join(kind_names())})"


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    from exobridge.core.providers import exo, huggingface, openai, openrouter

    for cls in (exo.Exo, openrouter.OpenRouter, huggingface.HuggingFace, openai.OpenAICompatible):
        _KINDS.setdefault(cls.name, cls)
    _BUILTINS_LOADED = True  # only now: a thread that sees the flag must also see every built-in


def register(cls: type[ProviderKind]) -> type[ProviderKind]:
    """Make `cls` the kind named `cls.name` (usable as a class decorator). A later registration wins."""
    if not isinstance(cls, type) or not issubclass(cls, ProviderKind):
        raise TypeError(f"{cls!r} is not a ProviderKind subclass")
    if not isinstance(cls.name, str) or not cls.name:
        raise ValueError(f"{cls.__name__}.name must be a non-empty string")
    _load_builtins()
    _KINDS[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a registered kind (tests that define their own kind clean up with this)."""
    _load_builtins()
    _KINDS.pop(name, None)


def kind_class(name: str) -> type[ProviderKind]:
    """The class of the kind called `name`; `UnknownKind` (a KeyError) when none is registered."""
    _load_builtins()
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownKind(name) from None


def kind_names() -> tuple[str, ...]:
    """Every registered kind, built-ins first, in registration order."""
    _load_builtins()
    return tuple(_KINDS)


def client_for(config: ProviderConfig, key: str | None, http: httpx.Client) -> ProviderKind:
    """An instance of the provider's kind, ready to talk to it with `key` over `http`."""
    return kind_class(config.kind)(config, key, http)
