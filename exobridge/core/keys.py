"""API keys: where each comes from (`--key` > environment > keys file) and how it is shown (masked)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from exobridge.core import paths
from exobridge.core.config import ProviderConfig


@dataclass(frozen=True)
class ResolvedKey:
    value: str | None
    source: str  # "--key", "env OPENROUTER_API_KEY", "keys file", "missing", "not needed"

    @property
    def masked(self) -> str:
        return mask(self.value) if self.value else ""


def mask(key: str) -> str:
    """`sk-or-v1-abc…9f2c` → `sk-or-…9f2c`: the vendor prefix and the last four characters, nothing else."""
    if len(key) <= 8:
        return "…" + key[-2:] if len(key) > 4 else "…"
    parts = key.split("-")
    prefix = ""
    if len(parts) > 2 and len(parts[0]) <= 3:
        prefix = "-".join(parts[:2]) + "-"
    elif "_" in key[:4]:
        prefix = key[: key.index("_") + 1]
    elif len(parts) > 1 and len(parts[0]) <= 3:
        prefix = parts[0] + "-"
    return f"{prefix}…{key[-4:]}"


SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password")


def mask_header(name: str, value: str) -> str:
    """A header value to show: credentials (`Authorization`, `X-Api-Key`, …) masked, anything else as is."""
    if not any(word in name.lower() for word in SECRET_HEADER_WORDS):
        return value
    scheme, _, credential = value.partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token"):
        return f"{scheme} {mask(credential)}"
    return mask(value)


def redact(text: str, key: str | None) -> str:
    """`text` with every copy of `key` masked: some providers echo the credential back in their error text."""
    if not key or key not in text:
        return text
    return text.replace(key, mask(key))


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
