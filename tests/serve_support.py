"""A real `exobridge serve` subprocess on 127.0.0.1 for the serve tests, and readers of its wire format.

The process is started with `--port 0`; the bound port is read from its start-up line. Its stderr is read
by a thread into `lines`, so a test can wait for a log line (an event, not a sleep) and check every line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import SCRUBBED, exobridge_command

START_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)/v1")  # in the text and the JSON start-up line


def serve_env(home: Path, config: str, **extra: str) -> dict[str, str]:
    """An environment like conftest's `isolated` one, for a process started outside any test."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith("EXOBRIDGE_")}
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(textwrap.dedent(config), encoding="utf-8")
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        EXOBRIDGE_CONFIG=str(home / "config.toml"),
        EXOBRIDGE_KEYS_FILE=str(home / "keys.toml"),
        EXOBRIDGE_CACHE_DIR=str(home / "cache"),
        EXOBRIDGE_DATA_DIR=str(home / "data"),
    )
    env.update(extra)
    return env


class ServeProcess:
    def __init__(self, env: dict[str, str], *args: str, start_timeout: float = 20) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [*exobridge_command(), "serve", "--port", "0", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.wait_for_line(
            lambda text: "listening on" in text or '"start"' in text or "error" in text, start_timeout
        )
        found = START_LINE.search(line)
        assert found, f"serve did not start: {self.text()}"
        self.url = found.group(1)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._changed:
                self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = 10) -> str:
        """The first stderr line matching `predicate` (waiting for it); AssertionError after `timeout`."""
        with self._changed:
            found = self._changed.wait_for(lambda: next((x for x in self.lines if predicate(x)), None), timeout)
        assert found, f"no such line in serve's stderr within {timeout} s:\n{self.text()}"
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)


def sse_payloads(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order (comments and blank lines dropped)."""
    payloads = []
    for block in body.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data:"):
                payloads.append(line[5:].strip())
    return payloads


# What a chunk's delta may carry: text, and what serve relays beside it (tool calls, reasoning, a refusal).
DELTA_FIELDS = {
    *("role", "content"),
    *("tool_calls", "function_call", "refusal", "reasoning", "reasoning_content", "reasoning_details"),
}


def check_stream(body: str, *, done: bool = True) -> list[dict[str, Any]]:
    """Every event is an OpenAI chunk sharing one id; `[DONE]` exactly once, at the end (when `done`)."""
    payloads = sse_payloads(body)
    assert payloads.count("[DONE]") == (1 if done else 0), body
    if done:
        assert payloads[-1] == "[DONE]", body
    chunks = [json.loads(p) for p in payloads if p != "[DONE]"]
    ids = set()
    for chunk in chunks:
        if "error" in chunk:
            continue
        assert chunk["object"] == "chat.completion.chunk", chunk
        assert isinstance(chunk["created"], int) and isinstance(chunk["model"], str) and chunk["model"]
        assert isinstance(chunk["choices"], list)
        for choice in chunk["choices"]:
            assert set(choice["delta"]) <= DELTA_FIELDS, chunk
            assert "message" not in choice
        ids.add(chunk["id"])
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-"), ids
    return chunks


def stream_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def pieces(secret: str, size: int = 8) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]
