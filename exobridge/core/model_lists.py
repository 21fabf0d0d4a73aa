"""One way to ask a provider for its models, and the one cache of the answers.

Every reader of model lists goes through here: `exobridge models` (`provider_lists`), the router's check of
what an Exo node serves (`node_model_ids`, called by the Exo kind's `choose_model`), `providers status`,
`doctor` and shell completion (which reads the cache file directly, see below). The provider kind knows the
list's URL and how to parse it (`ProviderKind.models_url`, `.parse_models`); this module owns the fetching,
its deadlines and caps, and the cache. So `exobridge models --refresh` also refreshes what the router believes
an Exo node serves, and a list the router read shows up in `exobridge models`.

Bounds (README "Deadlines and size caps"): one list GET ends within the kind's `model_list_seconds` (Exo:
5 s; otherwise `LIST_SECONDS`, 15 s) and never after the provider's first_token_timeout (wall clock, connect
included; a server dripping one byte a second cannot extend it) and reads at most `http.MODEL_LIST_CAP`
decoded bytes; an Exo cluster's `/state` gets `STATE_SECONDS` more. All the nodes of one provider share
`PROVIDER_SECONDS`; the providers are read at once, so `exobridge models` ends within about
`PROVIDER_SECONDS` whatever the servers do. The router's check of an Exo node gets
min(`ROUTER_LIST_SECONDS`, first_token_timeout).

Shared cache contract (read by core/completion_values.py, written only here):

    JsonCache("models")  ->  file `<cache_dir>/models.json`
    key   = provider name (as configured, e.g. "exo", "openrouter")
    value = list of objects, each with at least "id" (str); optional "free" (bool), "placed" (bool, Exo v1:
            an instance of this model is running), "context_length" (int), "hugging_face_id" (str)

Only lists that were read successfully are cached; a provider that cannot be reached leaves its old entry alone.
Details about the list itself (the node url it came from, the Exo API line, when it was read) live in a second
cache, `JsonCache("models-meta")` = {provider: {"url", "read_at", "line", "note", "nodes"?}}, so the value above
stays a plain list; `nodes` = {node url: {"at", "ids"}} remembers what the router read from the provider's other
nodes (cleared whenever `exobridge models` reads the list). `exobridge models` trusts an entry for `CACHE_TTL`
(1 hour); the router trusts one for `ROUTER_TTL` (5 minutes), and only when it was read from the node it asks.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from exobridge.core import keys as keys_mod
from exobridge.core import model_targets
from exobridge.core.cache import JsonCache
from exobridge.core.config import Config, ProviderConfig
from exobridge.core.errors import Failure, FailureKind

if TYPE_CHECKING:
    import httpx

    from exobridge.core.providers.base import ProviderKind

CACHE_NAME = "models"
META_CACHE_NAME = "models-meta"
CACHE_TTL = 3600.0  # `exobridge models` and `providers status` reuse a list this long
ROUTER_TTL = 300.0  # the router re-reads an Exo node's list after this long (models get placed and removed)
LIST_SECONDS = 15.0  # one model-list GET, wall clock
STATE_SECONDS = 5.0  # an Exo cluster's /state GET (which models are placed), wall clock
PROVIDER_SECONDS = 20.0  # all the nodes of one provider together
RUN_SECONDS = PROVIDER_SECONDS + 1.0  # provider_lists waits this long at most; a read still running is reported
ROUTER_LIST_SECONDS = 5.0  # the router's check of an Exo node (also capped by its first_token_timeout)
LEGACY_NOTE = "legacy Exo lists every model card it knows, not what is downloaded or loaded"


class ListStatus(StrEnum):
    """What became of one provider's list."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # the list could not be read (any failure; `reason` says which)
    DISABLED = "disabled"  # not asked: the provider is disabled


@dataclass
class ProviderModels:
    """One provider's list, or why there is none. `failure_kind` lets the CLI make the hint."""

    name: str
    kind: str
    url: str
    status: ListStatus
    models: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    hint: str | None = None  # filled by the CLI (cli/hints.py) from failure_kind; core writes no hints
    cached: bool = False
    read_at: float | None = None
    line: str | None = None  # Exo only: "v1" or "legacy"
    note: str | None = None
    failure_kind: FailureKind | None = None
    prices: dict[str, dict[str, float]] = field(default_factory=dict)  # a priced list's prices (core/spend)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "status": str(self.status),
            "reason": self.reason,
            "hint": self.hint,
            "cached": self.cached,
            "read_at": self.read_at,
            "line": self.line,
            "note": self.note,
            "models": self.models,
        }


