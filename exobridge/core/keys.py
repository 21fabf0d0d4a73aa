"""API keys: where each comes from (`--key` > environment > keys file) and how it is shown (masked)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from exobridge.core import paths
from exobridge.core.config import ProviderConfig
from exobridge.core.secrets import mask, mask_header, redact

__all__ = ["ResolvedKey", "mask", "mask_header", "read_keys_file", "redact", "resolve", "secrets_in_keys_file"]


@dataclass(frozen=True)
class ResolvedKey:
    value: str | None
    source: str  # "--key", "env OPENROUTER_API_KEY", "keys file", "missing", "not needed"

    @property
    def masked(self) -> str:
        return mask(self.value) if self.value else ""


def secrets_in_keys_file(path: Path | None = None) -> dict[str, str]:
    """Every value in the keys file, for redaction: never raises. A file that is not valid TOML still gives
    its quoted values (a malformed file must not leak what it holds)."""
    path = paths.keys_path() if path is None else path
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return {}
    import tomllib

    try:
        data = tomllib.loads(text)
        return {str(name): value for name, value in data.items() if isinstance(value, str) and value}
    except tomllib.TOMLDecodeError:
        import re

        values = re.findall(r"""=\s*["']([^"'\r\n]+)["']?""", text)
        return {f"line{number}": value.strip() for number, value in enumerate(values) if value.strip()}


def read_keys_file(path: Path | None = None) -> dict[str, str]:
    """Keys stored by `exobridge keys set`: a TOML file of `provider = "key"`. Unreadable → no keys."""
    path = paths.keys_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}
    return {name: value for name, value in data.items() if isinstance(value, str) and value}


def resolve(
    provider: ProviderConfig,
    cli_key: str | None = None,
    env: dict[str, str] | os._Environ[str] | None = None,
    stored: dict[str, str] | None = None,
) -> ResolvedKey:
    if cli_key:
        return ResolvedKey(cli_key, "--key")
    env = os.environ if env is None else env
    for name in provider.key_envs:
        value = env.get(name, "").strip()
        if value:
            return ResolvedKey(value, f"env {name}")
    stored = read_keys_file() if stored is None else stored
    if stored.get(provider.name):
        return ResolvedKey(stored[provider.name], "keys file")
    if provider.key_env:
        return ResolvedKey(None, "missing")
    return ResolvedKey(None, "not needed")
