"""Live, read-only probes of providers: is it reachable, is the key good, what can it serve right now.

No probe ever sends a completion (nothing here POSTs): they only GET health, state, key and model-list routes,
so probing is free. A key goes only to its own provider's configured url.

Stable API (also used by `exobridge doctor`):

- `probe_all(config, keys=None, *, include_disabled=False, only=None, read_timeout=READ_TIMEOUT,
  cooldowns=None) -> list[ProbeResult]`: every enabled provider, one result per node (each Exo url),
  probed concurrently (one thread per node), returned in priority order. `keys` maps provider name →
  `keys.ResolvedKey`; providers missing from it are resolved from the environment and the keys file.
  `cooldowns` (a `cooldown.CooldownStore`) fills `cooldown` / `last_failure` when given.
- `probe_provider(provider, url, key, *, read_timeout, http=None) -> ProbeResult`: one node.
- Individual probes, each taking an `httpx.Client`, raising `ProbeError` on trouble:
  `exo_line(http, url, timeout) -> ExoLine`, `exo_node_count(http, url, line, timeout) -> int | None`,
  `exo_models_ready(http, url, line, timeout) -> ReadyModels`,
  `openrouter_key_info(http, url, headers, timeout) -> dict` (the `data` object of `GET {url}/key`),
  `list_models(http, url, headers, timeout) -> list[str]` (`GET {url}/models`).
- `ProbeResult.can_answer`: the provider looks able to answer a chat now (reachable, key accepted, credits
  left, and for v1 Exo at least one placed model). `any_can_answer(results)`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core import keys as keys_mod
from exobridge.core.config import Config, ProviderConfig

if TYPE_CHECKING:
    import httpx

    from exobridge.core.cooldown import CooldownStore

READ_TIMEOUT = 3.0  # seconds a reachable server gets to answer one probe request
LEGACY_MODELS_NOTE = "every model card the node knows, not what is loaded"


class ProbeError(Exception):
    """A probe that could not get its answer. `unreachable` means no HTTP reply at all."""

    def __init__(self, reason: str, status: int | None = None, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.unreachable = unreachable


@dataclass(frozen=True)
class ExoLine:
    line: str  # "v1" | "legacy"
    node_id: str | None = None


@dataclass(frozen=True)
class ReadyModels:
    ids: list[str]
    note: str | None = None  # set when the count is not "loaded and servable" (legacy lists every card)


@dataclass
class ProbeResult:
    provider: str
    kind: str
    url: str
    enabled: bool = True
    reachable: bool | None = None  # None: not probed (e.g. no key)
    latency_ms: int | None = None
    can_answer: bool = False
    problem: str | None = None  # the one line saying why it cannot answer (or what looks wrong)
    status: int | None = None
    # exo
    api_line: str | None = None
    node_id: str | None = None
    nodes: int | None = None
    models_ready: int | None = None
    models_ready_note: str | None = None
    models: list[str] = field(default_factory=list)
    # keys and credits
    key_source: str | None = None
    key_masked: str | None = None
    key_valid: bool | None = None
    key_label: str | None = None
    credits_limit: float | None = None
    credits_remaining: float | None = None
    credits_usage: float | None = None
    free_tier: bool | None = None
    # remembered routing state
    cooldown: str | None = None  # "connect failure, 23 s left" while cooling down
    cooldown_left: float | None = None
    last_failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _timeout(provider: ProviderConfig, read_timeout: float) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(
        connect=provider.connect_timeout, read=read_timeout, write=read_timeout, pool=provider.connect_timeout
    )


def _get(http: httpx.Client, url: str, headers: Mapping[str, str] | None, timeout: Any) -> httpx.Response:
    """GET, with transport errors turned into an unreachable ProbeError. The body is read."""
    import httpx

    try:
        return http.get(url, headers=dict(headers or {}), timeout=timeout, follow_redirects=False)
    except httpx.ConnectTimeout:
        raise ProbeError("connect timeout", unreachable=True) from None
    except httpx.ConnectError as exc:
        text = str(exc).lower()
        reason = "connection refused" if "refused" in text else f"cannot connect ({exc or type(exc).__name__})"
        raise ProbeError(reason, unreachable=True) from None
    except httpx.TimeoutException:
        read = getattr(timeout, "read", None)
        reason = f"no reply within {read:g} s" if isinstance(read, int | float) else "no reply in time"
        raise ProbeError(reason, unreachable=True) from None
    except httpx.HTTPError as exc:
        raise ProbeError(f"{type(exc).__name__}: {exc}", unreachable=True) from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _http_problem(response: httpx.Response) -> ProbeError:
    from exobridge.core.failover import parse_error_body

    error = parse_error_body(response.content, response.headers.get("content-type", ""))
    return ProbeError(f"HTTP {response.status_code}: {error.message}", response.status_code)


# --- Exo ------------------------------------------------------------------------------------------


def exo_line(http: httpx.Client, url: str, timeout: Any) -> ExoLine:
    """Which Exo API line answers at `url`: v1 (`GET /node_id` → a JSON string) or legacy (`/healthcheck`)."""
    response = _get(http, f"{url}/node_id", None, timeout)
    if response.status_code == 200:
        data = _json(response)
        if isinstance(data, str):
            return ExoLine("v1", data)
    response = _get(http, f"{url}/healthcheck", None, timeout)
    data = _json(response) if response.status_code == 200 else None
    if isinstance(data, dict) and data.get("status") == "ok":
        return ExoLine("legacy")
    raise ProbeError(f"not an Exo API (no /node_id or /healthcheck; HTTP {response.status_code})", response.status_code)


def _exo_state(http: httpx.Client, url: str, timeout: Any) -> dict[str, Any]:
    response = _get(http, f"{url}/state", None, timeout)
    if response.status_code != 200:
        raise _http_problem(response)
    data = _json(response)
    if not isinstance(data, dict):
        raise ProbeError("GET /state: not a JSON object")
    return data


def state_node_count(state: dict[str, Any]) -> int | None:
    topology = state.get("topology")
    nodes = topology.get("nodes") if isinstance(topology, dict) else None
    return len(nodes) if isinstance(nodes, list | dict) else None


def state_placed_models(state: Any) -> list[str]:
    """Model ids of the placed instances: `instances.<id>.<Tag>.shardAssignments.modelId`.

    Instances are one-key dicts tagged with their class; an untagged instance and snake_case keys (older
    builds) are read too.
    """
    found: list[str] = []
    instances = state.get("instances") if isinstance(state, dict) else None
    if not isinstance(instances, dict):
        return found
    for wrapped in instances.values():
        if not isinstance(wrapped, dict) or not wrapped:
            continue
        inner = next(iter(wrapped.values()))
        if isinstance(inner, dict) and "shardAssignments" not in inner and "shard_assignments" not in inner:
            inner = wrapped
        if not isinstance(inner, dict):
            continue
        assignments = inner.get("shardAssignments") or inner.get("shard_assignments")
        model = (assignments.get("modelId") or assignments.get("model_id")) if isinstance(assignments, dict) else None
        if isinstance(model, str) and model not in found:
            found.append(model)
    return found


def exo_node_count(http: httpx.Client, url: str, line: str, timeout: Any) -> int | None:
    """Nodes in the cluster: v1 `len(/state topology.nodes)`, legacy `len(/topology nodes)`."""
    if line == "v1":
        return state_node_count(_exo_state(http, url, timeout))
    for path in ("/topology", "/v1/topology"):
        response = _get(http, f"{url}{path}", None, timeout)
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            raise _http_problem(response)
        data = _json(response)
        if not isinstance(data, dict):
            return None
        nodes = data.get("nodes", {})
        return len(nodes) if isinstance(nodes, dict | list) else None
    return None


def exo_models_ready(http: httpx.Client, url: str, line: str, timeout: Any) -> ReadyModels:
    """v1: the models placed on the cluster (from /state). Legacy: every card in /v1/models (with a note)."""
    if line == "v1":
        return ReadyModels(state_placed_models(_exo_state(http, url, timeout)))
    return ReadyModels(list_models(http, url + "/v1", None, timeout), LEGACY_MODELS_NOTE)


# --- OpenAI-style and OpenRouter ------------------------------------------------------------------


def list_models(http: httpx.Client, url: str, headers: Mapping[str, str] | None, timeout: Any) -> list[str]:
    """`GET {url}/models` → the ids of an OpenAI-style list."""
    response = _get(http, f"{url}/models", headers, timeout)
    if response.status_code != 200:
        raise _http_problem(response)
    data = _json(response)
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ProbeError("GET /models: not a model list")
    return [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]


def openrouter_key_info(http: httpx.Client, url: str, headers: Mapping[str, str], timeout: Any) -> dict[str, Any]:
    """`GET {url}/key` (or `{url}/auth/key` on 404) → its `data` object (label, limit, limit_remaining, …)."""
    response = _get(http, f"{url}/key", headers, timeout)
    if response.status_code == 404:
        response = _get(http, f"{url}/auth/key", headers, timeout)
    if response.status_code != 200:
        raise _http_problem(response)
    data = _json(response)
    info = data.get("data") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise ProbeError("GET /key: unexpected reply shape")
    return info


# --- one node, all nodes ----------------------------------------------------------------------------


def _headers(provider: ProviderConfig, key: str | None, http: httpx.Client) -> dict[str, str]:
    from exobridge.core.providers import client_for

    headers = client_for(provider, key, http).headers()
    headers["Accept"] = "application/json"
    return headers


def _probe_exo(result: ProbeResult, http: httpx.Client, url: str, timeout: Any) -> None:
    line = exo_line(http, url, timeout)
    result.reachable = True
    result.api_line, result.node_id = line.line, line.node_id
    if line.line == "v1":
        state = _exo_state(http, url, timeout)
        result.nodes = state_node_count(state)
        ready = ReadyModels(state_placed_models(state))
    else:
        try:
            result.nodes = exo_node_count(http, url, line.line, timeout)
        except ProbeError as exc:
            result.problem = f"node count: {exc.reason}"
        ready = exo_models_ready(http, url, line.line, timeout)
    result.models = ready.ids
    result.models_ready = len(ready.ids)
    result.models_ready_note = ready.note
    if line.line == "v1" and not ready.ids:
        result.problem = "no model is placed (place one from the Exo dashboard)"
        return
    result.can_answer = True


def _probe_openrouter(result: ProbeResult, http: httpx.Client, url: str, headers: dict[str, str], timeout: Any) -> None:
    try:
        info = openrouter_key_info(http, url, headers, timeout)
    except ProbeError as exc:
        if exc.status is not None:
            result.reachable = True
            if exc.status in (401, 403):
                result.key_valid = False
        raise
    result.reachable = True
    result.key_valid = True
    label = info.get("label")
    result.key_label = label if isinstance(label, str) else None
    result.credits_limit = _number(info.get("limit"))
    result.credits_remaining = _number(info.get("limit_remaining"))
    result.credits_usage = _number(info.get("usage"))
    free = info.get("is_free_tier")
    result.free_tier = free if isinstance(free, bool) else None
    if result.credits_remaining is not None and result.credits_remaining <= 0:
        result.problem = "the key's credit limit is used up"
        return
    result.can_answer = True


def _probe_models_list(
    result: ProbeResult, http: httpx.Client, url: str, headers: dict[str, str], timeout: Any, keyed: bool
) -> None:
    try:
        ids = list_models(http, url, headers, timeout)
    except ProbeError as exc:
        if exc.status is not None:
            result.reachable = True
            if exc.status in (401, 403) and keyed:
                result.key_valid = False
        raise
    result.reachable = True
    if keyed:
        result.key_valid = True
    result.models = ids
    result.models_ready = len(ids)
    result.can_answer = True


def probe_provider(
    provider: ProviderConfig,
    url: str,
    key: keys_mod.ResolvedKey | None = None,
    *,
    read_timeout: float = READ_TIMEOUT,
    http: httpx.Client | None = None,
) -> ProbeResult:
    """Probe one node of one provider. Never raises for network trouble: it is reported in the result."""
    import httpx

    key = key if key is not None else keys_mod.resolve(provider)
    result = ProbeResult(provider.name, provider.kind, url, provider.enabled)
    result.key_source = key.source
    result.key_masked = key.masked or None
    if key.source == "missing":
        result.problem = f"no API key (set {' or '.join(provider.key_envs)}, or exobridge keys set {provider.name})"
        return result
    own = http is None
    try:
        client = httpx.Client(follow_redirects=False, trust_env=True) if own else http
    except Exception as exc:  # e.g. a malformed HTTP(S)_PROXY, or a SOCKS proxy without socksio
        result.reachable = False
        result.problem = f"cannot set up HTTP (check the *_PROXY variables): {type(exc).__name__}: {exc}"
        return result
    assert client is not None
    timeout = _timeout(provider, read_timeout)
    started = time.monotonic()
    try:
        headers = _headers(provider, key.value, client)
        if provider.kind == "exo":
            _probe_exo(result, client, url, timeout)
        elif provider.kind == "openrouter":
            _probe_openrouter(result, client, url, headers, timeout)
        else:
            _probe_models_list(result, client, url, headers, timeout, keyed=key.value is not None)
    except ProbeError as exc:
        if exc.unreachable:
            result.reachable = False
        elif result.reachable is None:
            result.reachable = True
        result.status = exc.status
        result.problem = keys_mod.redact(exc.reason, key.value)
        result.can_answer = False
    finally:
        result.latency_ms = int((time.monotonic() - started) * 1000)
        if own:
            client.close()
    if not result.reachable:
        result.latency_ms = None
    return result


def probe_all(
    config: Config,
    keys: Mapping[str, keys_mod.ResolvedKey] | None = None,
    *,
    include_disabled: bool = False,
    only: list[str] | None = None,
    read_timeout: float = READ_TIMEOUT,
    cooldowns: CooldownStore | None = None,
) -> list[ProbeResult]:
    """Every (enabled) provider's every node, probed at once; results in priority order."""
    providers = [p for p in config.ordered(include_disabled=include_disabled) if not only or p.name in only]
    stored = keys_mod.read_keys_file()
    jobs: list[tuple[ProviderConfig, str, keys_mod.ResolvedKey]] = []
    for provider in providers:
        key = (keys or {}).get(provider.name) or keys_mod.resolve(provider, stored=stored)
        for url in provider.urls:
            jobs.append((provider, url, key))
    if not jobs:
        return []
    results = _run_probes(jobs, read_timeout)
    for (provider, _url, _key), result in zip(jobs, results, strict=True):
        if not provider.enabled:
            result.problem = result.problem or "disabled"
            result.can_answer = False
    if cooldowns is not None:
        annotate_cooldowns(results, cooldowns)
    return results


