"""`exobridge chat` against loopback servers: in-process with a test IO (closed and full streams included), and
as a process (`@pytest.mark.process`) only for what only a process shows: signals, pipes, a real terminal."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import threading

import pytest

from tests.conftest import exobridge_command, local_config
from tests.loopback import Exchange, chunk, closed_port, exo_models, stream_words

ANSI = "\x1b["


def echo_server(server, words=("Hello", " there")):
    """A local OpenAI-compatible server that also records what it was sent."""
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(list(words), model="served-model"))
    return srv


def only_local(write_config, url: str, extra: str = "") -> None:
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{url}/v1"\npriority = 0\n' + extra))


def test_streams_text_to_stdout_and_nothing_else(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "anything", "Hi")
    assert proc.exit_code == 0, proc.stderr
    assert proc.stdout == "Hello there\n"
    assert ANSI not in proc.stdout + proc.stderr
    assert srv.requests[0].json()["messages"] == [{"role": "user", "content": "Hi"}]


def test_stdin_is_joined_before_the_prompt_and_one_newline_stripped(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", "summarise", stdin="line one\nline two\n")
    assert proc.exit_code == 0, proc.stderr
    assert srv.requests[0].json()["messages"][-1]["content"] == "line one\nline two\n\nsummarise"


def test_dash_or_no_prompt_means_stdin_alone(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    assert cli("chat", "-m", "x", "-", stdin="from stdin\n\n").exit_code == 0
    assert cli("chat", "-m", "x", stdin="only stdin\n").exit_code == 0
    sent = [r.json()["messages"][-1]["content"] for r in srv.requests]
    assert sent == ["from stdin\n", "only stdin"]


def test_system_prompt_and_sampling_options_are_sent(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", "-s", "Be brief", "--temperature", "0.2", "--max-tokens", "7", "--top-p", "0.9", "Hi")
    assert proc.exit_code == 0, proc.stderr
    body = srv.requests[0].json()
    assert body["messages"][0] == {"role": "system", "content": "Be brief"}
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.2, 7, 0.9)


def test_non_utf8_stdin_is_replaced_with_one_warning(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", stdin=b"caf\xe9 \xff ok\n")
    assert proc.exit_code == 0, proc.stderr
    assert proc.stderr.count("not valid UTF-8") == 1
    assert srv.requests[0].json()["messages"][-1]["content"] == "caf\ufffd \ufffd ok"


def test_empty_input_is_a_usage_error(write_config, cli):
    write_config(local_config())
    proc = cli("chat", stdin="\n")
    assert proc.exit_code == 2
    assert proc.stderr.strip() == "exobridge: error: empty prompt"


def test_unknown_provider_is_a_usage_error(write_config, cli):
    write_config(local_config())
    proc = cli("chat", "-p", "nope", "Hi")
    assert proc.exit_code == 2
    assert "unknown provider 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_config_is_one_line_and_exit_4(write_config, cli):
    path = write_config('[providers.exo]\npriority = "high"\n')
    proc = cli("chat", "Hi")
    assert proc.exit_code == 4
    assert proc.stderr.count("\n") == 1
    assert str(path) in proc.stderr and "providers.exo.priority" in proc.stderr


def test_unparsable_config_names_the_line(write_config, cli):
    write_config('default_model = "x"\n[providers.exo\n')
    proc = cli("chat", "Hi")
    assert proc.exit_code == 4
    assert "line 2" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_nothing_answers_exit_3_with_one_line_per_attempt(write_config, cli):
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    proc = cli("chat", "-m", "llama-3.2-3b", "Hi")
    assert proc.exit_code == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "exobridge: error: no provider could answer"
    assert "exo: failed, connection refused" in lines[1]
    assert "start Exo" in lines[1]


def test_missing_key_is_named_with_its_variable(cli, write_config):
    write_config(local_config(openrouter=f"http://127.0.0.1:{closed_port()}/v1"))
    proc = cli("chat", "-p", "openrouter", "Hi")
    assert proc.exit_code == 3
    assert "no API key (set OPENROUTER_API_KEY)" in proc.stderr


def test_json_on_success_is_one_object_with_the_schema(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "--json", "-m", "asked", "Hi")
    assert proc.exit_code == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {
        "text",
        "provider",
        "model",
        "requested_model",
        "url",
        "usage",
        "cost",
        "latency_ms",
        "first_token_ms",
        "attempts",
        "error",
    }
    assert data["text"] == "Hello there"
    assert (data["provider"], data["model"], data["requested_model"]) == ("local", "served-model", "asked")
    assert data["url"] == f"{srv.url}/v1"
    assert data["error"] is None
    assert data["attempts"][0]["outcome"] == "ok"
    assert set(data["attempts"][0]) == {"provider", "url", "model", "outcome", "reason", "status", "ms"}
    assert isinstance(data["latency_ms"], int) and data["first_token_ms"] <= data["latency_ms"]


def test_json_on_failure_is_still_one_object(write_config, cli):
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    proc = cli("chat", "--json", "-m", "llama-3.2-3b", "Hi")
    assert proc.exit_code == 3
    data = json.loads(proc.stdout)
    assert data["error"] == "no provider could answer"
    assert data["text"] == ""
    assert data["attempts"][0]["outcome"] == "failed"


def test_failover_notice_and_summary_with_verbose_when_piped(server, write_config, cli):
    srv = echo_server(server)
    write_config(
        local_config(
            exo=f"http://127.0.0.1:{closed_port()}",
            extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 5\n'
            '[models."llama-3.2-3b"]\nlocal = "llama-local"\n',
        )
    )
    proc = cli("chat", "-v", "Hi")
    assert proc.exit_code == 0, proc.stderr
    assert proc.stdout == "Hello there\n"
    assert "exo" in proc.stderr and "connection refused" in proc.stderr and "failing over" in proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("local (") and "served-model" in summary
    assert ANSI not in proc.stderr
    assert srv.requests[0].json()["model"] == "llama-local"


def test_quiet_piped_run_prints_no_notices(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", "Hi")
    assert proc.stderr == ""


def breaks_after_two_tokens(server):
    """A server whose stream sends "Half an " and "answer", then resets the connection."""
    srv = server()

    @srv.route("POST", "/v1/chat/completions")
    def half(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Half an "))
        ex.event(chunk("answer"))
        ex.reset()

    return srv


def test_partial_output_then_break_exits_5_and_keeps_text(server, write_config, cli):
    srv = breaks_after_two_tokens(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", "Hi")
    assert proc.exit_code == 5
    assert proc.stdout.startswith("Half an answer")
    assert "broke after partial output" in proc.stderr


@pytest.mark.process  # a real pipe closed by `head -1`: SIGPIPE/EPIPE and the exit code end to end
def test_broken_pipe_exits_quietly(server, write_config):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words([f"line {i}\n" for i in range(20000)]))
    only_local(write_config, srv.url)
    cmd = " ".join(exobridge_command()) + " chat -m x Hi | head -1"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    assert proc.stdout == "line 0\n"
    assert proc.stderr == ""
    assert proc.returncode == 0


def stalled_after_one_token(server, write_config, *flags: str) -> tuple[subprocess.Popen, threading.Event]:
    """`exobridge chat` against a server that sends one token ("Partial"), then nothing until the test ends."""
    srv = server()
    first_token_sent = threading.Event()

    @srv.route("POST", "/v1/chat/completions")
    def slow(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Partial"))
        first_token_sent.set()
        ex.stall()

    only_local(write_config, srv.url)
    proc = subprocess.Popen(
        [*exobridge_command(), "chat", *flags, "-m", "x", "Hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    return proc, first_token_sent


@pytest.mark.process  # a real SIGINT and the process's exit code
def test_ctrl_c_keeps_partial_text_and_exits_130(server, write_config):
    proc, _ = stalled_after_one_token(server, write_config)
    assert proc.stdout is not None
    assert proc.stdout.read(len("Partial")) == b"Partial"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert out == b"\n"
    assert b"Traceback" not in err
    assert b"interrupted" in err


def test_keys_go_only_to_their_own_provider(server, write_config, cli):
    openrouter, huggingface = server(), server()

    @openrouter.route("POST", "/api/v1/chat/completions")
    def refuse(ex: Exchange) -> None:
        ex.reply(401, {"error": {"code": 401, "message": "User not found."}})

    huggingface.route("POST", "/v1/chat/completions")(stream_words(["hf"], model="meta-llama/Llama-3.2-3B-Instruct"))
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.1-8b"))
    write_config(local_config(exo=exo.url, openrouter=f"{openrouter.url}/api/v1", huggingface=f"{huggingface.url}/v1"))
    proc = cli(
        "chat",
        "--json",
        "-m",
        "llama-3.2-3b",
        "Hi",
        env={"OPENROUTER_API_KEY": "sk-or-v1-CANARYOPENROUTER", "HF_TOKEN": "hf_CANARYHUGGINGFACE"},
    )
    assert proc.exit_code == 0, proc.stderr
    assert json.loads(proc.stdout)["provider"] == "huggingface"
    seen = {
        name: [r.headers.get("authorization") for r in srv.requests]
        for name, srv in (("exo", exo), ("openrouter", openrouter), ("huggingface", huggingface))
    }
    assert seen == {
        "exo": [None],
        "openrouter": ["Bearer sk-or-v1-CANARYOPENROUTER"],
        "huggingface": ["Bearer hf_CANARYHUGGINGFACE"],
    }
    assert "CANARY" not in proc.stdout + proc.stderr
    or_headers = openrouter.requests[0].headers
    assert or_headers["x-title"] == "exobridge" and or_headers["http-referer"].startswith("https://")


def test_hugging_face_token_falls_back_to_the_hub_variable(server, write_config, cli):
    hf = server()
    hf.route("POST", "/v1/chat/completions")(stream_words(["ok"]))
    write_config(local_config(huggingface=f"{hf.url}/v1"))
    proc = cli("chat", "-m", "some/model", "Hi", env={"HUGGING_FACE_HUB_TOKEN": "hf_FALLBACK"})
    assert proc.exit_code == 0, proc.stderr
    assert hf.requests[0].headers["authorization"] == "Bearer hf_FALLBACK"


def test_cli_key_beats_env_and_needs_one_provider(server, write_config, cli):
    hf = server()
    hf.route("POST", "/v1/chat/completions")(stream_words(["ok"]))
    write_config(local_config(huggingface=f"{hf.url}/v1"))
    env = {"HF_TOKEN": "hf_FROMENV"}
    assert cli("chat", "-m", "huggingface:some/model", "--key", "hf_FROMFLAG", "Hi", env=env).exit_code == 0
    assert hf.requests[0].headers["authorization"] == "Bearer hf_FROMFLAG"
    proc = cli("chat", "-m", "some/model", "--key", "hf_X", "Hi", env=env)
    assert proc.exit_code == 2 and "--key needs one provider" in proc.stderr


def test_no_fallback_stops_after_the_first_provider(server, write_config, cli):
    srv = echo_server(server)
    write_config(
        local_config(
            exo=f"http://127.0.0.1:{closed_port()}",
            extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 5\n',
        )
    )
    proc = cli("chat", "--no-fallback", "-m", "plain-name", "Hi")
    assert proc.exit_code == 3
    assert srv.requests == []


def test_provider_filter_restricts_candidates(server, write_config, cli):
    srv = echo_server(server)
    exo = server()
    write_config(
        local_config(exo=exo.url, extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 5\n')
    )
    proc = cli("chat", "-p", "local", "-m", "plain-name", "Hi")
    assert proc.exit_code == 0, proc.stderr
    assert exo.requests == []


def test_no_prompt_on_a_terminal_is_a_usage_error_when_stdout_is_not_one(write_config, cli):
    """stdin a terminal, nothing piped, no prompt, stdout redirected: nothing to chat about (exit 2). With stdout
    a terminal too, chat starts an interactive session instead (tests/test_chat_session.py)."""
    from exobridge.render.io import IOStreams

    write_config(local_config())
    result = cli("chat", io=IOStreams.test(stdin_tty=True, stderr_tty=True))  # stdin/stderr a terminal
    assert result.exit_code == 2
    assert "no prompt" in result.stderr


def test_bare_chat_runs_with_exactly_the_options_typer_would_parse(monkeypatch, write_config, cli):
    """`exobridge chat` alone skips the parse (cli/runner.py): what it hands chat_run must be what Typer makes of
    that command line, so a new option whose default is not ChatOptions' own is caught here."""
    import typer.main

    from exobridge.cli import chat_run as chat_mod
    from exobridge.cli.app import build_app
    from exobridge.render import io as iostreams
    from exobridge.render.io import IOStreams

    seen: list[chat_mod.ChatOptions] = []
    monkeypatch.setattr(chat_mod, "chat_run", lambda opts, io: seen.append(opts) or 0)
    write_config(local_config())
    assert cli("chat").exit_code == 0  # the shortcut
    command = typer.main.get_command(build_app(["chat"]))
    with iostreams.use(IOStreams.test()), command.make_context("exobridge", ["chat"]) as ctx:
        assert command.invoke(ctx) == 0  # Typer's parse of the same line
    assert len(seen) == 2
    assert seen[0] == seen[1] == chat_mod.ChatOptions()


