"""One chat request driven through the router on a worker thread, its events handed to the event loop.

The router is synchronous and blocking (it owns the failover rules, shared with `chat`), so each request runs
it on a daemon thread. The observer hands text pieces to the event loop in batches (one wake-up per batch,
not per token) and a bounded buffer makes a slow client slow the upstream down instead of filling memory.

A client that disconnects cancels its route at once: the upstream socket of the response in flight is shut
down (which wakes a reader blocked in recv and closes the connection), and the next hook the router calls
raises `ClientGone`, so it neither keeps reading nor fails over to another provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core.routing import Attempt, ChatRequest, ChatResult, RouteObserver, Router, RouteState

if TYPE_CHECKING:
    import httpx

    from exobridge.core.budget import BudgetCheck
    from exobridge.core.config import Config
    from exobridge.core.model_targets import Target
    from exobridge.serve.shared import SharedRouteState

BUFFERED_PIECES = 4096  # text pieces waiting for a slow client before the upstream is made to wait
REPLY_EVENTS = frozenset({"text", "part"})


class ClientGone(Exception):
    """The client of this request disconnected: stop routing it."""


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


IDLE_CLIENTS = 64  # upstream clients kept for reuse
# Connections to the providers are kept for the next route of the same client: no TCP and, to the cloud, no TLS
# handshake per request. A client serves one route at a time, so core.http's deadline cuts a reused connection
# that stalls as surely as a new one (`http.client(keepalive=True)`).
KEEP_ALIVE = True


class _Lease:
    """One pooled upstream client and the route using it now; its response hook reports to that route."""

    def __init__(self, make: Callable[[_Lease], httpx.Client]) -> None:
        self.run: RouteRun | None = None
        self.client = make(self)

    def track(self, response: httpx.Response) -> None:
        run = self.run
        if run is not None:
            run.track(response)


class UpstreamClients:
    """httpx clients for routes, one route at a time each, reused (no client is built per request), with
    the environment's proxy settings consulted only when it has any (core.http shares one TLS context).

    A client serves one route at a time, so its response hook knows whose responses it sees: a cancelled
    route cuts exactly its own connections.
    """

    @staticmethod
    def uses_proxies() -> bool:
        return any(name.lower() in PROXY_VARIABLES for name in os.environ)

    def __init__(self) -> None:
        self._trust_env = self.uses_proxies()
        if self._trust_env:  # a proxy setting httpx cannot use is a config error at start-up, not per request
            from exobridge.core import proxies

            proxies.validate()
        self._idle: list[_Lease] = []
        self._lock = threading.Lock()

    def _make(self, lease: _Lease) -> httpx.Client:
        from exobridge.core import http

        return http.client(trust_env=self._trust_env, keepalive=KEEP_ALIVE, event_hooks={"response": [lease.track]})

    def lease(self, run: RouteRun) -> _Lease:
        with self._lock:
            lease = self._idle.pop() if self._idle else None
        if lease is None:
            lease = _Lease(self._make)
        lease.run = run
        return lease

    def give_back(self, lease: _Lease) -> None:
        lease.run = None
        with self._lock:
            if len(self._idle) < IDLE_CLIENTS:
                self._idle.append(lease)
                return
        lease.client.close()


def shut_socket(response: httpx.Response) -> None:
    """Close an upstream connection now, even while another thread is blocked reading it."""
    from exobridge.core import http

    http.shutdown(response.extensions.get("network_stream"))


def _same(text: str) -> str:
    return text


CANCEL_SECONDS = 2.0  # how long asking a node to stop may take


def ask_to_stop(provider: Any, url: str) -> None:
    """`POST url` (the node's cancel route) for a reply whose client left. Best effort: the connection is
    already closed, which stops the generation too; this only makes it sooner. Never raises."""
    import time

    from exobridge.core import http, providers

    try:
        with http.client(trust_env=UpstreamClients.uses_proxies()) as client:
            headers = providers.client_for(provider, None, client).headers()
            deadline = time.monotonic() + CANCEL_SECONDS
            http.send(client, "POST", url, provider=provider, headers=headers, deadline=deadline).close()
    except Exception:  # a node that cannot be told has already lost its client: nothing else to do
        pass


BUDGET_FLUSH_SECONDS = 1.0  # how long a budget check waits for serve's queued history writes


def _spent(since: float, provider: str | None) -> float:
    """Known spending, with what serve answered and has queued for the history (its writer thread) counted."""
    from exobridge.core import budget, history_record

    history_record.flush_serve(BUDGET_FLUSH_SECONDS)
    return budget.spent_from_history(since, provider)


def budget_check(config: Config) -> BudgetCheck | None:
    """`[budget]` for serve: chat's check, never overridden (a client cannot lift the user's limits, and a
    pinned `provider:model` is checked like any other)."""
    if config.budget is None:  # no `[budget]` table: nothing to check, nothing to load
        return None
    from exobridge.core import budget

    return budget.check_for(config, _spent)


def _say_budget_notices(check: BudgetCheck, log: Any) -> None:
    """Each 80 % notice once a day in serve's log (not once a request)."""
    from exobridge.core import budget

    if log is None:
        return
    day = budget.period_start("daily")
    for line in check.notices:
        log.warn_once(("budget", budget.notice_topic(line), day), line)


