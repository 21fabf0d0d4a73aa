"""Next steps for the user, made from a failure kind and the provider's config (core modules write none).

One wording each. A missing key is `no API key (set VAR)` (the core's reason, naming every variable) with
the hint `exobridge keys set NAME`; where a command has no reason from the core, the whole line is
`no_key(provider)`: `no API key (set VAR, or exobridge keys set NAME)`. An unreachable node gets its kind's
`unreachable_hint` (Exo: start it, or point at it); a rejected key, exhausted credits and an unavailable
model each get one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exobridge.core.errors import FailureKind

if TYPE_CHECKING:
    from exobridge.core.config import ProviderConfig

NO_KEY = "no API key"  # the same words as core/keys.py's NO_KEY


def key_variables(provider: ProviderConfig) -> str:
    """`OPENROUTER_API_KEY`, `HF_TOKEN or HUGGING_FACE_HUB_TOKEN`, or "its key variable" when none."""
    names = list(getattr(provider, "key_envs", None) or ([provider.key_env] if provider.key_env else []))
    return " or ".join(names) if names else "its key variable"


def no_key(provider: ProviderConfig) -> str:
    """The one wording for a missing key with both fixes: `no API key (set VAR, or exobridge keys set NAME)`.

    The first part is core/keys.py's `missing_key_reason` (what the router and the probes say).
    """
    names = key_variables(provider)
    if names == "its key variable":
        return f"{NO_KEY} (exobridge keys set {provider.name})"
    return f"{NO_KEY} (set {names}, or exobridge keys set {provider.name})"


def hint_for(kind: FailureKind | str | None, provider: ProviderConfig | None) -> str | None:
    """The next step after a failure of `kind` at `provider`, or None when there is nothing to suggest."""
    if kind is None or provider is None:
        return None
    try:
        kind = FailureKind(kind)
    except ValueError:
        return None
    if kind is FailureKind.NO_KEY:
        return f"exobridge keys set {provider.name}"
    if kind is FailureKind.CONNECT:
        template = _kind_attribute(provider, "unreachable_hint")
        return template.format(name=provider.name) if template else None
    if kind is FailureKind.AUTH:
        return f"set a valid key: exobridge keys set {provider.name} (or {key_variables(provider)})"
    if kind is FailureKind.CREDITS:
        return f"add credits: {provider.name} uses {key_variables(provider)}"
    if kind is FailureKind.MODEL_UNAVAILABLE:
        return f"pick another model (exobridge models --provider {provider.name})"
    return None


def _kind_attribute(provider: ProviderConfig, name: str) -> Any:
    try:
        from exobridge.core.providers import kind_class

        return getattr(kind_class(provider.kind), name, None)
    except Exception:  # an unknown kind has no hint; the config check reports the kind itself
        return None


def kind_is_free(provider: ProviderConfig | None) -> bool:
    """Whether the provider's kind costs nothing (Exo): its replies are shown "free"."""
    if provider is None:
        return False
    return bool(_kind_attribute(provider, "free"))
