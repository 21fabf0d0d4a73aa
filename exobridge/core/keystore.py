"""Writing the keys file (`provider = "key"` TOML, read by `keys.read_keys_file`).

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

if TYPE_CHECKING:
    import tomlkit

KEYS_FILE_MODE = 0o600
_PRINTABLE = set(string.printable) - set(string.whitespace)


class KeystoreError(Exception):
    """The keys file cannot be read or written. `str()` is one line naming the file."""


def clean_key(raw: str) -> str:
    """The key without surrounding whitespace (the newline of `echo KEY |`). ValueError when empty or odd."""
    key = raw.strip()
    if not key:
        raise ValueError("empty key")
    if any(ch not in _PRINTABLE for ch in key):
        raise ValueError("the key contains spaces, line breaks or non-ASCII characters")
    return key


def _read(path: Path) -> tomlkit.TOMLDocument:
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"{path}: cannot read the keys file ({type(exc).__name__})") from None
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        # Name the position only: the parser's message could quote part of a key.
        where = f"line {exc.line}" if getattr(exc, "line", None) else "invalid TOML"
        raise KeystoreError(f"{path}: {where}: not a valid keys file; fix or remove it") from None


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
