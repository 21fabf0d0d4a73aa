"""The interactive session, driven through a pseudo-terminal: type, stream, slash commands, Ctrl-C mid-reply
(the partial reply kept and recorded as interrupted), Ctrl-D ends it with 0."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import threading
import time
from pathlib import Path

import pytest

from exobridge.core import history
from tests.conftest import exobridge_command, local_config
from tests.loopback import Exchange, chunk, exo_models, stream_words

pytest.importorskip("prompt_toolkit")


class Terminal:
    """`exobridge chat` on a pseudo-terminal of its own (pty.fork: it is the controlling terminal, so Ctrl-C
    typed on it sends SIGINT)."""

    def __init__(self, env: dict[str, str], *args: str, model: str | None = "anything") -> None:
        """`exobridge chat -m MODEL ARGS`; `model=None`: `exobridge chat ARGS` (alone, it is not parsed at all)."""
        command = [*exobridge_command(), "chat", *(["-m", model] if model else []), *args]
        pid, master = pty.fork()
        if pid == 0:  # the child
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job inherits it ignored
                os.execvpe(command[0], command, env)
            finally:
                os._exit(127)
        self.pid, self.master = pid, master
        self.seen = ""
        self.code: int | None = None

    def expect(self, pattern: str, timeout: float = 20) -> str:
        """Read until `pattern` (a regex) appears after what earlier calls consumed."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.seen)
            if found:
                text, self.seen = self.seen[: found.end()], self.seen[found.end() :]
                return text
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in the terminal within {timeout} s; it shows:\n{self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"the terminal closed before {pattern!r}:\n{self.seen!r}")
                self.seen += re.sub(
                    r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", data.decode("utf-8", "replace")
                )

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self, timeout: float = 20) -> int | None:
        """The exit code once the process ended (None if it is still running after `timeout`: killed)."""
        deadline = time.monotonic() + timeout
        while self.code is None and time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.code = os.waitstatus_to_exitcode(status)
                break
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:  # drain, or the child may block writing
                with contextlib.suppress(OSError):
                    os.read(self.master, 65536)
        if self.code is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.master)
        return self.code


@pytest.mark.process  # a pseudo-terminal: Ctrl-C, the line editor
def test_a_session_streams_turns_remembers_them_and_survives_ctrl_c(server, write_config, tmp_path):
    release = threading.Event()
    srv = server()
    words = stream_words(["Hello", " there"], model="m")

    def answer(ex: Exchange) -> None:
        if ex.request.json()["messages"][-1]["content"] != "slow":
            words(ex)
            return
        ex.start_stream()
        ex.event(chunk("partial", model="m"))
        release.wait(20)
        ex.end()

    srv.route("POST", "/v1/chat/completions")(answer)
    local = f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\nmodel = "m"\n'
    write_config(local_config(extra=local))
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100", "LINES": "30"}
    term = Terminal(env, model=None)  # `exobridge chat` and nothing else, as a user starts a session
    try:
        term.expect(r"/help for commands")
        term.expect(r"(?m)^>")
        term.type("hello\r")
        term.expect(r"Hello there")
        term.expect(r"local")  # the summary line names who answered
        term.expect(r"(?m)^>")
        term.type("/help\r")
        term.expect(r"/retry: send the last prompt again")
        term.type("/model other-model\r")
        term.expect(r"model: other-model")
        term.type("/pro")
        term.expect(r"/provider")  # offered while typing
        term.type("\t")  # TAB takes it
        term.expect(r"/provider")
        term.type(" any\r")
        term.expect(r"providers: any")
        term.type("slow\r")
        term.expect(r"partial")
        term.type("\x03")  # Ctrl-C mid-reply
        term.expect(r"interrupted")
        term.expect(r"(?m)^>")
        release.set()
        term.type("again\r")
        term.expect(r"Hello there")
        term.expect(r"(?m)^>")
        term.type("\x04")  # Ctrl-D
        assert term.close() == 0
    finally:
        release.set()
        if term.code is None:
            term.close(timeout=0)
    assert srv.requests[-1].json()["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "slow"},
        {"role": "assistant", "content": "partial"},
        {"role": "user", "content": "again"},
    ]
    assert srv.requests[-1].json()["model"] == "other-model"
    with history.Store(create=False) as store:
        rows = list(store.iter_all())
    assert [(r.prompt, r.outcome, r.reply) for r in rows] == [
        ("hello", "complete", "Hello there"),
        ("slow", "interrupted", "partial"),
        ("again", "complete", "Hello there"),
    ]
    assert len({r.conversation for r in rows}) == 1
    assert rows[1].parent == rows[0].id and rows[2].parent == rows[1].id


# --- markdown = true|false in the config; --markdown / --no-markdown override it either way ---------------------


