"""The one place failures become messages and exit codes (cli/runner.py), the error tree (core/errors.py) and
the terminal's owner (render/io.py). In-process, with the test IO."""

from __future__ import annotations

import errno
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exobridge.core import errors
from exobridge.core.errors import ExitCode
from exobridge.render.io import IOStreams, json_line
from tests.conftest import local_config

# --- the error tree ----------------------------------------------------------------------------------------


def test_exit_codes_are_the_readme_table():
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "INTERNAL": 1,
        "USAGE": 2,
        "NO_PROVIDER": 3,
        "CONFIG": 4,
        "PARTIAL": 5,
        "LOAD_TIMEOUT": 6,
        "HANGUP": 129,
        "INTERRUPTED": 130,
        "TERMINATED": 143,
    }
    assert ExitCode.for_signal(15) == 143 and ExitCode.for_signal(1) == 129


def test_every_error_class_is_in_the_module_docstring_with_its_exit_code():
    doc = errors.__doc__ or ""
    classes = [
        value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, errors.ExobridgeError)
    ]
    assert len(classes) >= 9
    for cls in classes:
        line = next((text for text in doc.splitlines() if f" {cls.__name__} " in text), None)
        assert line is not None, f"{cls.__name__} is not in the docstring's tree"
        assert f"exit {int(cls.exit_code)}" in line, line


def test_errors_are_one_line_and_carry_their_codes():
    assert str(errors.UsageError("bad\nthing")) == "bad thing"
    config = errors.ConfigError("/etc/x.toml", "line 2", "expected '='")
    assert (config.line(), config.code) == ("config: /etc/x.toml: line 2: expected '='", 4)
    proxy = errors.ProxyError("HTTPS_PROXY='http://[::1': invalid IPv6 URL")
    assert isinstance(proxy, errors.ConfigError) and proxy.code == 4
    assert proxy.line() == "invalid proxy setting in the environment: HTTPS_PROXY='http://[::1': invalid IPv6 URL"
    assert errors.ProxyError(proxy.line()).line() == proxy.line()  # the wording is not doubled
    assert errors.KeysFileError("/k.toml", "line 3", "bad").code == 4
    assert errors.Interrupted(signum=15).code == 143 and errors.Interrupted().code == 130
    assert errors.UsageError("x", fields={"text": ""}).to_json() == {"text": "", "error": "x", "exit_code": 2}


# --- the runner --------------------------------------------------------------------------------------------


def test_usage_errors_are_one_line_exit_2_and_a_json_object_under_json(cli):
    plain = cli("chat", "--bogus")
    assert plain.exit_code == 2 and plain.stdout == ""
    assert plain.stderr.startswith("exobridge: error: No such option: --bogus") and plain.stderr.count("\n") == 1
    assert "(see 'exobridge chat --help')" in plain.stderr
    for args in (["chat", "--json", "--bogus"], ["models", "--json", "--nope"], ["providers", "list", "--json", "x"]):
        result = cli(*args)
        assert result.exit_code == 2, args
        data = result.json()
        assert data["exit_code"] == 2 and data["error"] == result.stderr.removeprefix("exobridge: error: ").strip()


def test_config_errors_print_the_json_object_too(write_config, cli):
    write_config('[providers.exo]\npriority = "high"\n')
    for args in (["chat", "--json", "Hi"], ["models", "--json"], ["providers", "list", "--json"]):
        result = cli(*args)
        assert result.exit_code == 4, (args, result.stderr)
        assert result.stderr.startswith("exobridge: error: config: ") and result.stderr.count("\n") == 1
        data = result.json()
        assert data["exit_code"] == 4 and "providers.exo.priority" in data["error"]
    assert set(cli("chat", "--json", "Hi").json()) >= {"text", "attempts", "provider", "error", "exit_code"}


def test_a_malformed_proxy_is_the_same_exit_4_in_every_network_command(write_config, cli):
    write_config(local_config(exo="http://127.0.0.1:9"))
    env = {"HTTPS_PROXY": "http://[::1", "HTTP_PROXY": "http://[::1"}
    for args in (["chat", "Hi"], ["models", "--refresh"], ["providers", "status"]):
        result = cli(*args, env=env)
        assert result.exit_code == 4, (args, result.stderr)
        assert result.stderr.startswith("exobridge: error: invalid proxy setting in the environment: "), args
        assert result.stderr.count("\n") == 1, result.stderr


