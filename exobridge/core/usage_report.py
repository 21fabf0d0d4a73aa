"""What `exobridge usage` (and the dashboard) add up: requests, tokens and cost per provider, model or day, and
what running locally saved. The cost of one request is core/spend.py's; this module only adds costs up, so a
chat that records a request never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exobridge.core.spend import cached_price, cloud_equivalent, is_local, reference_provider

if TYPE_CHECKING:
    from exobridge.core.config import Config


@dataclass
class Group:
    """One row of `exobridge usage`: requests, tokens and cost of a provider, model or day."""

    key: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unknown: int = 0  # answered requests whose cost is unknown

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 10),
            "unknown_cost_requests": self.unknown,
        }


@dataclass
class Savings:
    """What the requests free providers answered would have cost at their cloud equivalent's cached price."""

    usd: float = 0.0
    requests: int = 0  # requests a free provider answered
    priced: int = 0  # of those, how many had a cloud price
    price_date: float | None = None  # the oldest price list used
    reference: str | None = None  # the provider priced against
    unpriced: int = 0  # local requests with a cloud equivalent but no cached price for it (not in JSON)

    def to_json(self) -> dict[str, Any]:
        from datetime import datetime

        date = datetime.fromtimestamp(self.price_date).date().isoformat() if self.price_date else None
        return {
            "usd": round(self.usd, 10),
            "local_requests": self.requests,
            "priced_requests": self.priced,
            "price_date": date,
            "priced_at": self.reference,
        }


@dataclass
class Usage:
    """Everything `exobridge usage` shows: the groups, the days, the total and the savings."""

    by: str
    groups: list[Group]
    days: list[Group]
    total: Group
    saved: Savings

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "groups": [g.to_json() for g in self.groups],
            "days": [d.to_json() for d in self.days],
            "total": self.total.to_json(),
            "saved_by_running_locally": self.saved.to_json(),
        }


def summarize(groups: list[tuple[Any, ...]], by: str, config: Config) -> Usage:
    """Add up `history.Store.usage_groups` rows by provider, model or (local) day, with the savings."""
    found: dict[str, Group] = {}
    days: dict[str, Group] = {}
    total = Group("total")
    reference = reference_provider(config)
    saved = Savings(reference=reference.name if reference else None)
    local_cache: dict[str, bool] = {}
    for row in groups:
        day, provider, requested, served, cost_source, outcome = row[:6]
        requests, p_tokens, c_tokens, cost, unknown, with_tokens = row[6:]
        key = {"provider": provider or "(none)", "model": served or requested or "(none)", "day": day}[by]
        answered = outcome in ("complete", "partial", "interrupted") and provider is not None
        for group in (found.setdefault(key, Group(key)), days.setdefault(day, Group(day)), total):
            group.requests += requests
            group.prompt_tokens += p_tokens
            group.completion_tokens += c_tokens
            group.cost += cost
            if answered:
                group.unknown += unknown
        if provider is not None and provider not in local_cache:
            provider_config = config.providers.get(provider)
            local_cache[provider] = provider_config is not None and is_local(provider_config)
        local = cost_source == "free" or (provider is not None and local_cache[provider])
        if answered and local:
            saved.requests += requests
            price, model = None, None
            if reference is not None:
                model = cloud_equivalent(config, requested) or cloud_equivalent(config, served)
                price = cached_price(reference.name, model)
            if price is None and model is not None:
                saved.unpriced += requests
            if price is not None and with_tokens:
                saved.priced += with_tokens
                saved.usd += price.cost(p_tokens, c_tokens)
                if price.read_at is not None:
                    saved.price_date = min(saved.price_date or price.read_at, price.read_at)
    ordered = sorted(found.values(), key=lambda g: g.key if by == "day" else (-g.cost, -g.requests, g.key))
    return Usage(by, ordered, sorted(days.values(), key=lambda g: g.key), total, saved)