def _record(config: Config, request: ChatRequest, result: ChatResult, log: Any) -> None:
    """Queue the request for the history (`HistoryWriter`: written on its own thread, the reply not held up).
    Trouble writing it is one warning in serve's log per kind (locked, read-only, ...), not one per request."""
    from exobridge.core import history_record

    def warn(line: str) -> None:
        if log is not None:
            log.warn_once(("history", line.split(" (")[0]), line)

    history_record.record_serve(config, request.messages, result, warn)


@dataclass
class Event:
    # "text" | "part" (tool calls or reasoning: `text` is the delta's JSON) | "end"
    # | "comment" (a keep-alive line while Exo loads the model: serve/exo_autoload.py)
    kind: str
    text: str = ""
    result: ChatResult | None = None
    error: BaseException | None = None


@dataclass
class RouteRun:
    """One request's route: started on a worker thread, read from the event loop."""

    config: Config
    request: ChatRequest
    targets: list[Target]
    state: SharedRouteState
    loop: asyncio.AbstractEventLoop
    clients: UpstreamClients | None = None
    secrets: Callable[[str], str] = _same
    log: Any = None  # serve's AccessLog: notices about models Exo has not loaded (serve/exo_autoload.py)
    # what the response headers say once the first token arrived
    provider: str | None = None
    url: str | None = None
    model: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # where to ask the answering node to stop when the client leaves (Exo's `POST /v1/cancel/{command_id}`)
    cancel_url: str | None = None
    answering: Any = None  # the answering provider's config, once the first token is in

    def __post_init__(self) -> None:
        self._items: deque[Event] = deque()
        self._lock = threading.Condition()
        self._signalled = False
        self._waiter: asyncio.Future[None] | None = None
        self._responses: list[httpx.Response] = []
        self._first_seen = False
        self.upstream_done = False  # the router is over: nothing left for a node to stop
        self._on_cancel: list[Callable[[], None]] = []

    # --- worker side ----------------------------------------------------------------------------------
    def work(self) -> None:
        from exobridge.serve.exo_autoload import NotLoadedHook

        observer = _Observer(self)
        lease = None
        check = None
        try:
            check = budget_check(self.config)
            lease = self.clients.lease(self) if self.clients is not None else None
            router = Router(
                self.config,
                observer=observer,
                keep_text=True,  # the history keeps the reply (core/history_record.record_serve)
                state=_RouteView(self),
                http=lease.client if lease is not None else None,
                on_not_loaded=NotLoadedHook(self),
                pre_send=check,
            )
            result = router.run(self.request, self.targets)
            if check is not None:
                _say_budget_notices(check, self.log)
            self._upstream_over()
            _record(self.config, self.request, result, self.log)  # queued, not written: the reply is not held up
            self._push(Event("end", result=result))
        except BaseException as exc:  # handed to the event loop, never lost on a worker thread
            self._upstream_over()
            self._push(Event("end", error=exc))
        finally:
            if lease is not None and self.clients is not None:
                self.clients.give_back(lease)
            self.state.leave(self)

    def track(self, response: httpx.Response) -> None:
        self._responses.append(response)
        if self.cancelled.is_set():
            shut_socket(response)
            raise ClientGone()

    def _push(self, event: Event) -> None:
        with self._lock:
            while event.kind in REPLY_EVENTS and len(self._items) >= BUFFERED_PIECES and not self.cancelled.is_set():
                self._lock.wait(0.5)
            self._items.append(event)
            if self._signalled:
                return
            self._signalled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone anyway
            self.loop.call_soon_threadsafe(self._wake)

    # --- event loop side --------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def events(self) -> list[Event]:
        """The next batch of events (at least one)."""
        while True:
            with self._lock:
                if self._items:
                    batch = list(self._items)
                    self._items.clear()
                    self._lock.notify_all()
                    return batch
                self._signalled = False
                self._waiter = self.loop.create_future()
            await self._waiter

    @contextlib.contextmanager
    def on_cancel(self, stop: Callable[[], None]) -> Iterator[None]:
        """Within the block, `stop()` is called (from the event loop) if the client leaves: for waits that do
        not read an upstream socket (Exo loading a model)."""
        with self._lock:
            self._on_cancel.append(stop)
        if self.cancelled.is_set():
            stop()
        try:
            yield
        finally:
            with self._lock:
                self._on_cancel.remove(stop)

    def fields_json(self, fields: dict[str, Any]) -> str:
        """Tool calls and reasoning as JSON, with every upstream key removed (as from the text)."""
        from exobridge.serve.wire import dumps

        return self.secrets(dumps(fields))

    def _upstream_over(self) -> None:
        """The router is done with the upstream: from here its connections may serve another route (they go back
        to a keep-alive pool with the lease), so a late `cancel` must not cut them."""
        with self._lock:
            self.upstream_done = True

    def cancel(self) -> None:
        """The client went away: cut the upstream now; the router stops at its next step. A node that can be
        told to stop generating (Exo's current line) is told so too, on a worker thread."""
        first = not self.cancelled.is_set()
        self.cancelled.set()
        with self._lock:  # against `_upstream_over`: never cut a connection the lease has handed on
            running = not self.upstream_done
            if running:
                for response in list(self._responses):
                    shut_socket(response)
            stops = list(self._on_cancel)
            self._lock.notify_all()
        for stop in stops:
            stop()
        if first and running and self.cancel_url is not None and self.answering is not None:
            from exobridge.core import parallel

            provider, url = self.answering, self.cancel_url
            parallel.WORKERS.submit(lambda: ask_to_stop(provider, url))


