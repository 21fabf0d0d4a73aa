"""COMPAT for tests not yet moved to conftest's `cli` fixture (today: tests/test_providers_edit.py).

`run_cli` here is the `cli` fixture (the one in-process runner, `cli.runner.invoke`) dressed as a
`CompletedProcess` (`.returncode`, `input=`); `run_process` is conftest's `run_exobridge`, a real process.
New tests use `cli` and `run_cli` from conftest directly; delete this module once nothing imports it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.conftest import run_exobridge


@pytest.fixture(name="run_cli")
def inprocess_run_cli(cli: Callable[..., object]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        result = cli(*args, stdin=input, env=env)
        return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)  # type: ignore[attr-defined]

    return run


@pytest.fixture(name="run_process")
def real_process_run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The installed `exobridge` in a real process, for the few tests that need one."""
    return run_exobridge
