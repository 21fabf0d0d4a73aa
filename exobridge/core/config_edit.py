"""Safe edits of the config file: keep what the user wrote, never lose a concurrent change, never write junk.

Stable API (used by `config`, `providers add|remove|…`, `keys` and `config import-legacy`):

    edit_config(mutate, path=None) -> Path
        Lock the file (fcntl on a sibling `.config.toml.lock`), read it (or start from an empty document),
        call `mutate(doc)` on the tomlkit document, validate the result with `exobridge.core.config.build`
        (raise ConfigError and write nothing if it is invalid), then write it atomically
        (`files.write_atomic`: temp file + rename in the same directory) keeping the existing mode
        (new files 0600). Comments, ordering and tables the user wrote survive. Returns the path.

    locked(path)                 context manager holding the exclusive lock of `path`
    read_document(path)          the tomlkit document of `path` (empty when missing); ConfigError on bad TOML
    validate_text(text, path)    the Config built from `text` alone (environment ignored), or ConfigError
    replace_config(text, path)   validate `text`, then write it under the lock (used by `config edit`)

tomlkit is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exobridge.core import files, paths
from exobridge.core.config import Config, ConfigError, build

if TYPE_CHECKING:
    import tomlkit


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a sibling lock file, so two writers take turns (read-modify-write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _decode(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(str(path), "", "permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text (byte {exc.start})") from None


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
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        _raise_parse(text, str(path), ValueError("invalid TOML"))
        raise  # unreachable: _raise_parse always raises
    return build(raw, path, env={})


def edit_config(mutate: Callable[[tomlkit.TOMLDocument], None], path: Path | None = None) -> Path:
    """Lock, read, `mutate(doc)`, validate, write atomically keeping the mode. See the module docstring."""
    import tomlkit

    path = paths.config_path() if path is None else path
    with locked(path):
        doc = read_document(path)
        mutate(doc)
        text = tomlkit.dumps(doc)
        validate_text(text, path)
        files.write_atomic(path, text)
    return path


def replace_config(text: str, path: Path | None = None) -> Path:
    """Write `text` as the whole config file, under the lock, only if it is a valid config."""
    path = paths.config_path() if path is None else path
    validate_text(text, path)
    with locked(path):
        files.write_atomic(path, text)
    return path