def _kind(provider: ProviderConfig) -> type[ProviderKind]:
    from exobridge.core import providers

    return providers.kind_class(provider.kind)


def is_free(provider: ProviderConfig, model: dict[str, Any] | None) -> bool:
    """Whether a listed model costs nothing there (every model of a free kind such as Exo)."""
    if _kind(provider).free:
        return True
    return bool(model and model.get("free"))


class _Reader:
    """One provider's lists over one httpx client, with its key and headers. Raises Failure on any fault."""

    def __init__(self, provider: ProviderConfig, key: str | None, http: httpx.Client) -> None:
        from exobridge.core import providers

        self.provider = provider
        self.key = key
        self.http = http
        self.kind = providers.kind_class(provider.kind)
        self.headers = providers.client_for(provider, key, http).headers()
        self.headers["Accept"] = "application/json"

    def list_seconds(self) -> float:
        """A list GET's wall-clock bound: the kind's (Exo on the LAN: a few seconds; the cloud: `LIST_SECONDS`),
        never more than the provider's first_token_timeout."""
        seconds = self.kind.model_list_seconds or LIST_SECONDS
        return min(seconds, self.provider.first_token_timeout)

    def get_json(self, url: str, seconds: float) -> Any:
        """The JSON body of a 2xx reply within `seconds` (wall clock) and the model-list cap."""
        from exobridge.core import http

        deadline = time.monotonic() + seconds
        response = http.send(
            self.http,
            "GET",
            url,
            provider=self.provider,
            headers=self.headers,
            timeout=http.timeout_for(self.provider, read=seconds),
            deadline=deadline,
        )
        http.raise_for_status(response, self.provider, deadline=deadline)
        body = http.read_body(response, cap=http.MODEL_LIST_CAP, deadline=deadline, provider=self.provider)
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            snippet = body[:60].decode("utf-8", errors="replace").strip()
            raise Failure(FailureKind.BAD_RESPONSE, f"not JSON: {snippet!r}", response.status_code) from None

    def read_node(self, node: str, deadline: float) -> ProviderModels:
        """The list of one node by `deadline` (monotonic seconds); for an Exo cluster also which models are
        placed (from `/state`, skipped when no time is left)."""
        from exobridge.core import provider_status, spend
        from exobridge.core.providers import StatusProbe

        left = deadline - time.monotonic()
        data = self.get_json(self.kind.models_url(node), min(self.list_seconds(), left))
        listed = self.kind.parse_models(data)
        if listed is None:
            raise Failure(FailureKind.BAD_RESPONSE, "the model list has an unknown shape")
        result = ProviderModels(self.provider.name, self.provider.kind, node, ListStatus.OK, listed)
        result.prices = spend.prices_in_list(self.provider, data)  # the same read: no second request for prices
        if self.kind.status_probe == StatusProbe.EXO_CLUSTER:
            state = None
            left = deadline - time.monotonic()
            if left > 0:
                with contextlib.suppress(Failure):
                    state = self.get_json(f"{node}/state", min(STATE_SECONDS, self.list_seconds(), left))
            _mark_placed(result, state, provider_status.state_placed_models(state))
        return result


def fetch_list(
    provider: ProviderConfig, node: str, key: str | None, *, seconds: float, http: httpx.Client | None = None
) -> list[dict[str, Any]]:
    """One GET of `node`'s model list, parsed by the provider's kind, within `seconds` (wall clock) and the
    model-list cap; nothing cached. Raises `Failure` (reason redacted of the key and header secrets), with
    BAD_RESPONSE "the model list has an unknown shape" when it answered with something else. For
    `providers add --check` and anything else that must ask exactly once."""
    from exobridge.core import http as http_mod
    from exobridge.core.secrets import Redactor

    own = http is None
    client = http_mod.client() if http is None else http
    try:
        reader = _Reader(provider, key, client)
        listed = reader.kind.parse_models(reader.get_json(reader.kind.models_url(node), seconds))
    except Failure as failure:
        failure.reason = Redactor(http_mod.secrets_of(provider, key)).redact(failure.reason)
        raise
    finally:
        if own:
            client.close()
    if listed is None:
        raise Failure(FailureKind.BAD_RESPONSE, "the model list has an unknown shape")
    return listed


