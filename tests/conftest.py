"""Shared fixtures. Every test runs with a private config, keys file and cache, no real keys in the
environment, no proxies, and a guard that refuses any connection outside 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer

SHARED_RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "recordings"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

SCRUBBED = (
    "OPENROUTER_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "EXOBRIDGE_EXO_URL",
    "EXOBRIDGE_DEBUG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "NO_COLOR",
    "FORCE_COLOR",
    "VISUAL",
    "EDITOR",
)

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
        host = str(address[0])
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"test guard: refusing to connect outside loopback ({host})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("EXOBRIDGE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EXOBRIDGE_KEYS_FILE", str(tmp_path / "keys.toml"))
    monkeypatch.setenv("EXOBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EXOBRIDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    return tmp_path


@pytest.fixture
def server() -> Iterator[Callable[[], LoopbackServer]]:
    """Factory of loopback servers, all closed when the test ends."""
    made: list[LoopbackServer] = []

    def make() -> LoopbackServer:
        made.append(LoopbackServer())
        return made[-1]

    yield make
    for item in made:
        item.close()


@pytest.fixture
def backup(server: Callable[[], LoopbackServer]) -> LoopbackServer:
    """A well-behaved OpenAI-compatible fallback at `{url}/chat/completions` that answers "from backup"."""
    from tests.loopback import stream_words

    srv = server()
    srv.route("POST", "/chat/completions")(stream_words(["from ", "backup"]))
    return srv


@pytest.fixture
def write_config(isolated: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = Path(os.environ["EXOBRIDGE_CONFIG"])
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def exobridge_command() -> list[str]:
    """The installed console script (next to this interpreter), as a user runs it."""
    script = Path(sys.executable).parent / "exobridge"
    if script.exists():
        return [str(script)]
    found = shutil.which("exobridge")
    return [found] if found else [sys.executable, "-m", "exobridge"]


@pytest.fixture
def cli() -> Callable[..., object]:
    """`cli("chat", "Hi", stdin=..., env=..., io=...)` runs exobridge in this process with a test IO.

    Returns `runner.Result(exit_code, stdout, stderr)`; `.json()` parses stdout. Use `run_cli` (a real
    process) only for what only a process shows: exit codes end to end, TTY, pipes, signals, start-up.
    """
    from exobridge.cli.runner import invoke

    def run(*args: str, **kwargs: object) -> object:
        return invoke(list(args), **kwargs)  # type: ignore[arg-type]

    return run


def run_exobridge(
    *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """The installed `exobridge` in a real process (stdin: `input` through a pipe, else /dev/null)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [*exobridge_command(), *args],
        input=data if data is not None else None,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", errors="replace"),
        proc.stderr.decode("utf-8", errors="replace"),
    )


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """A real process (`run_exobridge`): only for what only a process shows; everything else uses `cli`."""
    return run_exobridge


def local_config(
    exo: str | None = None, openrouter: str | None = None, huggingface: str | None = None, extra: str = ""
) -> str:
    """A config whose every enabled provider lives on loopback; the others are turned off."""
    lines = ['default_model = "llama-3.2-3b"', ""]
    for name, url in (("exo", exo), ("openrouter", openrouter), ("huggingface", huggingface)):
        lines.append(f"[providers.{name}]")
        if url is None:
            lines.append("enabled = false")
        else:
            lines.append(f'url = "{url}"')
            if name == "exo":
                lines.append("connect_timeout = 2")
        lines.append("")
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)
