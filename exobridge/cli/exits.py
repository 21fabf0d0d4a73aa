"""Exit codes (documented in the README) and the one-line way every command fails."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

OK = 0
INTERNAL = 1
USAGE = 2
NO_PROVIDER = 3
CONFIG = 4
PARTIAL = 5
INTERRUPTED = 130


def fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"exobridge: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def load_config():
    """The effective config, or a one-line error and exit 4."""
    from exobridge.core.config import ConfigError, load

    try:
        return load()
    except ConfigError as exc:
        fail(f"config: {exc}", CONFIG)


def silence_stdout() -> None:
    """stdout went away (`| head -1`): send the rest nowhere, so Python does not complain at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