def _mark_placed(result: ProviderModels, state: Any, placed_ids: list[str]) -> None:
    """An Exo v1 cluster (its `/state` has `instances`) marks each listed model placed or not; legacy says so."""
    if not (isinstance(state, dict) and "instances" in state):
        result.line, result.note = "legacy", LEGACY_NOTE
        return
    from exobridge.core.exo_state import mark_cluster

    result.line = "v1"
    placed = set(placed_ids)
    seen: set[str] = set()
    for entry in result.models:
        names = {entry["id"], entry.get("hugging_face_id")}
        entry["placed"] = bool(names & placed)
        seen.update(n for n in names if n)
    for model in sorted(placed - seen):
        result.models.append({"id": model, "free": True, "placed": True})
    mark_cluster(state, result.models)
    if not placed:
        result.note = "no model is placed: place one with exobridge models load MODEL"


def read_provider(
    provider: ProviderConfig,
    key: str | None,
    *,
    http: httpx.Client | None = None,
    seconds: float = PROVIDER_SECONDS,
) -> ProviderModels:
    """Read one provider's list from the network: each node in turn until one answers, all within `seconds`
    (`PROVIDER_SECONDS`). Never raises for network trouble (it is the `unreachable` result); a broken proxy
    setting raises `errors.ProxyError`."""
    from exobridge.core import http as http_mod
    from exobridge.core.secrets import Redactor

    own = http is None
    client = http_mod.client() if http is None else http
    deadline = time.monotonic() + seconds
    last = Failure(FailureKind.CONNECT, "no url to ask")
    try:
        reader = _Reader(provider, key, client)
        for node in provider.urls:
            if time.monotonic() >= deadline:
                break
            try:
                result = reader.read_node(node, deadline)
            except Failure as failure:
                last = failure
                continue
            result.read_at = time.time()
            return result
    finally:
        if own:
            client.close()
    reason = Redactor(http_mod.secrets_of(provider, key)).redact(last.reason)
    return ProviderModels(
        provider.name,
        provider.kind,
        provider.url,
        ListStatus.UNREACHABLE,
        reason=reason,
        failure_kind=last.kind,
    )


# --- the cache --------------------------------------------------------------------------------------------


def _cached(provider: ProviderConfig, ttl: float) -> ProviderModels | None:
    listed = JsonCache(CACHE_NAME).get(provider.name, ttl)
    if not isinstance(listed, list):
        return None
    models = [m for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]
    meta = JsonCache(META_CACHE_NAME).get(provider.name, ttl)
    meta = meta if isinstance(meta, dict) else {}
    read_at = meta.get("read_at")
    return ProviderModels(
        provider.name,
        provider.kind,
        str(meta.get("url") or provider.url),
        ListStatus.OK,
        models,
        cached=True,
        read_at=read_at if isinstance(read_at, int | float) and not isinstance(read_at, bool) else None,
        line=meta.get("line") if meta.get("line") in ("v1", "legacy") else None,
        note=meta.get("note") if isinstance(meta.get("note"), str) else None,
    )


def _store(results: list[ProviderModels]) -> None:
    """Cache lists that were read (one write per cache file), and the prices priced lists carry."""
    read = [r for r in results if r.status is ListStatus.OK and not r.cached]
    if not read:
        return
    from exobridge.core import spend

    spend.store_many_prices({r.name: r.prices for r in read if r.prices})
    JsonCache(CACHE_NAME).put_many({r.name: r.models for r in read})
    JsonCache(META_CACHE_NAME).put_many(  # no per-node memory: a refreshed list makes the router read again
        {r.name: {"url": r.url, "read_at": r.read_at, "line": r.line, "note": r.note} for r in read}
    )


def read_and_store(provider: ProviderConfig, key: str | None, *, seconds: float) -> ProviderModels:
    """One provider's list read now (within `seconds`, wall clock) and cached with its prices, as
    `exobridge models --refresh` would (`usage` reads price lists this way)."""
    result = read_provider(provider, key, seconds=seconds)
    _store([result])
    return result


def cached_lists(config: Config, ttl: float = CACHE_TTL) -> dict[str, ProviderModels]:
    """Every provider's cached list younger than `ttl`, by provider name (no network)."""
    found = {}
    for provider in config.ordered(include_disabled=True):
        cached = _cached(provider, ttl)
        if cached is not None:
            found[provider.name] = cached
    return found


# --- the router's check of an Exo node --------------------------------------------------------------------


