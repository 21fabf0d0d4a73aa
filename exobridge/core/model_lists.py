"""What each provider offers: model lists read from the providers, cached, and the logical model table.

Shared cache contract (read by the shell-completion helper, written here):

    JsonCache("models")  ->  file `<cache_dir>/models.json`
    key   = provider name (as configured, e.g. "exo", "openrouter")
    value = list of objects, each with at least "id" (str); optional "free" (bool), "placed" (bool, Exo v1:
            an instance of this model is running), "context_length" (int)

Only lists that were read successfully are cached; a provider that cannot be reached leaves its old entry alone.
Details about the list itself (Exo line, the url it came from, when it was read) live in a second cache,
`JsonCache("models-meta")`, so the value above stays a plain list.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core import keys as keys_mod
from exobridge.core import model_targets, provider_status
from exobridge.core.cache import JsonCache
from exobridge.core.config import Config, ProviderConfig
from exobridge.core.failover import Failure

if TYPE_CHECKING:
    import httpx

CACHE_NAME = "models"
META_CACHE_NAME = "models-meta"
CACHE_TTL = 3600.0
READ_TIMEOUT = 15.0
LEGACY_NOTE = "legacy Exo lists every model card it knows, not what is downloaded or loaded"


@dataclass
class ProviderModels:
    """One provider's list, or why there is none."""

    name: str
    kind: str
    url: str
    status: str  # ok | unreachable | disabled
    models: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    hint: str | None = None
    cached: bool = False
    read_at: float | None = None
    line: str | None = None  # Exo only: "v1" or "legacy"
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "status": self.status,
            "reason": self.reason,
            "hint": self.hint,
            "cached": self.cached,
            "read_at": self.read_at,
            "line": self.line,
            "note": self.note,
            "models": self.models,
        }


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def parse_list(data: Any, kind: str) -> list[dict[str, Any]] | None:
    """Model entries from an OpenAI-style `{"data": [...]}` reply; None when the shape is unknown."""
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return None
    models: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        entry: dict[str, Any] = {"id": item["id"]}
        pricing = item.get("pricing")
        if kind == "exo":
            entry["free"] = True
            if isinstance(item.get("hugging_face_id"), str):
                entry["hugging_face_id"] = item["hugging_face_id"]
        elif isinstance(pricing, dict) and "prompt" in pricing and "completion" in pricing:
            entry["free"] = _is_zero(pricing.get("prompt")) and _is_zero(pricing.get("completion"))
        context = item.get("context_length")
        if isinstance(context, int) and not isinstance(context, bool) and context > 0:
            entry["context_length"] = context
        models.append(entry)
    return models


def _timeout(provider: ProviderConfig, read: float = READ_TIMEOUT) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(connect=provider.connect_timeout, read=read, write=read, pool=provider.connect_timeout)


def _get_json(client: Any, url: str, timeout: httpx.Timeout) -> Any:
    """GET a JSON body through a provider client (its headers, its key). Raises Failure on any fault."""
    import json

    import httpx

    from exobridge.core.failover import FailureKind

    response = client.open("GET", url, timeout=timeout)
    client.raise_for_status(response)
    try:
        body = response.read()
    except httpx.HTTPError as exc:
        raise Failure(FailureKind.STREAM_BROKEN, f"connection broke while reading ({exc})") from None
    finally:
        response.close()
    try:
        return json.loads(body)
    except ValueError:
        snippet = body[:60].decode("utf-8", errors="replace").strip()
        raise Failure(FailureKind.BAD_RESPONSE, f"not JSON: {snippet!r}", response.status_code) from None


def _read_exo(client: Any, provider: ProviderConfig, node: str) -> ProviderModels:
    from exobridge.core.failover import FailureKind
    from exobridge.core.providers.exo import MODEL_LIST_READ_TIMEOUT

    # Exo is on the LAN and its list is small: a black-holed node costs seconds, not the cloud's 15 s.
    timeout = _timeout(provider, min(MODEL_LIST_READ_TIMEOUT, provider.first_token_timeout))
    listed = parse_list(_get_json(client, f"{node}/v1/models", timeout), "exo")
    if listed is None:
        raise Failure(FailureKind.BAD_RESPONSE, "the model list has an unknown shape")
    try:
        state = _get_json(client, f"{node}/state", _timeout(provider, MODEL_LIST_READ_TIMEOUT))
    except Failure:
        state = None
    result = ProviderModels(provider.name, provider.kind, node, "ok", listed)
    if isinstance(state, dict) and "instances" in state:
        result.line = "v1"
        placed = set(provider_status.state_placed_models(state))
        seen: set[str] = set()
        for entry in listed:
            names = {entry["id"], entry.get("hugging_face_id")}
            entry["placed"] = bool(names & placed)
            seen.update(n for n in names if n)
        for model in sorted(placed - seen):
            listed.append({"id": model, "free": True, "placed": True})
        if not placed:
            result.note = "no model is placed: start an instance in the Exo dashboard first"
    else:
        result.line = "legacy"
        result.note = LEGACY_NOTE
    return result


