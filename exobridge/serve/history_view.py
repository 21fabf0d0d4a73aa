"""What the dashboard shows of the history database (core/history.py) and spend (core/spend.py, core/budget.py).

Read-only, on a daemon thread (SQLite never runs on the event loop), and optional: when those modules are
missing or their database cannot be read, the answer says why and the page says "not available".

- `recent(limit)`: the newest requests without their text (time, provider, served model, latency, tokens,
  cost, outcome, failover chain); `request(id)`: one request in full, prompt and reply included.
- `spend(days, config)`: known cost per day and per provider over the last `days` days, what running locally
  saved (free answers priced at the cloud equivalent's cached price, with that price list's date), and each
  `[budget]` limit with what is left.

Stored strings were redacted when they were recorded; they are still untrusted text for the page.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

SUMMARY_FIELDS = (
    "id",
    "ts",
    "time",
    "conversation",
    "source",
    "provider",
    "requested_model",
    "served_model",
    "latency_ms",
    "first_token_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_source",
    "outcome",
    "attempts",
    "error",
)
MAX_LIMIT = 500
MAX_DAYS = 366


class NotAvailable(Exception):
    """History or spend cannot be shown; the message says why (one line)."""


def _history() -> Any:
    try:
        from exobridge.core import history
    except ImportError:
        raise NotAvailable("history not available in this version") from None
    return history


def _read(work: Any) -> Any:
    history = _history()
    try:
        store = history.Store(create=False)
        with store:
            return work(store)
    except history.HistoryUnavailable as exc:
        raise NotAvailable(str(exc)) from None


def recent(limit: int = 50) -> dict[str, Any]:
    limit = max(1, min(int(limit), MAX_LIMIT))
    entries = _read(lambda store: store.list(limit=limit))
    rows = []
    for entry in entries:
        data = entry.to_json()
        rows.append({name: data.get(name) for name in SUMMARY_FIELDS})
    return {"requests": rows}


def request(request_id: int) -> dict[str, Any] | None:
    entry = _read(lambda store: store.get(request_id))
    return None if entry is None else entry.to_json()


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().date().isoformat()


def spend(config: Any, days: int = 14, now: float | None = None) -> dict[str, Any]:
    history = _history()
    now = time.time() if now is None else now
    days = max(1, min(int(days), MAX_DAYS))
    since = now - days * 86400
    rows = _read(lambda store: store.rows_for_usage(history.Filters(since=since)))
    per_day: dict[str, dict[str, Any]] = {}
    per_provider: dict[str, dict[str, Any]] = {}
    free: list[tuple[str | None, int | None, int | None]] = []
    for ts, provider, requested, _served, prompt_tokens, completion_tokens, cost, cost_source, _outcome in rows:
        day = per_day.setdefault(_day(ts), {"day": _day(ts), "cost": 0.0, "requests": 0, "unknown": 0})
        who = per_provider.setdefault(
            provider or "(none)", {"provider": provider or "(none)", "cost": 0.0, "requests": 0, "unknown": 0}
        )
        for bucket in (day, who):
            bucket["requests"] += 1
            if cost is None:
                bucket["unknown"] += 1 if provider else 0
            else:
                bucket["cost"] += cost
        if cost_source == "free":
            free.append((requested, prompt_tokens, completion_tokens))
    return {
        "days": days,
        "per_day": [per_day[key] for key in sorted(per_day)],
        "per_provider": sorted(per_provider.values(), key=lambda b: (-b["cost"], b["provider"])),
        "saved": _saved(config, free),
        "budgets": _budgets(config, history, now),
    }


def _saved(config: Any, free: list[tuple[str | None, int | None, int | None]]) -> dict[str, Any] | None:
    """What the free answers would have cost at the cloud equivalent's cached price (None: cannot say)."""
    try:
        from exobridge.core import spend as spend_mod
    except ImportError:
        return None
    reference = spend_mod.reference_provider(config)
    if reference is None:
        return None
    usd, priced, price_date = 0.0, 0, None
    for requested, prompt_tokens, completion_tokens in free:
        model = spend_mod.cloud_equivalent(config, requested)
        price = spend_mod.cached_price(reference.name, model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            continue
        usd += price.cost(prompt_tokens, completion_tokens)
        priced += 1
        price_date = price.read_at if price_date is None else min(price_date, price.read_at or price_date)
    return {
        "usd": usd,
        "priced_requests": priced,
        "free_requests": len(free),
        "reference": reference.name,
        "price_date": _day(price_date) if price_date else None,
    }


def _budgets(config: Any, history: Any, now: float) -> list[dict[str, Any]]:
    try:
        from exobridge.core import budget
    except ImportError:
        return []
    limits = budget.from_config(config)
    if not limits.active:
        return []

    def spent(since: float, provider: str | None) -> float:
        return _read(lambda store: store.spent_since(since, provider))

    return [standing.to_json() for standing in budget.standings(limits, spent, now)]