def _run_probes(jobs: list[tuple[ProviderConfig, str, keys_mod.ResolvedKey]], read_timeout: float) -> list[ProbeResult]:
    """One daemon thread per node: Ctrl-C (e.g. in `status --watch`) exits at once, not after a stalled probe."""
    slots: list[ProbeResult | BaseException | None] = [None] * len(jobs)
    done = [threading.Event() for _ in jobs]

    def work(index: int) -> None:
        provider, url, key = jobs[index]
        try:
            slots[index] = probe_provider(provider, url, key, read_timeout=read_timeout)
        except BaseException as exc:  # handed to the caller below
            slots[index] = exc
        finally:
            done[index].set()

    for index in range(len(jobs)):
        threading.Thread(target=work, args=(index,), daemon=True, name=f"probe-{jobs[index][0].name}").start()
    results: list[ProbeResult] = []
    for index, event in enumerate(done):
        event.wait()
        slot = slots[index]
        if isinstance(slot, BaseException):
            raise slot
        assert slot is not None
        results.append(slot)
    return results


def annotate_cooldowns(results: list[ProbeResult], cooldowns: CooldownStore) -> None:
    """Fill `cooldown`, `cooldown_left` and `last_failure` from the remembered routing state."""
    now = time.time()
    for result in results:
        entry = cooldowns.get(result.provider, result.url)
        if entry is None:
            continue
        result.last_failure = entry.describe()
        left = entry.left(now)
        if left > 0:
            result.cooldown_left = left
            result.cooldown = entry.blocked_reason(now)


def any_can_answer(results: list[ProbeResult]) -> bool:
    return any(r.can_answer for r in results)
