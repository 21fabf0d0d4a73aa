"""The live status of providers: is each node reachable, is the key good, what can it serve right now.

No status probe ever sends a completion (nothing here POSTs): they only GET health, state, key and
model-list routes, so asking is free. A key goes only to its own provider's configured url, and redirects
are never followed.

How a kind is asked is its class's `status_probe` (core/providers): `models` (the default: GET the model
list, with the key when there is one), `key_info` (OpenRouter's `GET /key`: key valid, credits left) or
`exo_cluster` (`GET /node_id` → v1, else `/healthcheck` → legacy; then `/state` or `/topology` for the nodes
and the placed models). This module implements the strategies; it never compares kind names.

Bounds (README "Deadlines and size caps"): every GET has a wall-clock deadline (`read_timeout`, or the
provider's first_token_timeout when shorter, plus its connect timeout; never past the node's `NODE_SECONDS`)
and a byte cap (`http.JSON_CAP`; error bodies `http.ERROR_BODY_CAP`); a server that drips one byte a second
cannot extend either. All nodes are probed at once on daemon threads (core/parallel), and `probe_all` returns
within `RUN_SECONDS` (11 s): a probe still running then is reported as "did not finish within N s", and left
behind, never joined.

Stable API (also used by `exobridge doctor` and `serve`):

- `probe_all(config, keys=None, *, include_disabled=False, only=None, read_timeout=READ_TIMEOUT,
  cooldowns=None) -> list[ProbeResult]`: every enabled provider, one result per node (each Exo url),
  in priority order. `keys` maps provider name → `keys.ResolvedKey`; providers missing from it are resolved
  from the environment and the keys file. `cooldowns` (a `cooldown.CooldownStore`) fills `cooldown` /
  `last_failure`.
- `probe_provider(provider, url, key=None, *, read_timeout=READ_TIMEOUT, http=None) -> ProbeResult`: one node.
- `ProbeResult.state` (`NodeState`), `.can_answer`: the provider looks able to answer a chat now (reachable,
  key accepted, credits left, and for v1 Exo at least one placed model). `any_can_answer(results)`.
- `status_json(results)`: the `providers status --json` object, `{"can_answer": [...], "nodes": [...]}`.
- Exo's cluster state readers `state_node_count(state)` and `state_placed_models(state)` (model_lists uses them).

Every provider string in a result (problem, key label, model ids) is raw text from the network, redacted of
the provider's secrets; the CLI sanitises it for the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from exobridge.core import keys as keys_mod
from exobridge.core.config import Config, ProviderConfig
from exobridge.core.errors import Failure, FailureKind

if TYPE_CHECKING:
    import httpx

    from exobridge.core.cooldown import CooldownStore
    from exobridge.core.providers.base import ProviderKind

READ_TIMEOUT = 3.0  # seconds a reachable server gets to answer one probe request (wall clock)
NODE_SECONDS = 10.0  # every probe of one node together, wall clock
RUN_SECONDS = NODE_SECONDS + 1.0  # probe_all waits this long at most; a probe still running is "did not finish"
LEGACY_MODELS_NOTE = "every model card the node knows, not what is loaded"
UNREACHABLE_KINDS = (FailureKind.CONNECT, FailureKind.FIRST_TOKEN_TIMEOUT, FailureKind.STREAM_BROKEN)


class NodeState(StrEnum):
    """One node's status in a word (`ProbeResult.state`)."""

    READY = "ready"  # reachable and able to answer a chat now
    PROBLEM = "problem"  # reachable, but something stops it answering (`problem` says what)
    UNREACHABLE = "unreachable"  # no HTTP reply at all
    NOT_PROBED = "not_probed"  # not asked (e.g. no key)
    DISABLED = "disabled"  # the provider is disabled (probed only when asked for)


