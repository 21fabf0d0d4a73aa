"""Run one `exobridge …` command line, and the one place where a failure becomes a message and an exit code.

- `run(args, io) -> int`: builds the app for `args`, runs it with `io` as the current IOStreams, and maps
  whatever escapes the command: `ExobridgeError` → `exobridge: error: <line>` and its exit code; click's
  usage errors → exit 2 with "(see 'exobridge chat --help')"; Ctrl-C → "interrupted" and 130 (SIGTERM 143,
  SIGHUP 129); a reader that went away (`| head`) → 0; anything else → exit 1 "internal error" (the traceback
  only with EXOBRIDGE_DEBUG=1). With `--json` on the command line, each of those failures also prints the one
  JSON object on stdout: `{"error": "...", "exit_code": N}` plus the error's `fields`.
  A command that prints its own JSON object (e.g. chat's result) returns its exit code instead of raising.
  `exobridge chat` with no argument is not parsed (there is nothing to parse; cli/chat_run.py
  `run_without_arguments`): the interactive session does not wait for Typer and Pydantic to load.
- `invoke(args, io=None, env=None, stdin=None) -> Result`: the same, in-process, for tests: the test IO is
  also installed as sys.stdin/stdout/stderr and `env` is applied to os.environ for the call only.
- `signals_as_interrupt()`: SIGTERM and SIGHUP raise `Terminated` (a KeyboardInterrupt) in the main thread,
  so they end a command the way Ctrl-C does: partial text kept, the JSON object printed, exit 128 + signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exobridge.cli import without_parse
from exobridge.core.errors import ExitCode, ExobridgeError
from exobridge.render import io as iostreams
from exobridge.render.io import IOStreams


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled like Ctrl-C, ending with 128 + `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def interrupt_exit_code(exc: object = None) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP (`exc`: a Terminated or a CaughtSignal)."""
    return ExitCode.for_signal(getattr(exc, "signum", None) or signal.SIGINT)


def interrupt_notice(exc: object = None) -> str:
    """`interrupted` for Ctrl-C, `terminated by SIGTERM` / `terminated by SIGHUP` for those."""
    signum = getattr(exc, "signum", None) or signal.SIGINT
    return "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"


class CaughtSignal:
    """What `signals_as_interrupt` saw: `signum` of the SIGTERM/SIGHUP that arrived, else None."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[CaughtSignal]:
    """SIGTERM/SIGHUP raise Terminated in the main thread while the block runs (a no-op elsewhere).

    A signal the process ignores (`nohup`) stays ignored.
    """
    import threading

    caught = CaughtSignal()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, frame: Any) -> None:
        caught.signum = signum
        raise Terminated(signum)

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        current = signal.getsignal(sig)
        if current == signal.SIG_IGN:
            continue
        previous[sig] = current
        signal.signal(sig, handler)
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def wants_json(args: Sequence[str]) -> bool:
    """`--json` among the options (not after a `--`)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def report(
    io: IOStreams,
    message: str,
    code: int,
    *,
    json_mode: bool,
    fields: Mapping[str, Any] | None = None,
    label: str = "error: ",
) -> int:
    """The one way a failure is shown: `exobridge: error: …` on stderr, and the JSON object under --json.

    The message and fields are redacted of every secret the run may hold, then made safe for a terminal.
    """
    from exobridge.core.sanitize import terminal_text

    redactor = _redactor(io)
    line = terminal_text(redactor.redact(message)) if redactor else terminal_text(message)
    io.write_err(f"exobridge: {label}{line}\n")
    if json_mode:
        extra = redactor.redact_json(dict(fields or {})) if redactor else dict(fields or {})
        prefix = "" if label in ("", "error: ") else label  # "internal error: " stays in the JSON's error
        write_json(io, {**extra, "error": f"{prefix}{line}", "exit_code": int(code)})
    return int(code)


_ARGV_SECRETS: list[str] = []  # `--key` values of the command line being run


def _key_values(args: Sequence[str]) -> list[str]:
    """The values given to `--key` (`KEY`, `NAME=KEY`, `--key=…`): secrets, whatever the parse made of them."""
    values: list[str] = []
    for i, arg in enumerate(args):
        value = None
        if arg == "--key" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--key="):
            value = arg[len("--key=") :]
        if value:
            head, sep, tail = value.partition("=")
            # `NAME=KEY`: the key is the secret (the name is a provider's, and is shown); else the whole value.
            values.append(tail if sep and tail and head.isidentifier() else value)
    return values


def _redactor(io: IOStreams) -> Any:
    """Every secret this run may hold (keys in the environment and the keys file, header credentials, --key).

    Built only on the error path; never raises (None when even that failed).
    """
    try:
        from exobridge.core import secrets

        config = None
        try:
            from exobridge.core.config import load

            config = load()
        except Exception:  # the config may be what failed
            pass
        extra = list(_ARGV_SECRETS)
        if config is None:
            from exobridge.core.providers import kind_class, kind_names

            for name in kind_names():
                kind = kind_class(name)
                extra += [io.env.get(var) for var in kind.key_envs_for(kind.default_key_env)]
        return secrets.config_redactor(config, env=io.env, extra=extra)
    except Exception:
        return None


def write_json(io: IOStreams, data: Any) -> None:
    """One JSON object and a newline on stdout: the one --json style of every command (`io.write_json`)."""
    io.write_json(data)


def _is_usage_error(exc: Exception) -> bool:
    """click's (or Typer's vendored click's) usage and parameter errors, recognised by their public shape."""
    return isinstance(getattr(exc, "exit_code", None), int) and callable(getattr(exc, "format_message", None))