def node_model_ids(
    provider: ProviderConfig,
    node: str,
    key: str | None,
    *,
    http: httpx.Client | None = None,
    max_age: float = ROUTER_TTL,
) -> list[str] | None:
    """The model ids `node` lists, for the router to pick the id to send (and refuse one it lacks).

    From the shared cache when the provider's list was read from this node within `max_age`; else one GET of
    the kind's model-list URL within min(`ROUTER_LIST_SECONDS`, first_token_timeout), stored in the shared
    cache (keeping what a fuller read knew: the Exo line and which models are placed). None when the node
    answered without a usable list (an error status, not JSON, an unknown shape, an empty list): the caller
    then sends the model anyway. Raises `Failure` when the node cannot be reached, at the deadline (a node
    that drips), or when the list passes the size cap.
    """
    from exobridge.core import http as http_mod

    remembered = _remembered_ids(provider, node, max_age)
    if remembered:
        return remembered
    own = http is None
    client = http_mod.client() if http is None else http
    try:
        listed = _router_read(_Reader(provider, key, client), node)
    finally:
        if own:
            client.close()
    if not listed:
        return None
    _store_router_read(provider, node, listed)
    return [entry["id"] for entry in listed]


def _router_read(reader: _Reader, node: str) -> list[dict[str, Any]] | None:
    from exobridge.core import http as http_mod

    seconds = min(ROUTER_LIST_SECONDS, reader.list_seconds())
    deadline = time.monotonic() + seconds
    response = http_mod.send(
        reader.http,
        "GET",
        reader.kind.models_url(node),
        provider=reader.provider,
        headers=reader.headers,
        timeout=http_mod.timeout_for(reader.provider, read=seconds),
        deadline=deadline,
    )
    if response.status_code != 200:
        http_mod.shutdown_response(response)
        return None
    try:
        body = http_mod.read_body(response, cap=http_mod.MODEL_LIST_CAP, deadline=deadline, provider=reader.provider)
    except Failure as failure:
        if failure.kind is FailureKind.STREAM_BROKEN:
            return None
        raise  # at the deadline (a dripping node) or past the cap: this node cannot be asked
    try:
        return reader.kind.parse_models(json.loads(body))
    except (ValueError, RecursionError):
        return None


def _meta(provider: ProviderConfig) -> dict[str, Any]:
    found = JsonCache(META_CACHE_NAME).entry(provider.name)
    return found[1] if found is not None and isinstance(found[1], dict) else {}


def _remembered_ids(provider: ProviderConfig, node: str, max_age: float) -> list[str] | None:
    """Ids `node` listed within `max_age`: the provider's cached list when it came from this node, else what
    the router last read from this node (`models-meta` keeps that per node, so several nodes do not evict
    each other)."""
    meta = _meta(provider)
    if meta.get("url") == node:
        cached = JsonCache(CACHE_NAME).get(provider.name, max_age)
        if isinstance(cached, list):
            ids = [m["id"] for m in cached if isinstance(m, dict) and isinstance(m.get("id"), str)]
            if ids:
                return ids
    nodes = meta.get("nodes")
    seen = nodes.get(node) if isinstance(nodes, dict) else None
    if isinstance(seen, dict) and isinstance(seen.get("at"), int | float) and isinstance(seen.get("ids"), list):
        age = time.time() - seen["at"]
        ids = [i for i in seen["ids"] if isinstance(i, str)]
        if -60 <= age <= max_age and ids:
            return ids
    return None


def _store_router_read(provider: ProviderConfig, node: str, listed: list[dict[str, Any]]) -> None:
    """Cache a list the router read. It becomes the provider's list when that list came from this node or
    there is none (keeping the `placed` marks and the line a fuller read saw); else it is remembered for this
    node only."""
    meta_cache, list_cache = JsonCache(META_CACHE_NAME), JsonCache(CACHE_NAME)
    meta = _meta(provider)
    nodes = meta.get("nodes") if isinstance(meta.get("nodes"), dict) else {}
    nodes = {url: seen for url, seen in nodes.items() if url != node and url in provider.urls}
    previous = list_cache.entry(provider.name)
    if meta.get("url") not in (None, node) and previous is not None:
        nodes[node] = {"at": time.time(), "ids": [entry["id"] for entry in listed]}
        meta_cache.put(provider.name, {**meta, "nodes": nodes})
        return
    if meta.get("url") == node and previous is not None and isinstance(previous[1], list):
        placed = {m.get("id"): m.get("placed") for m in previous[1] if isinstance(m, dict) and "placed" in m}
        for entry in listed:
            if entry["id"] in placed:
                entry["placed"] = placed[entry["id"]]
    same = meta.get("url") == node
    list_cache.put(provider.name, listed)
    meta_cache.put(
        provider.name,
        {
            "url": node,
            "read_at": time.time(),
            "line": meta.get("line") if same else None,
            "note": meta.get("note") if same else None,
            "nodes": nodes,
        },
    )


# --- every provider ---------------------------------------------------------------------------------------


