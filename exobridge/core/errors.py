"""Every exception exobridge raises on purpose, and the exit code each one ends the process with.

The tree (each class carries `exit_code`; `str()` is always one line, never a key):

    ExobridgeError                  exit 1   base class; never raised itself
    ├── UsageError                  exit 2   bad option or argument, empty prompt, unknown provider
    ├── ConfigError                 exit 4   ConfigError(source, where, problem): a config that cannot be used
    │   ├── KeysFileError           exit 4   the keys file is malformed or unreadable (names file and line)
    │   └── ProxyError              exit 4   a malformed or unsupported proxy variable in the environment
    ├── NoProviderError             exit 3   no provider could answer (or the request was rejected as invalid)
    ├── PartialReplyError           exit 5   the reply broke after part of it was printed
    ├── ExoLoadError                exit 3   `models load`: Exo unreachable, the model does not fit, placement failed
    ├── LoadTimeoutError            exit 6   `models load`: still loading when --timeout ran out (Exo keeps going)
    ├── OutputError                 exit 1   stdout cannot be written (closed, disk full); never a traceback
    └── Interrupted                 exit 130 Ctrl-C; 143 for SIGTERM and 129 for SIGHUP (128 + the signal)

    Failure(kind: FailureKind, reason, status, retry_after)
        One attempt at one provider went wrong. It never ends the process by itself: the router turns it into
        an `Attempt` and decides to retry, fail over or stop (core/failover.py). Not an ExobridgeError.

Exit codes live only in `ExitCode`. The CLI maps an ExobridgeError to its one-line message and exit code in
one place (exobridge/cli/runner.py); with `--json` it also prints `{"error": ..., "exit_code": N, ...}`.
Hints for the user ("start Exo", "set OPENROUTER_API_KEY") are not written here: the CLI makes them from a
`FailureKind` (exobridge/cli/hints.py).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, ClassVar


class ExitCode(IntEnum):
    """The process exit codes of README's table, defined once."""

    OK = 0
    INTERNAL = 1  # internal error; also an unwritable stdout
    USAGE = 2
    NO_PROVIDER = 3
    CONFIG = 4
    PARTIAL = 5
    LOAD_TIMEOUT = 6  # `models load`: the model was still loading when --timeout ran out
    HANGUP = 129  # SIGHUP: 128 + 1
    INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
    TERMINATED = 143  # SIGTERM: 128 + 15

    @classmethod
    def for_signal(cls, signum: int) -> int:
        """128 + the signal number, as shells report a process ended by that signal."""
        return 128 + int(signum)


class ExobridgeError(Exception):
    """Base of exobridge's own errors. `str()` is one line; `exit_code` says how the process ends.

    `fields` are extra keys for the `--json` error object (e.g. a command's usual keys), never secrets.
    """

    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL
    prefix: ClassVar[str] = ""  # what the one-line message starts with, e.g. "config: "

    def __init__(self, message: str = "", *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, Any] = dict(fields or {})

    def __str__(self) -> str:
        text = super().__str__()
        return " ".join(text.split()) if "\n" in text or "\r" in text else text

    def line(self) -> str:
        """The message the CLI prints after `exobridge: error: `."""
        return f"{self.prefix}{self}"

    def to_json(self) -> dict[str, Any]:
        """The one JSON object a failing command prints under `--json`."""
        return {**self.fields, "error": self.line(), "exit_code": int(self.code)}

    @property
    def code(self) -> int:
        """The exit code of this instance (a signal's code for Interrupted)."""
        return int(self.exit_code)


class UsageError(ExobridgeError):
    """A bad option or argument: the user can fix the command line."""

    exit_code = ExitCode.USAGE


class ConfigError(ExobridgeError):
    """A config that cannot be used. `str()` is one line naming the file, the key or line, and the fault."""

    exit_code = ExitCode.CONFIG
    prefix = "config: "

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source = source
        self.where = where
        self.problem = problem
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


class KeysFileError(ConfigError):
    """The keys file is malformed or unreadable: `KeysFileError(path, "line 3", "expected '='")`.

    Every command reports it the same way (exit 4, file and line); it is never read as "no key".
    """


PROXY_WORDING = "invalid proxy setting in the environment: "


class ProxyError(ConfigError):
    """A proxy variable httpx would fail on (malformed URL, socks without socksio).

    `ProxyError("HTTPS_PROXY='http://[::1': invalid IPv6 URL")`: the one wording is added when missing.
    """

    prefix = ""

    def __init__(self, message: str) -> None:
        problem = message[len(PROXY_WORDING) :] if message.startswith(PROXY_WORDING) else message
        self.source, self.where, self.problem = "environment", "", problem
        ExobridgeError.__init__(self, PROXY_WORDING + problem)


class NoProviderError(ExobridgeError):
    """No provider could answer: every one failed, was skipped, or none matched."""

    exit_code = ExitCode.NO_PROVIDER


class PartialReplyError(ExobridgeError):
    """The reply broke after part of it was printed (the part stays on stdout)."""

    exit_code = ExitCode.PARTIAL


class ExoLoadError(NoProviderError):
    """`models load`/`unload`: Exo unreachable, the model does not fit, or Exo refused or failed the placement
    (the message carries Exo's own reason)."""


class LoadTimeoutError(ExobridgeError):
    """`models load`: the model was still downloading or loading when --timeout ran out; Exo keeps going."""

    exit_code = ExitCode.LOAD_TIMEOUT


class OutputError(ExobridgeError):
    """stdout cannot be written (closed or full): one line on stderr, exit 1, no traceback."""

    exit_code = ExitCode.INTERNAL


class Interrupted(ExobridgeError):
    """Ctrl-C, SIGTERM or SIGHUP. Exit 130, 143 or 129 (128 + the signal number)."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str = "interrupted", *, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)

    @property
    def code(self) -> int:
        return ExitCode.for_signal(self.signum)


# --- one attempt's failure (not an exit) -----------------------------------------------------------------


class FailureKind(StrEnum):
    """Why one attempt failed; the failover table (README) is keyed by it."""

    CONNECT = "connect"  # refused, DNS, connect timeout, proxy unreachable, TLS
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    STREAM_BROKEN = "stream_broken"  # reset or in-band error
    AUTH = "auth"  # 401, 403
    CREDITS = "credits"  # 402
    MODEL_UNAVAILABLE = "model_unavailable"  # 404, not served, substituted
    SERVER = "server"  # 408, 5xx
    RATE_LIMITED = "rate_limited"  # 429
    CONTEXT_LENGTH = "context_length"
    BAD_REQUEST = "bad_request"  # other 400, 413, 422: every provider would reject it
    BAD_RESPONSE = "bad_response"  # invalid JSON, HTML, wrong shape in a 200, a body past its cap
    NO_KEY = "no_key"
    DISABLED = "disabled"


@dataclass
class Failure(Exception):
    """One attempt at one provider went wrong; `reason` is one line, already redacted."""

    kind: FailureKind
    reason: str
    status: int | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.reason
