"""The advisory JSON caches: only files this user alone could have written are read (issue 9, defect 4)."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from exobridge.core.cache import MAX_CACHE_BYTES, JsonCache


def cache_dir() -> Path:
    return Path(os.environ["EXOBRIDGE_CACHE_DIR"])


def test_round_trip_and_ttl() -> None:
    cache = JsonCache("models")
    cache.put("exo", [{"id": "a"}])
    assert cache.get("exo", 60) == [{"id": "a"}]
    assert cache.get("other", 60) is None
    at, value = cache.entry("exo") or (0.0, None)
    assert value == [{"id": "a"}]
    data = json.loads(cache.path.read_text())
    data["exo"]["at"] = at - 120
    cache.path.write_text(json.dumps(data))
    assert cache.get("exo", 60) is None  # too old
    assert cache.get("exo", 600) == [{"id": "a"}]


def test_folder_is_created_0700_and_file_0600_whatever_the_umask() -> None:
    old = os.umask(0)
    try:
        JsonCache("models").put("exo", [])
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache_dir().stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir() / "models.json").stat().st_mode) == 0o600


def test_a_file_others_can_write_is_not_trusted() -> None:
    cache = JsonCache("models")
    cache.put("exo", [{"id": "a"}])
    os.chmod(cache.path, 0o666)
    assert cache.get("exo", 60) is None
    os.chmod(cache.path, 0o600)
    assert cache.get("exo", 60) == [{"id": "a"}]


def test_a_folder_others_can_write_is_not_trusted() -> None:
    cache = JsonCache("models")
    cache.put("exo", [{"id": "a"}])
    os.chmod(cache_dir(), 0o777)
    try:
        assert cache.get("exo", 60) is None
    finally:
        os.chmod(cache_dir(), 0o700)


def test_a_symlinked_cache_file_is_neither_read_nor_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"exo": {"at": 1e12, "value": ["planted"]}}))
    os.chmod(target, 0o600)
    cache_dir().mkdir(mode=0o700)
    (cache_dir() / "models.json").symlink_to(target)
    cache = JsonCache("models")
    assert cache.get("exo", 1e15) is None
    cache.put("exo", [{"id": "mine"}])
    assert json.loads(target.read_text())["exo"]["value"] == ["planted"]  # the target was not written
    assert not cache.path.is_symlink()
    assert cache.get("exo", 60) == [{"id": "mine"}]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_place_of_the_cache_does_not_block() -> None:
    cache_dir().mkdir(mode=0o700)
    os.mkfifo(cache_dir() / "models.json", 0o600)
    cache = JsonCache("models")
    assert cache.get("exo", 60) is None  # opened non-blocking, refused as not a regular file
    cache.put("exo", [])
    assert stat.S_ISREG(os.lstat(cache.path).st_mode)


def test_an_oversized_or_malformed_cache_is_empty() -> None:
    cache = JsonCache("models")
    cache.put("exo", [])
    with open(cache.path, "r+b") as handle:
        handle.truncate(MAX_CACHE_BYTES + 1)
    assert cache.get("exo", 60) is None
    cache.path.write_text("[" * 100_000)
    assert cache.get("exo", 60) is None
    cache.path.write_text(json.dumps({"exo": {"at": float("nan"), "value": 1}}))
    assert cache.get("exo", 60) is None
    cache.path.write_text(json.dumps({"exo": {"at": True, "value": 1}}))
    assert cache.get("exo", 60) is None


def test_parallel_writers_keep_every_entry() -> None:
    cache = JsonCache("models")
    start = threading.Barrier(8)

    def write(index: int) -> None:
        start.wait()
        JsonCache("models").put(f"p{index}", [index])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {f"p{i}": [i] for i in range(8)} == {f"p{i}": cache.get(f"p{i}", 60) for i in range(8)}