class _RouteView(RouteState):
    """The shared state as one route sees it.

    The first node the route will try passes the gate here, before the router touches it (for Exo that
    includes reading the node's model list), so concurrent requests wait for one try of an unproven node
    instead of all connecting to it; later nodes pass it just before their attempt (`_Observer`). A failure
    that came from cutting the connection of a client that left is not the node's: it puts nobody in cooldown.
    """

    def __init__(self, run: RouteRun) -> None:
        self.run = run
        self.first_seen = False

    def blocked(self, provider: Any, url: str) -> str | None:
        reason = self.run.state.blocked(provider, url)
        if reason or self.first_seen:
            return reason
        self.first_seen = True
        return self.run.state.enter(provider, url, self.run)

    def failed(self, provider: Any, url: str, failure: Any) -> None:
        if not self.run.cancelled.is_set():
            self.run.state.failed(provider, url, failure)

    def succeeded(self, provider: Any, url: str) -> None:
        self.run.state.succeeded(provider, url)


class _Observer(RouteObserver):
    """The router's hooks for one serve request."""

    relays_parts = True  # tool calls and reasoning go on to the client

    def __init__(self, run: RouteRun) -> None:
        self.run = run
        self.current: tuple[Any, str, str] | None = None
        self.served_model: str | None = None
        self.reply_id: str | None = None
        self.gate_skipped = False
        self.tried: set[tuple[str, str]] = set()
        self.ended: set[str] = set()  # providers with a finished attempt in this route

    def _output(self) -> RouteRun:
        """The run, once per piece of output; the first one settles who answers."""
        run = self.run
        if run.cancelled.is_set():
            raise ClientGone()
        if not run._first_seen and self.current is not None:
            run._first_seen = True
            target, url, model = self.current
            if self.reply_id is not None:
                from exobridge.core.providers import kind_class

                run.cancel_url = kind_class(target.provider.kind).cancel_url(url, self.reply_id)
            run.answering = target.provider
            run.provider, run.url, run.model = target.provider.name, url, self.served_model or model
            run.state.answered(target.provider, url)
        return run

    def text(self, piece: str) -> None:
        run = self._output()
        if run.request.stream:
            run._push(Event("text", text=run.secrets(piece)))

    def part(self, fields: dict[str, Any]) -> None:
        run = self._output()
        if run.request.stream:
            run._push(Event("part", text=run.fields_json(fields)))

    def served(self, model: str, reply_id: str | None) -> None:
        self.served_model, self.reply_id = model, reply_id

    def attempt_started(self, target: Any, url: str, model: str) -> None:
        run = self.run
        if run.cancelled.is_set():
            raise ClientGone()
        key = (target.provider.name, url)
        self.current = (target, url, model)
        self.served_model = self.reply_id = None
        if key not in self.tried and self._has_later_candidate(target):
            reason = run.state.enter(target.provider, url, run)
            if reason:
                from exobridge.serve.shared import skipped_by_gate

                self.gate_skipped = True
                raise skipped_by_gate(reason)
        self.tried.add(key)

    def _has_later_candidate(self, target: Any) -> bool:
        """Whether a usable target comes after this one and has not been tried yet (when every later one has
        failed, the router is trying the nodes it deferred for cooldown: they are the last chance)."""
        names = [t.provider.name for t in self.run.targets]
        try:
            index = names.index(target.provider.name)
        except ValueError:
            return False
        later = [t for t in self.run.targets[index + 1 :] if t.reason is None and t.provider.enabled]
        return bool(later) and not any(t.provider.name in self.ended for t in later)

    def attempt_ended(self, attempt: Attempt, decision: Any) -> None:
        if self.gate_skipped:
            self.gate_skipped = False
            # Not a new failure of the node: another request found it failing a moment ago.
            attempt.outcome = type(attempt.outcome)("skipped")
            attempt.kind = "cooldown"
        self.ended.add(attempt.provider)
        self.run.attempts.append(attempt)