class ProbeError(Exception):
    """A probe that could not get its answer. `unreachable` means no HTTP reply at all."""

    def __init__(
        self, reason: str, status: int | None = None, unreachable: bool = False, kind: FailureKind | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.unreachable = unreachable
        self.kind = kind or _kind_of(status, unreachable)


def _kind_of(status: int | None, unreachable: bool) -> FailureKind:
    """The failure kind of trouble that is not an HTTP error status (those are classified by failover)."""
    if unreachable:
        return FailureKind.CONNECT
    if status in (401, 403):
        return FailureKind.AUTH
    return FailureKind.BAD_RESPONSE


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
    loading: list[dict[str, Any]] = field(default_factory=list)  # loads in progress (exo_loading)
    # keys and credits
    key_source: str | None = None
    key_masked: str | None = None
    key_valid: bool | None = None
    key_label: str | None = None
    credits_limit: float | None = None
    credits_remaining: float | None = None
    credits_usage: float | None = None
    free_tier: bool | None = None
    failure_kind: FailureKind | None = None  # why it cannot answer, for the CLI's hint (None when it can)
    # remembered routing state
    cooldown: str | None = None  # "connect failure, 23 s left" while cooling down
    cooldown_left: float | None = None
    last_failure: str | None = None

    @property
    def state(self) -> NodeState:
        if not self.enabled:
            return NodeState.DISABLED
        if self.can_answer:
            return NodeState.READY
        if self.reachable is None:
            return NodeState.NOT_PROBED
        return NodeState.PROBLEM if self.reachable else NodeState.UNREACHABLE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key_source"] = None if self.key_source is None else str(self.key_source)
        data["state"] = str(self.state)
        return data


def status_json(results: list[ProbeResult]) -> dict[str, Any]:
    """The `providers status --json` object (serve's `/v1/exobridge/status` too)."""
    ready = list(dict.fromkeys(r.provider for r in results if r.can_answer))  # priority order
    return {"can_answer": ready, "nodes": [r.to_json() for r in results]}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


class _Session:
    """The GETs of one node's probe: one client, the provider's headers and secrets, one wall-clock deadline."""

    def __init__(
        self, provider: ProviderConfig, key: str | None, http: httpx.Client, read_timeout: float, deadline: float
    ) -> None:
        from exobridge.core import http as http_mod
        from exobridge.core import providers
        from exobridge.core.secrets import Redactor

        self.provider = provider
        self.http = http
        self.read_timeout = min(read_timeout, provider.first_token_timeout)  # never longer than a chat would wait
        self.deadline = deadline
        self.kind: type[ProviderKind] = providers.kind_class(provider.kind)
        self.headers = providers.client_for(provider, key, http).headers()
        self.headers["Accept"] = "application/json"
        self.redactor = Redactor(http_mod.secrets_of(provider, key))

    def get(self, url: str) -> tuple[int, Any, bytes]:
        """`(status, JSON or None, body)`; ProbeError for no reply, a deadline or a cap."""
        from exobridge.core import http as http_mod

        left = self.deadline - time.monotonic()
        seconds = min(self.read_timeout + self.provider.connect_timeout, left)
        if seconds <= 0:
            raise ProbeError(f"no reply within {NODE_SECONDS:g} s", unreachable=True)
        try:
            return http_mod.get_json(
                self.http,
                url,
                provider=self.provider,
                headers=self.headers,
                deadline_s=seconds,
                cap=http_mod.JSON_CAP,
                timeout=http_mod.timeout_for(self.provider, read=self.read_timeout),
            )
        except Failure as failure:
            reason = self.redactor.redact(failure.reason)
            if failure.kind is FailureKind.FIRST_TOKEN_TIMEOUT:  # the time a reachable server had to answer
                reason = f"no reply within {min(seconds, self.read_timeout):g} s"
            unreachable = failure.kind in UNREACHABLE_KINDS
            raise ProbeError(reason, failure.status, unreachable=unreachable, kind=failure.kind) from None

    def problem(self, status: int, body: bytes) -> ProbeError:
        """The error a non-2xx reply states, redacted before it is cut short."""
        from exobridge.core.failover import classify_http, parse_error_body

        text = self.redactor.redact(body.decode("utf-8", errors="replace"))
        error = parse_error_body(text.encode("utf-8"))
        kind = classify_http(status, error).kind
        return ProbeError(f"HTTP {status}: {self.redactor.redact(error.message)}", status, kind=kind)


# --- Exo cluster ------------------------------------------------------------------------------------------


def state_node_count(state: Any) -> int | None:
    topology = state.get("topology") if isinstance(state, dict) else None
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


def exo_line(session: _Session, url: str) -> ExoLine:
    """Which Exo API line answers at `url`: v1 (`GET /node_id` → a JSON string) or legacy (`/healthcheck`)."""
    status, data, _ = session.get(f"{url}/node_id")
    if status == 200 and isinstance(data, str):
        return ExoLine("v1", data)
    status, data, _ = session.get(f"{url}/healthcheck")
    if status == 200 and isinstance(data, dict) and data.get("status") == "ok":
        return ExoLine("legacy")
    raise ProbeError(f"not an Exo API (no /node_id or /healthcheck; HTTP {status})", status)


def _exo_state(session: _Session, url: str) -> dict[str, Any]:
    status, data, body = session.get(f"{url}/state")
    if status != 200:
        raise session.problem(status, body)
    if not isinstance(data, dict):
        raise ProbeError("GET /state: not a JSON object")
    return data


def _legacy_node_count(session: _Session, url: str) -> int | None:
    """Nodes in a legacy cluster: `len(/topology nodes)` (or `/v1/topology`)."""
    for path in ("/topology", "/v1/topology"):
        status, data, body = session.get(f"{url}{path}")
        if status == 404:
            continue
        if status != 200:
            raise session.problem(status, body)
        if not isinstance(data, dict):
            return None
        nodes = data.get("nodes", {})
        return len(nodes) if isinstance(nodes, dict | list) else None
    return None


def _probe_exo_cluster(result: ProbeResult, session: _Session, url: str) -> None:
    line = exo_line(session, url)
    result.reachable = True
    result.api_line, result.node_id = line.line, line.node_id
    if line.line == "v1":
        from exobridge.core.exo_state import loads_in_progress

        state = _exo_state(session, url)
        result.nodes = state_node_count(state)
        result.loading = loads_in_progress(state)
        ready = ReadyModels(state_placed_models(state))
    else:
        try:
            result.nodes = _legacy_node_count(session, url)
        except ProbeError as exc:
            result.problem = f"node count: {exc.reason}"
        ready = ReadyModels(_list_ids(session, session.kind.models_url(url)), LEGACY_MODELS_NOTE)
    result.models = ready.ids
    result.models_ready = len(ready.ids)
    result.models_ready_note = ready.note
    if line.line == "v1" and not ready.ids:
        result.problem = "no model is placed (place one: exobridge models load MODEL)"
        result.failure_kind = FailureKind.MODEL_UNAVAILABLE
        return
    result.can_answer = True


# --- model lists and key info -----------------------------------------------------------------------------


def _list_ids(session: _Session, url: str) -> list[str]:
    """The ids of the model list at `url` (the kind parses it)."""
    status, data, body = session.get(url)
    if status != 200:
        raise session.problem(status, body)
    models = session.kind.parse_models(data)
    if models is None:
        raise ProbeError("GET /models: not a model list")
    from exobridge.core import spend

    spend.remember_prices(session.provider, data)  # a priced list's prices, from this same read (usage, budgets)
    return [m["id"] for m in models]


def _note_rejected_key(result: ProbeResult, exc: ProbeError, keyed: bool) -> None:
    if exc.status is not None:
        result.reachable = True
        if exc.status in (401, 403) and keyed:
            result.key_valid = False


def _probe_key_info(result: ProbeResult, session: _Session, url: str, keyed: bool) -> None:
    """`GET {url}/key` (or `{url}/auth/key` on 404) → its `data` object: label, limit, limit_remaining, …"""
    try:
        status, data, body = session.get(f"{url}/key")
        if status == 404:
            status, data, body = session.get(f"{url}/auth/key")
        if status != 200:
            raise session.problem(status, body)
        info = data.get("data") if isinstance(data, dict) else None
        if not isinstance(info, dict):
            raise ProbeError("GET /key: unexpected reply shape", status)
    except ProbeError as exc:
        _note_rejected_key(result, exc, keyed)
        raise
    result.reachable = True
    result.key_valid = True
    label = info.get("label")
    result.key_label = session.redactor.redact(label) if isinstance(label, str) else None
    result.credits_limit = _number(info.get("limit"))
    result.credits_remaining = _number(info.get("limit_remaining"))
    result.credits_usage = _number(info.get("usage"))
    free = info.get("is_free_tier")
    result.free_tier = free if isinstance(free, bool) else None
    if result.credits_remaining is not None and result.credits_remaining <= 0:
        result.problem = "the key's credit limit is used up"
        result.failure_kind = FailureKind.CREDITS
        return
    result.can_answer = True


def _probe_model_list(result: ProbeResult, session: _Session, url: str, keyed: bool) -> None:
    try:
        ids = _list_ids(session, session.kind.models_url(url))
    except ProbeError as exc:
        _note_rejected_key(result, exc, keyed)
        raise
    result.reachable = True
    if keyed:
        result.key_valid = True
    result.models = ids
    result.models_ready = len(ids)
    result.can_answer = True


# --- one node, all nodes ----------------------------------------------------------------------------------


def probe_provider(
    provider: ProviderConfig,
    url: str,
    key: keys_mod.ResolvedKey | None = None,
    *,
    read_timeout: float = READ_TIMEOUT,
    http: httpx.Client | None = None,
) -> ProbeResult:
    """Probe one node of one provider within `NODE_SECONDS`. Network trouble is reported in the result, never
    raised; a broken proxy setting raises `errors.ProxyError` (a config error, like every command)."""
    from exobridge.core import http as http_mod
    from exobridge.core.providers import StatusProbe

    key = key if key is not None else keys_mod.resolve(provider)
    result = ProbeResult(provider.name, provider.kind, url, provider.enabled)
    result.key_source = key.source
    result.key_masked = key.masked or None
    if key.missing:
        result.problem = keys_mod.missing_key_reason(provider)  # the one wording; the CLI adds the fix
        result.failure_kind = FailureKind.NO_KEY
        return result
    own = http is None
    client = http_mod.client() if http is None else http
    started = time.monotonic()
    try:
        session = _Session(provider, key.value, client, read_timeout, started + NODE_SECONDS)
        keyed = key.value is not None
        if session.kind.status_probe == StatusProbe.EXO_CLUSTER:
            _probe_exo_cluster(result, session, url)
        elif session.kind.status_probe == StatusProbe.KEY_INFO:
            _probe_key_info(result, session, url, keyed)
        else:
            _probe_model_list(result, session, url, keyed)
    except ProbeError as exc:
        result.failure_kind = exc.kind
        if exc.unreachable:
            result.reachable = False
        elif result.reachable is None:
            result.reachable = True
        result.status = exc.status
        result.problem = exc.reason
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
    """Every (enabled) provider's every node, probed at once; results in priority order, within
    `RUN_SECONDS` whatever the servers do."""
    from exobridge.core import http as http_mod
    from exobridge.core import parallel, providers

    chosen = [p for p in config.ordered(include_disabled=include_disabled) if not only or p.name in only]
    stored = keys_mod.read_keys_file()
    jobs: list[tuple[ProviderConfig, str, keys_mod.ResolvedKey]] = []
    for provider in chosen:
        providers.kind_class(provider.kind)  # resolved on this thread: an unknown kind fails before any probe
        key = (keys or {}).get(provider.name) or keys_mod.resolve(provider, stored=stored)
        for url in provider.urls:
            jobs.append((provider, url, key))
    if not jobs:
        return []
    shared = http_mod.client()  # a broken proxy setting is a config error (exit 4), raised here, once
    try:
        outcomes = parallel.run_each(
            lambda job: probe_provider(job[0], job[1], job[2], read_timeout=read_timeout, http=shared),
            jobs,
            timeout=RUN_SECONDS,
            name=lambda job: job[0].name,
            thread_prefix="probe",
        )
    finally:
        shared.close()  # a probe left behind at the deadline fails on its own thread
    results: list[ProbeResult] = []
    for (provider, url, key), outcome in zip(jobs, outcomes, strict=True):
        if outcome.timed_out:
            result = ProbeResult(provider.name, provider.kind, url, provider.enabled, reachable=False)
            result.key_source, result.key_masked = key.source, key.masked or None
            result.problem = f"did not finish within {RUN_SECONDS:g} s"
            result.failure_kind = FailureKind.FIRST_TOKEN_TIMEOUT
        else:
            result = outcome.value_or_raise()
        if not provider.enabled:
            result.problem = result.problem or "disabled"
            result.can_answer = False
        results.append(result)
    if cooldowns is not None:
        annotate_cooldowns(results, cooldowns)
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
