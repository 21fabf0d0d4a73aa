"""Atomic, permission-preserving file writes shared by config, keys, cache and state files.

Folders exobridge creates (config, cache, state, data, and any missing parent) are created 0700 whatever
the umask. A write replaces only a regular file: a target that is a FIFO, a device, a socket or a folder
(directly or through a symlink) is refused with `NotRegularFile`, never replaced. A symlink to a regular
file (a config kept in a dotfiles repository) stays a symlink: its target is the file replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

PRIVATE_DIR_MODE = 0o700


class NotRegularFile(OSError):
    """The target of a write exists and is not a regular file (a FIFO, a device, a folder …)."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.EINVAL, f"it is {what}, not a regular file", str(path))


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def make_private_dir(directory: Path) -> None:
    """Create `directory` and every missing parent 0700 whatever the umask. Existing folders are left alone."""
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
    if not directory.is_dir():  # a file where a folder belongs
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(directory))


def check_regular(path: Path) -> None:
    """Raise NotRegularFile when `path` (followed through symlinks) exists and is not a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, _what(mode))


MAX_READ_BYTES = 16 * 1024 * 1024  # config and keys files are small; a bigger one is not ours to read


def read_regular(path: Path, cap: int = MAX_READ_BYTES) -> bytes:
    """The bytes of `path` (through symlinks) when it is a regular file of at most `cap` bytes.

    FileNotFoundError when it does not exist; NotRegularFile for a FIFO, device or folder (opened without
    blocking, so a FIFO planted there cannot hang the reader); OSError(EFBIG) when it is larger than `cap`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, _what(st.st_mode))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        raise OSError(errno.EFBIG, f"larger than {cap // (1024 * 1024)} MiB", str(path))
    return data


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` in one rename.

    The temp file lives in the same directory so the rename is atomic. The mode is `mode` when given,
    else the existing file's mode, else 0600: new files never start world-readable. A symlink to a regular
    file stays a symlink (its target is replaced); any other kind of target raises NotRegularFile.
    """
    if path.is_symlink():
        path = path.resolve()
    check_regular(path)
    make_private_dir(path.parent)
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

    make_private_dir(path.parent)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(lock_path(path), flags | os.O_NONBLOCK, 0o600)  # O_NONBLOCK: a FIFO planted here cannot hang us
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(lock_path(path), _what(os.fstat(fd).st_mode))
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_problem(exc: OSError, path: Path) -> str:
    """A file-system failure while locking or writing `path`, said in a few words for a one-line error."""
    where = f" {exc.filename}" if exc.filename and str(exc.filename) != str(path) else ""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, NotRegularFile):
        return f"will not write{where}: {reason}"
    if isinstance(exc, FileExistsError):  # mkdir of a parent that is a file
        reason = "it is a file, not a directory"
    elif isinstance(exc, IsADirectoryError):
        where, reason = "", "it is a directory"
    return f"cannot write{where} ({reason})"
