"""Loading a model onto an Exo cluster, and unloading it: the core behind `exobridge models load/unload` and
chat's `load = "auto"`. No terminal here: `ExoLoader.load()` yields `LoadEvent`s, the front end shows them.

Current line (v1; shapes in docs/exo-api.md):

1. `GET /v1/models` finds the node's id for the model (and its size), `GET /state` says whether it is placed.
2. `GET /instance/previews?model_id=` says where it would fit. No preview without an error means it does not
   fit the cluster's memory now: say so with the sizes, and place nothing (a real node accepts
   `POST /place_instance` with 200 even when no placement is possible; the failure shows only in its log).
3. `POST /place_instance` with the first fitting preview's sharding, instance kind and node count.
4. `GET /instance/await?model_id=&timeout_seconds=` (SSE) on a helper thread says when the instance exists, or
   that none appeared (placement failed); meanwhile `GET /state` every `poll` seconds gives download progress
   per node (`downloads`) and runner status (`runners`) until every runner of the instance is ready.

Legacy line: `POST /download {"model"}`, then `GET /v1/download/progress` (per node, only downloads in
progress) until the model's download is gone from it; `GET /modelpool` (SSE) says what is already downloaded.
Legacy Exo loads a downloaded model into memory at its first request.

Every request goes through core/http.py with a wall-clock deadline and a size cap; the whole load is bounded
by `timeout`. Ctrl-C (KeyboardInterrupt) passes through; `cancel()` undoes a placement.

For the other front ends and views (all pure functions of data already read):
- `resolve(spec, config) -> LoadTarget`; `ExoLoader(provider, key).load(target, timeout=) -> Iterator[LoadEvent]`,
  `.unload(target)`, `.cancel()`; `outcome_error(last_event)` (None, ExoLoadError 3, LoadTimeoutError 6).
- `is_not_loaded(provider, failure)`: Exo's 404 "No instance found" (the Router's `on_not_loaded` hook).
- What `/state` says (instances, downloads, runners, free memory) is read by core/exo_state.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from exobridge.core.errors import ExoLoadError, Failure, FailureKind, LoadTimeoutError, UsageError
from exobridge.core.exo_state import (
    InstanceView,
    NodeProgress,
    byte_count,
    downloads_of,
    error_message,
    field_of,
    free_memory,
    instance_view,
    instances_of,
    number_of,
    runners_of,
)

if TYPE_CHECKING:
    import httpx

    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.model_targets import Target

REQUEST_SECONDS = 5.0  # one GET or POST to a node (wall clock, headers and body)
PLACE_WAIT = 30.0  # how long an accepted placement may take to show an instance before it counts as failed
DEFAULT_TIMEOUT = 1800.0  # `models load` without --timeout: 30 minutes (a 70B model downloads for a while)
POLL = 1.0  # at most this many seconds between two reads of /state (or legacy download progress)
FIRST_POLL = 0.05  # the first wait; each next one doubles, up to POLL
MODELPOOL_SECONDS = 5.0  # legacy /modelpool walks every model's files: give it a little longer


class Phase(StrEnum):
    """Where a load is. Terminal phases: READY, FAILED, TIMEOUT."""

    CHECKING = "checking"  # asking where the model would fit
    PLACING = "placing"  # placement sent, no instance yet
    PLACED = "placed"  # an instance exists; nothing downloading or loading reported yet
    DOWNLOADING = "downloading"
    LOADING = "loading"  # files are there; runners load the weights
    READY = "ready"
    FAILED = "failed"
    TIMEOUT = "timeout"


TERMINAL = frozenset({Phase.READY, Phase.FAILED, Phase.TIMEOUT})


@dataclass
class LoadEvent:
    """What a load looks like now. `message` is one plain line (provider strings in it are raw: sanitise for a
    terminal); `nodes` the per-node download progress."""

    phase: Phase
    provider: str
    model: str
    message: str
    line: str = "v1"
    nodes: list[NodeProgress] = field(default_factory=list)
    node_count: int | None = None
    sharding: str | None = None
    shards: int | None = None
    size_bytes: int | None = None
    instance_id: str | None = None
    layers_loaded: int | None = None
    layers_total: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": str(self.phase),
            "provider": self.provider,
            "model": self.model,
            "line": self.line,
            "message": self.message,
            "node_count": self.node_count,
            "sharding": self.sharding,
            "shards": self.shards,
            "size_bytes": self.size_bytes,
            "instance_id": self.instance_id,
            "layers_loaded": self.layers_loaded,
            "layers_total": self.layers_total,
            "nodes": [node.to_json() for node in self.nodes],
        }


@dataclass(frozen=True)
class FitCheck:
    """Where the model would fit (from previews): `fits`, the chosen placement, the sizes for the message."""

    fits: bool
    size_bytes: int | None
    node_count: int | None = None
    sharding: str | None = None
    instance_meta: str | None = None
    reasons: tuple[str, ...] = ()
    free_bytes: int | None = None
    cluster_nodes: int | None = None
    checked: bool = True  # False: the node cannot preview placements (older build); placed unchecked


def size_text(n: int | None) -> str:
    """`1.9 GB`, `640 MB` (decimal units, as Exo's dashboard and model cards show sizes)."""
    if n is None:
        return "unknown size"
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f} GB"
    if n >= 1_000_000:
        return f"{n / 1e6:.0f} MB"
    return f"{n / 1e3:.0f} kB"


