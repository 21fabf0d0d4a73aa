"""Small JSON caches in the user cache dir. A cache is advisory: unreadable, corrupt or untrusted means empty.

A cache file is only read when it could only have been written by this user: a regular file (not a symlink,
FIFO or device), owned by the current user, not writable by group or others, in a folder that is owned by
the user and not writable by group or others, and at most `MAX_CACHE_BYTES` long. Anything else is ignored
(and replaced at the next write). Nothing that decides where a key is sent is ever read from a cache: the
model lists cached here only decide which model id is asked for.

Writes are atomic (`files.write_atomic`, mode 0600) and serialised by a lock file, so two processes (or serve's
threads) that add entries at once both keep theirs.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from exobridge.core import paths
from exobridge.core.files import locked, write_atomic

MAX_CACHE_BYTES = 32 * 1024 * 1024  # a cache file bigger than this is not ours to trust (or not worth reading)


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else."""
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_trusted(path: Path, cap: int = MAX_CACHE_BYTES) -> bytes | None:
    """The bytes of `path` when only this user could have written them (see the module docstring), else None."""
    try:
        if not _private(os.stat(path.parent)):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _private(st) or st.st_size > cap:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(cap + 1)
        return data if len(data) <= cap else None
    except OSError:
        return None
    finally:
        os.close(fd)


class JsonCache:
    """One JSON object per file: `{key: {"at": epoch seconds, "value": …}}`."""

    def __init__(self, name: str, directory: Path | None = None) -> None:
        self.path = (paths.cache_dir() if directory is None else directory) / f"{name}.json"

    def _read(self) -> dict[str, Any]:
        raw = read_trusted(self.path)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def entry(self, key: str) -> tuple[float, Any] | None:
        """(written at, value) for `key`, whatever its age; None when absent or malformed."""
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return None
        at = entry.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or at != at:
            return None
        return float(at), entry.get("value")

    def get(self, key: str, ttl: float) -> Any | None:
        """The value stored under `key` when it is at most `ttl` seconds old (and not from the future)."""
        found = self.entry(key)
        if found is None:
            return None
        at, value = found
        age = time.time() - at
        if age > ttl or age < -60:
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        self.put_many({key: value})

    def put_many(self, values: dict[str, Any]) -> None:
        """Store several entries in one read-modify-write; a file-system failure is ignored (advisory)."""
        with contextlib.suppress(OSError):
            _make_private_dir(self.path.parent)
            with locked(self.path):
                _clear_non_regular(self.path)
                data = self._read()
                now = time.time()
                for key, value in values.items():
                    data[key] = {"at": now, "value": value}
                write_atomic(self.path, json.dumps(data), mode=0o600)


def _make_private_dir(directory: Path) -> None:
    """Create the cache folder 0700 whatever the umask. An existing folder is left as it is (one that others
    can write to is never read from, see `read_trusted`)."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask; 0700 is never looser than it


def _clear_non_regular(path: Path) -> None:
    """A symlink, FIFO or device where a cache file belongs is removed, never written through."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
