"""What concurrent requests to `serve` share: cooldowns, the live config, and short-lived caches.

Cooldowns are the CLI's own (`core.cooldown`: the state file, under its lock), so `exobridge providers status`
shows what serve learned and `exobridge providers reset` clears it for serve too (the file is read again at
most once a second). On top of that, a gate: a node that has not answered since serve started or since its
last failure of its own (what puts it in cooldown) is tried by one request at a time; the others wait for that
try (at most the node's connect timeout plus a second) and then skip the node if it went into cooldown. So
100 simultaneous requests with Exo down try Exo once, not 100 times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exobridge.core.config import Config, ProviderConfig
from exobridge.core.cooldown import DEFAULT_COOLDOWNS, CooldownStore, FileRouteState
from exobridge.core.errors import Failure, FailureKind
from exobridge.core.routing import RouteState

STATE_REFRESH_SECONDS = 1.0  # how stale serve's view of the state file may get (CLI resets, other workers)
GATE_EXTRA_WAIT = 1.0  # beyond the node's connect timeout, how long a request waits for another's try


class SkippedByGate(Failure):
    """A node another request just found failing: not a new failure of the node, so it is not recorded."""


@dataclass
class _Gate:
    proven: bool = False  # answered since the last failure: no need to queue behind anybody
    trying: threading.Event | None = None  # set when the request trying the node knows the outcome
    owner: object | None = None


@dataclass
class SharedRouteState(RouteState):
    """The router's memory for every request of one serve process (thread-safe)."""

    store_factory: Callable[[], CooldownStore] = CooldownStore
    refresh_seconds: float = STATE_REFRESH_SECONDS
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _gates: dict[tuple[str, str], _Gate] = field(default_factory=dict)
    _file: FileRouteState | None = None
    _read_at: float = 0.0

    # --- RouteState ---------------------------------------------------------------------------------
    def _state(self) -> FileRouteState:
        now = time.monotonic()
        if self._file is None or now - self._read_at > self.refresh_seconds:
            state = FileRouteState(self.store_factory())
            state.store.load()
            self._file, self._read_at = state, now
        return self._file

    @property
    def warnings(self) -> list[str]:
        return self._state().warnings

    def cooldowns(self) -> CooldownStore:
        """The remembered routing state as serve sees it (at most `refresh_seconds` old): for the status page."""
        return self._state().store

    def blocked(self, provider: ProviderConfig, url: str) -> str | None:
        return self._state().blocked(provider, url)

    def failed(self, provider: ProviderConfig, url: str, failure: Failure) -> None:
        if isinstance(failure, SkippedByGate):
            return
        state = self._state()
        state.failed(provider, url, failure)
        # Only the node's own trouble (what puts it in cooldown: refused, timeouts, 429, 5xx, auth) makes the
        # next requests queue behind one try; a model it lacks or a request it rejects says nothing of the node.
        self._settle(provider, url, proven=failure.kind not in DEFAULT_COOLDOWNS)

    def succeeded(self, provider: ProviderConfig, url: str) -> None:
        self._state().succeeded(provider, url)
        self._settle(provider, url, proven=True)

    # --- the gate -----------------------------------------------------------------------------------
    def _settle(self, provider: ProviderConfig, url: str, *, proven: bool) -> None:
        with self._lock:
            gate = self._gates.setdefault((provider.name, url), _Gate())
            gate.proven = proven
            event, gate.trying, gate.owner = gate.trying, None, None
        if event is not None:
            event.set()

    def answered(self, provider: ProviderConfig, url: str) -> None:
        """The node sent its first token: requests waiting for it may go."""
        self._settle(provider, url, proven=True)

    def enter(self, provider: ProviderConfig, url: str, owner: object) -> str | None:
        """Called just before `owner` tries the node: a cooldown reason when it must skip it, else None.

        Blocks while another request is trying a node that has not proven itself, for at most the node's
        connect timeout plus a second.
        """
        with self._lock:
            gate = self._gates.setdefault((provider.name, url), _Gate())
            if gate.proven or gate.owner is owner:
                return None
            event = gate.trying
        if event is not None:
            event.wait(provider.connect_timeout + GATE_EXTRA_WAIT)
        # The router decided before another request's try failed: look again.
        reason = self.blocked(provider, url)
        if reason:
            return reason
        with self._lock:
            if gate.trying is None and not gate.proven:
                gate.trying, gate.owner = threading.Event(), owner
        return None

    def leave(self, owner: object) -> None:
        """`owner`'s request is over: release every node it was still trying (it never learned the outcome)."""
        events = []
        with self._lock:
            for gate in self._gates.values():
                if gate.owner is owner and gate.trying is not None:
                    events.append(gate.trying)
                    gate.trying, gate.owner = None, None
        for event in events:
            event.set()


def skipped_by_gate(reason: str) -> SkippedByGate:
    return SkippedByGate(FailureKind.CONNECT, reason)


class LiveConfig:
    """The config, read again when its file changes (checked at most once a second).

    A file that no longer loads keeps the last good config in use and is reported once through `warn`.
    """

    def __init__(
        self,
        load: Callable[[], Config],
        path: os.PathLike[str] | str,
        warn: Callable[[str], None],
        check_every: float = 1.0,
    ) -> None:
        self._load = load
        self._path = path
        self._warn = warn
        self._check_every = check_every
        self._checked = time.monotonic()
        self._signature = self._stat()
        self.config = load()
        self.generation = 0

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def get(self) -> Config:
        now = time.monotonic()
        if now - self._checked < self._check_every:
            return self.config
        self._checked = now
        signature = self._stat()
        if signature == self._signature:
            return self.config
        self._signature = signature
        from exobridge.core.errors import ExobridgeError

        try:
            self.config = self._load()
        except ExobridgeError as exc:
            self._warn(f"config changed but does not load, still using the previous one: {exc}")
            return self.config
        self.generation += 1
        self._warn(f"config reloaded from {self._path}")
        return self.config


class TtlValue:
    """An answer computed on a worker thread, kept `ttl` seconds; concurrent askers share one computation."""

    def __init__(self, ttl: float, compute: Callable[[], Any]) -> None:
        self.ttl = ttl
        self._compute = compute
        self._value: Any = None
        self._at = -float("inf")
        self._key: Any = None
        self._pending: asyncio.Future[Any] | None = None

    def invalidate(self) -> None:
        """The kept answer is out of date (e.g. a model was just loaded): the next `get` computes anew."""
        self._at = -float("inf")

    def age(self) -> float:
        """Seconds since the kept answer was computed."""
        return max(0.0, time.monotonic() - self._at)

    async def get(self, key: Any = None) -> Any:
        if key == self._key and time.monotonic() - self._at < self.ttl:
            return self._value
        if self._pending is None:
            self._pending = on_daemon_thread(self._compute)
            try:
                value = await self._pending
            finally:
                self._pending = None
            self._value, self._at, self._key = value, time.monotonic(), key
            return value
        return await asyncio.shield(self._pending)


def on_daemon_thread(compute: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run `compute` on a daemon thread (never joined at exit, unlike an executor's) and await its answer."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value, error = compute(), None
        except Exception as exc:  # handed to the awaiting request
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="exobridge-serve-cache", daemon=True).start()
    return future