# --- choosing the provider and the id --------------------------------------------------------------------


def kind_loads(provider: ProviderConfig) -> bool:
    """Whether this provider's kind can load models (`models load`, the `load` setting)."""
    from exobridge.core import providers

    return bool(getattr(providers.kind_class(provider.kind), "loads_models", False))


def is_not_loaded(provider: ProviderConfig, failure: Failure) -> bool:
    """The failure is Exo's "No instance found for model …" (404): the model is known but not placed."""
    return (
        kind_loads(provider)
        and failure.kind is FailureKind.MODEL_UNAVAILABLE
        and failure.status == 404
        and "no instance found" in failure.reason.lower()
    )


def load_mode(provider: ProviderConfig, name: str) -> str:
    """What a front end does when `provider` says `name` is not loaded: the provider's `load` setting
    ("ask" | "auto" | "never"), or "never" for a model in its `load_never` list."""
    return "never" if name in provider.load_never else provider.load


def not_loaded_notice(name: str, provider: ProviderConfig, spec: str) -> str:
    """The notice of a front end that fails over instead of asking (a script, a pipe, `serve`)."""
    return (
        f"{name} is not loaded on your Exo cluster ({provider.name}); "
        f"`exobridge models load {spec}` would keep it local next time"
    )


def route_loader(target: Target, url: str, model: str, name: str, spec: str) -> tuple[ExoLoader, LoadTarget]:
    """For a route's not-loaded hook: a loader asking the node `url` that answered 404, and what to load there
    (the id that was sent first, then the target's other ids)."""
    from exobridge.core import keys

    loader = ExoLoader(target.provider, keys.resolve(target.provider).value)
    loader.node = url
    ids = tuple(dict.fromkeys((model, *(i for i in (target.model, *target.alternates) if i))))
    return loader, LoadTarget(target.provider, name, ids, spec)


@dataclass(frozen=True)
class LoadTarget:
    """Which Exo provider, and the ids the model may have there (the logical name's, or what was typed)."""

    provider: ProviderConfig
    name: str  # what the user typed, without the provider pin
    ids: tuple[str, ...]
    spec: str = ""  # what the user typed, pin included


def resolve(spec: str, config: Config) -> LoadTarget:
    """`MODEL`, `exo-id` or `provider:id` → the Exo provider and candidate ids. UsageError (exit 2) when no
    Exo provider is configured, the pin names a provider that cannot load, or several Exo providers could."""
    from exobridge.core import model_targets

    pinned, name = model_targets.split_pinned(spec, config)
    if not name.strip():
        raise UsageError("name a model, e.g. exobridge models load llama-3.2-3b")
    if pinned:
        provider = config.providers[pinned]
        if not kind_loads(provider):
            raise UsageError(f"{pinned} cannot load models (only Exo providers can)")
    else:
        capable = [p for p in config.ordered() if kind_loads(p)]
        if not capable:
            disabled = [p.name for p in config.ordered(include_disabled=True) if kind_loads(p) and not p.enabled]
            if disabled:
                raise UsageError(
                    f"the Exo provider {disabled[0]} is disabled (exobridge providers enable {disabled[0]})"
                )
            raise UsageError("no Exo provider is configured (exobridge providers add exo --kind exo --url …)")
        if len(capable) > 1:
            names = ", ".join(p.name for p in capable)
            raise UsageError(f"several Exo providers ({names}): name one, e.g. {capable[1].name}:{name}")
        provider = capable[0]
    found = model_targets.targets(name, config, only=[provider.name])
    target = found[0] if found else None
    if target is None or target.model is None:
        ids: tuple[str, ...] = (name,)
    else:
        ids = tuple(dict.fromkeys((target.model, *target.alternates)))
    return LoadTarget(provider, name, ids, spec)


