"""Compatibility for commands not yet moved to raising `core.errors` exceptions.

Exit codes live in `exobridge.core.errors.ExitCode`; the names below are aliases kept until every command
has moved. `fail(message, code)` raises an ExobridgeError, so the runner prints the one line (and, under
`--json`, the JSON object) and ends with `code`. New code raises `errors.UsageError(...)` etc. itself.
"""

from __future__ import annotations

from typing import NoReturn

from exobridge.core.errors import ExitCode, ExobridgeError

OK = ExitCode.OK
INTERNAL = ExitCode.INTERNAL
USAGE = ExitCode.USAGE
NO_PROVIDER = ExitCode.NO_PROVIDER
CONFIG = ExitCode.CONFIG
PARTIAL = ExitCode.PARTIAL
INTERRUPTED = ExitCode.INTERRUPTED


class CommandFailed(ExobridgeError):
    """A failure with an exit code chosen by the caller (what `fail()` raises)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self._code = int(code)

    @property
    def code(self) -> int:
        return self._code


def fail(message: str, code: int) -> NoReturn:
    raise CommandFailed(message, code)


def load_config():
    """The effective config; a config error propagates to the runner (one line, exit 4)."""
    from exobridge.core import config, errors

    try:
        return config.load()
    except config.ConfigError as exc:
        if isinstance(exc, errors.ConfigError):
            raise
        raise errors.ConfigError(exc.source, exc.where, exc.problem) from exc  # until config.py re-exports


def silence_stdout() -> None:
    from exobridge.cli.runner import silence_stdout as silence

    silence()
