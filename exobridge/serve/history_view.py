"""What the dashboard shows of the history database (core/history.py) and spend (core/usage_report.py, core/budget.py).

Read-only, on a daemon thread (SQLite never runs on the event loop), and optional: when those modules are
missing or their database cannot be read, the answer says why and the page says "not available".

- `recent(limit)`: the newest requests without their text (time, provider, served model, latency, tokens,
  cost, outcome, failover chain); `request(id)`: one request in full, prompt and reply included.
- `spend(config, days)`: what `exobridge usage` shows (the same core/usage_report.summarize over the history's SQL
  sums): known cost per day and per provider over the last `days` days (today included), what running
  locally saved (priced at the cloud equivalent's cached price, with that price list's date), and each
  `[budget]` limit with what is left.

Stored strings were redacted when they were recorded; they are still untrusted text for the page.
"""

from __future__ import annotations

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
FLUSH_SECONDS = 2.0  # how long a read waits for serve's queued history writes


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
    from exobridge.core import history_record

    history_record.flush_serve(FLUSH_SECONDS)  # what this serve just answered is on the page
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
    if entry is None:
        return None
    data = entry.to_json()
    reasoning, calls, refusal = entry.part_texts()
    data["part_texts"] = {"reasoning": reasoning, "tool_calls": calls, "refusal": refusal}  # shown as text
    return data


def spend(config: Any, days: int = 14) -> dict[str, Any]:
    """The `exobridge usage` figures (core/usage_report.summarize over the history's SQL sums) for the page."""
    history = _history()
    try:
        from exobridge.core import budget, usage_report
    except ImportError:
        raise NotAvailable("spend not available in this version") from None
    days = max(1, min(int(days), MAX_DAYS))
    since = budget.period_start("daily") - (days - 1) * 86400  # today and the days before it, local time

    def read(store: Any) -> tuple[list[Any], list[Any]]:
        groups = store.usage_groups(history.Filters(since=since))
        return groups, budget.standings(budget.from_config(config), store.spent_since)

    groups, standings = _read(read)
    usage = usage_report.summarize(groups, "provider", config)
    saved = usage.saved.to_json()
    return {
        "days": days,
        "per_day": [_bucket("day", group) for group in usage.days],
        "per_provider": [_bucket("provider", group) for group in usage.groups],
        "saved": {
            "usd": saved["usd"],
            "priced_requests": saved["priced_requests"],
            "free_requests": saved["local_requests"],
            "reference": saved["priced_at"],
            "price_date": saved["price_date"],
        }
        if saved["priced_at"]
        else None,
        "budgets": [standing.to_json() for standing in standings],
    }


def _bucket(name: str, group: Any) -> dict[str, Any]:
    data = group.to_json()
    return {
        name: data["key"],
        "cost": data["cost"],
        "requests": data["requests"],
        "unknown": data["unknown_cost_requests"],
    }