def test_unexpected_exceptions_are_one_line_exit_1_and_json_under_json(monkeypatch, write_config, cli):
    from exobridge.core import provider_status

    write_config(local_config(exo="http://127.0.0.1:9"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(provider_status, "probe_all", broken)
    result = cli("providers", "status", "--json")
    assert result.exit_code == 1
    assert result.stderr == (
        "exobridge: internal error: RuntimeError: something unexpected (set EXOBRIDGE_DEBUG=1 for the traceback)\n"
    )
    assert result.json()["error"].startswith("internal error: RuntimeError: something unexpected")
    debug = cli("providers", "status", env={"EXOBRIDGE_DEBUG": "1"})
    assert debug.exit_code == 1 and "Traceback (most recent call last)" in debug.stderr


def test_invoke_restores_the_environment_and_the_process_streams(cli):
    import sys

    before = (sys.stdin, sys.stdout, sys.stderr, os.environ.get("EXOBRIDGE_X"))
    cli("--version", env={"EXOBRIDGE_X": "1"})
    assert (sys.stdin, sys.stdout, sys.stderr, os.environ.get("EXOBRIDGE_X")) == before
    assert cli("--version").stdout.startswith("exobridge ")


def test_bare_group_shows_its_help_and_exits_2(cli):
    result = cli("providers")
    assert result.exit_code == 2 and "Usage: exobridge providers" in result.stderr


# --- IOStreams ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "tty", "color"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # empty means unset (no-color.org)
        ({"TERM": "dumb"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "0"}, False, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, True),
    ],
)
def test_colour_is_decided_in_one_place(env, tty, color):
    streams = IOStreams.test(stdout_tty=tty, stderr_tty=tty, env=env)
    assert streams.color_stdout is color and streams.color_stderr is color


def test_width_comes_from_columns_then_the_terminal():
    assert IOStreams(stdin=None, stdout=io.StringIO(), stderr=None, env={"COLUMNS": "132"}).width == 132
    assert IOStreams(stdin=None, stdout=io.StringIO(), stderr=None, env={}).width == 80


def test_notices_are_plain_when_piped_styled_on_a_colour_terminal_and_never_markup():
    piped = IOStreams.test(env={})
    piped.notice("[bold]x[/] \x1b", "yellow")
    assert piped.stderr_text() == "[bold]x[/] \x1b\n"
    shown = IOStreams.test(stderr_tty=True, env={})
    shown.notice("[/oops] :smile:", "yellow")
    assert shown.stderr_text().startswith("\x1b[33m") and "[/oops] :smile:" in shown.stderr_text()


class Failing(io.StringIO):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


def test_a_closed_or_full_stderr_never_raises():
    for error in (BrokenPipeError(errno.EPIPE, "x"), OSError(errno.ENOSPC, "full"), ValueError("closed")):
        streams = IOStreams(stdin=None, stdout=io.StringIO(), stderr=Failing(error), env={})
        streams.notice("a line")
        streams.notice("again", "red")
        assert streams.stderr_lost
    assert IOStreams(stdin=None, stdout=io.StringIO(), stderr=None, env={}).stderr_lost


def test_stdout_failures_are_a_broken_pipe_or_an_output_error():
    gone = IOStreams(stdin=None, stdout=Failing(BrokenPipeError(errno.EPIPE, "x")), stderr=None, env={})
    with pytest.raises(BrokenPipeError):
        gone.write_out("x")
    full = IOStreams(stdin=None, stdout=Failing(OSError(errno.ENOSPC, "No space left on device")), stderr=None)
    with pytest.raises(errors.OutputError, match="No space left on device"):
        full.write_out("x")
    with pytest.raises(errors.OutputError, match="closed"):
        IOStreams(stdin=None, stdout=None, stderr=None).write_out("x")


def test_json_lines_escape_what_a_terminal_would_act_on_and_keep_the_data():
    import json

    data = {"id": "a\x1b]0;t\x07\x9b\u202eé"}
    line = json_line(data)
    assert line.endswith("\n") and "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
    assert "é" in line and json.loads(line) == data