def _usage_message(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{exc.format_message()}{hint}"


def run(args: Sequence[str], io: IOStreams, *, parsed: Callable[[], None] | None = None) -> int:
    """Run one command line with `io`; return the exit code. Never raises (except SystemExit from below).

    `parsed()` is called once the command line is parsed, just before the command runs (main's start-up hook).
    A command line `without_parse` (cli/__init__.py) runs without Typer being imported.
    """
    args = list(args)
    json_mode = wants_json(args)
    _ARGV_SECRETS[:] = _key_values(args)
    with iostreams.use(io):
        try:
            if without_parse(args):
                from exobridge.cli.chat_run import run_without_arguments

                if parsed is not None:
                    parsed()
                return run_without_arguments(io)
            import typer.main

            from exobridge.cli.app import build_app

            command = typer.main.get_command(build_app(args))
            with command.make_context("exobridge", args) as ctx:
                if parsed is not None:
                    parsed()
                value = command.invoke(ctx)
            return value if isinstance(value, int) else ExitCode.OK
        except ExobridgeError as exc:
            return report(io, exc.line(), exc.code, json_mode=json_mode, fields=exc.fields)
        except KeyboardInterrupt as exc:
            code = interrupt_exit_code(exc)
            return report(io, interrupt_notice(exc), code, json_mode=json_mode, label="")
        except BrokenPipeError:
            silence_stdout()
            return ExitCode.OK
        except OSError as exc:
            if _stdout_failing(io):  # e.g. Typer printing --help into a full or closed stdout
                reason = exc.strerror or str(exc)
                return report(io, f"cannot write to stdout: {reason}", ExitCode.INTERNAL, json_mode=False)
            return _internal_error(io, exc, json_mode)
        except Exception as exc:
            import typer  # loaded already when the exception is one of Typer's

            if isinstance(exc, typer.Exit):
                return int(exc.exit_code)
            if isinstance(exc, typer.Abort):
                return report(io, "aborted", ExitCode.INTERNAL, json_mode=json_mode, label="")
            if _is_usage_error(exc):
                ctx = getattr(exc, "ctx", None)
                if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:  # bare `exobridge providers`
                    io.write_err(ctx.get_help() + "\n")
                    return int(exc.exit_code)  # type: ignore[attr-defined]
                return report(io, _usage_message(exc), exc.exit_code, json_mode=json_mode)  # type: ignore[attr-defined]
            return _internal_error(io, exc, json_mode)


def _internal_error(io: IOStreams, exc: BaseException, json_mode: bool) -> int:
    """A failure nobody planned for: one line (the traceback only with EXOBRIDGE_DEBUG=1), exit 1."""
    if io.env.get("EXOBRIDGE_DEBUG"):
        io.write_err("".join(traceback.format_exception(exc)))
    message = f"{type(exc).__name__}: {exc}"
    if not io.env.get("EXOBRIDGE_DEBUG"):
        message += " (set EXOBRIDGE_DEBUG=1 for the traceback)"
    return report(io, message, ExitCode.INTERNAL, json_mode=json_mode, label="internal error: ")


def _stdout_failing(io: IOStreams) -> bool:
    """Whether stdout is what failed (a write through `io.out` raised, or it cannot be flushed)."""
    failing = io.stdout_failed
    if not failing:
        try:
            io.out.flush()
        except (OSError, ValueError):
            failing = True
    if failing:
        silence_stdout()
    return failing


def silence_stdout() -> None:
    """stdout went away (`| head -1`): send the rest nowhere, so Python does not complain at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(args: Sequence[str] | None = None) -> None:
    """The process: system streams, SIGTERM/SIGHUP like Ctrl-C, and an exit code that always means something.

    Once the command line is parsed, what is loaded by then (Typer, Pydantic, exobridge's modules: ~50 000
    objects that live until exit) is frozen out of CPython's garbage collector (`gc.freeze`). Without that, the
    objects a chat allocates as it loads its HTTP stack push the collector into one full pass over all of them
    (15-30 ms, docs/benchmarks.md). They are unfrozen before exit, so the exit's own collection sees everything,
    as it did before.
    """
    import gc

    io = IOStreams.system()
    sys.stdout = io.out  # the watched stdout: Typer's own output goes through it too
    with signals_as_interrupt():
        try:
            code = run(sys.argv[1:] if args is None else args, io, parsed=gc.freeze)
        except KeyboardInterrupt as exc:  # a signal between the command and here
            code = interrupt_exit_code(exc)
        finally:
            gc.unfreeze()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except (OSError, ValueError):
        silence_stdout()
        if code == ExitCode.OK:
            io.notice("exobridge: error: cannot write to stdout", "bold red")
            code = ExitCode.INTERNAL
    sys.exit(code)


# --- in-process, for tests ------------------------------------------------------------------------------


@dataclass
class Result:
    """What an in-process run gave: the exit code and the text written to stdout and stderr."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as the one JSON object it must be."""
        return json.loads(self.stdout)


@contextlib.contextmanager
def _environment(env: Mapping[str, str | None] | None) -> Iterator[None]:
    if not env:
        yield
        return
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def invoke(
    args: Sequence[str],
    *,
    io: IOStreams | None = None,
    env: Mapping[str, str | None] | None = None,
    stdin: str | bytes | None = None,
) -> Result:
    """Run `exobridge ARGS` in this process with a test IO; `env` values of None unset a variable."""
    if io is None:
        io = IOStreams.test(stdin=stdin if stdin is not None else "")
    elif stdin is not None:
        raise ValueError("give stdin to IOStreams.test(), not to invoke(), when passing io")
    with _environment(env):
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = io.stdin, io.out, io.err
        try:
            code = run(args, io)
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
    return Result(int(code), _text(io.out), _text(io.err))


def _text(stream: Any) -> str:
    getvalue = getattr(stream, "getvalue", None)
    return getvalue() if callable(getvalue) else ""
