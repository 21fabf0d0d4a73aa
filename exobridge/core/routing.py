"""Routing one chat request: try each target (and each node of it) in order, retry, fail over or stop.

The rule, as `Router.run` walks it:
1. Every target becomes `Candidate`s, one per node (url), in order. A candidate that cannot be asked at all
   (disabled, no key, model not mapped) is reported as skipped.
2. A `pre_send` check (budgets) may skip a candidate with a reason, like any other skip.
   A node that is cooling down (`RouteState.blocked`) is deferred while some later candidate is still usable:
   the last candidates are always tried.
3. Each candidate gets one attempt, and at most one retry (`failover.decide`); the first to answer ends the
   run. The deferred nodes are tried last, in order.

Every Failure reason is redacted (the provider's key and its configured header secrets) before it is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from exobridge.core import keys as keys_mod
from exobridge.core.config import Config, ProviderConfig
from exobridge.core.errors import ExitCode, ExobridgeError, Failure, FailureKind
from exobridge.core.model_targets import Target

if TYPE_CHECKING:
    import httpx

    from exobridge.core.failover import FailoverDecision
    from exobridge.core.providers import ProviderKind

TEXT_BLOCK = 512  # text pieces joined into one string while a reply is kept
COOLDOWN = "cooldown"  # Attempt.kind of a node skipped because it is cooling down
BUDGET = "budget"  # Attempt.kind of a node skipped by the pre-send check (core/budget.py)

# A check run just before a candidate is asked: a reason to skip it (e.g. "over daily budget: $2.03 of $2.00").
PreSendCheck = Callable[["Candidate", "ChatRequest"], "str | None"]


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class ChatRequest:
    """One chat request as every front end hands it to the router."""

    messages: list[dict[str, Any]]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stream: bool = True
    # Fields passed through as they are to OpenAI-compatible providers (stop, seed, response_format, tools …).
    # They never override model, messages, stream or stream_options.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attempt:
    """One node asked (or skipped) for one request, and what came of it."""

    provider: str
    url: str | None
    model: str | None
    outcome: Outcome
    reason: str | None = None
    status: int | None = None
    ms: int | None = None
    kind: FailureKind | str | None = None  # a FailureKind, "cooldown", or "interrupted" (cli/hints.py reads it)

    def public(self) -> dict[str, Any]:
        """The README's `attempts[]` entry (without the kind)."""
        data = asdict(self)
        data.pop("kind")
        data["outcome"] = str(self.outcome)
        return data


@dataclass
class ChatResult:
    """What a routed request ended with: the text, who answered, the cost, every attempt."""

    requested_model: str
    text: str = ""
    provider: str | None = None
    model: str | None = None
    url: str | None = None
    backend: str | None = None
    usage: dict[str, Any] | None = None
    cost: float | None = None
    latency_ms: int | None = None
    first_token_ms: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None
    exit_code: int = ExitCode.OK
    printed: bool = False
    finish_reason: str | None = None
    message: dict[str, Any] = field(default_factory=dict)  # tool calls, reasoning: reply.MESSAGE_FIELDS

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "provider": self.provider,
            "model": self.model,
            "requested_model": self.requested_model,
            "url": self.url,
            "backend": self.backend,
            "usage": self.usage,
            "cost": self.cost,
            "latency_ms": self.latency_ms,
            "first_token_ms": self.first_token_ms,
            "finish_reason": self.finish_reason,
            "attempts": [a.public() for a in self.attempts],
            "error": self.error,
        }


@dataclass
class Candidate:
    """One node of one target, and whether (and why not) it can be asked now."""

    target: Target
    url: str
    key: str | None = None
    skip: str | None = None  # why it cannot be asked at all
    skip_kind: FailureKind | None = None
    cooling: str | None = None  # why it should wait (cooldown), if a later candidate is usable

    @property
    def provider(self) -> ProviderConfig:
        return self.target.provider


class RouteObserver:
    """Hooks for the renderer. The default does nothing, so the core runs headless as a library.

    An observer with `relays_parts` gets each reply's tool calls and reasoning through `part` as they come
    (`reply.MESSAGE_FIELDS`), and reasoning then counts as output: once relayed, the route no longer fails over.
    """

    relays_parts = False

    def text(self, piece: str) -> None:
        pass

    def part(self, fields: dict[str, Any]) -> None:
        pass

    def served(self, model: str, reply_id: str | None) -> None:
        """The model id the answering reply names (a dated or routed id, for cloud kinds), and its `id`."""

    def thinking(self) -> None:
        """An observer without `relays_parts`: the reply carries reasoning (or other parts) and no text yet.
        Called for each such delta; the observer's text() (or the attempt's end) follows."""

    def attempt_started(self, target: Target, url: str, model: str) -> None:
        pass

    def attempt_ended(self, attempt: Attempt, decision: FailoverDecision | None) -> None:
        pass


class ReplyHooks(NamedTuple):
    """Where one run's reply goes as it arrives (see `ProviderKind.chat`)."""

    text: Callable[[str], None]
    part: Callable[[dict[str, Any]], None] | None
    served: Callable[[str, str | None], None] | None
    thinking: Callable[[], None] | None


