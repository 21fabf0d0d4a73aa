"""`exobridge config import-legacy [PATH]`: bring the old token manager's providers and keys over.

Parses into `ImportOptions` and calls `import_run(opts, io)`. The report goes to stderr (strings from the
legacy file shown terminal-safe); with --dry-run the resulting config TOML goes to stdout. A missing or
malformed legacy file is a ConfigError (exit 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exobridge.core.errors import ConfigError, ExitCode, KeysFileError

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams


@dataclass
class ImportOptions:
    path: Path | None = None
    dry_run: bool = False
    key_file: Path | None = None


def import_legacy(
    path: Annotated[
        Path | None,
        typer.Argument(help="The old token manager's JSON config (default: ~/.token_manager_config.json)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Print the resulting config on stdout; write nothing.")
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Fernet key of encrypted legacy keys (default: ~/.token_manager_key)."),
    ] = None,
) -> int:
    """Merge the old token manager's providers into the config and its keys into the keys file.

    Values your config already sets are kept; keys go to the keys file (0600), never to the config.
    The report goes to stderr; with --dry-run the resulting config TOML goes to stdout.
    """
    from exobridge.render import io as iostreams

    return import_run(ImportOptions(path, dry_run, key_file), iostreams.current())


class LegacyFileError(ConfigError):
    """The legacy file is missing or malformed (exit 4); the line names that file, not our config."""

    prefix = ""

    def __init__(self, message: str) -> None:
        source, _, problem = message.partition(": ")
        super().__init__(source, "", problem or message)


def import_run(opts: ImportOptions, io: IOStreams) -> int:
    from exobridge.core import config_file, keys_file, legacy_import, paths, secrets
    from exobridge.core.sanitize import terminal_text

    def _say(line: str = "") -> None:
        io.write_err(terminal_text(line) + "\n")

    dry_run = opts.dry_run
    source = paths.expand_user(str(opts.path)) if opts.path else legacy_import.default_path()
    key_file = paths.expand_user(str(opts.key_file)) if opts.key_file else None
    try:
        plan = legacy_import.read_legacy(source, key_file)
    except legacy_import.LegacyImportError as exc:
        raise LegacyFileError(str(exc)) from None

    config_path = paths.config_path()
    changes: list[legacy_import.Change] = []

    def mutate(doc: Any) -> None:
        changes.clear()
        changes.extend(legacy_import.apply(plan, doc, config_path))

    text = ""
    if dry_run:
        import tomlkit

        doc = config_file.read_document(config_path)
        mutate(doc)
        text = tomlkit.dumps(doc)
        config_file.validate_text(text, config_path)
    else:
        config_file.edit_config(mutate, config_path)

    stored = keys_file.read_keys_file()
    new_keys: dict[str, str] = {}
    verb = "would import" if dry_run else "importing"
    _say(f"exobridge: {verb} {source} into {config_path}")
    for provider in plan.providers:
        _say(f"  {provider.legacy_name} → {provider.name} (kind {provider.kind}, {provider.url})")
        for note in provider.notes:
            _say(f"    note: {note}")
        if provider.key:
            if stored.get(provider.name) and stored[provider.name] != provider.key:
                _say(
                    f"    key: kept the key already stored ({secrets.mask(stored[provider.name])}); "
                    f"the legacy {provider.key_origin} key {provider.masked_key} was not imported"
                )
            elif stored.get(provider.name):
                _say(f"    key: {provider.masked_key} is already in the keys file")
            else:
                new_keys[provider.name] = provider.key
                action = "would store" if dry_run else "stored"
                _say(f"    key: {action} the {provider.key_origin} key {provider.masked_key} in the keys file")
        elif provider.key_problem:
            _say(f"    key: not imported: {provider.key_problem}; run: exobridge keys set {provider.name}")
        if provider.not_imported:
            _say(f"    not imported: {', '.join(provider.not_imported)}")
    for skipped in plan.skipped:
        _say(f"  skipped {skipped}")
    if plan.not_imported:
        _say(f"  not imported (no exobridge equivalent): {', '.join(plan.not_imported)}")
    if changes:
        _say("changes:" if not dry_run else "changes (not written):")
        for change in changes:
            _say(f"  {change.line()}")
    else:
        _say("the config already has all of it; nothing to change")

    if new_keys and not dry_run:
        try:
            keys_path = keys_file.set_keys(new_keys)
        except KeysFileError as exc:
            problem = f"{exc.problem} (the config was written; the keys were not)"
            raise KeysFileError(exc.source, exc.where, problem) from None
        _say(f"exobridge: {len(new_keys)} key(s) stored in {keys_path} (mode 0600)")
    if dry_run:
        io.write_out(text if text.endswith("\n") or not text else text + "\n")
    return ExitCode.OK


def register_import(group: typer.Typer) -> None:
    """Add `import-legacy` to the `config` group."""
    group.command("import-legacy")(import_legacy)
