"""Spending limits (`[budget]` in the config), checked before a request is sent.

    [budget]
    daily_usd = 2.0          # all providers together, per calendar day in the local time zone
    monthly_usd = 20.0       # per calendar month in the local time zone
    free_only = false        # true: only free kinds (Exo) and zero-priced models are asked
    [budget.openrouter]      # one provider's own limits (same keys, no free_only)
    daily_usd = 1.0

What was spent comes from the history database (known costs only). A provider is skipped, with the reason,
when a limit is reached ("over daily budget: $2.03 of $2.00"; exactly at the limit counts as reached) or when
the request's worst case (prompt tokens estimated at 4 characters a token, plus `max_tokens`, at the
provider's cached prices, the highest offer when several) would cross it. Free kinds are never skipped.
A price that is unknown cannot be checked: the request goes, and `free_only` refuses it.
At 80 % of a limit a notice is given. An override (`chat --budget-override`, or one provider named with -p)
sends anyway and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.routing import Candidate, ChatRequest

NOTICE_SHARE = 0.8
LIMIT_KEYS = ("daily_usd", "monthly_usd")


class BudgetProblem(ValueError):
    """A `[budget]` value that does not fit: `str()` is "budget.KEY: problem"."""


@dataclass(frozen=True)
class Limits:
    """Daily and monthly limits in USD (None: no limit)."""

    daily_usd: float | None = None
    monthly_usd: float | None = None

    def items(self) -> list[tuple[str, float]]:
        found = []
        if self.daily_usd is not None:
            found.append(("daily", self.daily_usd))
        if self.monthly_usd is not None:
            found.append(("monthly", self.monthly_usd))
        return found


@dataclass(frozen=True)
class Budget:
    """The `[budget]` table: overall limits, each provider's own, and `free_only`."""

    overall: Limits = Limits()
    providers: dict[str, Limits] = field(default_factory=dict)
    free_only: bool = False

    @property
    def active(self) -> bool:
        return self.free_only or bool(self.overall.items()) or any(v.items() for v in self.providers.values())


def _limit(value: Any, where: str) -> float:
    import math

    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise BudgetProblem(f"{where}: expected an amount in USD (0 or more), got {value!r}")
    return float(value)


def _limits(table: dict[str, Any], where: str, allowed: tuple[str, ...]) -> Limits:
    for key in table:
        if key not in allowed and not isinstance(table[key], dict):
            raise BudgetProblem(f"{where}.{key}: unknown key (one of {', '.join(allowed)})")
    return Limits(
        *(_limit(table[k], f"{where}.{k}") if k in table else None for k in LIMIT_KEYS)  # type: ignore[arg-type]
    )


def parse(raw: Any) -> Budget:
    """The `[budget]` table as read from TOML (None: no limits). BudgetProblem when a value does not fit."""
    if raw is None:
        return Budget()
    if not isinstance(raw, dict):
        raise BudgetProblem("budget: expected a table")
    free_only = raw.get("free_only", False)
    if not isinstance(free_only, bool):
        raise BudgetProblem(f"budget.free_only: expected true or false, got {free_only!r}")
    overall = _limits(raw, "budget", (*LIMIT_KEYS, "free_only"))
    per_provider = {}
    for name, table in raw.items():
        if isinstance(table, dict):
            per_provider[name] = _limits(table, f"budget.{name}", LIMIT_KEYS)
            extra = [k for k in table if isinstance(table[k], dict)]
            if extra:
                raise BudgetProblem(f"budget.{name}.{extra[0]}: unknown key (one of {', '.join(LIMIT_KEYS)})")
    return Budget(overall, per_provider, free_only)


def period_start(period: str, now: float | None = None) -> float:
    """Unix time of the start of today ("daily") or this month ("monthly") in the local time zone."""
    local = datetime.fromtimestamp(time.time() if now is None else now).astimezone()
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "monthly":
        start = start.replace(day=1)
    # Rebuild from the naive wall-clock time so a DST change since midnight uses midnight's offset.
    return time.mktime(start.replace(tzinfo=None).timetuple())


def money(value: float) -> str:
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


@dataclass
class Standing:
    """One limit now: what it is, what was spent in its period, what is left."""

    scope: str  # "overall" or a provider name
    period: str  # "daily" | "monthly"
    limit: float
    spent: float

    @property
    def left(self) -> float:
        return max(self.limit - self.spent, 0.0)

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "period": self.period, "limit": self.limit, "spent": self.spent, "left": self.left}


SpentFn = Callable[[float, str | None], float]  # (since, provider or None) -> USD


def standings(budget: Budget, spent: SpentFn, now: float | None = None) -> list[Standing]:
    """Every configured limit with what was spent in its period."""
    found: list[Standing] = []
    scopes: list[tuple[str, str | None, Limits]] = [("overall", None, budget.overall)]
    scopes += [(name, name, limits) for name, limits in budget.providers.items()]
    for scope, provider, limits in scopes:
        for period, limit in limits.items():
            found.append(Standing(scope, period, limit, spent(period_start(period, now), provider)))
    return found