# --- the loader -------------------------------------------------------------------------------------------


class ExoLoader:
    """Load or unload one model on one Exo provider (its first node that answers is the one asked)."""

    def __init__(
        self,
        provider: ProviderConfig,
        key: str | None = None,
        *,
        http: httpx.Client | None = None,
        poll: float | None = None,
        place_wait: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.key = key
        self._http = http
        self._own_http = http is None
        self.poll = POLL if poll is None else poll
        self.place_wait = PLACE_WAIT if place_wait is None else place_wait
        self.clock = clock
        self.node: str | None = None
        self.line: str | None = None
        self.instance_id: str | None = None
        self.model_id: str | None = None
        self._stop = threading.Event()
        self._display: str | None = None
        self._spec: str | None = None
        self._interval = min(FIRST_POLL, self.poll)

    # --- HTTP, through core/http.py only ---
    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            from exobridge.core import http

            self._http = http.client()
        return self._http

    def stop(self) -> None:
        """Stop following a load nobody waits for any more (from any thread): `load()` ends at its next
        step without a last event. Exo keeps loading; `cancel()` is what undoes a load."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._own_http and self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> ExoLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        from exobridge.core import providers

        return providers.client_for(self.provider, self.key, self.http).headers()

    def _get(self, path: str, seconds: float = REQUEST_SECONDS) -> tuple[int, Any, bytes]:
        from exobridge.core import http

        assert self.node is not None
        return http.get_json(
            self.http, f"{self.node}{path}", provider=self.provider, headers=self._headers(), deadline_s=seconds
        )

    def _send(
        self, method: str, path: str, body: Any = None, seconds: float = REQUEST_SECONDS
    ) -> tuple[int, Any, bytes]:
        from exobridge.core import http

        assert self.node is not None
        deadline = self.clock() + seconds
        response = http.send(
            self.http,
            method,
            f"{self.node}{path}",
            provider=self.provider,
            json_body=body,
            headers=self._headers(),
            timeout=http.timeout_for(self.provider, read=seconds),
            deadline=deadline,
        )
        ok = response.status_code < 300
        raw = http.read_body(
            response,
            cap=http.JSON_CAP if ok else http.ERROR_BODY_CAP,
            deadline=deadline,
            provider=self.provider,
            truncate=not ok,
        )
        try:
            data = json.loads(raw) if raw.strip() else None
        except ValueError:
            data = None
        return response.status_code, data, raw

    @property
    def display(self) -> str:
        """The model as the user named it (the logical name), for messages."""
        return self._display or self.model_id or "?"

    @property
    def spec(self) -> str:
        """What to type to name this model again (`exo2:llama-3.2-3b` when pinned)."""
        return self._spec or self.display

    def _name(self, target: LoadTarget) -> None:
        self._display, self._spec = target.name, target.spec

    def _pause(self, deadline: float) -> None:
        """Wait before the next progress read: FIRST_POLL at first, doubling up to `poll` (a small model that
        loads in a second is shown ready at once; a long download is read once every `poll` seconds)."""
        wait = min(self._interval, self.poll, max(deadline - self.clock(), 0.0))
        self._interval = min(self._interval * 2, self.poll)
        if wait > 0:
            self._stop.wait(wait)

    def _redact(self, text: str) -> str:
        from exobridge.core import http

        return http.redact(text, http.secrets_of(self.provider, self.key))

    # --- which node, which line ---
    def connect(self) -> str:
        """Find the first node that answers and its API line ("v1" or "legacy"); ExoLoadError when none does."""
        problems: list[str] = []
        for node in self.provider.urls:
            self.node = node
            try:
                status, data, _ = self._get("/node_id")
                if status == 200 and isinstance(data, str):
                    self.line = "v1"
                    return self.line
                status, data, _ = self._get("/healthcheck")
                if status == 200 and isinstance(data, dict) and data.get("status") == "ok":
                    self.line = "legacy"
                    return self.line
                problems.append(f"{node}: not an Exo API (no /node_id or /healthcheck; HTTP {status})")
            except Failure as failure:
                problems.append(f"{node}: {self._redact(failure.reason)}")
        self.node = None
        raise ExoLoadError(f"{self.provider.name}: Exo unreachable ({'; '.join(problems)})")

    def _model_list(self) -> list[dict[str, Any]] | None:
        try:
            status, data, _ = self._get("/v1/models", seconds=REQUEST_SECONDS)
        except Failure:
            return None
        items = data.get("data") if isinstance(data, dict) else None
        if status != 200 or not isinstance(items, list):
            return None
        return [item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]

    def choose_id(self, target: LoadTarget) -> tuple[str, int | None]:
        """The node's id for the model and its size (bytes, from the card); UsageError (exit 2) when the node's
        list does not know it."""
        listed = self._model_list()
        if listed is None:  # no usable list: v1 ids are repo ids ("org/name"), the model table's exo_v1 twin
            return next((i for i in target.ids if "/" in i), target.ids[0]), None
        by_name: dict[str, dict[str, Any]] = {}
        for item in listed:
            by_name.setdefault(item["id"].lower(), item)
            if isinstance(item.get("name"), str):
                by_name.setdefault(item["name"].lower(), item)
        for candidate in target.ids:
            item = by_name.get(candidate.lower())
            if item is not None:
                megabytes = number_of(item.get("storage_size_megabytes"))
                return item["id"], int(megabytes * 1024 * 1024) if megabytes else None
        raise UsageError(
            f"unknown model {target.name}: {self.provider.name} does not list it "
            f"(exobridge models --provider {self.provider.name})"
        )

    def state(self) -> dict[str, Any]:
        status, data, body = self._get("/state")
        if status != 200 or not isinstance(data, dict):
            raise Failure(FailureKind.BAD_RESPONSE, f"GET /state: HTTP {status} {error_message(data, body)}", status)
        return data

    # --- v1 ---
    def fit(self, model: str, size: int | None, state: dict[str, Any] | None = None) -> FitCheck:
        """Ask the previews where `model` would fit. UsageError when Exo does not know the model."""
        from exobridge.core import provider_status

        status, data, body = self._get("/instance/previews?" + urlencode({"model_id": model}))
        if status == 400 and "model card" in error_message(data, body).lower():
            raise UsageError(f"unknown model {self.display}: Exo says {error_message(data, body)}")
        if status == 404 and error_message(data, body) in ("Not Found", "Not Found."):
            # a build older than /instance/previews: nothing to ask; place with Exo's defaults and watch
            return FitCheck(True, size, checked=False)
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("previews"), list):
            raise ExoLoadError(
                f"{self.provider.name}: Exo could not say where {self.display} fits "
                f"(GET /instance/previews: HTTP {status} {self._redact(error_message(data, body))})"
            )
        free = free_memory(state) if state else None
        nodes_in_cluster = provider_status.state_node_count(state) if state else None
        reasons: list[str] = []
        for preview in data["previews"]:
            if not isinstance(preview, dict):
                continue
            error = preview.get("error")
            instance = instance_view(None, preview.get("instance")) if preview.get("instance") else None
            if error is None and instance is not None:
                deltas = preview.get("memory_delta_by_node")
                if isinstance(deltas, dict) and size is None:
                    size = sum(int(v) for v in deltas.values() if isinstance(v, int | float)) or None
                return FitCheck(
                    True,
                    size,
                    node_count=len(instance.nodes) or None,
                    sharding=str(preview.get("sharding") or "Pipeline"),
                    instance_meta=str(preview.get("instance_meta") or "MlxRing"),
                    free_bytes=free,
                    cluster_nodes=nodes_in_cluster,
                )
            if isinstance(error, str) and error not in reasons:
                reasons.append(self._redact(" ".join(error.split()))[:200])
        return FitCheck(False, size, reasons=tuple(reasons), free_bytes=free, cluster_nodes=nodes_in_cluster)

    def _event(self, phase: Phase, message: str, **fields: Any) -> LoadEvent:
        return LoadEvent(phase, self.provider.name, self.model_id or "?", message, line=self.line or "v1", **fields)

    def load(self, target: LoadTarget, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator[LoadEvent]:
        """Load the model; yields events, the last one READY, FAILED or TIMEOUT. Raises UsageError for an
        unknown model and ExoLoadError when Exo cannot be reached at the start."""
        deadline = self.clock() + timeout
        self._name(target)
        if self.line is None:
            self.connect()
        if self.line == "legacy":
            yield from self._load_legacy(target, deadline, timeout)
        else:
            yield from self._load_v1(target, deadline, timeout)

    def _load_v1(self, target: LoadTarget, deadline: float, timeout: float) -> Iterator[LoadEvent]:
        model, size = self.choose_id(target)
        self.model_id = model
        try:
            state = self.state()
        except Failure as failure:
            raise ExoLoadError(f"{self.provider.name}: {self._redact(failure.reason)}") from None
        already = instances_of(state, model)
        if not already:
            yield self._event(Phase.CHECKING, f"checking where {self.display} fits", size_bytes=size)
            try:
                fit = self.fit(model, size, state)
            except Failure as failure:
                raise ExoLoadError(f"{self.provider.name}: {self._redact(failure.reason)}") from None
            size = fit.size_bytes
            if not fit.fits:
                yield self._event(Phase.FAILED, self._does_not_fit(model, fit), size_bytes=size)
                return
            if fit.checked:
                where = (
                    f"fits on {fit.node_count or '?'} node{'s' if fit.node_count != 1 else ''}, "
                    f"{(fit.sharding or 'pipeline').lower()}"
                )
            else:
                where = "this Exo cannot preview placements: placing anyway"
            yield self._event(
                Phase.PLACING,
                f"placing {self.display} ({size_text(size)}, {where})",
                size_bytes=size,
                node_count=fit.node_count,
                sharding=(fit.sharding or "").lower() or None,
            )
            body = {
                "model_id": model,
                "sharding": fit.sharding or "Pipeline",
                "instance_meta": fit.instance_meta or "MlxRing",
                "min_nodes": fit.node_count or 1,
            }
            try:
                status, data, raw = self._send("POST", "/place_instance", body)
            except Failure as failure:
                yield self._event(Phase.FAILED, f"placing {self.display} failed: {self._redact(failure.reason)}")
                return
            if status >= 300:
                reason = self._redact(error_message(data, raw))
                yield self._event(Phase.FAILED, f"Exo refused to place {self.display}: {reason} (HTTP {status})")
                return
        yield from self._follow_v1(model, size, deadline, timeout)

    def _does_not_fit(self, model: str, fit: FitCheck) -> str:
        facts = [f"needs {size_text(fit.size_bytes)}"]
        if fit.free_bytes is not None:
            facts.append(f"{size_text(fit.free_bytes)} free")
        if fit.cluster_nodes is not None:
            facts.append(f"{fit.cluster_nodes} node{'s' if fit.cluster_nodes != 1 else ''}")
        why = f" (Exo: {'; '.join(fit.reasons)})" if fit.reasons else ""
        return f"{self.display} does not fit the cluster's memory now: {', '.join(facts)}{why}"

    def _await_instance(self, model: str, seconds: float, outcome: dict[str, Any], done: threading.Event) -> None:
        """GET /instance/await on a helper thread: outcome["type"] = "ready" | "timeout" | "unsupported" | "error"."""
        from exobridge.core import http
        from exobridge.core.reply import SSEDecoder

        assert self.node is not None
        query = urlencode({"model_id": model, "timeout_seconds": f"{max(min(seconds, 300.0), 0.1):g}"})
        deadline = self.clock() + seconds + REQUEST_SECONDS
        try:
            response = http.send(
                self.http,
                "GET",
                f"{self.node}/instance/await?{query}",
                provider=self.provider,
                headers=self._headers(),
                timeout=http.timeout_for(self.provider, read=seconds + REQUEST_SECONDS),
                deadline=self.clock() + REQUEST_SECONDS,
            )
        except Exception as exc:  # a Failure; or the loader closed its client meanwhile (the load is over)
            outcome.update(type="error", message=str(getattr(exc, "reason", exc)) or type(exc).__name__)
            done.set()
            return
        cutoff = http.Cutoff(deadline)
        cutoff.watch(response.extensions.get("network_stream"))
        try:
            if response.status_code in (404, 405):
                outcome["type"] = "unsupported"  # an older build without /instance/await: /state alone decides
                return
            if response.status_code >= 300:
                raw = http.read_body(response, cap=http.ERROR_BODY_CAP, deadline=deadline, truncate=True)
                outcome.update(type="error", message=f"HTTP {response.status_code} {error_message(None, raw)}")
                return
            decoder = SSEDecoder()
            for chunk in http.iter_decoded(response, cap=http.JSON_CAP):
                if self._stop.is_set():
                    return
                for data in decoder.feed(chunk):
                    try:
                        message = json.loads(data)
                    except ValueError:
                        continue
                    if isinstance(message, dict) and message.get("type") in ("ready", "timeout"):
                        outcome.update(message)
                        return
            outcome.setdefault("type", "error")
            outcome.setdefault("message", "the await stream ended without an answer")
        except Exception as exc:
            outcome.setdefault("type", "error")
            outcome.setdefault("message", str(getattr(exc, "reason", exc)) or type(exc).__name__)
        finally:
            cutoff.cancel()
            http.shutdown_response(response)
            done.set()

    def _follow_v1(self, model: str, size: int | None, deadline: float, timeout: float) -> Iterator[LoadEvent]:
        placed_by = self.clock() + self.place_wait
        awaited: dict[str, Any] = {}
        await_done = threading.Event()
        threading.Thread(
            target=self._await_instance,
            args=(model, max(min(self.place_wait, deadline - self.clock()), 0.1), awaited, await_done),
            name="exobridge-await",
            daemon=True,
        ).start()
        last: LoadEvent | None = None
        failures = 0
        while True:
            now = self.clock()
            if now >= deadline:
                yield self._timeout_event(model, last, timeout)
                return
            try:
                state = self.state()
                failures = 0
            except Failure as failure:
                failures += 1
                if failures >= 3:
                    yield self._event(
                        Phase.FAILED, f"lost Exo while loading {self.display}: {self._redact(failure.reason)}"
                    )
                    return
                state = None
            if state is not None:
                event = self._state_event(model, size, state)
                if event is None:
                    ended = await_done.is_set() and awaited.get("type") == "timeout"
                    if ended or self.clock() >= placed_by:
                        yield self._event(
                            Phase.FAILED,
                            f"Exo accepted the placement of {self.display} but placed no instance within "
                            f"{self.place_wait:g} s: it does not fit now, or a node failed (see the Exo node's log)",
                            size_bytes=size,
                        )
                        return
                    event = self._event(Phase.PLACING, f"waiting for Exo to place {self.display}", size_bytes=size)
                if last is None or _changed(last, event):
                    yield event
                last = event
                if event.phase in TERMINAL:
                    return
            self._pause(deadline)
            if self._stop.is_set():
                return

    def _state_event(self, model: str, size: int | None, state: dict[str, Any]) -> LoadEvent | None:
        found = instances_of(state, model)
        if not found:
            return None
        instance = found[0]
        self.instance_id = instance.instance_id
        nodes = downloads_of(state, model, instance.nodes or None)
        runners = runners_of(state, instance.runners)
        fields: dict[str, Any] = {
            "nodes": nodes,
            "node_count": len(instance.nodes) or None,
            "sharding": instance.sharding,
            "shards": len(instance.runners) or None,
            "size_bytes": size,
            "instance_id": instance.instance_id,
        }
        failed = [n for n in nodes if n.failed]
        if failed:
            reason = self._redact(failed[0].failed or "")
            return self._event(
                Phase.FAILED, f"download of {self.display} failed on {failed[0].node}: {reason}", **fields
            )
        if runners.failed:
            return self._event(Phase.FAILED, f"loading {self.display} failed: {self._redact(runners.failed)}", **fields)
        where = _where(instance)
        if "runners" not in state or (instance.runners and runners.ready == len(instance.runners)):
            return self._event(Phase.READY, f"ready on {where}: {self.display}{_shape(instance)}", **fields)
        if runners.loading:
            fields.update(layers_loaded=runners.layers_loaded, layers_total=runners.layers_total or None)
            return self._event(Phase.LOADING, f"loading {self.display} on {where}", **fields)
        if nodes and not all(n.done for n in nodes):
            return self._event(Phase.DOWNLOADING, f"downloading {self.display} to {where}", **fields)
        if nodes:
            return self._event(Phase.LOADING, f"loading {self.display} on {where}", **fields)
        return self._event(Phase.PLACED, f"placed {self.display} on {where}", **fields)

    def _timeout_event(self, model: str, last: LoadEvent | None, timeout: float) -> LoadEvent:
        doing = str(last.phase) if last is not None and last.phase not in TERMINAL else "loading"
        fields: dict[str, Any] = {}
        if last is not None:
            fields = {
                "nodes": last.nodes,
                "node_count": last.node_count,
                "sharding": last.sharding,
                "shards": last.shards,
                "size_bytes": last.size_bytes,
                "instance_id": last.instance_id,
            }
        return self._event(
            Phase.TIMEOUT,
            f"{self.display} is still {doing} after {timeout:g} s; Exo keeps going "
            f"(run the same command again to watch, or exobridge models unload {self.spec})",
            **fields,
        )

    # --- legacy ---
    def _legacy_downloaded(self, model: str) -> bool | None:
        """Whether /modelpool (SSE of every model's download status) says `model` is downloaded; None: unknown."""
        from exobridge.core import http
        from exobridge.core.reply import SSEDecoder

        assert self.node is not None
        deadline = self.clock() + MODELPOOL_SECONDS
        try:
            response = http.send(
                self.http,
                "GET",
                f"{self.node}/modelpool",
                provider=self.provider,
                headers=self._headers(),
                timeout=http.timeout_for(self.provider, read=MODELPOOL_SECONDS),
                deadline=deadline,
            )
        except Failure:
            return None
        cutoff = http.Cutoff(deadline)
        cutoff.watch(response.extensions.get("network_stream"))
        try:
            if response.status_code != 200:
                return None
            decoder = SSEDecoder()
            for chunk in http.iter_decoded(response, cap=http.MODEL_LIST_CAP):
                for data in decoder.feed(chunk):
                    if data.strip() == "[DONE]":
                        return False
                    try:
                        status = json.loads(data)
                    except ValueError:
                        continue
                    entry = status.get(model) if isinstance(status, dict) else None
                    if isinstance(entry, dict):
                        return bool(entry.get("downloaded"))
            return None
        except Exception:
            return None
        finally:
            cutoff.cancel()
            http.shutdown_response(response)

    def _legacy_progress(self, model: str, ids: tuple[str, ...]) -> list[NodeProgress] | None:
        status, data, _ = self._get("/v1/download/progress")
        if status != 200 or not isinstance(data, dict):
            return None
        wanted = {i.lower() for i in ids}
        result: list[NodeProgress] = []
        for node, event in data.items():
            if not isinstance(event, dict):
                continue
            shard_model = field_of(field_of(event, "shard"), "model_id")
            repo = event.get("repo_id")
            if isinstance(shard_model, str):
                if shard_model.lower() != model.lower():
                    continue
            elif isinstance(repo, str) and wanted and repo.lower() not in wanted and len(data) > 1:
                continue  # several downloads and no shard to tell: keep the ones naming one of our ids
            eta = number_of(event.get("overall_eta"))
            result.append(
                NodeProgress(
                    str(node),
                    downloaded=byte_count(event.get("downloaded_bytes")) or 0,
                    total=byte_count(event.get("total_bytes")) or 0,
                    speed=number_of(event.get("overall_speed")),
                    eta=eta,
                    done=event.get("status") == "complete",
                )
            )
        return result

    def _load_legacy(self, target: LoadTarget, deadline: float, timeout: float) -> Iterator[LoadEvent]:
        model = target.ids[0]
        self.model_id = model
        if self._legacy_downloaded(model):
            yield self._event(Phase.READY, f"{self.display} is downloaded (legacy Exo loads it at the first request)")
            return
        yield self._event(Phase.CHECKING, f"asking Exo to download {self.display}")
        try:
            status, data, raw = self._send("POST", "/download", {"model": model})
        except Failure as failure:
            raise ExoLoadError(f"{self.provider.name}: Exo unreachable ({self._redact(failure.reason)})") from None
        if status == 400 and "invalid model" in error_message(data, raw).lower():
            raise UsageError(
                f"unknown model {target.name}: {self.provider.name} (legacy Exo) has no card for {self.display}"
            )
        if status >= 300:
            reason = self._redact(error_message(data, raw))
            yield self._event(Phase.FAILED, f"Exo refused to download {self.display}: {reason} (HTTP {status})")
            return
        seen = False
        last: LoadEvent | None = None
        progress: LoadEvent | None = None  # the last download progress seen
        quiet_since = self.clock()
        while True:
            if self.clock() >= deadline:
                yield self._timeout_event(model, last, timeout)
                return
            try:
                nodes = self._legacy_progress(model, target.ids)
            except Failure:
                nodes = None
            if nodes:
                seen = True
                event = self._event(
                    Phase.DOWNLOADING,
                    f"downloading {self.display} to {_count(len(nodes))}",
                    nodes=nodes,
                    node_count=len(nodes),
                )
                progress = event
            elif seen or self.clock() - quiet_since >= self.place_wait:
                # gone from the progress list (or no progress list at all): /modelpool says whether it is there
                downloaded = self._legacy_downloaded(model)
                if downloaded or (seen and downloaded is None and nodes is not None):
                    count = progress.node_count if progress is not None else None
                    where = f" on {_count(count)}" if count else ""
                    done = [
                        NodeProgress(n.node, n.total, n.total, done=True) for n in (progress.nodes if progress else [])
                    ]
                    yield self._event(
                        Phase.READY,
                        f"downloaded{where}: {self.display} (legacy Exo loads it at the first request)",
                        node_count=count,
                        nodes=done,
                    )
                    return
                if not seen and nodes is not None:
                    yield self._event(
                        Phase.FAILED,
                        f"Exo accepted the download of {self.display} but reported no progress within "
                        f"{self.place_wait:g} s (see the Exo node's log)",
                    )
                    return
                if seen:
                    event = self._event(Phase.LOADING, f"finishing the download of {self.display}")
                else:
                    message = f"downloading {self.display} (this Exo reports no download progress)"
                    event = self._event(Phase.DOWNLOADING, message)
            else:
                event = self._event(Phase.PLACING, f"waiting for Exo to start downloading {self.display}")
            if last is None or _changed(last, event):
                yield event
            last = event
            self._pause(deadline)
            if self._stop.is_set():
                return

    # --- unload and cancel ---
    def unload(self, target: LoadTarget, *, delete_files: bool = False) -> list[str]:
        """v1: delete every instance of the model (`DELETE /instance/{id}`); legacy: `DELETE /models/{name}`,
        which deletes its files (only with `delete_files`). Returns what was done, one line each."""
        self._name(target)
        if self.line is None:
            self.connect()
        if self.line == "legacy":
            model = target.ids[0]
            self.model_id = model
            if not delete_files:
                raise UsageError(f"legacy Exo unloads by deleting {self.display}'s files: confirm with --yes")
            try:
                status, data, raw = self._send("DELETE", f"/models/{quote(model, safe='')}")
            except Failure as failure:
                raise ExoLoadError(f"{self.provider.name}: {self._redact(failure.reason)}") from None
            if status == 404:
                return [f"{self.display} has no files on {self.provider.name}: nothing to delete"]
            if status >= 300:
                raise ExoLoadError(f"Exo refused to delete {self.display}: {self._redact(error_message(data, raw))}")
            return [f"deleted the files of {self.display} on {self.provider.name}"]
        model, _ = self.choose_id(target)
        self.model_id = model
        try:
            found = instances_of(self.state(), model)
        except Failure as failure:
            raise ExoLoadError(f"{self.provider.name}: {self._redact(failure.reason)}") from None
        if not found:
            return [f"{self.display} is not placed on {self.provider.name}: nothing to unload"]
        done = []
        for instance in found:
            done.append(self.delete_instance(instance.instance_id, model))
        return done

    def delete_instance(self, instance_id: str, model: str) -> str:
        try:
            status, data, raw = self._send("DELETE", f"/instance/{quote(instance_id, safe='')}")
        except Failure as failure:
            raise ExoLoadError(f"{self.provider.name}: {self._redact(failure.reason)}") from None
        if status == 404:
            return f"instance {instance_id} of {self.display} was already gone"
        if status >= 300:
            raise ExoLoadError(f"Exo refused to unload {self.display}: {self._redact(error_message(data, raw))}")
        return f"unloaded {self.display} from {self.provider.name} (instance {instance_id})"

    def cancel(self) -> str:
        """Undo what `load` started: delete the instance it placed (found in /state if not seen yet)."""
        self._stop.set()
        model = self.model_id
        if model is None or self.line != "v1":
            return (
                "nothing to cancel (legacy Exo cannot stop a download)"
                if self.line == "legacy"
                else "nothing to cancel"
            )
        instance_id = self.instance_id
        if instance_id is None:
            try:
                found = instances_of(self.state(), model)
            except Failure:
                found = []
            if not found:
                return (
                    f"no instance of {self.display} yet: Exo may still place it (exobridge models unload {self.spec})"
                )
            instance_id = found[0].instance_id
        return self.delete_instance(instance_id, model)


def _count(n: int | None) -> str:
    return f"{n} node{'s' if n != 1 else ''}" if n else "the cluster"


def _where(instance: InstanceView) -> str:
    return _count(len(instance.nodes) or None)


def _shape(instance: InstanceView) -> str:
    parts = []
    if instance.sharding:
        parts.append(instance.sharding)
    if instance.runners:
        parts.append(f"{len(instance.runners)} shard{'s' if len(instance.runners) != 1 else ''}")
    return f" ({', '.join(parts)})" if parts else ""


def _changed(before: LoadEvent, after: LoadEvent) -> bool:
    """A new event is worth showing: another phase, other progress, another message."""
    return (
        before.phase != after.phase
        or before.message != after.message
        or [n.to_json() for n in before.nodes] != [n.to_json() for n in after.nodes]
        or (before.layers_loaded, before.layers_total) != (after.layers_loaded, after.layers_total)
    )


def outcome_error(event: LoadEvent) -> Exception | None:
    """The error a final event ends the command with: None (ready), ExoLoadError (3), LoadTimeoutError (6)."""
    if event.phase is Phase.READY:
        return None
    if event.phase is Phase.TIMEOUT:
        return LoadTimeoutError(event.message)
    return ExoLoadError(event.message)
