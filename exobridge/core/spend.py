"""What a request cost, and what running locally saved.

Cost of one request, in this order:
1. the provider's reported cost (OpenRouter's `usage.cost`) -> source "reported";
2. a free kind (Exo, local endpoints) -> 0.0, source "free";
3. the provider's cached price list (USD per token for prompt and completion) × the usage's tokens
   -> source "price list";
4. otherwise None: "unknown". A price is never guessed.

Price lists are cached in `<cache dir>/prices.json` ({provider: {model id: {"prompt", "completion"}}}), with
the date they were read. They come from each priced provider's model list (OpenRouter's `/models` `pricing`,
the Hugging Face router's per-provider `pricing`: only a price every listed provider agrees on is kept as
fact; the highest is kept as `worst` for budget checks), captured whenever exobridge reads such a list anyway
(`remember_prices`: `exobridge models`, `providers status`), read on purpose by `refresh_prices`
(`usage --refresh-prices`), and by `refresh_stale_prices` when `usage` needs a list that is missing or older
than a day (at most one try a day per provider, within `USAGE_PRICE_SECONDS`).

"Saved by running locally": for every request a free provider answered, what the model table's OpenRouter id
would have cost at the cached OpenRouter price, with that price list's date (added up in core/usage_report.py;
`cloud_equivalent` and `reference_provider` here say which model and price).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.usage_report import Usage

PRICES_CACHE = "prices"
PRICES_TRIED_CACHE = "prices-tried"  # {provider: outcome} of usage's own reads: when it last tried
PRICE_MAX_AGE = 86400.0  # usage reads a price list again when the cached one is older than a day
USAGE_PRICE_SECONDS = 5.0  # usage's own read of a price list, wall clock, all of a provider's nodes
REFERENCE_KIND = "openrouter"  # the cloud equivalent "saved by running locally" is priced at


class Price(NamedTuple):
    """A model's price per token, prompt and completion, in USD. (A NamedTuple: a tenth of a dataclass's import
    cost, and this module is imported by every recorded chat.)"""

    prompt: float  # USD per prompt token
    completion: float  # USD per completion token
    read_at: float | None = None  # when the list was read (unix time)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.prompt + completion_tokens * self.completion

    @property
    def free(self) -> bool:
        return self.prompt == 0 and self.completion == 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def prices_from_list(data: Any) -> dict[str, dict[str, float]]:
    """{model id: {"prompt", "completion"[, "worst_prompt", "worst_completion"]}} (USD per token) from a model
    list: OpenRouter's `pricing` {prompt, completion} per token, or the HF router's `providers[].pricing`
    {input, output} per million tokens."""
    items = data.get("data") if isinstance(data, dict) else data
    found: dict[str, dict[str, float]] = {}
    if not isinstance(items, list):
        return found
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        pricing = item.get("pricing")
        if isinstance(pricing, dict):
            prompt, completion = _number(pricing.get("prompt")), _number(pricing.get("completion"))
            if prompt is not None and completion is not None:
                found[item["id"]] = {"prompt": prompt, "completion": completion}
            continue
        offers = item.get("providers")
        if isinstance(offers, list):
            pairs = []
            for offer in offers:
                price = offer.get("pricing") if isinstance(offer, dict) else None
                if isinstance(price, dict):
                    p, c = _number(price.get("input")), _number(price.get("output"))
                    if p is not None and c is not None:
                        pairs.append((p / 1e6, c / 1e6))
            if pairs:
                entry = {"worst_prompt": max(p for p, _ in pairs), "worst_completion": max(c for _, c in pairs)}
                if len(set(pairs)) == 1:
                    entry["prompt"], entry["completion"] = pairs[0]
                found[item["id"]] = entry
    return found


def _cache() -> Any:
    from exobridge.core.cache import JsonCache

    return JsonCache(PRICES_CACHE)


def cached_price(provider: str, model: str | None, *, worst: bool = False) -> Price | None:
    """The cached price of `model` at `provider` (the worst of its offers with `worst`), or None."""
    if not model:
        return None
    found = _cache().entry(provider)
    if found is None or not isinstance(found[1], dict):
        return None
    at, table = found
    entry = table.get(model)
    if not isinstance(entry, dict):
        return None
    prompt, completion = _number(entry.get("prompt")), _number(entry.get("completion"))
    if worst:
        prompt = _number(entry.get("worst_prompt", entry.get("prompt")))
        completion = _number(entry.get("worst_completion", entry.get("completion")))
    if prompt is None or completion is None:
        return None
    return Price(prompt, completion, at)


def store_prices(provider: str, prices: dict[str, dict[str, float]]) -> None:
    _cache().put(provider, prices)


def store_many_prices(prices: dict[str, dict[str, dict[str, float]]]) -> None:
    """Several providers' price lists in one write of the cache file."""
    if prices:
        _cache().put_many(prices)


def prices_in_list(provider: ProviderConfig, data: Any) -> dict[str, dict[str, float]]:
    """The prices a priced provider's model list (as read, JSON) carries; {} for a free kind or none."""
    if is_local(provider):
        return {}
    return prices_from_list(data)


def remember_prices(provider: ProviderConfig, data: Any) -> None:
    """Cache the prices in a model list exobridge read anyway (a status probe): no second request."""
    prices = prices_in_list(provider, data)
    if prices:
        store_prices(provider.name, prices)


