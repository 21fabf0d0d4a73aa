"""The Budget section of doctor: each `[budget]` limit with what was spent and what is left today / this month.

One result per limit (`budget.overall.daily`, `budget.openrouter.monthly` …): ok below 80 % of it, a warning
from 80 % (the router's notice share), and a warning naming "over" once it is reached (providers are then
skipped until the period starts again). `free_only` is one ok line, and a budget that cannot be enforced
because the history is off (nothing spent is counted) is a warning. No budget configured: no section.
Reads the history database only (never creates it); no network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from exobridge.core.doctor.results import OK, WARN, CheckResult, Section

if TYPE_CHECKING:
    from exobridge.core.budget import SpentFn, Standing
    from exobridge.core.config import Config

PERIOD_WORDS = {"daily": ("today", "tomorrow"), "monthly": ("this month", "next month")}


def _limit_key(standing: Standing) -> str:
    table = "budget" if standing.scope == "overall" else f"budget.{standing.scope}"
    return f"{table}.{standing.period}_usd"


def standing_result(standing: Standing) -> CheckResult:
    """One limit as a check: ok, warn at 80 %, warn "over" at or past the limit."""
    from exobridge.core.budget import NOTICE_SHARE, money

    scope = "" if standing.scope == "overall" else f" for {standing.scope}"
    now_word, next_word = PERIOD_WORDS.get(standing.period, ("in this period", "the next period"))
    share = standing.spent / standing.limit if standing.limit > 0 else 1.0
    spent = f"{money(standing.spent)} of {money(standing.limit)}"
    check_id = f"budget.{standing.scope}.{standing.period}"
    if standing.spent >= standing.limit:
        who = "every priced provider is" if standing.scope == "overall" else f"{standing.scope} is"
        detail = f"over {standing.period} budget{scope}: {spent} spent {now_word}, nothing left"
        fix = f"{who} skipped until {next_word}; raise {_limit_key(standing)} in the config (exobridge config edit)"
        return CheckResult(check_id, Section.BUDGET, WARN, detail, fix)
    detail = f"{standing.period} budget{scope}: {spent} spent {now_word} ({share:.0%}), {money(standing.left)} left"
    if share >= NOTICE_SHARE:
        fix = (
            f"{money(standing.left)} left {now_word}; raise {_limit_key(standing)} in the config if that is too little"
        )
        return CheckResult(check_id, Section.BUDGET, WARN, detail, fix)
    return CheckResult(check_id, Section.BUDGET, OK, detail)


def check_budgets(
    config: Config,
    env: Mapping[str, str],
    spent: SpentFn | None = None,
    now: float | None = None,
) -> list[CheckResult]:
    """Every configured limit with what is spent and left; [] when no budget is set."""
    from exobridge.core import budget, history

    plan = budget.from_config(config)
    if not plan.active:
        return []
    results: list[CheckResult] = []
    if history.logging_disabled(config.log, env=env):
        results.append(
            CheckResult(
                "budget.history",
                Section.BUDGET,
                WARN,
                "the history is off (log = false or EXOBRIDGE_NO_LOG): nothing spent is counted, "
                "so no limit can be reached",
                "remove log = false from the config (exobridge config edit) and unset EXOBRIDGE_NO_LOG",
            )
        )
    if plan.free_only:
        results.append(
            CheckResult(
                "budget.free_only",
                Section.BUDGET,
                OK,
                "free_only: only Exo, local endpoints and zero-priced models are asked",
            )
        )
    moment = time.time() if now is None else now
    moved: list[str] = []
    try:
        standings = budget.standings(plan, spent or budget.history_reader(moved), moment)
    except history.HistoryUnavailable as exc:  # never shown as $0 spent: what was spent is not known
        fix = "fix what the message names, then run exobridge doctor again"
        results.append(CheckResult("budget.spent", Section.BUDGET, WARN, f"spending unknown: {exc}", fix))
        return results
    if moved:
        detail = f"the history database was damaged and is now {moved[0]}: what was spent before is not counted"
        fix = "nothing more to do: a new history started (the damaged file can be removed)"
        results.append(CheckResult("budget.spent", Section.BUDGET, WARN, detail, fix))
    results.extend(standing_result(standing) for standing in standings)
    return results
