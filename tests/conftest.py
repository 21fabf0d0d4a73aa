"""Shared fixtures. Every test runs with a private config, keys file and cache, no real keys in the
environment, no proxies, and a guard that refuses any connection outside 127.0.0.1.

A test that starts a real `exobridge` process (the installed command, `python -m exobridge`, the CLI's
`main` in a fresh interpreter, or a shell whose `exobridge` is the installed one) must be marked
`@pytest.mark.process`, and exists only for what only a process shows (exit codes end to end, a TTY,
pipes, signals, start-up, separate processes at once). Anything else runs in-process through the `cli`
fixture. The process guard below fails an unmarked test that starts one, and tests/test_project.py caps how
many marked tests there are. A shared process started once by a module- or session-scoped fixture
(tests/test_serve.py's stack) is not a test's.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
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


# --- the process guard -------------------------------------------------------------------------------------

PROCESS_MARK = "process"
SHELLS = ("bash", "sh", "dash", "zsh", "fish")
STAND_IN_MARK = "exobridge-test-stand-in"  # in a stand-in `exobridge` script (tests/test_completions.py)
_EXOBRIDGE_WORD = re.compile(r"(?<![\w/.-])exobridge(?![\w.-])")  # the command, not a path or a module
_process_allowed: bool | None = None  # None: not inside a test (bench, helpers); else the test's marker
_shared_fixture_setup = 0  # > 0 while a module- or session-scoped fixture is being set up
_real_popen_init = subprocess.Popen.__init__
_pytest_pid = os.getpid()


def installed_command() -> list[str]:
    """The installed console script (next to this interpreter), else `python -m exobridge`. Unguarded."""
    script = Path(sys.executable).parent / "exobridge"
    if script.exists():
        return [str(script)]
    found = shutil.which("exobridge")
    return [found] if found else [sys.executable, "-m", "exobridge"]


def starts_exobridge(argv: object, env: Mapping[str, str] | None = None) -> bool:
    """Whether a process started with `argv` (and `env`) runs the exobridge CLI: directly, through Python, or
    from a shell whose `exobridge` is a real one (a stand-in carrying STAND_IN_MARK first on its PATH is not)."""
    single = isinstance(argv, str | bytes | os.PathLike)
    words = [os.fsdecode(argv)] if single else [os.fsdecode(word) for word in argv]  # type: ignore[union-attr]
    if not words or not words[0].split():
        return False
    head = os.path.basename(words[0].split()[0])
    if head == "exobridge":
        return True
    if head.startswith("python"):
        module = any(a == "-m" and b.split(".")[0] == "exobridge" for a, b in itertools.pairwise(words))
        return module or any("exobridge.cli" in word for word in words[1:])
    if head in SHELLS or single:
        script = " ".join(words if single else words[1:])
        installed = installed_command()
        if " ".join(installed) in script:
            return True
        if not _EXOBRIDGE_WORD.search(script):
            return False
        found = shutil.which("exobridge", path=(env if env is not None else os.environ).get("PATH"))
        if found is None:
            return False
        try:
            with open(found, "rb") as script_file:
                return STAND_IN_MARK.encode() not in script_file.read(512)
        except OSError:
            return True
    return False


def _check_process_allowed(what: str) -> None:
    if _process_allowed is False and not _shared_fixture_setup:
        if os.getpid() != _pytest_pid:  # a forked child (pty.fork): raising would go on running pytest in it
            os.write(2, f"not marked @pytest.mark.{PROCESS_MARK}: {what}\n".encode())
            os._exit(70)
        pytest.fail(
            f"this test starts a real exobridge process ({what}) but is not marked @pytest.mark.{PROCESS_MARK}: "
            "run it in-process with the `cli` fixture unless only a process shows what it tests",
            pytrace=False,
        )


def _guarded_popen_init(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
    if _process_allowed is False and starts_exobridge(args, kwargs.get("env")):  # type: ignore[arg-type]
        _check_process_allowed(" ".join(map(str, args)) if isinstance(args, list | tuple) else str(args))
    _real_popen_init(self, args, *rest, **kwargs)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{PROCESS_MARK}: starts a real exobridge process; only for what only a process shows "
        "(exit codes end to end, TTY, pipes, signals, start-up, separate processes at once)",
    )
    global _pytest_pid
    _pytest_pid = os.getpid()
    subprocess.Popen.__init__ = _guarded_popen_init  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    subprocess.Popen.__init__ = _real_popen_init  # type: ignore[method-assign]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _process_allowed
    _process_allowed = item.get_closest_marker(PROCESS_MARK) is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> Iterator[None]:
    global _shared_fixture_setup
    shared = fixturedef.scope != "function"
    _shared_fixture_setup += shared
    try:
        yield
    finally:
        _shared_fixture_setup -= shared


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish() -> None:
    global _process_allowed
    _process_allowed = None


def exobridge_command() -> list[str]:
    """The installed console script (next to this interpreter), as a user runs it.

    Inside a test, only one marked `@pytest.mark.process` may ask for it (see the module docstring).
    """
    _check_process_allowed("exobridge_command()")
    return installed_command()


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