def provider_lists(
    config: Config, only: list[str] | None = None, refresh: bool = False, ttl: float = CACHE_TTL
) -> list[ProviderModels]:
    """Each provider's list, in priority order: from the cache when fresh, else read (all at once).

    Disabled providers are reported as such and not asked, unless named in `only`. Ends within about
    `PROVIDER_SECONDS`: a read still running then is reported unreachable ("did not finish …") and left behind.
    """
    from exobridge.core import http as http_mod
    from exobridge.core import parallel

    providers = config.ordered(include_disabled=True)
    if only:
        providers = [p for p in providers if p.name in only]
    stored = keys_mod.read_keys_file()
    results: dict[str, ProviderModels] = {}
    to_read: list[tuple[ProviderConfig, str | None]] = []
    for provider in providers:
        if not provider.enabled and not only:
            results[provider.name] = ProviderModels(
                provider.name,
                provider.kind,
                provider.url,
                ListStatus.DISABLED,
                reason=f"disabled (exobridge providers enable {provider.name})",
            )
            continue
        cached = None if refresh else _cached(provider, ttl)
        if cached is not None:
            results[provider.name] = cached
            continue
        _kind(provider)  # resolved here, on the calling thread: an unknown kind fails before any thread starts
        to_read.append((provider, keys_mod.resolve(provider, stored=stored).value))
    if to_read:
        shared = http_mod.client()  # a broken proxy setting is a config error (exit 4), raised here, once
        outcomes = parallel.run_each(
            lambda item: read_provider(*item, http=shared),
            to_read,
            timeout=RUN_SECONDS,
            name=lambda item: item[0].name,
            thread_prefix="models",
        )
        read: list[ProviderModels] = []
        for (provider, _key), outcome in zip(to_read, outcomes, strict=True):
            if outcome.timed_out:
                result = ProviderModels(
                    provider.name,
                    provider.kind,
                    provider.url,
                    ListStatus.UNREACHABLE,
                    reason=f"did not finish within {RUN_SECONDS:g} s",
                    failure_kind=FailureKind.FIRST_TOKEN_TIMEOUT,
                )
            else:
                result = outcome.value_or_raise()
            read.append(result)
            results[provider.name] = result
        shared.close()  # a read left behind at the deadline fails on its own thread
        _store(read)
    return [results[p.name] for p in providers]


@dataclass
class TableEntry:
    """One logical name of the model table and, per provider, the id it sends and whether it is there."""

    name: str
    default: bool
    providers: dict[str, dict[str, Any]]  # name -> {"id", "available": True/False/None, "listed", "free"}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "default": self.default, "providers": self.providers}


def _find(models: list[dict[str, Any]], ids: tuple[str, ...]) -> dict[str, Any] | None:
    wanted = {i.lower() for i in ids}
    for model in models:
        names = {str(model.get("id", "")).lower(), str(model.get("hugging_face_id") or "").lower()}
        if names & wanted:
            return model
    return None


def model_table(config: Config, lists: list[ProviderModels], free_only: bool = False) -> list[TableEntry]:
    """The logical names (built-in table + the user's `[models]`) and which providers serve each.

    `available` is True when the provider's list has the id (Exo v1: when an instance is placed), False when
    the list was read and lacks it, None when the list is unknown (unreachable). Only the providers in `lists`
    that are not disabled get a column.
    """
    by_name = {item.name: item for item in lists}
    names = [item.name for item in lists if item.status is not ListStatus.DISABLED]
    entries: list[TableEntry] = []
    for logical in sorted(model_targets.table(config)):
        columns: dict[str, dict[str, Any]] = {}
        for target in model_targets.targets(logical, config, only=names):
            if target.model is None:
                continue
            provider = target.provider
            ids = (target.model, *target.alternates)
            read = by_name.get(provider.name)
            available: bool | None = None
            found = None
            if read is not None and read.status is ListStatus.OK:
                found = _find(read.models, ids)
                available = found is not None
                if found is not None and read.line == "v1":
                    available = bool(found.get("placed"))
            free = is_free(provider, found)
            if free_only and not free:
                continue
            sent = str(found["id"]) if found is not None else target.model
            columns[provider.name] = {"id": sent, "available": available, "listed": found is not None, "free": free}
        if columns or not free_only:
            entries.append(TableEntry(logical, logical == config.default_model, columns))
    return entries


def filter_free(lists: list[ProviderModels], config: Config) -> list[ProviderModels]:
    """The same lists with only the models that cost nothing (OpenRouter price "0", every Exo model)."""
    result = []
    for item in lists:
        provider = config.providers[item.name]
        copy = ProviderModels(**{**item.__dict__, "models": [m for m in item.models if is_free(provider, m)]})
        result.append(copy)
    return result