def read_provider(provider: ProviderConfig, key: str | None) -> ProviderModels:
    """Read one provider's list from the network (every Exo node in turn until one answers)."""
    import httpx

    from exobridge.core.providers import client_for

    last: Failure | None = None
    with httpx.Client(follow_redirects=False) as http:
        client = client_for(provider, key, http)
        for node in provider.urls:
            try:
                if provider.kind == "exo":
                    result = _read_exo(client, provider, node)
                else:
                    from exobridge.core.failover import FailureKind

                    listed = parse_list(_get_json(client, client.models_url(node), _timeout(provider)), provider.kind)
                    if listed is None:
                        raise Failure(FailureKind.BAD_RESPONSE, "the model list has an unknown shape")
                    result = ProviderModels(provider.name, provider.kind, node, "ok", listed)
            except Failure as failure:
                failure.reason = keys_mod.redact(failure.reason, key)
                last = failure
                continue
            result.read_at = time.time()
            return result
    assert last is not None
    return ProviderModels(
        provider.name, provider.kind, provider.url, "unreachable", reason=last.reason, hint=_hint(provider, last)
    )


def _hint(provider: ProviderConfig, failure: Failure) -> str | None:
    from exobridge.core.failover import FailureKind

    if failure.kind is FailureKind.CONNECT and provider.kind == "exo":
        return f"start Exo, or point exobridge at it: exobridge config set providers.{provider.name}.url URL"
    if failure.kind is FailureKind.AUTH:
        where = " or ".join(provider.key_envs) or "its key"
        return f"set a valid key: exobridge keys set {provider.name} (or {where})"
    return None


def _from_cache(provider: ProviderConfig, ttl: float) -> ProviderModels | None:
    listed = JsonCache(CACHE_NAME).get(provider.name, ttl)
    if not isinstance(listed, list):
        return None
    models = [m for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]
    meta = JsonCache(META_CACHE_NAME).get(provider.name, ttl)
    meta = meta if isinstance(meta, dict) else {}
    return ProviderModels(
        provider.name,
        provider.kind,
        str(meta.get("url") or provider.url),
        "ok",
        models,
        cached=True,
        read_at=meta.get("read_at") if isinstance(meta.get("read_at"), int | float) else None,
        line=meta.get("line") if meta.get("line") in ("v1", "legacy") else None,
        note=meta.get("note") if isinstance(meta.get("note"), str) else None,
    )


def _store(result: ProviderModels) -> None:
    JsonCache(CACHE_NAME).put(result.name, result.models)
    meta = {"url": result.url, "read_at": result.read_at, "line": result.line, "note": result.note}
    JsonCache(META_CACHE_NAME).put(result.name, meta)


def provider_lists(
    config: Config, only: list[str] | None = None, refresh: bool = False, ttl: float = CACHE_TTL
) -> list[ProviderModels]:
    """Each provider's list, in priority order: from the cache when fresh, else read concurrently.

    Disabled providers are reported as such and not asked, unless named in `only`.
    """
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
                "disabled",
                reason=f"disabled (exobridge providers enable {provider.name})",
            )
            continue
        cached = None if refresh else _from_cache(provider, ttl)
        if cached is not None:
            results[provider.name] = cached
            continue
        to_read.append((provider, keys_mod.resolve(provider, stored=stored).value))
    if to_read:
        with ThreadPoolExecutor(max_workers=len(to_read)) as pool:
            for result in pool.map(lambda item: read_provider(*item), to_read):
                if result.status == "ok":
                    _store(result)
                results[result.name] = result
    return [results[p.name] for p in providers]


def is_free(provider: ProviderConfig, model: dict[str, Any] | None) -> bool:
    if provider.kind == "exo":
        return True
    return bool(model and model.get("free"))


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
    names = [item.name for item in lists if item.status != "disabled"]
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
            if read is not None and read.status == "ok":
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
