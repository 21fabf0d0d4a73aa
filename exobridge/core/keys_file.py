"""The keys file (`provider = "key"` TOML, 0600): reading it and changing it.

Reading (`read_keys_file`) never takes a malformed or unreadable file for "no keys": it raises
`errors.KeysFileError` (exit 4, naming the file and the line) in every command. `secrets_in_keys_file` is the
tolerant reader for redaction (it never raises, and takes the quoted values even of a malformed file).

Every change is a locked read-modify-write (fcntl on a sibling lock file), so two `exobridge keys set`
running at once both land; the file is replaced atomically and is always 0600. Comments the user wrote
in the file survive (tomlkit). A file that is not valid TOML is never overwritten: the caller gets a
KeystoreError naming it.
"""

from __future__ import annotations

import contextlib
import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from exobridge.core import files, paths
from exobridge.core.errors import KeysFileError

if TYPE_CHECKING:
    import tomlkit

KEYS_FILE_MODE = 0o600
_PRINTABLE = set(string.printable) - set(string.whitespace)


class KeystoreError(KeysFileError):
    """The keys file cannot be read or written (exit 4). `str()` is one line naming the file."""

    def __init__(self, message: str) -> None:
        path, _, problem = message.partition(": ")
        super().__init__(path, "", problem or message)


def clean_key(raw: str) -> str:
    """The key without surrounding whitespace (the newline of `echo KEY |`). ValueError when empty or odd."""
    key = raw.strip()
    if not key:
        raise ValueError("empty key")
    if any(ch not in _PRINTABLE for ch in key):
        raise ValueError("the key contains spaces, line breaks or non-ASCII characters")
    return key


def _text(path: Path) -> str | None:
    """The keys file's text; None when it does not exist; KeysFileError when it cannot be read."""
    try:
        raw = files.read_regular(path)
    except FileNotFoundError:
        return None
    except files.NotRegularFile as exc:
        raise KeysFileError(str(path), "", f"{exc.strerror}; move it away and run exobridge keys set again") from None
    except OSError as exc:
        raise KeysFileError(
            str(path), "", f"cannot read the keys file ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeysFileError(str(path), "", f"not UTF-8 text (byte {exc.start})") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_keys_file(path: Path | None = None) -> dict[str, str]:
    """Keys stored by `exobridge keys set`: `{provider: key}`. A missing file is no keys; a malformed or
    unreadable one is a KeysFileError (exit 4, file and line), never "no key"."""
    path = paths.keys_path() if path is None else path
    text = _text(path)
    if text is None:
        return {}
    import tomllib  # only when there is a file: no keys file is the common case, and tomllib costs ~1 ms

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Name the position only: the parser's message could quote part of a key.
        message = str(exc)
        position = message.rpartition(" (at ")[2].rstrip(")") if "(at line" in message else "invalid TOML"
        raise KeysFileError(str(path), position, "not a valid keys file; fix or remove it") from None
    except RecursionError:
        raise KeysFileError(str(path), "", "not a valid keys file; fix or remove it") from None
    keys: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(value, str):
            raise KeysFileError(str(path), name, 'expected a key in quotes (name = "key")')
        if value.strip():
            keys[name] = value.strip()
    return keys


def secrets_in_keys_file(path: Path | None = None) -> dict[str, str]:
    """Every value in the keys file, for redaction: never raises. A file that is not valid TOML still gives
    its quoted values (a malformed file must not leak what it holds)."""
    path = paths.keys_path() if path is None else path
    try:
        text = files.read_regular(path).decode("utf-8", errors="replace")
    except OSError:
        return {}
    import re
    import tomllib

    try:
        data = tomllib.loads(text)
        return {str(name): value.strip() for name, value in data.items() if isinstance(value, str) and value.strip()}
    except (tomllib.TOMLDecodeError, RecursionError):
        values = re.findall(r"""=\s*["']([^"'\r\n]+)["']?""", text)
        return {f"line{number}": value.strip() for number, value in enumerate(values) if value.strip()}


def _read(path: Path) -> tomlkit.TOMLDocument:
    import tomlkit
    from tomlkit.exceptions import ParseError

    text = _text(path)
    if text is None:
        return tomlkit.document()
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        # Name the position only: the parser's message could quote part of a key.
        where = f"line {exc.line}" if getattr(exc, "line", None) else "invalid TOML"
        raise KeystoreError(f"{path}: {where}: not a valid keys file; fix or remove it") from None
    except RecursionError:
        raise KeystoreError(f"{path}: not a valid keys file (nested too deeply); fix or remove it") from None


def _write(path: Path, doc: tomlkit.TOMLDocument) -> None:
    import tomlkit

    if not path.parent.exists():
        files.make_private_dir(path.parent)
    files.write_atomic(path, tomlkit.dumps(doc), mode=KEYS_FILE_MODE)


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A file-system failure while locking or writing the keys file, as one KeystoreError line."""
    try:
        yield
    except OSError as exc:
        raise KeystoreError(f"{path}: {files.write_problem(exc, path)}") from None


def set_keys(keys: dict[str, str], path: Path | None = None) -> Path:
    """Store several providers' keys in one locked edit. Keys must already be clean (see clean_key)."""
    path = paths.keys_path() if path is None else path
    with _writing(path), files.locked(path):
        doc = _read(path)
        for provider, key in keys.items():
            doc[provider] = key
        _write(path, doc)
    return path


def set_key(provider: str, key: str, path: Path | None = None) -> Path:
    return set_keys({provider: key}, path)


def remove_key(provider: str, path: Path | None = None) -> bool:
    """Drop one provider's key. False (and nothing written) when the file holds none for it."""
    path = paths.keys_path() if path is None else path
    if not path.exists():
        return False
    with _writing(path), files.locked(path):
        doc = _read(path)
        if provider not in doc:
            return False
        del doc[provider]
        _write(path, doc)
    return True


def file_mode(path: Path | None = None) -> int | None:
    """The keys file's permission bits, or None when it does not exist."""
    path = paths.keys_path() if path is None else path
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return None
