"""Small JSON caches in the user cache dir. A cache is advisory: unreadable or corrupt means empty."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from exobridge.core import paths
from exobridge.core.files import write_atomic


class JsonCache:
    def __init__(self, name: str, directory: Path | None = None) -> None:
        self.path = (paths.cache_dir() if directory is None else directory) / f"{name}.json"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str, ttl: float) -> Any | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("at"), int | float):
            return None
        if time.time() - entry["at"] > ttl:
            return None
        return entry.get("value")

    def put(self, key: str, value: Any) -> None:
        data = self._read()
        data[key] = {"at": time.time(), "value": value}
        with contextlib.suppress(OSError):
            write_atomic(self.path, json.dumps(data), mode=0o600)