@pytest.mark.process  # /dev/full end to end: Typer's own output, flushed at the process's exit
def test_help_into_a_full_stdout_is_one_line_not_an_internal_error():
    import subprocess

    from tests.conftest import exobridge_command

    proc = subprocess.run(
        ["bash", "-c", f"{' '.join(exobridge_command())} --help > /dev/full"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert proc.stderr == "exobridge: error: cannot write to stdout: No space left on device\n"


def test_error_lines_never_show_a_key_from_the_environment_the_keys_file_or_the_command_line(
    monkeypatch, write_config, cli, isolated
):
    from exobridge.core import provider_status

    write_config(local_config(exo="http://127.0.0.1:9"))
    (isolated / "keys.toml").write_text('huggingface = "hf_CANARYFILE0123456789"\n', encoding="utf-8")
    secrets = ("sk-or-v1-CANARYENV0123456789", "hf_CANARYFILE0123456789", "CANARYARGV0123456789")

    def leaky(*args: object, **kwargs: object) -> None:
        raise RuntimeError(" ".join(secrets[:2]))

    monkeypatch.setattr(provider_status, "probe_all", leaky)
    result = cli("providers", "status", "--json", env={"OPENROUTER_API_KEY": secrets[0]})
    assert result.exit_code == 1
    bad = cli("chat", "--json", "--key", f"opnrouter={secrets[2]}", "--temperature", secrets[2], "Hi")
    assert bad.exit_code == 2 and "--temperature" in bad.stderr
    for shown in (result.stdout, result.stderr, bad.stdout, bad.stderr):
        assert "CANARY" not in shown.replace("CANARY[", ""), shown
        assert not any(secret[-12:] in shown for secret in secrets), shown


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["config", "show"],
        ["doctor"],
        ["providers", "status"],
        ["providers", "reset"],
        ["models"],
        ["chat", "Hi"],
    ],
    ids=lambda args: " ".join(args),
)
def test_every_command_prints_one_json_object_for_a_usage_error(cli, args):
    result = cli(*args, "--json", "--not-an-option")
    assert result.exit_code == 2, result.stderr
    assert result.json()["exit_code"] == 2 and "No such option" in result.json()["error"]
    assert result.stdout.count("\n") == 1


WORDS = [
    "chat", "models", "providers", "list", "status", "reset", "keys", "config", "show", "get", "doctor",
    "--json", "--bogus", "-p", "nope", "exo", "-m", "x", "--temperature", "9", "0.5", "--key", "a=b", "Hi", "-",
    "--watch", "3", "--free", "-q", "-v", "--no-stream", "[/oops]", "\x1b[2J", "--", "-h",
]  # fmt: skip
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_any_command_line_ends_with_a_documented_code_and_never_a_traceback(write_config, cli, args):
    write_config(local_config())  # every provider disabled: nothing touches the network
    if "--watch" in args and "status" in args:
        return  # --watch runs until Ctrl-C
    result = cli(*args)
    assert result.exit_code in DOCUMENTED, (args, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (args, result.stderr)
    options = args[: args.index("--") if "--" in args else None]
    if result.exit_code and "--json" in options and "-h" not in options and "doctor" not in args:
        assert result.stdout.count("\n") == 1 and "exit_code" in result.json(), (args, result.stdout)


def test_a_failing_status_or_model_list_says_so_in_its_json_object(write_config, cli):
    write_config(local_config(exo="http://127.0.0.1:9"))
    status = cli("providers", "status", "--json")
    assert status.exit_code == 3
    data = status.json()
    assert (data["exit_code"], data["error"], data["can_answer"]) == (3, "no provider can answer", [])
    models = cli("models", "--json", "-p", "exo")
    assert models.exit_code == 3 and models.json()["exit_code"] == 3 and models.json()["error"]


@pytest.mark.parametrize("argv", [["chat"], ["chat", "-m", "x", "Hi"], ["chat", "--temperature", "9", "Hi"]])
def test_the_process_freezes_start_up_objects_while_the_command_runs_and_never_after(monkeypatch, capsys, argv):
    """runner.main: what is loaded once the line is parsed is out of the collector's way while the command runs
    (gc.freeze), and nothing stays frozen (the exit's collection sees it all); a line that fails to parse runs
    nothing and freezes nothing."""
    import gc
    import sys

    from exobridge.cli import chat_run, runner

    frozen_while_running: list[int] = []
    monkeypatch.setattr(chat_run, "chat_run", lambda opts, io: frozen_while_running.append(gc.get_freeze_count()) or 0)
    monkeypatch.setattr(sys, "argv", ["exobridge", *argv])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    before = gc.get_freeze_count()
    with pytest.raises(SystemExit) as exit_info:
        runner.main()
    capsys.readouterr()
    assert gc.get_freeze_count() == before == 0
    if argv[1:2] == ["--temperature"]:
        assert exit_info.value.code == 2 and frozen_while_running == []
    else:
        assert exit_info.value.code == 0 and len(frozen_while_running) == 1 and frozen_while_running[0] > 0
