"""Doctor checks as jobs for core/parallel: all at once, each result in its place, a crash or an overrun
reported as a failed check with its fix. Nothing waits past the deadline and nothing joins a stuck check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exobridge.core import parallel
from exobridge.core.doctor.results import FAIL, CheckResult

CRASH_FIX = "a bug in exobridge or an odd setting it names: fix the setting, or report the error"
SETTING_FIX = "fix or unset the setting it names, then run exobridge doctor again"
TIMEOUT_FIX = "check DNS and the network (and any *_PROXY variable), then run exobridge doctor again"


@dataclass(frozen=True)
class Check:
    """Work that yields one or more results. `id` and `section` name the failure if it crashes or overruns."""

    id: str
    section: str
    run: Callable[[], list[CheckResult]]


def _failed(check: Check, error: BaseException) -> CheckResult:
    """A check that raised: exobridge's own errors (a proxy variable httpx cannot use …) are findings with
    their one-line message; anything else is a crash, reported with its type."""
    from exobridge.core.errors import ExobridgeError

    if isinstance(error, ExobridgeError):
        return CheckResult(check.id, check.section, FAIL, str(error), SETTING_FIX)
    return CheckResult(check.id, check.section, FAIL, f"the check crashed: {type(error).__name__}: {error}", CRASH_FIX)


def run_checks(checks: Sequence[Check], deadline: parallel.Deadline) -> list[CheckResult]:
    """Every check at once; results in check order. A check still running at the deadline fails, and is left
    behind on its daemon thread."""
    outcomes = parallel.run_all(
        [parallel.Job(check.id, check.run) for check in checks], timeout=None, deadline=deadline, thread_prefix="doctor"
    )
    results: list[CheckResult] = []
    for check, outcome in zip(checks, outcomes, strict=True):
        if outcome.timed_out:
            bound = f" within {deadline.seconds:g} s" if deadline.seconds is not None else ""
            results.append(CheckResult(check.id, check.section, FAIL, f"the check did not finish{bound}", TIMEOUT_FIX))
            continue
        if outcome.error is not None:
            results.append(_failed(check, outcome.error))
            continue
        for result in outcome.value or []:
            if not result.ms:
                result.ms = outcome.ms
            results.append(result)
    return results
