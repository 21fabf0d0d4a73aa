"""`exobridge keys …`: store, list and remove API keys (never printed unmasked, except by `keys get`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from exobridge.cli import completions, exits

app = typer.Typer(
    help="Store API keys in the keys file (0600) and see which key each provider uses.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _configured_provider(name: str) -> Any:
    config = exits.load_config()
    provider = config.providers.get(name)
    if provider is None:
        exits.fail(config.unknown_provider(name), exits.USAGE)
    return provider


def _read_secret(prompt: str) -> str:
    """A hidden prompt on a terminal; otherwise all of stdin. Never argv: it lands in shell history."""
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass(prompt, stream=sys.stderr)
        except (EOFError, KeyboardInterrupt) as exc:
            sys.stderr.write("\n")  # end the prompt's line before the error or the shell prompt
            if isinstance(exc, KeyboardInterrupt):
                raise
            return ""
    if sys.stdin is None:
        return ""
    return sys.stdin.buffer.read().decode("utf-8", errors="replace")


def set_key(
    provider: Annotated[
        str,
        typer.Argument(
            help="A configured provider (exobridge providers list).", autocompletion=completions.complete_provider
        ),
    ],
) -> None:
    """Store PROVIDER's key: typed at a hidden prompt, or piped on stdin (printf %s "$KEY" | …)."""
    from exobridge.core import keys, keystore

    config_provider = _configured_provider(provider)
    try:
        key = keystore.clean_key(_read_secret(f"API key for {provider} (input hidden): "))
    except ValueError as exc:
        exits.fail(f"{exc}; nothing stored (type it at the prompt or pipe it on stdin)", exits.USAGE)
    try:
        path = keystore.set_key(provider, key)
    except keystore.KeystoreError as exc:
        exits.fail(str(exc), exits.CONFIG)
    sys.stderr.write(f"exobridge: stored {keys.mask(key)} for {provider} in {path} (mode 0600)\n")
    effective = keys.resolve(config_provider, stored={provider: key})
    if effective.source.startswith("env "):
        sys.stderr.write(
            f"exobridge: note: {effective.source[4:]} is set and takes precedence over the keys file "
            f"({effective.masked})\n"
        )


def list_keys(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object (masked keys only).")] = False,
) -> None:
    """Each provider's key source in effect (--key > environment > keys file) and its masked tail."""
    from exobridge.core import keys, paths
    from exobridge.render.keys import key_table

    config = exits.load_config()
    stored = keys.read_keys_file()
    rows: list[dict[str, Any]] = []
    for provider in config.ordered(include_disabled=True):
        resolved = keys.resolve(provider, stored=stored)
        notes = []
        if not provider.enabled:
            notes.append("disabled")
        if resolved.source.startswith("env ") and provider.name in stored:
            notes.append("keys file entry shadowed")
        if resolved.source == "missing":
            notes.append(f"exobridge keys set {provider.name}, or export {provider.key_env}")
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
    if json_out:
        import json

        out = {"keys_file": str(paths.keys_path()), "providers": rows, "unused_keys_file_entries": orphans}
        sys.stdout.write(json.dumps(out) + "\n")
        return
    key_table(rows)
    if orphans:
        sys.stderr.write(
            f"exobridge: the keys file also holds keys for {', '.join(orphans)} (not configured providers; "
            "exobridge keys remove NAME)\n"
        )


def get_key(
    provider: Annotated[
        str, typer.Argument(help="A configured provider.", autocompletion=completions.complete_provider)
    ],
) -> None:
    """Print PROVIDER's raw key on stdout (for export X=$(exobridge keys get NAME)). The only unmasked output."""
    from exobridge.core import keys

    resolved = keys.resolve(_configured_provider(provider))
    if not resolved.value:
        exits.fail(f"no key for {provider} ({resolved.source}); store one with: exobridge keys set {provider}", 1)
    sys.stdout.write(resolved.value + "\n")


def remove_key(
    provider: Annotated[
        str,
        typer.Argument(help="The provider whose stored key to delete.", autocompletion=completions.complete_provider),
    ],
) -> None:
    """Delete PROVIDER's key from the keys file (environment variables are left alone)."""
    from exobridge.core import keys, keystore
    from exobridge.core.config import ConfigError, load

    try:
        config = load()
    except ConfigError:
        config = None  # a broken config must not stop anyone from deleting a stored key
    try:
        removed = keystore.remove_key(provider)
    except keystore.KeystoreError as exc:
        exits.fail(str(exc), exits.CONFIG)
    configured = config is not None and provider in config.providers
    if removed:
        sys.stderr.write(f"exobridge: removed {provider}'s key from the keys file\n")
    elif config is not None and not configured:
        exits.fail(config.unknown_provider(provider), exits.USAGE)
    else:
        sys.stderr.write(f"exobridge: the keys file holds no key for {provider}; nothing removed\n")
    if configured:
        resolved = keys.resolve(config.providers[provider])
        if resolved.value:
            sys.stderr.write(f"exobridge: note: {provider} still gets a key from {resolved.source}\n")


def keys_path() -> None:
    """Print where keys are stored ($EXOBRIDGE_KEYS_FILE, else keys.toml in the config dir)."""
    from exobridge.core import paths

    sys.stdout.write(f"{paths.keys_path()}\n")


def register(root: typer.Typer) -> None:
    """Add the `keys` group."""
    app.command("set")(set_key)
    app.command("list")(list_keys)
    app.command("get")(get_key)
    app.command("remove")(remove_key)
    app.command("path")(keys_path)
    root.add_typer(app, name="keys")
