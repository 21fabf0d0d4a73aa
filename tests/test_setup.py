"""`exobridge setup`: the interactive first-run guide (issue 13, part 2).

Most runs are in-process with a test IO that says it is a terminal. Two are real processes on a
pseudo-terminal (python's `pty`), answering each prompt as it appears: the whole guide with keys typed
while echo is off, and a real Ctrl-C. Every server is a loopback one.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import exobridge_command, local_config
from tests.loopback import Exchange, LoopbackServer, closed_port, exo_models, stream_words

GOOD_OR_KEY = "sk-or-v1-good0000000000000000abcd"
BAD_OR_KEY = "sk-or-v1-wrong000000000000000wxyz"
GOOD_HF_TOKEN = "hf_goodtoken000000000000000000wxyz"
WAIT = 30.0  # seconds: a safety bound on each expected prompt, never a synchronisation


class Terminal:
    """The installed `exobridge` on a pseudo-terminal: read what it shows, type answers, as a user would."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
        command = [*exobridge_command(), *args]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal, so Ctrl-C is a real SIGINT
            try:
                os.execve(command[0], command, full_env)
            finally:
                os._exit(127)
        self.seen = ""
        self._read_to = 0
        self.exit_code: int | None = None

    def _more(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.seen += data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        return True

    def expect(self, text: str) -> str:
        """Wait until `text` appears after what was already matched; returns the output up to it."""
        deadline = time.monotonic() + WAIT
        while text not in self.seen[self._read_to :]:
            if not self._more(deadline):
                raise AssertionError(f"never saw {text!r}; the terminal showed:\n{self.seen}")
        end = self.seen.index(text, self._read_to) + len(text)
        shown, self._read_to = self.seen[self._read_to : end], end
        return shown

    def answer(self, prompt: str, reply: str) -> str:
        shown = self.expect(prompt)
        os.write(self.fd, reply.encode() + b"\r")
        return shown

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def wait(self) -> int:
        deadline = time.monotonic() + WAIT
        while self._more(deadline):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.exit_code = os.waitstatus_to_exitcode(status)
        return self.exit_code


def exo_legacy(srv: LoopbackServer) -> LoopbackServer:
    srv.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
    srv.route("GET", "/topology")(lambda ex: ex.reply(200, {"nodes": {"n1": {}}}))
    srv.route("GET", "/v1/models")(exo_models("llama-3.2-3b", "qwen-2.5-7b"))

    @srv.route("POST", "/v1/chat/completions")
    def answer(ex: Exchange) -> None:  # answers as the model asked for
        stream_words(["hello ", "from ", "exo"], model=ex.request.json()["model"])(ex)

    return srv


def key_checker(srv: LoopbackServer, path: str, good: str, body: dict) -> LoopbackServer:
    @srv.route("GET", path)
    def check(ex: Exchange) -> None:
        if ex.request.headers.get("authorization") == f"Bearer {good}":
            ex.reply(200, body)
        else:
            ex.reply(401, {"error": {"message": "invalid key"}})

    return srv


def keys_file() -> Path:
    return Path(os.environ["EXOBRIDGE_KEYS_FILE"])


def config_file() -> Path:
    return Path(os.environ["EXOBRIDGE_CONFIG"])


# --- on a terminal ---------------------------------------------------------------------------------------------


@pytest.mark.process  # the whole guide on a real terminal: keys typed with echo off
def test_every_prompt_a_wrong_key_exo_on_the_old_port_then_a_working_test(write_config, server) -> None:
    """Exo answers only on the second usual port (the old one); a wrong key is refused and never stored;
    an HF token and a llama.cpp endpoint are added; the default model is picked; the test request answers."""
    from exobridge.core import config as config_mod

    exo = exo_legacy(server())
    openrouter = key_checker(server(), "/key", GOOD_OR_KEY, {"data": {"label": "laptop", "limit": None}})
    hf = key_checker(server(), "/models", GOOD_HF_TOKEN, {"object": "list", "data": [{"id": "x/y"}]})
    llama_cpp = server()
    llama_cpp.route("GET", "/v1/models")(exo_models("Qwen2.5-7B-Instruct-Q4_K_M.gguf"))
    configured = f"http://localhost:{closed_port()}"
    path = write_config(local_config(exo=configured, openrouter=openrouter.url, huggingface=hf.url))
    ports = f"{closed_port()},{exo.port}"

    term = Terminal("setup", env={"EXOBRIDGE_SETUP_EXO_PORTS": ports})
    found = term.answer(f"Use http://localhost:{exo.port} for exo?", "")
    assert f"http://localhost:{exo.port}: legacy API, 1 node" in found
    assert f"{configured}: connection refused" in found

    term.answer("OpenRouter key for openrouter (input hidden; Enter to skip): ", BAD_OR_KEY)
    assert "rejected (HTTP 401" in term.answer("Try another key?", "y")
    term.answer("OpenRouter key for openrouter (input hidden; Enter to skip): ", GOOD_OR_KEY)
    assert "accepted (laptop)" in term.expect("OpenRouter: key accepted (laptop)")
    term.answer("Hugging Face key for huggingface (input hidden; Enter to skip): ", GOOD_HF_TOKEN)
    term.expect("Hugging Face: key accepted")

    term.answer("Add an OpenAI-compatible endpoint", "y")
    term.answer("Its base URL", f"{llama_cpp.url}/v1")
    term.answer("A name for it [local]: ", "")
    shown = term.expect("Add another endpoint?")
    assert "answered (1 model)" in shown
    assert "will set providers.local.model = 'Qwen2.5-7B-Instruct-Q4_K_M.gguf'" in shown
    term.answer("[y/N]", "n")

    choices = term.answer("Default model [", "2")
    assert "1. llama-3.2-3b  (exo, openrouter, huggingface)  [current]" in choices
    assert "2. qwen-2.5-7b  (exo, local, openrouter, huggingface)" in choices
    summary = term.answer("Write these changes? [Y/n] ", "")
    assert "key for openrouter: sk-or-…abcd" in summary and "key for huggingface: hf_…wxyz" in summary
    written = term.expect("Setup works.")
    assert f'set providers.exo.url = "http://localhost:{exo.port}"' in written
    assert 'set default_model = "qwen-2.5-7b"' in written
    assert 'set models."qwen-2.5-7b".local = "Qwen2.5-7B-Instruct-Q4_K_M.gguf"' in written
    assert "stored sk-or-…abcd for openrouter" in written
    assert 'Testing: exobridge chat "Say hi"' in written and "hello from exo" in written
    assert term.wait() == 0

    for secret in (GOOD_OR_KEY, BAD_OR_KEY, GOOD_HF_TOKEN):  # hidden while typed, never shown
        assert secret not in term.seen
    stored = keys_file().read_text()
    assert GOOD_OR_KEY in stored and GOOD_HF_TOKEN in stored and BAD_OR_KEY not in stored
    assert keys_file().stat().st_mode & 0o777 == 0o600
    config = config_mod.load(path, env={})
    assert config.providers["exo"].url == f"http://localhost:{exo.port}"
    assert config.default_model == "qwen-2.5-7b"
    assert config.providers["local"].model == "Qwen2.5-7B-Instruct-Q4_K_M.gguf"
    # Each key went only to its own provider.
    assert all(r.headers.get("authorization") in (None, f"Bearer {GOOD_HF_TOKEN}") for r in hf.requests)
    assert all(GOOD_HF_TOKEN not in str(r.headers) for r in openrouter.requests + exo.requests + llama_cpp.requests)
    assert all(GOOD_OR_KEY not in str(r.headers) for r in hf.requests + exo.requests + llama_cpp.requests)


@pytest.mark.process  # a real Ctrl-C typed on a terminal: SIGINT from the line discipline
def test_ctrl_c_half_way_writes_nothing(write_config, server) -> None:
    exo = exo_legacy(server())
    openrouter = key_checker(server(), "/key", GOOD_OR_KEY, {"data": {"label": "laptop"}})
    text = local_config(exo=f"http://127.0.0.1:{closed_port()}", openrouter=openrouter.url)
    path = write_config(text)
    term = Terminal("setup", "--no-test", env={"EXOBRIDGE_SETUP_EXO_PORTS": str(exo.port)})
    term.answer(f"Use http://localhost:{exo.port} for exo?", "y")
    term.answer("OpenRouter key for openrouter (input hidden; Enter to skip): ", GOOD_OR_KEY)
    term.expect("OpenRouter: key accepted")
    term.expect("Hugging Face key for huggingface (input hidden; Enter to skip): ")
    term.ctrl_c()  # half way: the Exo url and the OpenRouter key were answered, nothing written yet
    assert term.wait() == 128 + signal.SIGINT
    assert "interrupted: nothing was written" in term.seen
    assert path.read_text() == text and not keys_file().exists()
    assert GOOD_OR_KEY not in term.seen


# --- without a terminal (in-process) ---------------------------------------------------------------------------


def test_nothing_found_nothing_written(write_config, cli) -> None:
    from exobridge.render.io import IOStreams

    dead = f"http://127.0.0.1:{closed_port()}"
    text = local_config(exo=dead)
    path = write_config(text)
    io = IOStreams.test(stdin="\n\n", tty=True, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"})
    env = {"EXOBRIDGE_SETUP_EXO_PORTS": f"{closed_port()},{closed_port()}"}
    result = cli("setup", "--skip-keys", io=io, env=env)
    shown = result.stderr
    asked_url = shown.index("Exo URL (Enter to skip): ")  # answered Enter
    assert "No Exo API answered" in shown[:asked_url] and f"{dead}: connection refused" in shown[:asked_url]
    asked_endpoint = shown.index("Add an OpenAI-compatible endpoint", asked_url)  # answered Enter
    done = shown.index("Nothing to change: your setup stays as it is.", asked_endpoint)
    assert "No provider can serve a model right now, so default_model stays llama-3.2-3b" in shown[asked_endpoint:done]
    assert result.exit_code == 0
    assert path.read_text() == text and not keys_file().exists()


def test_not_on_a_terminal_refuses_with_the_commands_to_use(write_config, cli) -> None:
    path = write_config(local_config())
    before = path.read_text()
    result = cli("setup", stdin="y\n")
    assert result.exit_code == 2
    assert "needs a terminal" in result.stderr and "exobridge config set" in result.stderr
    assert "exobridge keys set" in result.stderr and result.stderr.count("\n") == 1
    assert path.read_text() == before


def test_a_given_exo_url_with_the_v1_api_and_end_of_input_writes_nothing(write_config, cli, server) -> None:
    from exobridge.render.io import IOStreams

    exo = server()
    exo.route("GET", "/node_id")(lambda ex: ex.reply(200, '"node-1"'))
    instances = {
        "i1": {"MlxRingInstance": {"shardAssignments": {"modelId": "mlx-community/Llama-3.2-3B-Instruct-4bit"}}}
    }
    exo.route("GET", "/state")(lambda ex: ex.reply(200, {"instances": instances, "topology": {"nodes": {"a": {}}}}))
    text = local_config(exo=f"http://127.0.0.1:{closed_port()}")
    path = write_config(text)
    io = IOStreams.test(stdin="y\n", tty=True)  # answers end after the first question
    result = cli("setup", "--skip-keys", "--exo-url", exo.url, io=io, env={"EXOBRIDGE_SETUP_EXO_PORTS": "1"})
    assert f"{exo.url}: v1 API, 1 node, 1 model placed" in result.stderr
    assert result.exit_code == 130 and "nothing was written" in result.stderr
    assert path.read_text() == text


def test_bad_exo_url_option_is_a_usage_error(write_config, cli) -> None:
    from exobridge.render.io import IOStreams

    write_config(local_config())
    result = cli("setup", "--exo-url", "localhost:52415", io=IOStreams.test(tty=True))
    assert result.exit_code == 2 and "--exo-url: not an http(s) URL" in result.stderr


def test_declining_the_last_question_writes_nothing(write_config, cli, server) -> None:
    from exobridge.render.io import IOStreams

    exo = exo_legacy(server())
    text = local_config(exo=f"http://127.0.0.1:{closed_port()}")
    path = write_config(text)
    # Use the Exo found: yes; no endpoint; default model: Enter; write: no.
    io = IOStreams.test(stdin="y\n\n\nn\n", tty=True)
    result = cli("setup", "--skip-keys", io=io, env={"EXOBRIDGE_SETUP_EXO_PORTS": str(exo.port)})
    assert result.exit_code == 0, result.stderr
    assert "Nothing was written." in result.stderr
    assert path.read_text() == text


def test_a_second_run_over_a_working_setup_changes_nothing(write_config, cli, server) -> None:
    from exobridge.render.io import IOStreams

    exo = exo_legacy(server())
    openrouter = key_checker(server(), "/key", GOOD_OR_KEY, {"data": {"label": "laptop"}})
    text = local_config(exo=f"http://localhost:{exo.port}", openrouter=openrouter.url)
    path = write_config(text)
    # Different OpenRouter key: no (Enter). HF token: Enter. Endpoint: Enter. Default model: Enter (keep).
    io = IOStreams.test(stdin="\n\n\n\n", tty=True)
    env = {"EXOBRIDGE_SETUP_EXO_PORTS": str(exo.port), "OPENROUTER_API_KEY": GOOD_OR_KEY}
    result = cli("setup", "--no-test", io=io, env=env)
    assert result.exit_code == 0, result.stderr
    assert f"Exo: exo already uses http://localhost:{exo.port}." in result.stderr
    assert "key from env OPENROUTER_API_KEY (sk-or-…abcd)" in result.stderr
    assert "[current]" in result.stderr and "Nothing to change" in result.stderr
    assert path.read_text() == text and not keys_file().exists()
    assert GOOD_OR_KEY not in result.stderr + result.stdout
    assert openrouter.requests == []  # a key already in use is not re-sent anywhere
