"""What `exobridge serve` was asked for, and the client key it resolves to.

Binding anything but loopback requires a client key, so the cluster and the cloud keys are never offered
to the network unauthenticated. The key comes, first found, from `--api-key-env VAR`, `EXOBRIDGE_SERVE_KEY`,
or the keys file entry `serve`; a bare `--api-key KEY` is accepted with a warning (it shows in `ps`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from exobridge.core.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 52480
DEFAULT_GRACE = 10.0
KEY_ENV = "EXOBRIDGE_SERVE_KEY"
KEYS_FILE_ENTRY = "serve"


class ServeUsageError(UsageError):
    """The command line cannot be served as given (exit 2)."""


@dataclass
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    api_key_env: str | None = None
    workers: int = 1
    json_logs: bool = False
    grace: float = DEFAULT_GRACE


@dataclass(frozen=True)
class ClientKey:
    value: str | None
    source: str | None  # "--api-key", "env VAR", "keys file", None
    warning: str | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_client_key(
    opts: ServeOptions, env: Mapping[str, str] | None = None, stored: Mapping[str, str] | None = None
) -> ClientKey:
    env = os.environ if env is None else env
    if opts.api_key is not None:
        if not opts.api_key.strip():
            raise ServeUsageError("--api-key is empty")
        warning = f"--api-key shows the key to anyone who can run ps; prefer --api-key-env VAR or {KEY_ENV}"
        return ClientKey(opts.api_key.strip(), "--api-key", warning)
    if opts.api_key_env is not None:
        value = env.get(opts.api_key_env, "").strip()
        if not value:
            raise ServeUsageError(f"--api-key-env {opts.api_key_env}: that variable is not set or empty")
        return ClientKey(value, f"env {opts.api_key_env}")
    value = env.get(KEY_ENV, "").strip()
    if value:
        return ClientKey(value, f"env {KEY_ENV}")
    if stored is None:
        from exobridge.core import keys as keys_mod

        stored = keys_mod.read_keys_file()
    value = (stored.get(KEYS_FILE_ENTRY) or "").strip()
    if value:
        return ClientKey(value, "keys file")
    return ClientKey(None, None)


def check(opts: ServeOptions, key: ClientKey) -> None:
    """Refuse what must not be served: a non-loopback bind without a client key, impossible numbers."""
    if not 0 <= opts.port <= 65535:
        raise ServeUsageError(f"--port {opts.port}: must be between 0 and 65535")
    if opts.workers < 1:
        raise ServeUsageError(f"--workers {opts.workers}: must be at least 1")
    if not opts.grace >= 0:
        raise ServeUsageError("--grace must be zero or more seconds")
    if key.value is None and not is_loopback(opts.host):
        raise ServeUsageError(
            f"refusing to listen on {opts.host} without a client key: anyone who can reach it could use your "
            f"Exo cluster and cloud keys. Set one with --api-key-env VAR, {KEY_ENV}, or a "
            f'`{KEYS_FILE_ENTRY} = "…"` entry in the keys file, or bind 127.0.0.1'
        )