class BudgetCheck:
    """The router's pre-send check: `check(candidate, request) -> skip reason | None`.

    `notices` collects the lines to show (80 % reached, an override that sent anyway), once each.
    """

    def __init__(
        self,
        budget: Budget,
        spent: SpentFn,
        *,
        override: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.budget = budget
        self._spent = spent
        self._spent_seen: dict[tuple[float, str | None], float] = {}
        self.override = override
        self.now = now
        self.notices: list[str] = []

    def spent(self, since: float, provider: str | None) -> float:
        """What was spent, asked once per (period start, scope) for this request."""
        key = (since, provider)
        if key not in self._spent_seen:
            self._spent_seen[key] = self._spent(since, provider)
        return self._spent_seen[key]

    def _notice(self, line: str) -> None:
        if line not in self.notices:
            self.notices.append(line)

    def __call__(self, candidate: Candidate, request: ChatRequest) -> str | None:
        return self.check(candidate.provider, candidate.target.model, request)

    def check(self, provider: ProviderConfig, model: str | None, request: ChatRequest) -> str | None:
        reason = self._reason(provider, model, request)
        if reason is not None and self.override:
            self._notice(f"budget override: {provider.name} {reason}; sending anyway")
            return None
        return reason

    def _reason(self, provider: ProviderConfig, model: str | None, request: ChatRequest) -> str | None:
        from exobridge.core import spend

        if not self.budget.active or spend.is_local(provider):
            return None
        price = spend.cached_price(provider.name, model, worst=True)
        if self.budget.free_only and (price is None or not price.free):
            return "free_only budget: " + ("price unknown" if price is None else "not a free model")
        if price is not None and price.free:
            return None
        worst = None
        if price is not None:
            prompt = spend.estimate_tokens("".join(str(m.get("content") or "") for m in request.messages))
            worst = price.cost(prompt, request.max_tokens or 0)
        now = self.now()
        scopes = [(None, self.budget.overall), (provider.name, self.budget.providers.get(provider.name, Limits()))]
        for scope, limits in scopes:
            for period, limit in limits.items():
                spent = self.spent(period_start(period, now), scope)
                label = f"{period} budget" if scope is None else f"{period} budget for {scope}"
                if spent >= limit:
                    return f"over {label}: {money(spent)} of {money(limit)}"
                if worst is not None and spent + worst > limit:
                    return (
                        f"would cross {label}: worst case {money(worst)} with {money(limit - spent)} left "
                        f"of {money(limit)}"
                    )
                if spent >= NOTICE_SHARE * limit:
                    self._notice(f"{label} {spent / limit:.0%} used: {money(spent)} of {money(limit)}")
        return None


def from_config(config: Config) -> Budget:
    return getattr(config, "budget", None) or Budget()


def check_for(config: Config, spent: SpentFn, *, override: bool = False) -> BudgetCheck | None:
    """The pre-send check for `config`'s limits; None when it sets none (nothing to check)."""
    plan = from_config(config)
    return BudgetCheck(plan, spent, override=override) if plan.active else None


def notice_topic(line: str) -> str:
    """What a `BudgetCheck` notice is about ("daily budget for openrouter"), without the figures that change
    from one request to the next: a long-running front end says each once a period, not once a request."""
    return line.split(" used: ", 1)[0].rsplit(" ", 1)[0]


def history_reader(moved: list[str] | None = None) -> SpentFn:
    """Known spending from the history database: 0 when there is none yet; raises history.HistoryUnavailable
    when it cannot be read (what was spent is then not known). A damaged file is moved aside as every command
    does; with `moved`, its new name is added there (doctor says so)."""

    def spent(since: float, provider: str | None) -> float:
        from exobridge.core import history

        store = history.Store(create=False)
        if not store.exists():
            return 0.0
        with store:
            if moved is not None and store.moved_aside is not None and str(store.moved_aside) not in moved:
                moved.append(str(store.moved_aside))
            return store.spent_since(since, provider)

    return spent


history_spent = history_reader()


def spent_from_history(since: float, provider: str | None) -> float:
    """`history_spent`, with 0 when the history cannot be read: `chat` still answers (its history warning says
    why the history is unavailable)."""
    from exobridge.core import history

    try:
        return history_spent(since, provider)
    except history.HistoryUnavailable:
        return 0.0


def current_standings(config: Config) -> list[Standing]:
    """Every configured limit with what was spent today / this month (for `providers list`). Raises
    history.HistoryUnavailable when the history cannot be read: never shown as $0 spent."""
    plan = from_config(config)
    return standings(plan, history_spent) if plan.active else []