def prices_age(provider: str, now: float | None = None) -> float | None:
    """Seconds since `provider`'s price list was cached; None when there is none."""
    import time

    found = _cache().entry(provider)
    if found is None or not isinstance(found[1], dict):
        return None
    return (time.time() if now is None else now) - found[0]


def _read_prices(provider: ProviderConfig, key: str | None, seconds: float) -> str:
    """One read of `provider`'s model list (core/model_lists: the list and its prices are both cached);
    "N prices", or why there are none."""
    from exobridge.core import model_lists

    listed = model_lists.read_and_store(provider, key, seconds=seconds)
    if listed.status is not model_lists.ListStatus.OK:
        return listed.reason or "the model list could not be read"
    return f"{len(listed.prices)} prices" if listed.prices else "no prices in its model list"


def refresh_prices(config: Config) -> dict[str, str]:
    """Read every enabled priced provider's model list and cache its prices; {provider: "N prices" | why not}."""
    from exobridge.core import keys, model_lists

    outcome: dict[str, str] = {}
    stored = keys.read_keys_file()
    for provider in config.ordered():
        if is_local(provider):
            continue
        key = keys.resolve(provider, stored=stored).value
        outcome[provider.name] = _read_prices(provider, key, model_lists.PROVIDER_SECONDS)
    return outcome


def stale_price_lists(config: Config, usage: Usage, now: float | None = None) -> list[ProviderConfig]:
    """The providers whose price list `usage` would use but is missing or older than a day: the reference
    provider, when it is enabled, priced, and requests answered locally have a cloud equivalent with no
    cached price; never one `usage` already tried within the day."""
    reference = reference_provider(config)
    if reference is None or not reference.enabled or is_local(reference):
        return []
    if not usage.saved.unpriced:  # nothing a price list could price (no local request, or no cloud equivalent)
        return []
    age = prices_age(reference.name, now)
    if age is not None and -60 <= age <= PRICE_MAX_AGE:
        return []
    from exobridge.core.cache import JsonCache

    tried = JsonCache(PRICES_TRIED_CACHE).get(reference.name, PRICE_MAX_AGE)
    return [] if tried is not None else [reference]


def refresh_stale_prices(providers: list[ProviderConfig], seconds: float = USAGE_PRICE_SECONDS) -> dict[str, str]:
    """Read the price lists of `providers` (each within `seconds`), remembering the try for a day;
    {provider: "N prices" | why not}. Never raises for network trouble."""
    from exobridge.core import keys
    from exobridge.core.cache import JsonCache
    from exobridge.core.errors import ExobridgeError

    outcome: dict[str, str] = {}
    for provider in providers:
        try:
            key = keys.resolve(provider, stored=keys.read_keys_file()).value
            outcome[provider.name] = _read_prices(provider, key, seconds)
        except ExobridgeError as exc:  # a keys file or proxy setting that cannot be used: the command says so
            outcome[provider.name] = str(exc)
        JsonCache(PRICES_TRIED_CACHE).put(provider.name, outcome[provider.name])
    return outcome


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_local(provider: ProviderConfig) -> bool:
    """A provider that costs nothing: a free kind (Exo), or a provider with no key whose every node is on this
    machine (a local OpenAI-compatible server such as llama.cpp or Ollama)."""
    from urllib.parse import urlsplit

    from exobridge.core import providers

    kind = providers.kind_class(provider.kind)
    if kind.free:
        return True
    if kind.needs_key or provider.key_env:
        return False
    hosts = {urlsplit(url).hostname for url in provider.urls}
    return bool(hosts) and all(h in LOOPBACK_HOSTS or (h or "").startswith("127.") for h in hosts)


def tokens(usage: dict[str, Any] | None) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None

    def count(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    return count("prompt_tokens"), count("completion_tokens")


def request_cost(
    provider: ProviderConfig | None, model: str | None, usage: dict[str, Any] | None
) -> tuple[float | None, str | None]:
    """(USD, source) for one answered request; (None, None) when unknown. Sources: reported | free | price list."""
    if provider is None:
        return None, None
    from exobridge.core import providers

    kind = providers.kind_class(provider.kind)
    reported = kind.cost(usage)
    if reported is not None:
        return reported, ("free" if kind.free else "reported")
    if is_local(provider):
        return 0.0, "free"
    prompt_tokens, completion_tokens = tokens(usage)
    price = cached_price(provider.name, model)
    if price is None or prompt_tokens is None or completion_tokens is None:
        return None, None
    return price.cost(prompt_tokens, completion_tokens), "price list"


def reference_provider(config: Config) -> ProviderConfig | None:
    """The configured provider whose prices "saved by running locally" uses (the first OpenRouter one)."""
    for provider in config.ordered(include_disabled=True):
        if provider.kind == REFERENCE_KIND:
            return provider
    return None


def cloud_equivalent(config: Config, requested_model: str | None) -> str | None:
    """The model table's OpenRouter id for a logical model name (config `[models]` first)."""
    if not requested_model:
        return None
    from exobridge.core import model_targets

    row = model_targets.table(config).get(requested_model)
    if row is None and ":" in requested_model:
        row = model_targets.table(config).get(requested_model.split(":", 1)[1])
    return row.get(REFERENCE_KIND) if row else None


def estimate_tokens(text: str) -> int:
    """A rough prompt-token estimate (4 characters a token, rounded up): for worst-case checks only."""
    return (len(text) + 3) // 4
