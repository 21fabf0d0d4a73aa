"""Which API key each provider uses, and where it comes from: `--key` > environment > keys file.

    resolve(provider, cli_key=None, env=None, stored=None) -> ResolvedKey(value, origin, env_name)
    KeySource: CLI ("--key"), ENV ("env"), FILE ("keys file"), MISSING ("missing"), NOT_NEEDED ("not needed")
    missing_key_reason(provider) -> "no API key (set OPENROUTER_API_KEY)"   the one wording, used by the
        router's skip reason, doctor and the CLI's hints

Reading and writing the keys file is core/keys_file.py (`read_keys_file` is offered here too, as the source of
stored keys); masking and redaction are core/secrets.py. A malformed keys file raises `errors.KeysFileError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from exobridge.core.config import ProviderConfig
from exobridge.core.keys_file import read_keys_file
from exobridge.core.secrets import mask

__all__ = [
    "NO_KEY",
    "KeySource",
    "ResolvedKey",
    "missing_key_reason",
    "read_keys_file",
    "resolve",
]

NO_KEY = "no API key"


class KeySource(StrEnum):
    """Where a provider's key comes from. The values are what `keys list` shows (ENV adds the variable)."""

    CLI = "--key"
    ENV = "env"
    FILE = "keys file"
    MISSING = "missing"
    NOT_NEEDED = "not needed"


@dataclass(frozen=True, init=False)
class ResolvedKey:
    """A provider's key in effect: its value (None when missing), its origin and, for ENV, the variable."""

    value: str | None
    origin: KeySource
    env_name: str | None = field(default=None)

    def __init__(self, value: str | None, origin: KeySource | str, env_name: str | None = None) -> None:
        if not isinstance(origin, KeySource):  # the shown form, e.g. "env OPENROUTER_API_KEY" (older callers)
            word, _, name = str(origin).partition(" ")
            origin, env_name = (KeySource.ENV, name or env_name) if word == "env" else (KeySource(origin), env_name)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "env_name", env_name if origin is KeySource.ENV else None)

    @property
    def source(self) -> str:
        """As shown: `--key`, `env OPENROUTER_API_KEY`, `keys file`, `missing`, `not needed`."""
        if self.origin is KeySource.ENV and self.env_name:
            return f"env {self.env_name}"
        return self.origin.value

    @property
    def masked(self) -> str:
        return mask(self.value) if self.value else ""

    @property
    def missing(self) -> bool:
        return self.origin is KeySource.MISSING


def key_variables(provider: ProviderConfig) -> list[str]:
    """The environment variables that may hold `provider`'s key, most specific first."""
    return list(provider.key_envs)


def missing_key_reason(provider: ProviderConfig) -> str:
    """The one wording for a missing key: `no API key (set OPENROUTER_API_KEY)`, naming every variable."""
    names = key_variables(provider)
    return f"{NO_KEY} (set {' or '.join(names)})" if names else NO_KEY


def resolve(
    provider: ProviderConfig,
    cli_key: str | None = None,
    env: Mapping[str, str] | None = None,
    stored: Mapping[str, str] | None = None,
) -> ResolvedKey:
    """The key `provider` uses. Reads the keys file when `stored` is None (KeysFileError when malformed)."""
    if cli_key:
        return ResolvedKey(cli_key, KeySource.CLI)
    env = os.environ if env is None else env
    for name in provider.key_envs:
        value = env.get(name, "").strip()
        if value:
            return ResolvedKey(value, KeySource.ENV, name)
    stored = read_keys_file() if stored is None else stored
    if stored.get(provider.name):
        return ResolvedKey(stored[provider.name], KeySource.FILE)
    if provider.key_env or _needs_key(provider):
        return ResolvedKey(None, KeySource.MISSING)
    return ResolvedKey(None, KeySource.NOT_NEEDED)


def _needs_key(provider: ProviderConfig) -> bool:
    from exobridge.core import providers

    try:
        return bool(providers.kind_class(provider.kind).needs_key)
    except KeyError:
        return False
