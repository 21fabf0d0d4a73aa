"""`run_cli` for tests written against a process's `CompletedProcess`, run in this process instead.

Import the fixture into a test module (`from tests.cli_inprocess import inprocess_run_cli`) to run its commands
through `cli.runner.invoke` with a test IO: same exit code, stdout and stderr, no process start-up. Tests
that need a real process (a pty, kill -9, concurrent writers) use `exobridge_command()` or `run_process`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest


@pytest.fixture(name="run_cli")
def inprocess_run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    from exobridge.cli.runner import invoke

    def run(
        *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        result = invoke(list(args), stdin=input, env=env)
        return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture(name="run_process")
def real_process_run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The installed `exobridge` in a real process, for the few tests that need one."""
    import os

    from tests.conftest import exobridge_command

    def run(
        *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [*exobridge_command(), *args],
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        )

    return run
