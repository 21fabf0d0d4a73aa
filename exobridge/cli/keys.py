"""`exobridge keys …`: store, list and remove API keys (never printed unmasked, except by `keys get`).

Each command parses into an options dataclass and calls its `…_run(opts, io)`; everything it prints goes
through the IOStreams `io`. Failures are raised (`errors.UsageError`, `errors.KeysFileError` …) for the runner
to print as one line (and one JSON object under `--json`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exobridge.cli import completion_hooks, hints
from exobridge.core.errors import ExitCode, ExobridgeError, UsageError

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig
    from exobridge.render.io import IOStreams

app = typer.Typer(
    help="Store API keys in the keys file (0600) and see which key each provider uses.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _io() -> IOStreams:
    from exobridge.render import io as iostreams

    return iostreams.current()


def _config() -> Config:
    from exobridge.core import config

    return config.load()


def _configured_provider(name: str, config: Config | None = None) -> ProviderConfig:
    config = _config() if config is None else config
    provider = config.providers.get(name)
    if provider is None:
        raise UsageError(config.unknown_provider(name))
    return provider


def _say(io: IOStreams, line: str) -> None:
    io.notice(f"exobridge: {line}")


def read_secret(io: IOStreams, prompt: str) -> str:
    """A hidden prompt on a terminal; otherwise all of stdin. Never argv: it lands in shell history."""
    if io.is_stdin_tty:
        import getpass

        try:
            return getpass.getpass(prompt, stream=io.err)
        except (EOFError, KeyboardInterrupt) as exc:
            io.write_err("\n")  # end the prompt's line before the error or the shell prompt
            if isinstance(exc, KeyboardInterrupt):
                raise
            return ""
    raw = io.read_stdin_bytes()
    return raw.decode("utf-8", errors="replace") if raw else ""


# --- keys set ------------------------------------------------------------------------------------------------


@dataclass
class KeysSetOptions:
    provider: str


def keys_set_run(opts: KeysSetOptions, io: IOStreams) -> int:
    from exobridge.core import keys, keys_file, secrets

    provider = _configured_provider(opts.provider)
    try:
        key = keys_file.clean_key(read_secret(io, f"API key for {opts.provider} (input hidden): "))
    except ValueError as exc:
        raise UsageError(f"{exc}; nothing stored (type it at the prompt or pipe it on stdin)") from None
    path = keys_file.set_key(opts.provider, key)
    _say(io, f"stored {secrets.mask(key)} for {opts.provider} in {path} (mode 0600)")
    effective = keys.resolve(provider, stored={opts.provider: key})
    if effective.origin is keys.KeySource.ENV:
        _say(io, f"note: {effective.env_name} is set and takes precedence over the keys file ({effective.masked})")
    return ExitCode.OK


def set_key(
    provider: Annotated[
        str,
        typer.Argument(
            help="A configured provider (exobridge providers list).", autocompletion=completion_hooks.complete_provider
        ),
    ],
) -> int:
    """Store PROVIDER's key: typed at a hidden prompt, or piped on stdin (printf %s "$KEY" | …)."""
    return keys_set_run(KeysSetOptions(provider), _io())


# --- keys list -----------------------------------------------------------------------------------------------


@dataclass
class KeysListOptions:
    json: bool = False


def keys_list_run(opts: KeysListOptions, io: IOStreams) -> int:
    from exobridge.core import keys, paths
    from exobridge.render import config as view

    config = _config()
    stored = keys.read_keys_file()
    rows: list[dict[str, Any]] = []
    for provider in config.ordered(include_disabled=True):
        resolved = keys.resolve(provider, stored=stored)
        notes = []
        if not provider.enabled:
            notes.append("disabled")
        if resolved.origin is keys.KeySource.ENV and provider.name in stored:
            notes.append("keys file entry shadowed")
        if resolved.missing:
            notes.append(hints.no_key(provider))
        rows.append(
            {
                "provider": provider.name,
                "source": resolved.source,
                "masked": resolved.masked or None,
                "key_env": provider.key_env,
                "enabled": provider.enabled,
                "note": "; ".join(notes) or None,
            }
        )
    orphans = sorted(name for name in stored if name not in config.providers)
    if opts.json:
        view.write_json(
            io, {"keys_file": str(paths.keys_path()), "providers": rows, "unused_keys_file_entries": orphans}
        )
        return ExitCode.OK
    view.key_table(io, rows)
    if orphans:
        _say(
            io,
            f"the keys file also holds keys for {', '.join(orphans)} (not configured providers; "
            "exobridge keys remove NAME)",
        )
    return ExitCode.OK