def test_bare_chat_with_piped_stdin_behaves_as_it_did_through_the_parse(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url, extra='model = "served-model"\n')  # what the default model is sent as
    piped = cli("chat", stdin="only stdin\n")
    assert (piped.exit_code, piped.stdout) == (0, "Hello there\n")
    assert srv.requests[-1].json()["messages"] == [{"role": "user", "content": "only stdin"}]
    empty = cli("chat", stdin="")
    assert empty.exit_code == 2 and empty.stderr == "exobridge: error: empty prompt\n"
    bad = cli("chat", stdin=b"caf\xe9")
    assert bad.exit_code == 0 and "stdin is not valid UTF-8" in bad.stderr


def test_bad_option_is_one_line_exit_2(cli):
    proc = cli("chat", "--temperature", "5", "Hi")
    assert proc.exit_code == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("exobridge: error: Invalid value for '--temperature'")


def test_json_keeps_the_partial_text_when_the_stream_breaks(server, write_config, cli):
    srv = breaks_after_two_tokens(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "--json", "-m", "x", "Hi")
    assert proc.exit_code == 5
    data = json.loads(proc.stdout)
    assert data["text"] == "Half an answer"
    assert data["provider"] == "local" and data["first_token_ms"] is not None
    assert data["error"].startswith("local: connection broke mid-stream")


