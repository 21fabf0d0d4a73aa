"""IOStreams: the one owner of the terminal (the idea of gh's pkg/iostreams).

Every command gets one `IOStreams` and asks it, never `sys.stdout.isatty()` or `os.environ["NO_COLOR"]`:

- `out`, `err`, `stdin`: the three text streams; `IOStreams.system()` uses the process's, and stands in a
  null stream for one that is closed (`2>&-`), so a closed stderr never costs the answer on stdout.
- `is_stdout_tty`, `is_stderr_tty`, `is_stdin_tty`; `color_stdout` / `color_stderr`: a terminal, unless
  `NO_COLOR` is set (non-empty) or `TERM=dumb`; `FORCE_COLOR` (non-empty, not "0") forces colour on.
- `width`: `COLUMNS`, else the terminal's, else 80.
- `notice(text, style)`: one line on stderr, styled only when stderr has colour. Writing to stderr never
  raises: a closed or full stderr is noted (`stderr_lost`) and ignored.
- `write_out(text)`: stdout, flushed. Raises `BrokenPipeError` when the reader went away (`| head`), and
  `errors.OutputError` when stdout is closed or full (`>&-`, `> /dev/full`).
- `rich_console(stderr=False)`: a Rich console on that stream, built lazily, with markup, emoji and
  highlighting OFF: provider strings printed through it are never read as markup. Style with `rich.text.Text`.

Tests use `IOStreams.test(stdin="", stdout_tty=False, stderr_tty=False)` (gh's `iostreams.Test()`): buffers
read back with `io.stdout_text()` / `io.stderr_text()`. `current()` is the IOStreams of the command being
run (the runner installs it with `use(io)`); outside a run it is `IOStreams.system()`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io as _io
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import IO, Any


class _NullText(_io.TextIOBase):
    """Where writes to a closed stream go: accepted and dropped."""

    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return False


class _TestText(_io.StringIO):
    """A StringIO that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class _TestStdin(_io.TextIOWrapper):
    def __init__(self, data: bytes, tty: bool) -> None:
        super().__init__(_io.BytesIO(data), encoding="utf-8", errors="replace", newline=None)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class WatchedText:
    """A text stream that remembers the error its last write or flush raised (`failed`), then re-raises it.

    The process's stdout is wrapped in one, so that when a library (Typer printing --help) fails writing to
    it, the runner can tell "stdout is full or closed" from any other OSError.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.failed: BaseException | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as exc:
            self.failed = exc
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            self.failed = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "")
    return bool(value) and value != "0"


_OUTPUT_LOST = (errno.EBADF, errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG)


class IOStreams:
    """stdin/stdout/stderr and every decision about them (TTY, colour, width, where notices go)."""

    def __init__(
        self,
        *,
        stdin: IO[str] | None,
        stdout: IO[str] | None,
        stderr: IO[str] | None,
        env: Mapping[str, str] | None = None,
        stdin_tty: bool | None = None,
        stdout_tty: bool | None = None,
        stderr_tty: bool | None = None,
        width: int | None = None,
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.stdout_closed = stdout is None
        self.stderr_closed = stderr is None
        self.stdin_closed = stdin is None
        self.out: IO[str] = stdout if stdout is not None else _NullText()
        self.err: IO[str] = stderr if stderr is not None else _NullText()
        self.stdin: IO[str] = stdin if stdin is not None else _io.StringIO("")
        self.is_stdin_tty = _isatty(self.stdin) if stdin_tty is None else stdin_tty
        self.is_stdout_tty = _isatty(self.out) if stdout_tty is None else stdout_tty
        self.is_stderr_tty = _isatty(self.err) if stderr_tty is None else stderr_tty
        self._width = width
        self._consoles: dict[bool, Any] = {}
        self.stderr_lost = self.stderr_closed

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def system(cls) -> IOStreams:
        """The process's own streams (a closed one, which Python gives as None, becomes a null stream).

        stdout is wrapped in a `WatchedText`, so a failed write is remembered (`stdout_failed`).
        """
        stdout = sys.stdout
        if stdout is not None and not isinstance(stdout, WatchedText):
            stdout = WatchedText(stdout)  # type: ignore[assignment]
        return cls(stdin=sys.stdin, stdout=stdout, stderr=sys.stderr)

    @property
    def stdout_failed(self) -> bool:
        """stdout is closed, or a write to it (by anyone holding `out`) failed."""
        return self.stdout_closed or getattr(self.out, "failed", None) is not None

    @classmethod
    def test(
        cls,
        stdin: str | bytes = "",
        *,
        tty: bool = False,
        stdin_tty: bool = False,
        stdout_tty: bool = False,
        stderr_tty: bool = False,
        env: Mapping[str, str] | None = None,
        width: int = 80,
    ) -> IOStreams:
        """In-memory streams for tests: read back with `stdout_text()` and `stderr_text()`.

        `tty=True` makes all three say they are a terminal; `env` defaults to the process environment.
        """
        if tty:
            stdin_tty = stdout_tty = stderr_tty = True
        data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        return cls(
            stdin=_TestStdin(data, stdin_tty),
            stdout=_TestText(stdout_tty),
            stderr=_TestText(stderr_tty),
            env=env,
            width=width,
        )

    def stdout_text(self) -> str:
        return self.out.getvalue()  # type: ignore[attr-defined]

    def stderr_text(self) -> str:
        return self.err.getvalue()  # type: ignore[attr-defined]

    # --- decisions ------------------------------------------------------------------------------------
    def _color(self, tty: bool) -> bool:
        if _flag(self.env, "FORCE_COLOR"):
            return True
        if self.env.get("NO_COLOR") or self.env.get("TERM") == "dumb":
            return False
        return tty

    @property
    def color_stdout(self) -> bool:
        return self._color(self.is_stdout_tty)

    @property
    def color_stderr(self) -> bool:
        return self._color(self.is_stderr_tty)

    @property
    def width(self) -> int:
        if self._width is not None:
            return self._width
        columns = self.env.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        if self.is_stdout_tty or self.is_stderr_tty:
            return shutil.get_terminal_size((80, 24)).columns
        return 80

    # --- output ---------------------------------------------------------------------------------------
    def write_out(self, text: str) -> None:
        """Text on stdout, flushed now. A gone reader raises BrokenPipeError; a closed/full stdout OutputError."""
        if self.stdout_closed:
            from exobridge.core.errors import OutputError

            raise OutputError("cannot write to stdout: it is closed")
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            raise
        except ValueError as exc:  # the stream object was closed
            from exobridge.core.errors import OutputError

            raise OutputError("cannot write to stdout: it is closed") from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise BrokenPipeError(*exc.args) from exc
            from exobridge.core.errors import OutputError

            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from exc

    def write_json(self, data: Any) -> None:
        """The one `--json` object on stdout (`json_line`); a reader that left or a full stdout ends it quietly.

        The runner reports a failing stdout for the run; here nothing more can be said on stdout anyway.
        """
        from exobridge.core.errors import OutputError

        with contextlib.suppress(BrokenPipeError, OutputError):
            self.write_out(json_line(data))

    def write_err(self, text: str) -> None:
        """Text on stderr, flushed; never raises (a closed or full stderr is noted in `stderr_lost`)."""
        if self.stderr_lost:
            return
        try:
            self.err.write(text)
            self.err.flush()
        except (OSError, ValueError):
            self.stderr_lost = True

    def notice(self, text: str, style: str | None = None) -> None:
        """One line on stderr: styled when stderr has colour, plain otherwise. Never read as markup."""
        if style and self.color_stderr and not self.stderr_lost:
            from rich.text import Text

            try:
                self.rich_console(stderr=True).print(Text(text, style=style))
                self.err.flush()
            except (OSError, ValueError):
                self.stderr_lost = True
            return
        self.write_err(text + "\n")

    def rich_console(self, stderr: bool = False) -> Any:
        """A Rich console on stdout (or stderr), built once; markup, emoji and highlighting are off."""
        console = self._consoles.get(stderr)
        if console is None:
            from rich.console import Console

            color = self.color_stderr if stderr else self.color_stdout
            tty = self.is_stderr_tty if stderr else self.is_stdout_tty
            console = Console(
                file=self.err if stderr else self.out,
                force_terminal=tty or color,
                no_color=not color,
                color_system="auto" if color else None,
                width=self.width,
                markup=False,
                emoji=False,
                highlight=False,
                soft_wrap=stderr,
                force_jupyter=False,
                force_interactive=tty,
            )
            self._consoles[stderr] = console
        return console

    def read_stdin_bytes(self) -> bytes | None:
        """Piped stdin, whole; None when stdin is a terminal or closed."""
        if self.stdin_closed or self.is_stdin_tty:
            return None
        try:
            buffer = getattr(self.stdin, "buffer", None)
            if buffer is not None:
                return buffer.read()
            return self.stdin.read().encode("utf-8")
        except (OSError, ValueError):
            return None


_RAW_IN_JSON = "[\x7f-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\u2028\u2029]"  # compiled by json_line


@functools.cache
def _raw_in_json() -> re.Pattern[str]:
    return re.compile(_RAW_IN_JSON)


def json_line(data: Any) -> str:
    """One JSON object and a newline: the one `--json` style of every command.

    Non-ASCII text stays readable (`ensure_ascii=False`), but DEL, C1 controls and bidi/line-separator
    characters are written as `\\uXXXX` escapes (same data, inert on a terminal); json escapes C0 itself.
    """
    text = json.dumps(data, ensure_ascii=False)
    return _raw_in_json().sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) + "\n"


_current: ContextVar[IOStreams | None] = ContextVar("exobridge_io", default=None)


def current() -> IOStreams:
    """The IOStreams of the command being run; the process's own outside a run."""
    found = _current.get()
    return found if found is not None else IOStreams.system()


@contextlib.contextmanager
def use(streams: IOStreams) -> Iterator[IOStreams]:
    """Make `streams` the current IOStreams for the duration (the runner does this around a command)."""
    token = _current.set(streams)
    try:
        yield streams
    finally:
        _current.reset(token)
