"""`exobridge config …`: see and edit the config file without losing what the user wrote.

Each command parses into an options dataclass and calls its `…_run(opts, io)`; everything it prints goes
through the IOStreams `io`. Failures are raised (EditError/UsageError exit 2, ConfigError exit 4) for the
runner to print as one line (and one JSON object under `--json`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exobridge.cli import completion_hooks
from exobridge.core.errors import ConfigError, ExitCode, UsageError

if TYPE_CHECKING:
    from exobridge.core.config import Config
    from exobridge.render.io import IOStreams

app = typer.Typer(
    help="See and change the config file (comments, order and unknown tables are kept).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _io() -> IOStreams:
    from exobridge.render import io as iostreams

    return iostreams.current()


# --- config path ---------------------------------------------------------------------------------------------


@dataclass
class PathOptions:
    json: bool = False


def path_run(opts: PathOptions, io: IOStreams) -> int:
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
    view.paths(io, rows, opts.json)
    return ExitCode.OK


@app.command("path")
def path_command(json_out: JsonOption = False) -> int:
    """Where the config, keys, cache and data live, and whether each exists."""
    return path_run(PathOptions(json_out), _io())


# --- config show ---------------------------------------------------------------------------------------------


@dataclass
class ShowOptions:
    json: bool = False


def show_run(opts: ShowOptions, io: IOStreams) -> int:
    from exobridge.core import config as config_mod
    from exobridge.core import config_keys, config_view, keys
    from exobridge.core.secrets import mask_header
    from exobridge.render import config as view

    config = config_mod.load()
    values = []
    for setting in config_view.settings(config):
        value = setting.value
        parts = config_keys.split_key(setting.key)
        if len(parts) == 4 and parts[2] == "headers" and isinstance(value, str):
            value = mask_header(parts[3], value)  # a key put in a header is still a key
        values.append({"key": setting.key, "value": value, "source": setting.source})
    stored = keys.read_keys_file()
    key_rows = []
    for provider in config.ordered(include_disabled=True):
        resolved = keys.resolve(provider, stored=stored)
        if resolved.origin is keys.KeySource.NOT_NEEDED:
            continue
        key_rows.append({"provider": provider.name, "source": resolved.source, "masked": resolved.masked})
    view.settings(io, str(config.path), config.file_exists, values, key_rows, config.unknown_keys, opts.json)
    return ExitCode.OK


@app.command("show")
def show(json_out: JsonOption = False) -> int:
    """The effective config, each value with its source (default, file, env); keys masked."""
    return show_run(ShowOptions(json_out), _io())


# --- config get ----------------------------------------------------------------------------------------------


@dataclass
class GetOptions:
    key: str
    json: bool = False


def get_run(opts: GetOptions, io: IOStreams) -> int:
    from exobridge.core import config as config_mod
    from exobridge.core import config_keys, config_view
    from exobridge.render import config as view

    config = config_mod.load()
    resolved = config_keys.resolve_key(opts.key, config)
    try:
        value, source = config_view.effective_value(resolved, config)
    except KeyError:
        value, source = None, "unset"
    if resolved.parts[0] == "providers" and len(resolved.parts) <= 3 and isinstance(value, dict):
        value = _masked_headers(value, resolved.parts)  # only a header asked for by name is printed raw
    if opts.json:
        view.write_json(io, {"key": resolved.dotted, "value": value, "source": source})
    elif value is None:
        view.notice(io, f"{resolved.dotted} is not set")
    else:
        view.write_line(io, view.raw_value(value))
    return ExitCode.OK


@app.command("get")
def get(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help='Dotted key: providers.exo.url, models."llama-3.2-3b".openrouter',
            autocompletion=completion_hooks.complete_config_key,
        ),
    ],
    json_out: JsonOption = False,
) -> int:
    """Print one effective value, raw (for scripts). Lists and tables print as JSON."""
    return get_run(GetOptions(key, json_out), _io())


def _masked_headers(value: dict, parts: tuple[str, ...]) -> dict:
    """A copy of a `providers…` table whose credential headers are masked."""
    from exobridge.core.secrets import mask_header

    if len(parts) == 3:  # providers.NAME.headers
        return {name: mask_header(name, v) for name, v in value.items()}
    if len(parts) == 2:  # providers.NAME
        return {**value, "headers": _masked_headers(value.get("headers") or {}, (*parts, "headers"))}
    return {name: _masked_headers(provider, (*parts, name)) for name, provider in value.items()}


# --- config set / unset --------------------------------------------------------------------------------------


@dataclass
class SetOptions:
    key: str
    value: str
    force: bool = False


def set_run(opts: SetOptions, io: IOStreams) -> int:
    from exobridge.core import config_document, config_file, config_keys
    from exobridge.core.config import url_env_of
    from exobridge.render import config as view

    written: dict[str, Any] = {}

    def mutate(doc: Any) -> None:
        base = _config_for_keys(doc)
        resolved = config_keys.resolve_key(opts.key, base, force=opts.force)
        typed = config_keys.coerce(resolved, opts.value)
        config_document.set_in_document(doc, resolved.parts, typed)
        written.update(key=resolved.dotted, value=typed, base=base, parts=resolved.parts)

    path = config_file.edit_config(mutate)
    view.notice(io, f"set {written['key']} = {view.shown_value(written['value'])} in {path}")
    parts = written["parts"]
    if len(parts) == 3 and parts[0] == "providers" and parts[2] in ("url", "urls"):
        provider = written["base"].providers.get(parts[1])
        variable = url_env_of(provider.kind) if provider is not None else None
        if variable and os.environ.get(variable, "").strip():
            view.warn(io, f"{variable} is set in the environment and overrides the url of {provider.kind} providers")
    return ExitCode.OK


@app.command("set", context_settings={"ignore_unknown_options": True})
def set_command(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help="Dotted key, e.g. providers.exo.url or default_model.",
            autocompletion=completion_hooks.complete_config_key,
        ),
    ],
    value: Annotated[
        str, typer.Argument(metavar="VALUE", help='The value; lists as \'["http://a:52415","http://b:52415"]\' or a,b.')
    ],
    force: Annotated[bool, typer.Option("--force", help="Write a key exobridge does not know.")] = False,
) -> int:
    """Set one key in the config file, typed and checked first."""
    return set_run(SetOptions(key, value, force), _io())


@dataclass
class UnsetOptions:
    key: str
    force: bool = False


def unset_run(opts: UnsetOptions, io: IOStreams) -> int:
    from exobridge.core import config_document, config_file, config_keys
    from exobridge.render import config as view

    outcome: dict[str, Any] = {}

    def mutate(doc: Any) -> None:
        base = _config_for_keys(doc)
        resolved = config_keys.resolve_key(opts.key, base, force=opts.force)
        outcome.update(key=resolved.dotted, removed=config_document.remove_from_document(doc, resolved.parts))

    path = config_file.edit_config(mutate)
    if outcome["removed"]:
        view.notice(io, f"removed {outcome['key']} from {path}")
    else:
        view.notice(io, f"{outcome['key']} is not set in {path}; nothing to remove")
    return ExitCode.OK


@app.command("unset")
def unset(
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help="Dotted key to remove from the file (the default applies again).",
            autocompletion=completion_hooks.complete_config_key,
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Remove a key exobridge does not know.")] = False,
) -> int:
    """Remove one key from the config file."""
    return unset_run(UnsetOptions(key, force), _io())


def _config_for_keys(doc: Any) -> Config:
    """The config the file gives, to check key names against; the defaults when the file is broken."""
    from exobridge.core import config_document, paths
    from exobridge.core.config import build

    try:
        return config_document.document_config(doc, paths.config_path())
    except ConfigError:
        return build(None, paths.config_path(), env={})


# --- config edit / init --------------------------------------------------------------------------------------


class EditorFailed(UsageError):
    """The editor could not run or exited non-zero: exit 1, the config unchanged."""

    exit_code = ExitCode.INTERNAL


def edit_run(io: IOStreams) -> int:
    import contextlib
    import shlex
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from exobridge.core import config_file, paths
    from exobridge.render import config as view

    path = paths.config_path()
    try:
        previous = config_file.file_bytes(path)
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read ({exc.strerror or exc})") from None
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    try:
        command = shlex.split(editor) if editor else [next((e for e in ("vi", "nano") if shutil.which(e)), "vi")]
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"cannot split $VISUAL/$EDITOR {editor!r} like a shell would: {exc}") from None
    if not command:
        raise UsageError("$VISUAL/$EDITOR is empty")
    original = previous.decode("utf-8", errors="replace") if previous is not None else config_file.starter_text()
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
                raise UsageError(f"cannot start the editor {command[0]!r}: {exc.strerror or exc}") from None
            if status != 0:
                raise EditorFailed(f"the editor exited with status {status}; {path} is unchanged")
            text = copy.read_text(encoding="utf-8", errors="replace")
            if previous is not None and text == original:
                view.notice(io, f"no changes to {path}")
                return ExitCode.OK
            try:
                config = config_file.validate_text(text, path)
            except ConfigError as exc:
                message = str(exc).replace(str(path), "edited file", 1)
                if _ask_reopen(io, message):
                    continue
                raise ConfigError(
                    str(path), "", f"{message.removeprefix('edited file: ')}; the file is unchanged"
                ) from None
            try:
                config_file.replace_config(text, path, previous=previous)
            except config_file.ChangedMeanwhile:
                keep_copy = True
                raise ConfigError(
                    str(path), "", f"changed while you were editing; it was left alone and your version is in {copy}"
                ) from None
            view.notice(io, f"saved {path}")
            for unknown in config.unknown_keys:
                view.warn(io, f"unknown key {unknown!r} in the config file (ignored)")
            return ExitCode.OK
    finally:
        if not keep_copy:
            with contextlib.suppress(OSError):
                copy.unlink()


@app.command("edit")
def edit() -> int:
    """Open the file in $VISUAL/$EDITOR; it replaces the config only when it is valid."""
    return edit_run(_io())


def _ask_reopen(io: IOStreams, message: str) -> bool:
    """On a terminal: show the error and ask to re-open or discard. Elsewhere: False (discard)."""
    if not io.is_stdin_tty:
        return False
    io.write_err(f"exobridge: error: config: {message}\n")
    while True:
        io.write_err("Re-open the editor [r] or discard your changes [d]? ")
        answer = io.stdin.readline()
        if not answer:
            return False
        answer = answer.strip().lower()
        if answer in ("r", "re-open", "reopen", "y", "yes", ""):
            return True
        if answer in ("d", "discard", "n", "no"):
            return False


@dataclass
class InitOptions:
    force: bool = False


def init_run(opts: InitOptions, io: IOStreams) -> int:
    from exobridge.core import config_file
    from exobridge.render import config as view

    path = config_file.write_starter(force=opts.force)
    view.notice(io, f"wrote {path}")
    return ExitCode.OK


@app.command("init")
def init(force: Annotated[bool, typer.Option("--force", help="Replace an existing config file.")] = False) -> int:
    """Write a commented starter config (the built-in defaults, annotated)."""
    return init_run(InitOptions(force), _io())


@functools.cache
def _group() -> typer.Typer:
    """The `config` group plus `import-legacy` (when that module is present), added once however often the
    app is built (in-process runs)."""
    try:
        from exobridge.cli import config_import
    except ModuleNotFoundError as exc:
        if exc.name != "exobridge.cli.config_import":
            raise
    else:
        config_import.register_import(app)
    return app


def register(root: typer.Typer) -> None:
    """Add the `config` group."""
    root.add_typer(_group(), name="config")