def test_ctrl_c_with_json_prints_one_object_with_the_partial_text(server, write_config, cli):
    """In-process: a real SIGINT reaches the main thread while chat waits on the stalled stream (the exit code
    of a process on Ctrl-C is test_ctrl_c_keeps_partial_text_and_exits_130's)."""
    srv = server()
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    @srv.route("POST", "/v1/chat/completions")
    def slow(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Partial"))
        signal.pthread_kill(main_thread, signal.SIGINT)  # Ctrl-C, with the command blocked on the stream
        ex.stall()

    only_local(write_config, srv.url)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = cli("chat", "--json", "-m", "x", "Hi")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.exit_code == 130
    data = json.loads(result.stdout)
    assert data["error"] == "interrupted"
    assert data["text"] in ("", "Partial")  # whether the token was read before the signal is up to the OS
    assert data["attempts"][-1]["provider"] == "local" and data["attempts"][-1]["reason"] == "interrupted"
    assert "Traceback" not in result.stderr


def test_ctrl_c_while_the_commands_load_exits_130_without_a_traceback(monkeypatch, capsys):
    import sys
    import types

    import pytest

    from exobridge import cli

    class Loading(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "exobridge.cli.app", Loading("exobridge.cli.app"))
    monkeypatch.setattr(sys, "argv", ["exobridge", "chat", "Hi"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "exobridge: interrupted\n"


def test_internal_error_is_one_line_and_exit_1(monkeypatch, capsys, write_config):
    import io
    import sys

    import pytest

    from exobridge.cli import app
    from exobridge.core.routing import Router

    write_config(local_config(extra='[providers.local]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1"\n'))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(Router, "run", broken)
    monkeypatch.setattr(sys, "argv", ["exobridge", "chat", "-m", "x", "Hi"])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(SystemExit) as exit_info:
        app.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("exobridge: internal error: RuntimeError: something unexpected (set EXOBRIDGE_DEBUG=1")


def test_no_enabled_provider_says_so_and_json_still_prints_one_object(write_config, cli):
    write_config(local_config())
    proc = cli("chat", "-m", "x", "Hi")
    assert proc.exit_code == 3
    assert proc.stderr == (
        "exobridge: error: no configured provider matches 'x' (every provider is disabled: exobridge providers list)\n"
    )
    proc = cli("chat", "--json", "-m", "x", "Hi")
    assert proc.exit_code == 3
    data = json.loads(proc.stdout)
    assert data["error"].startswith("no configured provider matches 'x'") and data["attempts"] == []


def test_stdin_with_a_real_replacement_character_and_bad_bytes_still_warns():
    from exobridge.cli.chat_run import decode_stdin

    assert decode_stdin("ok \ufffd\n".encode()) == ("ok \ufffd", False)
    assert decode_stdin("\ufffd ".encode() + b"\xff\r\n") == ("\ufffd \ufffd", True)
    assert decode_stdin(None) == (None, False)


def run_on_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run exobridge with stdin, stdout and stderr on one pseudo-terminal; its exit code and everything shown."""
    import pty

    command = exobridge_command()
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(command[0], [*command, *args], {**os.environ, **(env or {})})
    output = b""
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        output += data
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", errors="replace").replace("\r\n", "\n")


def exo_dead_then_local(server, write_config):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(
        stream_words(["Hello"], model="served-model", usage={"completion_tokens": 4, "total_tokens": 9})
    )
    write_config(
        local_config(
            exo=f"http://127.0.0.1:{closed_port()}",
            extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 5\n',
        )
    )
    return srv


@pytest.mark.process  # a real terminal: TTY detection and colour end to end
def test_terminal_gets_the_notice_and_one_dim_summary(server, write_config):
    srv = exo_dead_then_local(server, write_config)
    code, shown = run_on_terminal("chat", "-m", "plain-name", "Hi")
    assert code == 0, shown
    lines = shown.splitlines()
    assert "exo (http://127.0.0.1:" in lines[0] and "connection refused — failing over" in lines[0]
    assert lines[0].startswith("\x1b[33m")  # yellow
    assert lines[1] == "Hello"
    assert lines[2].startswith("\x1b[2m")  # dim
    summary = lines[2].removeprefix("\x1b[2m").removesuffix("\x1b[0m")
    parts = summary.split(" · ")
    assert parts[0] == f"local ({srv.url}/v1)" and parts[1] == "served-model"
    assert parts[2].endswith(("ms", " s")) and (parts[3].endswith("tok/s") or parts[3] == "4 tokens")
    assert parts[4] == "cost n/a"
    assert len(lines) == 3


def on_terminal(**env: str):
    """A test IO whose stdin, stdout and stderr all say they are a terminal."""
    from exobridge.render.io import IOStreams

    return IOStreams.test(stdin_tty=True, stdout_tty=True, stderr_tty=True, env={**os.environ, **env})


def test_no_color_on_a_terminal_means_no_ansi(server, write_config, cli):
    exo_dead_then_local(server, write_config)
    io = on_terminal(NO_COLOR="1")
    result = cli("chat", "-m", "plain-name", "Hi", io=io)
    assert result.exit_code == 0, result.stderr
    shown = result.stdout + result.stderr
    assert ANSI not in shown
    assert "failing over" in result.stderr and "served-model" in result.stderr.splitlines()[-1]


def test_quiet_on_a_terminal_shows_only_the_text(server, write_config, cli):
    exo_dead_then_local(server, write_config)
    result = cli("chat", "-q", "-m", "plain-name", "Hi", io=on_terminal())
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hello\n", "")


def test_summary_line_names_the_node_or_backend_and_the_cost():
    from exobridge.render.chat import summary_line

    base = {"latency_ms": 2000, "first_token_ms": 1000, "usage": {"completion_tokens": 50}, "requested_model": "r"}
    exo = {**base, "provider": "exo", "url": "http://b:52415", "backend": None, "model": "llama-3.2-3b", "cost": 0.0}
    assert summary_line(exo, free=True) == "exo (http://b:52415) · llama-3.2-3b · 2.0 s · 50.0 tok/s · free"
    hf = {**base, "provider": "huggingface", "url": "https://router.huggingface.co/v1", "backend": "together"}
    assert summary_line({**hf, "model": "m", "cost": None}).startswith("huggingface (via together) · m")
    assert summary_line({**hf, "model": "m", "cost": None}).endswith("· cost n/a")
    cut = summary_line({**hf, "model": "m", "cost": None, "finish_reason": "length"})
    assert cut.endswith("· cost n/a · cut at the token limit (--max-tokens)")
    paid = {**base, "provider": "openrouter", "url": "u", "backend": None, "model": "m", "cost": 0.000123}
    assert summary_line(paid).endswith("· $0.000123")
    assert summary_line({**paid, "cost": 0.25}).endswith("· $0.2500")
    assert summary_line({**paid, "cost": 0}).endswith("· free")


def test_repeated_provider_flags_keep_priority_order_and_leave_the_rest_out(server, write_config, cli):
    first, second, third = server(), server(), server()
    first.route("POST", "/v1/chat/completions")(lambda ex: ex.reply(404, {"error": "no such model"}))
    second.route("POST", "/v1/chat/completions")(stream_words(["second"]))
    third.route("POST", "/v1/chat/completions")(stream_words(["third"]))
    extra = "".join(
        f'[providers.{name}]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = {priority}\n'
        for name, srv, priority in (("a", first, 1), ("b", second, 2), ("c", third, 3))
    )
    write_config(local_config(extra=extra))
    proc = cli("chat", "--json", "-p", "c", "-p", "a", "-m", "m", "Hi")
    assert proc.exit_code == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [(a["provider"], a["outcome"]) for a in data["attempts"]] == [("a", "failed"), ("c", "ok")]
    assert second.requests == []


def test_environment_key_beats_the_keys_file(server, write_config, cli, isolated):
    hf = server()
    hf.route("POST", "/v1/chat/completions")(stream_words(["ok"]))
    write_config(local_config(huggingface=f"{hf.url}/v1"))
    (isolated / "keys.toml").write_text('huggingface = "hf_FROMFILE"\n', encoding="utf-8")
    assert cli("chat", "-m", "some/model", "Hi").exit_code == 0
    assert cli("chat", "-m", "some/model", "Hi", env={"HF_TOKEN": "hf_FROMENV"}).exit_code == 0
    assert [r.headers["authorization"] for r in hf.requests] == ["Bearer hf_FROMFILE", "Bearer hf_FROMENV"]


def test_rejected_key_names_the_provider_and_its_variable(server, write_config, cli):
    refusing = server()
    refusing.route("POST", "/v1/chat/completions")(
        lambda ex: ex.reply(402, {"error": {"code": 402, "message": "This request requires more credits"}})
    )
    write_config(local_config(openrouter=f"{refusing.url}/v1"))
    proc = cli("chat", "-m", "x", "Hi", env={"OPENROUTER_API_KEY": "sk-or-v1-test0000"})
    assert proc.exit_code == 3
    line = proc.stderr.splitlines()[1]
    assert line.startswith("  openrouter: failed, HTTP 402: This request requires more credits")
    assert line.endswith("→ add credits: openrouter uses OPENROUTER_API_KEY")


def test_dash_on_a_terminal_is_the_same_usage_error_as_no_prompt(write_config, cli):
    write_config(local_config())
    result = cli("chat", "-", io=on_terminal())
    assert result.exit_code == 2
    assert result.stderr.startswith("exobridge: error: no prompt: give PROMPT or pipe text on stdin")


def test_malformed_proxy_variable_is_a_one_line_config_error(write_config, cli):
    write_config(local_config(exo="http://127.0.0.1:9"))
    proc = cli("chat", "Hi", env={"HTTPS_PROXY": "ftp://proxy.invalid"})
    assert proc.exit_code == 4
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("exobridge: error: invalid proxy setting in the environment")


def test_key_for_an_unknown_provider_names_it(write_config, cli):
    write_config(local_config(exo="http://127.0.0.1:9", openrouter="http://127.0.0.1:9/v1"))
    proc = cli("chat", "--key", "opnrouter=sk-or-v1-x", "Hi")
    assert proc.exit_code == 2
    assert "unknown provider 'opnrouter'" in proc.stderr
    assert "sk-or-v1-x" not in proc.stderr


def test_no_rate_is_claimed_for_a_reply_that_came_in_one_go():
    from exobridge.render.chat import summary_line

    result = {
        "provider": "local",
        "url": "http://h/v1",
        "model": "m",
        "latency_ms": 40,
        "first_token_ms": 39,
        "usage": {"completion_tokens": 12},
        "cost": None,
        "requested_model": "m",
    }
    assert summary_line(result) == "local (http://h/v1) · m · 40 ms · 12 tokens · cost n/a"


# --- what only a process shows: signals and closed, full or abandoned streams (issue 9: 12, 14) ------------


@pytest.mark.process  # SIGTERM is handled only in the process's main()
def test_sigterm_keeps_partial_text_with_a_newline_and_exits_143(server, write_config):
    proc, _ = stalled_after_one_token(server, write_config)
    assert proc.stdout is not None
    assert proc.stdout.read(len("Partial")) == b"Partial"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert out == b"\n"
    assert err.decode().strip().splitlines()[-1] == "exobridge: terminated by SIGTERM", err
    assert b"Traceback" not in err


@pytest.mark.process  # SIGHUP is handled only in the process's main()
def test_sighup_with_json_prints_the_one_object_and_exits_129(server, write_config):
    proc, first_token_sent = stalled_after_one_token(server, write_config, "--json")
    assert first_token_sent.wait(20)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 129
    data = json.loads(out)
    assert data["error"] == "terminated by SIGHUP" and data["exit_code"] == 129
    assert data["attempts"][-1]["reason"] == "interrupted"
    assert b"Traceback" not in err


class FullText(io.StringIO):
    """stdout on a full device (`> /dev/full`): writes are buffered, flushing them fails with ENOSPC."""

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def streams(stdout: object = "buffer", stderr: object = "buffer"):
    """A test IO whose stdout or stderr is closed (None, as Python gives `>&-` / `2>&-`) or a given stream."""
    from exobridge.render.io import IOStreams

    test = IOStreams.test()
    return IOStreams(
        stdin=test.stdin,
        stdout=test.out if stdout == "buffer" else stdout,  # type: ignore[arg-type]
        stderr=test.err if stderr == "buffer" else stderr,  # type: ignore[arg-type]
        env=os.environ,
    )


def test_closed_stdout_is_one_line_and_exit_1(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", "hi", io=streams(stdout=None))
    assert proc.exit_code == 1
    assert proc.stderr == "exobridge: error: cannot write to stdout: it is closed (nothing would see the answer)\n"
    assert srv.requests == []


def test_full_stdout_is_one_line_and_exit_1(server, write_config, cli):
    srv = echo_server(server)
    only_local(write_config, srv.url)
    proc = cli("chat", "-m", "x", "hi", io=streams(stdout=FullText()))
    assert proc.exit_code == 1
    assert proc.stderr == "exobridge: error: cannot write to stdout: No space left on device\n"


def test_closed_stderr_still_delivers_the_answer(server, write_config, cli):
    srv = echo_server(server)
    write_config(
        local_config(
            exo=f"http://127.0.0.1:{closed_port()}",
            extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 5\n',
        )
    )
    proc = cli("chat", "-v", "-m", "plain", "hi", io=streams(stderr=None))
    assert (proc.exit_code, proc.stdout) == (0, "Hello there\n")


def run_into_a_gone_reader(*args: str) -> int:
    """Run exobridge with stdout and stderr on a pipe nobody reads any more (`2>&1 | head` after head left)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [*exobridge_command(), *args], stdout=write_end, stderr=write_end, stdin=subprocess.DEVNULL, timeout=30
        )
    finally:
        os.close(write_end)
    return proc.returncode


@pytest.mark.process  # a pipe nobody reads: the exit code end to end
def test_a_gone_reader_keeps_the_real_exit_code(server, write_config):
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    assert run_into_a_gone_reader("chat", "-m", "x", "hi") == 3
    srv = echo_server(server)
    only_local(write_config, srv.url)
    assert run_into_a_gone_reader("chat", "-m", "x", "hi") == 0


def test_json_says_when_max_tokens_cut_the_answer(server, write_config, cli):
    srv = server()

    def cut(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("The Seine and", model="m"))
        ex.event(chunk(model="m", finish="length"))
        ex.event("[DONE]")
        ex.end()

    srv.route("POST", "/v1/chat/completions")(cut)
    only_local(write_config, srv.url)
    data = json.loads(cli("chat", "--json", "--max-tokens", "3", "-m", "x", "Rivers?").stdout)
    assert (data["text"], data["finish_reason"], data["exit_code"]) == ("The Seine and", "length", 0)
    assert json.loads(srv.requests[-1].body)["max_tokens"] == 3


def reasoning_then_text(ex: Exchange) -> None:
    """A reasoning model: reasoning deltas (content "") before the text, as OpenRouter streams them."""
    ex.start_stream()
    for thought in ("The user", " says hi."):
        ex.event({"model": "m", "choices": [{"index": 0, "delta": {"content": "", "reasoning": thought}}]})
    ex.event(chunk("Hello", model="m"))
    ex.event(chunk(" there", model="m", finish="stop"))
    ex.event("[DONE]")
    ex.end()


def test_a_reasoning_model_shows_thinking_on_a_terminal_and_wipes_it_before_the_text(server, write_config, cli):
    from exobridge.render.chat import THINKING

    srv = server()
    srv.route("POST", "/v1/chat/completions")(reasoning_then_text)
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\n'))
    result = cli("chat", "-m", "m", "Hi", io=on_terminal(NO_COLOR="1"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello there\n"  # the reasoning is not the reply
    wipe = "\r" + " " * len(THINKING) + "\r"
    assert result.stderr.startswith(THINKING + wipe)  # shown once for two reasoning deltas, wiped once
    assert result.stderr.count(THINKING) == 1 and ANSI not in result.stderr
    # not on a pipe, not with -q, not with --json: nothing to wipe there
    for args, streams in (((), None), (("-q",), on_terminal()), (("--json",), on_terminal())):
        other = cli("chat", *args, "-m", "m", "Hi", **({"io": streams} if streams else {}))
        assert other.exit_code == 0 and THINKING not in other.stderr, other.stderr
