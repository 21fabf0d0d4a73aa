"""Atomic, permission-preserving file writes shared by config, keys and cache files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` in one rename.

    The temp file lives in the same directory so the rename is atomic. The mode is `mode` when given,
    else the existing file's mode, else 0600: new files never start world-readable. A symlink (a config
    kept in a dotfiles repository) stays a symlink: its target is the file replaced.
    """
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
    raw = data.encode("utf-8") if isinstance(data, str) else data
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a sibling lock file, so two writers take turns (read-modify-write)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_problem(exc: OSError, path: Path) -> str:
    """A file-system failure while locking or writing `path`, said in a few words for a one-line error."""
    where = f" {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileExistsError):  # mkdir of a parent that is a file
        reason = "it is a file, not a directory"
    elif isinstance(exc, IsADirectoryError):
        where, reason = "", "it is a directory"
    return f"cannot write{where} ({reason})"