class RouteState:
    """Routing memory that outlives one run (cooldowns). The default remembers nothing."""

    def blocked(self, provider: ProviderConfig, url: str) -> str | None:
        """A reason to skip this node now (e.g. "cooling down after connect failure, 23 s left"), or None."""
        return None

    def failed(self, provider: ProviderConfig, url: str, failure: Failure) -> None:
        pass

    def succeeded(self, provider: ProviderConfig, url: str) -> None:
        pass


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


class Router:
    """Routes one request at a time through `run`. Thread-safe when each thread has its own Router, or when
    `state` and `observer` are (serve shares one `http` client and a thread-safe RouteState)."""

    def __init__(
        self,
        config: Config,
        cli_keys: dict[str, str] | None = None,
        observer: RouteObserver | None = None,
        keep_text: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        state: RouteState | None = None,
        http: httpx.Client | None = None,
        pre_send: PreSendCheck | None = None,
        on_not_loaded: Callable[[Target, str, str, Failure], bool] | None = None,
    ) -> None:
        self.config = config
        self.state = state or RouteState()
        self.cli_keys = cli_keys or {}
        self.observer = observer or RouteObserver()
        self.keep_text = keep_text
        self.sleep = sleep
        self.http = http  # when given, used and never closed (one client shared by many runs)
        self.pre_send = pre_send  # e.g. core.budget.BudgetCheck: skips a candidate before it is asked
        # Called once per node when a provider that can load models says the model is not loaded (Exo's 404
        # "No instance found"): (target, url, model, failure) -> True when it is loaded now (try it again),
        # False to fail over as usual. The front end decides by the provider's `load` setting.
        self.on_not_loaded = on_not_loaded

    def run(self, request: ChatRequest, targets: list[Target]) -> ChatResult:
        result = ChatResult(requested_model=request.model)
        # The text is collected here, not by each attempt, so a reply that breaks or is interrupted after
        # its first token still has its partial text in the result. Pieces (often one word each) are joined
        # into blocks as they come: a hundred thousand small strings would hold several times the text's size.
        blocks: list[str] = []
        pieces: list[str] = []
        started = time.monotonic()

        def output() -> None:
            """Something reached the front end: from here the route no longer fails over."""
            if not result.printed:
                result.first_token_ms = _ms(started)
            result.printed = True

        def emit(piece: str) -> None:
            output()
            if self.keep_text:
                pieces.append(piece)
                if len(pieces) >= TEXT_BLOCK:
                    blocks.append("".join(pieces))
                    pieces.clear()
            self.observer.text(piece)

        def emit_part(fields: dict[str, Any]) -> None:
            output()
            self.observer.part(fields)

        relay = emit_part if getattr(self.observer, "relays_parts", False) else None
        served = getattr(self.observer, "served", None)  # observers written before these hooks lack them
        thinking = getattr(self.observer, "thinking", None) if relay is None else None

        try:
            from exobridge.core import http as http_mod

            own = self.http is None
            try:
                http = http_mod.client() if own else self.http
            except ExobridgeError as exc:  # a malformed or unsupported *_PROXY variable
                result.error = str(exc)
                result.exit_code = exc.code
                return result
            assert http is not None
            started = time.monotonic()  # after loading the HTTP stack, which is not the providers' time
            try:
                answered = self._route(http, request, targets, result, ReplyHooks(emit, relay, served, thinking))
            finally:
                if own:
                    http.close()
        except KeyboardInterrupt:
            answered = True
            result.error = "interrupted"
            result.exit_code = ExitCode.INTERRUPTED
        result.latency_ms = _ms(started)
        result.text = "".join(blocks) + "".join(pieces)
        if not answered:
            result.exit_code = ExitCode.NO_PROVIDER
            if result.error is None:
                result.error = "no provider could answer"
        return result

    def candidates(self, targets: list[Target]) -> list[Candidate]:
        """Every node of every target, in order, with its key and why it is skipped or cooling."""
        stored_keys = keys_mod.read_keys_file()
        found: list[Candidate] = []
        for target in targets:
            provider = target.provider
            if target.reason or not provider.enabled:
                reason = target.reason or f"disabled (exobridge providers enable {provider.name})"
                kind = FailureKind.DISABLED if not provider.enabled else FailureKind.MODEL_UNAVAILABLE
                found.append(Candidate(target, provider.url, skip=reason, skip_kind=kind))
                continue
            key = keys_mod.resolve(provider, self.cli_keys.get(provider.name), stored=stored_keys)
            if key.missing:
                reason = keys_mod.missing_key_reason(provider)
                found.append(Candidate(target, provider.url, skip=reason, skip_kind=FailureKind.NO_KEY))
                continue
            for url in provider.urls:
                found.append(Candidate(target, url, key.value, cooling=self.state.blocked(provider, url)))
        return found

    def _route(
        self,
        http: httpx.Client,
        request: ChatRequest,
        targets: list[Target],
        result: ChatResult,
        hooks: ReplyHooks,
    ) -> bool:
        """Walk the candidates; True once one answered or the routing must stop."""
        from exobridge.core.providers import client_for

        candidates = self.candidates(targets)
        clients: dict[str, ProviderKind] = {}

        def client(candidate: Candidate) -> ProviderKind:
            name = candidate.provider.name
            if name not in clients:
                clients[name] = client_for(candidate.provider, candidate.key, http)
            return clients[name]

        deferred: list[Candidate] = []
        for position, candidate in enumerate(candidates):
            if candidate.skip is not None:
                assert candidate.skip_kind is not None
                self._skip(result, candidate.target, candidate.skip, candidate.skip_kind)
                continue
            if self.pre_send is not None and (blocked := self.pre_send(candidate, request)) is not None:
                attempt = Attempt(
                    candidate.provider.name, candidate.url, candidate.target.model, Outcome.SKIPPED, blocked
                )
                attempt.kind = BUDGET
                self._report(result, attempt)
                continue
            later = candidates[position + 1 :]
            if candidate.cooling and any(c.skip is None and c.cooling is None for c in later):
                self._report(
                    result,
                    Attempt(
                        candidate.provider.name,
                        candidate.url,
                        candidate.target.model,
                        Outcome.SKIPPED,
                        candidate.cooling,
                        kind=COOLDOWN,
                    ),
                )
                deferred.append(candidate)
                continue
            if self._try_node(client(candidate), candidate, request, result, hooks) != "next":
                return True
        # Everything after them failed: the nodes skipped for cooldown are now the only candidates left.
        for candidate in deferred:
            if self._try_node(client(candidate), candidate, request, result, hooks) != "next":
                return True
        return False

    def _loaded_now(self, target: Target, url: str, model: str | None, failure: Failure) -> bool:
        """Whether the front end loaded a model the provider said is not loaded (see `on_not_loaded`)."""
        if self.on_not_loaded is None or model is None:
            return False
        from exobridge.core import exo_loading

        if not exo_loading.is_not_loaded(target.provider, failure):
            return False
        return bool(self.on_not_loaded(target, url, model, failure))

    def _report(self, result: ChatResult, attempt: Attempt, decision: FailoverDecision | None = None) -> None:
        result.attempts.append(attempt)
        self.observer.attempt_ended(attempt, decision)

    def _skip(self, result: ChatResult, target: Target, reason: str, kind: FailureKind) -> None:
        self._report(
            result, Attempt(target.provider.name, target.provider.url, target.model, Outcome.SKIPPED, reason, kind=kind)
        )

    def _try_node(
        self,
        client: ProviderKind,
        candidate: Candidate,
        request: ChatRequest,
        result: ChatResult,
        hooks: ReplyHooks,
    ) -> str:
        """One node, with at most one retry. Returns "ok", "next" (fail over) or "stop"."""
        from exobridge.core import http as http_mod

        target, url, provider = candidate.target, candidate.url, candidate.provider
        retried = False
        asked_to_load = False
        while True:
            attempt_started = time.monotonic()
            model = target.model
            try:
                model = client.choose_model(url, target)
                self.observer.attempt_started(target, url, model)
                reply, backend = client.chat(
                    url,
                    model,
                    request,
                    hooks.text,
                    keep_text=False,
                    emit_part=hooks.part,
                    on_served=hooks.served,
                    on_thinking=hooks.thinking,
                )
            except KeyboardInterrupt:
                attempt = Attempt(
                    provider.name, url, model, Outcome.FAILED, "interrupted", None, _ms(attempt_started), "interrupted"
                )
                result.attempts.append(attempt)
                if result.printed:
                    result.provider, result.url, result.model = provider.name, url, model
                raise
            except Failure as failure:
                failure.reason = http_mod.redact(failure.reason, http_mod.secrets_of(provider, client.key))
                self.state.failed(provider, url, failure)
                attempt = Attempt(
                    provider.name,
                    url,
                    model,
                    Outcome.FAILED,
                    failure.reason,
                    failure.status,
                    _ms(attempt_started),
                    failure.kind,
                )
                from exobridge.core.failover import decide  # only once an attempt failed

                decision = decide(failure, already_retried=retried, printed=result.printed)
                self._report(result, attempt, decision)
                if not asked_to_load and not result.printed and self._loaded_now(target, url, model, failure):
                    asked_to_load = True
                    continue
                asked_to_load = True
                if decision.retry_same:
                    retried = True
                    self.sleep(decision.retry_delay)
                    continue
                if decision.fail_over:
                    return "next"
                result.provider, result.url, result.model = provider.name, url, model
                result.error = f"{provider.name}: {failure.reason}"
                result.exit_code = ExitCode.PARTIAL if result.printed else ExitCode.NO_PROVIDER
                return "stop"
            self.state.succeeded(provider, url)
            self._report(result, Attempt(provider.name, url, model, Outcome.OK, None, 200, _ms(attempt_started)))
            result.provider = provider.name
            result.model = reply.served_model or model
            result.url = url
            result.backend = backend
            result.usage = reply.usage
            result.cost = client.cost(reply.usage)
            result.finish_reason = reply.finish_reason
            result.message = reply.message
            return "ok"
