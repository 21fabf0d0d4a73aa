"""The config file as a transaction: lock, read, change, validate, write atomically (keeping the mode).

    edit_config(mutate, path=None) -> Path
        Lock the file (fcntl on a sibling `.config.toml.lock`), read it (or start from an empty document),
        call `mutate(doc)` on the tomlkit document, validate the result with `exobridge.core.config.build`
        (raise ConfigError and write nothing if it is invalid), then write it atomically
        (`files.write_atomic`: temp file + rename in the same directory) keeping the existing mode
        (new files 0600). Comments, ordering and tables the user wrote survive. Returns the path.

    read_document(path)          the tomlkit document of `path` (empty when missing); ConfigError on bad TOML
    validate_text(text, path)    the Config built from `text` alone (environment ignored), or ConfigError
    replace_config(text, path, previous=…)  validate `text`, then write it under the lock (`config edit`);
                                 with `previous`, only if the file still holds it (else ChangedMeanwhile)
    starter_text(), write_starter(path, force)   the commented starter file (package data starter.toml)

tomlkit is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exobridge.core import files, paths
from exobridge.core.config import Config, build, decode, read_bytes
from exobridge.core.config_keys import EditError
from exobridge.core.errors import ConfigError

if TYPE_CHECKING:
    import tomlkit


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a file-system failure while locking or writing `path` into a one-line ConfigError."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(str(path), "", files.write_problem(exc, path)) from None


def _decode(path: Path) -> str | None:
    raw = read_bytes(path)
    return None if raw is None else decode(raw, path)


def parse_document(text: str, source: str) -> tomlkit.TOMLDocument:
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        return _raise_parse(text, source, exc)


def _raise_parse(text: str, source: str, exc: Exception) -> Any:
    # Prefer tomllib's wording ("Invalid value (at line 3, column 9)"), the same as `load` gives.
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as decode_error:
        message = str(decode_error)
        if "(at line" in message:
            problem, _, position = message.rpartition(" (at ")
            raise ConfigError(source, position.rstrip(")"), problem) from None
        raise ConfigError(source, "", message) from None
    raise ConfigError(source, "", str(exc)) from None


def read_document(path: Path) -> tomlkit.TOMLDocument:
    """The file as an editable tomlkit document; an empty document when it does not exist."""
    import tomlkit

    text = _decode(path)
    if text is None:
        return tomlkit.document()
    return parse_document(text, str(path))


def validate_text(text: str, path: Path) -> Config:
    """The Config `text` would give on its own (the environment is ignored), or ConfigError."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        _raise_parse(text, str(path), ValueError("invalid TOML"))
        raise  # unreachable: _raise_parse always raises
    except RecursionError:
        raise ConfigError(str(path), "", "nested too deeply") from None
    return build(raw, path, env={})


def edit_config(mutate: Callable[[tomlkit.TOMLDocument], None], path: Path | None = None) -> Path:
    """Lock, read, `mutate(doc)`, validate, write atomically keeping the mode. See the module docstring."""
    import tomlkit

    path = paths.config_path() if path is None else path
    with writing(path), files.locked(path):
        doc = read_document(path)
        before = doc.as_string()
        mutate(doc)
        text = tomlkit.dumps(doc)
        if text and not text.endswith("\n") and (not before.strip() or before.endswith("\n")):
            text += "\n"  # a file we start, or one that ended with a newline, ends with one
        validate_text(text, path)
        if tomllib.loads(text) != doc.unwrap():
            # tomlkit can misplace a new key in unusual layouts (dotted keys after tables): never write that.
            raise ConfigError(str(path), "", "cannot change this file's layout safely; use `exobridge config edit`")
        files.write_atomic(path, text)
    return path


class ChangedMeanwhile(Exception):
    """The file changed between reading it and replacing it (another command wrote it meanwhile)."""


def file_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def replace_config(text: str, path: Path | None = None, *, previous: bytes | bool | None = True) -> Path:
    """Write `text` as the whole config file, under the lock, only if it is a valid config.

    `previous` (bytes, or None for "no file") makes the write conditional: ChangedMeanwhile is raised when
    the file no longer holds it. The default (True) replaces whatever is there.
    """
    path = paths.config_path() if path is None else path
    validate_text(text, path)
    with writing(path), files.locked(path):
        if previous is not True and file_bytes(path) != previous:
            raise ChangedMeanwhile(str(path))
        files.write_atomic(path, text)
    return path


def starter_text() -> str:
    """The commented starter config (exobridge/data/starter.toml)."""
    from importlib.resources import files as package_files

    return package_files("exobridge.data").joinpath("starter.toml").read_text(encoding="utf-8")


def write_starter(path: Path | None = None, force: bool = False) -> Path:
    """Write the starter config to the config path; EditError when a file is there and `force` is not set."""
    path = paths.config_path() if path is None else path
    text = starter_text()
    validate_text(text, path)
    with writing(path), files.locked(path):
        if path.exists() and not force:
            raise EditError(f"{path} already exists (use --force to replace it)")
        files.write_atomic(path, text)
    return path