def test_config_set_markdown_is_checked_by_the_schema_and_read_back(cli, write_config):
    from exobridge.core import config

    write_config(local_config())
    assert config.load().markdown is False
    proc = cli("config", "set", "markdown", "true")
    assert proc.exit_code == 0, proc.stderr
    assert "markdown = true" in Path(os.environ["EXOBRIDGE_CONFIG"]).read_text()
    assert config.load().markdown is True
    assert cli("config", "get", "markdown", "--json").json() == {"key": "markdown", "value": True, "source": "file"}
    assert cli("config", "show", "--json").json()["values"]["markdown"] == {"value": True, "source": "file"}
    from exobridge.core.completion_values import config_keys

    assert [c.value for c in config_keys("mark")] == ["markdown"]
    bad = cli("config", "set", "markdown", "maybe")
    assert bad.exit_code == 2 and "markdown: expected true or false" in bad.stderr
    write_config('markdown = "yes"\n' + local_config())
    broken = cli("config", "show")
    assert broken.exit_code == 4 and "markdown" in broken.stderr


@pytest.mark.parametrize(
    ("flag", "in_config", "wanted"),
    [(None, False, False), (None, True, True), (True, False, True), (False, True, False)],
)
def test_the_flag_overrides_the_config_either_way(flag, in_config, wanted):
    from exobridge.cli.chat_run import ChatOptions
    from exobridge.cli.chat_session import markdown_wanted
    from exobridge.core import config

    loaded = config.build({"markdown": in_config}, Path("config.toml"))
    assert markdown_wanted(ChatOptions(markdown=flag), loaded) is wanted


@pytest.mark.process  # a pseudo-terminal
def test_markdown_from_the_config_or_the_toggle_and_no_markdown_on_the_command_line(server, write_config):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(["# Title\n\n", "some **bold** text"], model="m"))
    write_config(
        "markdown = true\n"
        + local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\n')
    )
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100", "LINES": "30"}
    term = Terminal(env)
    try:
        term.expect(r"(?m)^>")
        term.type("md\r")
        term.expect(r"some \*\*bold\*\* text")
        term.expect(r"some bold text")  # rendered in its place: the config asked for it
        term.expect(r"(?m)^>")
        term.type("/markdown\r")
        term.expect(r"markdown: off")  # the toggle
        term.type("/markdown\r")
        term.expect(r"markdown: on")
        term.type("/exit\r")
        assert term.close() == 0
    finally:
        if term.code is None:
            term.close(timeout=0)
    term = Terminal(env, "--no-markdown")
    try:
        term.expect(r"(?m)^>")
        term.type("/markdown\r")
        term.expect(r"markdown: on")  # it was off: the flag won over the config
        term.type("/exit\r")
        assert term.close() == 0
    finally:
        if term.code is None:
            term.close(timeout=0)


@pytest.mark.process  # a pseudo-terminal
def test_a_turn_answered_by_the_fallback_says_so_and_why(server, write_config):
    exo, backup = server(), server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    answered: list[int] = []

    @exo.route("POST", "/v1/chat/completions")
    def exo_answers_once(ex: Exchange) -> None:
        if answered:
            ex.reply(503, {"error": {"message": "node overloaded"}})
            return
        answered.append(1)
        stream_words(["from ", "exo"], model="llama-3.2-3b")(ex)

    backup.route("POST", "/chat/completions")(stream_words(["from ", "backup"]))
    write_config(
        local_config(
            exo=exo.url,
            extra=f'[providers.backup]\nkind = "openai"\nurl = "{backup.url}"\nmodel = "m"\npriority = 50\n',
        )
    )
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "200", "LINES": "30"}
    term = Terminal(env, "-m", "llama-3.2-3b")
    try:
        term.expect(r"(?m)^>")
        term.type("first\r")
        term.expect(r"from exo")
        before = term.expect(r"(?m)^>")
        assert "answered by" not in before
        term.type("second\r")
        term.expect(r"from backup")
        shown = term.expect(r"(?m)^>")
        assert re.search(r"answered by backup this turn \(exo failed: [^)]*node overloaded", shown), shown
        term.type("third\r")  # exo still refuses: backup again, nothing more to say
        term.expect(r"from backup")
        shown = term.expect(r"(?m)^>")
        assert "answered by" not in shown
        term.type("\x04")
        assert term.close() == 0
    finally:
        if term.code is None:
            term.close(timeout=0)
    assert len(exo.requests) >= 3 and len(backup.requests) == 2
    with history.Store(create=False) as store:
        rows = list(store.iter_all())
    assert [(r.prompt, r.provider) for r in rows] == [("first", "exo"), ("second", "backup"), ("third", "backup")]
