"""A small question layer over IOStreams for interactive commands (`setup`, `providers add --check`).

Questions and notices go to stderr; answers are read a line at a time from the command's stdin. A hidden
answer (a key) is read with the terminal's echo turned off, getpass-style, on that same stdin, and never
echoed back. Ctrl-C raises KeyboardInterrupt (the runner exits 130); end of input (Ctrl-D) raises
`InputEnded`, so a command stopped half way can leave everything unwritten.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from exobridge.core.errors import Interrupted
from exobridge.core.sanitize import terminal_text

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams

YES = frozenset({"y", "yes"})
NO = frozenset({"n", "no"})


class InputEnded(Interrupted):
    """The answers ended (Ctrl-D, or stdin closed) before the questions did. Exit 130, like Ctrl-C."""


def interactive(io: IOStreams) -> bool:
    """Questions can be asked: stdin and stderr are both terminals."""
    return io.is_stdin_tty and io.is_stderr_tty


@contextlib.contextmanager
def _echo_off(io: IOStreams) -> Iterator[None]:
    """Turn the terminal's echo off while a hidden answer is typed (no-op when stdin is not a terminal)."""
    try:
        fd = io.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None or not os.isatty(fd):
        yield
        return
    import termios

    old = termios.tcgetattr(fd)
    new = list(old)
    new[3] &= ~termios.ECHO  # keep ICANON (line editing) and ISIG (Ctrl-C still interrupts)
    termios.tcsetattr(fd, termios.TCSAFLUSH, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)


class Prompter:
    """Asks on stderr, reads answers from stdin."""

    def __init__(self, io: IOStreams) -> None:
        self.io = io

    def say(self, line: str = "") -> None:
        self.io.write_err(terminal_text(line) + "\n")

    def _read(self, question: str, hidden: bool = False) -> str:
        try:
            line = self._read_line(question, hidden)
        except KeyboardInterrupt:
            self.io.write_err("\n")  # the runner's "interrupted" line starts on a line of its own
            raise
        if not line:
            self.io.write_err("\n")
            raise InputEnded("input ended: nothing was written")
        return line.rstrip("\r\n")

    def _read_line(self, question: str, hidden: bool) -> str:
        if hidden:
            with _echo_off(self.io):  # echo off before the question shows: nothing typed after it is echoed
                self.io.write_err(question)
                line = self.io.stdin.readline()
            self.io.write_err("\n")  # the Enter typed was not echoed
        else:
            self.io.write_err(question)
            line = self.io.stdin.readline()
        return line

    def text(self, question: str, default: str = "") -> str:
        """A free answer; Enter gives `default`."""
        shown = f" [{terminal_text(default)}]" if default else ""
        answer = self._read(f"{question}{shown}: ").strip()
        return answer or default

    def secret(self, question: str) -> str:
        """A hidden answer (a key): not echoed while typed, never printed."""
        return self._read(f"{question}: ", hidden=True).strip()

    def confirm(self, question: str, default: bool = True) -> bool:
        hint = "Y/n" if default else "y/N"
        while True:
            answer = self._read(f"{question} [{hint}] ").strip().lower()
            if not answer:
                return default
            if answer in YES:
                return True
            if answer in NO:
                return False
            self.say("  please answer y or n")

    def choose(self, question: str, options: Sequence[str], default: int | None = None) -> int | None:
        """One of `options` by number (or its exact text); Enter gives `default` (None: none chosen)."""
        for number, option in enumerate(options, 1):
            self.say(f"  {number}. {option}")
        shown = (
            f"1-{len(options)}, Enter for {default + 1}" if default is not None else f"1-{len(options)}, Enter for none"
        )
        while True:
            answer = self._read(f"{question} [{shown}]: ").strip()
            if not answer:
                return default
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return int(answer) - 1
            if answer in options:
                return list(options).index(answer)
            self.say(f"  please answer a number from 1 to {len(options)}")
