"""`exobridge config …`: see and edit the config file without losing what the user wrote."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from exobridge.cli import completions, exits

app = typer.Typer(
    help="See and change the config file (comments, order and unknown tables are kept).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail_edit(exc: Exception) -> NoReturn:
    """EditError → exit 2, ConfigError → exit 4, each as one line."""
    from exobridge.core.config import ConfigError

    if isinstance(exc, ConfigError):
        exits.fail(f"config: {exc}", exits.CONFIG)
    exits.fail(str(exc), exits.USAGE)


@app.command("path")
def path_command(json_out: JsonOption = False) -> None:
    """Where the config, keys, cache and data live, and whether each exists."""
    from exobridge.core import paths
    from exobridge.render import config as view

    rows = []
    for name, where in (
        ("config", paths.config_path()),
        ("keys", paths.keys_path()),
        ("cache", paths.cache_dir()),
        ("data", paths.data_dir()),
    ):
        rows.append({"name": name, "path": str(where), "exists": where.exists()})
    view.paths(rows, json_out)


@app.command("show")
def show(json_out: JsonOption = False) -> None:
    """The effective config, each value with its source (default, file, env); keys masked."""
    from exobridge.core import config_edit, keys
    from exobridge.render import config as view

    config = exits.load_config()
    values = []
    for setting in config_edit.settings(config):
        value = setting.value
        parts = config_edit.split_key(setting.key)
        if len(parts) == 4 and parts[2] == "headers" and isinstance(value, str):
            value = keys.mask_header(parts[3], value)  # a key put in a header is still a key
        values.append({"key": setting.key, "value": value, "source": setting.source})
    stored = keys.read_keys_file()
    key_rows = []
    for provider in config.ordered(include_disabled=True):
        resolved = keys.resolve(provider, stored=stored)
        if resolved.source == "not needed":
            continue
        key_rows.append({"provider": provider.name, "source": resolved.source, "masked": resolved.masked})
    view.settings(str(config.path), config.file_exists, values, key_rows, config.unknown_keys, json_out)


@app.command("get")
def get(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help='Dotted key: providers.exo.url, models."llama-3.2-3b".openrouter',
            autocompletion=completions.complete_config_key,
        ),
    ],
    json_out: JsonOption = False,
) -> None:
    """Print one effective value, raw (for scripts). Lists and tables print as JSON."""
    from exobridge.core import config_edit
    from exobridge.render import config as view

    config = exits.load_config()
    try:
        resolved = config_edit.resolve_key(key, config)
    except config_edit.EditError as exc:
        exits.fail(str(exc), exits.USAGE)
    try:
        value, source = config_edit.effective_value(resolved, config)
    except KeyError:
        value, source = None, "unset"
    if resolved.parts[0] == "providers" and len(resolved.parts) <= 3 and isinstance(value, dict):
        value = _masked_headers(value, resolved.parts)  # only a header asked for by name is printed raw
    if json_out:
        view.write_json({"key": resolved.dotted, "value": value, "source": source})
    elif value is None:
        view.notice(f"{resolved.dotted} is not set")
    else:
        view.write_line(view.raw_value(value))


def _masked_headers(value: dict, parts: tuple[str, ...]) -> dict:
    """A copy of a `providers…` table whose credential headers are masked."""
    from exobridge.core.keys import mask_header

    if len(parts) == 3:  # providers.NAME.headers
        return {name: mask_header(name, v) for name, v in value.items()}
    if len(parts) == 2:  # providers.NAME
        return {**value, "headers": _masked_headers(value.get("headers") or {}, (*parts, "headers"))}
    return {name: _masked_headers(provider, (*parts, name)) for name, provider in value.items()}


@app.command("set", context_settings={"ignore_unknown_options": True})
def set_command(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help="Dotted key, e.g. providers.exo.url or default_model.",
            autocompletion=completions.complete_config_key,
        ),
    ],
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help='The value; lists as \'["http://a:52415","http://b:52415"]\' or a,b.')
    ],
    force: Annotated[bool, typer.Option("--force", help="Write a key exobridge does not know.")] = False,
) -> None:
    """Set one key in the config file, typed and checked first."""
    from exobridge.core import config_edit
    from exobridge.core.config import EXO_URL_ENV, ConfigError
    from exobridge.render import config as view

    written: dict[str, object] = {}

    def mutate(doc: object) -> None:
        base = _config_for_keys(doc)
        resolved = config_edit.resolve_key(key, base, force=force)
        typed = config_edit.coerce(resolved, value)
        config_edit.set_in_document(doc, resolved.parts, typed)  # type: ignore[arg-type]
        written.update(key=resolved.dotted, value=typed)

    try:
        path = config_edit.edit_config(mutate)
    except (config_edit.EditError, ConfigError) as exc:
        _fail_edit(exc)
    view.notice(f"set {written['key']} = {view.shown_value(written['value'])} in {path}")
    url_key = str(written["key"]).startswith("providers.") and str(written["key"]).endswith((".url", ".urls"))
    if url_key and os.environ.get(EXO_URL_ENV, "").strip():
        view.warn(f"{EXO_URL_ENV} is set in the environment and overrides the url of exo providers")


@app.command("unset")
def unset(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help="Dotted key to remove from the file (the default applies again).",
            autocompletion=completions.complete_config_key,
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Remove a key exobridge does not know.")] = False,
) -> None:
    """Remove one key from the config file."""
    from exobridge.core import config_edit
    from exobridge.core.config import ConfigError
    from exobridge.render import config as view

    outcome: dict[str, object] = {}

    def mutate(doc: object) -> None:
        base = _config_for_keys(doc)
        resolved = config_edit.resolve_key(key, base, force=force)
        outcome.update(key=resolved.dotted, removed=config_edit.remove_from_document(doc, resolved.parts))  # type: ignore[arg-type]

    try:
        path = config_edit.edit_config(mutate)
    except (config_edit.EditError, ConfigError) as exc:
        _fail_edit(exc)
    if outcome["removed"]:
        view.notice(f"removed {outcome['key']} from {path}")
    else:
        view.notice(f"{outcome['key']} is not set in {path}; nothing to remove")


def _config_for_keys(doc: object):
    """The config the file gives, to check key names against; the defaults when the file is broken."""
    from exobridge.core import config_edit, paths
    from exobridge.core.config import ConfigError, build

    try:
        return config_edit.document_config(doc, paths.config_path())  # type: ignore[arg-type]
    except ConfigError:
        return build(None, paths.config_path(), env={})


@app.command("edit")
def edit() -> None:
    """Open the file in $VISUAL/$EDITOR; it replaces the config only when it is valid."""
    import contextlib
    import shlex
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from exobridge.core import config_edit, paths
    from exobridge.core.config import ConfigError
    from exobridge.render import config as view

    path = paths.config_path()
    try:
        previous = config_edit.file_bytes(path)
    except OSError as exc:
        exits.fail(f"config: {path}: cannot read ({exc.strerror or exc})", exits.CONFIG)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    try:
        command = shlex.split(editor) if editor else [next((e for e in ("vi", "nano") if shutil.which(e)), "vi")]
    except ValueError as exc:  # an unclosed quote
        exits.fail(f"cannot split $VISUAL/$EDITOR {editor!r} like a shell would: {exc}", exits.USAGE)
    if not command:
        exits.fail("$VISUAL/$EDITOR is empty", exits.USAGE)
    original = previous.decode("utf-8", errors="replace") if previous is not None else config_edit.starter_text()
    fd, name = tempfile.mkstemp(prefix="exobridge-config-", suffix=".toml")  # 0600
    copy = Path(name)
    keep_copy = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(original)
        while True:
            try:
                status = subprocess.run([*command, str(copy)], check=False).returncode
            except OSError as exc:
                exits.fail(f"cannot start the editor {command[0]!r}: {exc.strerror or exc}", exits.USAGE)
            if status != 0:
                exits.fail(f"the editor exited with status {status}; {path} is unchanged", exits.INTERNAL)
            text = copy.read_text(encoding="utf-8", errors="replace")
            if previous is not None and text == original:
                view.notice(f"no changes to {path}")
                return
            try:
                config = config_edit.validate_text(text, path)
            except ConfigError as exc:
                message = str(exc).replace(str(path), "edited file", 1)
                if _ask_reopen(message):
                    continue
                exits.fail(f"config: {message}; {path} is unchanged", exits.CONFIG)
            try:
                config_edit.replace_config(text, path, previous=previous)
            except config_edit.ChangedMeanwhile:
                keep_copy = True
                exits.fail(
                    f"{path} changed while you were editing; it was left alone and your version is in {copy}",
                    exits.CONFIG,
                )
            view.notice(f"saved {path}")
            for unknown in config.unknown_keys:
                view.warn(f"unknown key {unknown!r} in the config file (ignored)")
            return
    finally:
        if not keep_copy:
            with contextlib.suppress(OSError):
                copy.unlink()


def _ask_reopen(message: str) -> bool:
    """On a terminal: show the error and ask to re-open or discard. Elsewhere: False (discard)."""
    if not sys.stdin.isatty():
        return False
    sys.stderr.write(f"exobridge: error: config: {message}\n")
    while True:
        sys.stderr.write("Re-open the editor [r] or discard your changes [d]? ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            return False
        answer = answer.strip().lower()
        if answer in ("r", "re-open", "reopen", "y", "yes", ""):
            return True
        if answer in ("d", "discard", "n", "no"):
            return False


@app.command("init")
def init(force: Annotated[bool, typer.Option("--force", help="Replace an existing config file.")] = False) -> None:
    """Write a commented starter config (the built-in defaults, annotated)."""
    from exobridge.core import config_edit
    from exobridge.core.config import ConfigError
    from exobridge.render import config as view

    try:
        path = config_edit.write_starter(force=force)
    except (config_edit.EditError, ConfigError) as exc:
        _fail_edit(exc)
    view.notice(f"wrote {path}")


def register(root: typer.Typer) -> None:
    """Add the `config` group (and `config import-legacy`, when that module is present)."""
    try:
        from exobridge.cli import config_import
    except ModuleNotFoundError as exc:
        if exc.name != "exobridge.cli.config_import":
            raise
    else:
        config_import.register_import(app)
    root.add_typer(app, name="config")