def list_keys(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object (masked keys only).")] = False,
) -> int:
    """Each provider's key source in effect (--key > environment > keys file) and its masked tail."""
    return keys_list_run(KeysListOptions(json_out), _io())


# --- keys get ------------------------------------------------------------------------------------------------


@dataclass
class KeysGetOptions:
    provider: str


class NoKeyError(ExobridgeError):
    """`keys get` for a provider without a key: exit 1 (nothing to print), not a usage error."""

    exit_code = ExitCode.INTERNAL


def keys_get_run(opts: KeysGetOptions, io: IOStreams) -> int:
    from exobridge.core import keys

    provider = _configured_provider(opts.provider)
    resolved = keys.resolve(provider)
    if not resolved.value:
        raise NoKeyError(f"{opts.provider}: {hints.no_key(provider)}")
    io.write_out(resolved.value + "\n")
    return ExitCode.OK


def get_key(
    provider: Annotated[
        str, typer.Argument(help="A configured provider.", autocompletion=completion_hooks.complete_provider)
    ],
) -> int:
    """Print PROVIDER's raw key on stdout (for export X=$(exobridge keys get NAME)). The only unmasked output."""
    return keys_get_run(KeysGetOptions(provider), _io())


# --- keys remove ---------------------------------------------------------------------------------------------


@dataclass
class KeysRemoveOptions:
    provider: str


def keys_remove_run(opts: KeysRemoveOptions, io: IOStreams) -> int:
    from exobridge.core import keys, keys_file
    from exobridge.core.errors import ConfigError, KeysFileError

    try:
        config: Config | None = _config()
    except ConfigError as exc:
        if isinstance(exc, KeysFileError):
            raise
        config = None  # a broken config must not stop anyone from deleting a stored key
    removed = keys_file.remove_key(opts.provider)
    configured = config is not None and opts.provider in config.providers
    if removed:
        _say(io, f"removed {opts.provider}'s key from the keys file")
    elif config is not None and not configured:
        raise UsageError(config.unknown_provider(opts.provider))
    else:
        _say(io, f"the keys file holds no key for {opts.provider}; nothing removed")
    if configured and config is not None:
        resolved = keys.resolve(config.providers[opts.provider])
        if resolved.value:
            _say(io, f"note: {opts.provider} still gets a key from {resolved.source}")
    return ExitCode.OK


def remove_key(
    provider: Annotated[
        str,
        typer.Argument(
            help="The provider whose stored key to delete.", autocompletion=completion_hooks.complete_provider
        ),
    ],
) -> int:
    """Delete PROVIDER's key from the keys file (environment variables are left alone)."""
    return keys_remove_run(KeysRemoveOptions(provider), _io())


# --- keys path -----------------------------------------------------------------------------------------------


def keys_path_run(io: IOStreams) -> int:
    from exobridge.core import paths

    io.write_out(f"{paths.keys_path()}\n")
    return ExitCode.OK


def keys_path() -> int:
    """Print where keys are stored ($EXOBRIDGE_KEYS_FILE, else keys.toml in the config dir)."""
    return keys_path_run(_io())


@functools.cache
def _group() -> typer.Typer:
    """The `keys` group with its commands, added once however often the app is built (in-process runs)."""
    app.command("set")(set_key)
    app.command("list")(list_keys)
    app.command("get")(get_key)
    app.command("remove")(remove_key)
    app.command("path")(keys_path)
    return app


def register(root: typer.Typer) -> None:
    """Add the `keys` group."""
    root.add_typer(_group(), name="keys")
