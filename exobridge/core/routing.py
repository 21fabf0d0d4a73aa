"""Routing one chat request: try each target (and each Exo node) in order, retry, fail over or stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from exobridge.core import keys as keys_mod
from exobridge.core.config import Config, ProviderConfig
from exobridge.core.failover import FailoverDecision, Failure, FailureKind, decide
from exobridge.core.model_map import Target

EXIT_OK = 0
EXIT_NO_PROVIDER = 3
EXIT_CONFIG = 4
EXIT_PARTIAL = 5
EXIT_INTERRUPTED = 130


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stream: bool = True


@dataclass
class Attempt:
    provider: str
    url: str | None
    model: str | None
    outcome: str  # ok | failed | skipped
    reason: str | None = None
    status: int | None = None
    ms: int | None = None
    kind: str | None = None
    hint: str | None = None

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("kind")
        data.pop("hint")
        return data


@dataclass
class ChatResult:
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
    exit_code: int = EXIT_OK
    printed: bool = False

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
            "attempts": [a.public() for a in self.attempts],
            "error": self.error,
        }


class RouteObserver:
    """Hooks for the renderer. The default does nothing, so the core runs headless as a library."""

    def text(self, piece: str) -> None:
        pass

    def attempt_started(self, target: Target, url: str, model: str) -> None:
        pass

    def attempt_ended(self, attempt: Attempt, decision: FailoverDecision | None) -> None:
        pass


class RouteState:
    """Routing memory that outlives one run (cooldowns). The default remembers nothing."""

    def blocked(self, provider: ProviderConfig, url: str) -> str | None:
        """A reason to skip this node now (e.g. "cooling down after connect failure, 23 s left"), or None."""
        return None

    def failed(self, provider: ProviderConfig, url: str, failure: Failure) -> None:
        pass

    def succeeded(self, provider: ProviderConfig, url: str) -> None:
        pass


def hint_for(failure: Failure, target: Target) -> str | None:
    provider = target.provider
    if failure.kind is FailureKind.CONNECT and provider.kind == "exo":
        return "start Exo (exo) or set EXOBRIDGE_EXO_URL / providers.exo.url"
    if failure.kind in (FailureKind.AUTH, FailureKind.CREDITS):
        env = provider.key_env or "its key"
        what = "add credits" if failure.kind is FailureKind.CREDITS else "check the key"
        return f"{what}: {provider.name} uses {env}"
    if failure.kind is FailureKind.MODEL_UNAVAILABLE:
        return f"pick another model (exobridge models --provider {provider.name})"
    return None


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


class Router:
    def __init__(
        self,
        config: Config,
        cli_keys: dict[str, str] | None = None,
        observer: RouteObserver | None = None,
        keep_text: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        state: RouteState | None = None,
    ) -> None:
        self.config = config
        self.state = state or RouteState()
        self.cli_keys = cli_keys or {}
        self.observer = observer or RouteObserver()
        self.keep_text = keep_text
        self.sleep = sleep

    def run(self, request: ChatRequest, targets: list[Target]) -> ChatResult:
        result = ChatResult(requested_model=request.model)
        # The text is collected here, not by each attempt, so a reply that breaks or is interrupted after
        # its first token still has its partial text in the result.
        parts: list[str] = []
        started = time.monotonic()

        def emit(piece: str) -> None:
            if not result.printed:
                result.first_token_ms = _ms(started)
            result.printed = True
            if self.keep_text:
                parts.append(piece)
            self.observer.text(piece)

        try:
            import httpx

            try:
                http = httpx.Client(follow_redirects=False)
            except (ValueError, httpx.InvalidURL) as exc:  # a malformed *_PROXY variable
                result.error = f"invalid proxy setting in the environment: {exc}"
                result.exit_code = EXIT_CONFIG
                return result
            started = time.monotonic()  # after loading the HTTP stack, which is not the providers' time
            with http:
                answered = self._route(http, request, targets, result, emit)
        except KeyboardInterrupt:
            answered = True
            result.error = "interrupted"
            result.exit_code = EXIT_INTERRUPTED
        result.latency_ms = _ms(started)
        result.text = "".join(parts)
        if not answered:
            result.exit_code = EXIT_NO_PROVIDER
            if result.error is None:
                result.error = "no provider could answer"
        return result

    def _route(
        self,
        http: Any,
        request: ChatRequest,
        targets: list[Target],
        result: ChatResult,
        emit: Callable[[str], None],
    ) -> bool:
        """Walk the targets; True once one answered or the routing must stop."""
        from exobridge.core.providers import client_for

        stored_keys = keys_mod.read_keys_file()
        # First what can be asked at all, then which nodes are cooling down: a node in cooldown is skipped
        # only while some later node is still usable, so the last candidates are always tried.
        plan: list[tuple[Target, Any, str | None, FailureKind | None]] = []
        for target in targets:
            provider = target.provider
            if target.reason or not provider.enabled:
                reason = target.reason or f"disabled (exobridge providers enable {provider.name})"
                kind = FailureKind.DISABLED if not provider.enabled else FailureKind.MODEL_UNAVAILABLE
                plan.append((target, None, reason, kind))
                continue
            key = keys_mod.resolve(provider, self.cli_keys.get(provider.name), stored=stored_keys)
            if key.source == "missing":
                env = " or ".join(provider.key_envs)
                plan.append((target, None, f"no API key (set {env})", FailureKind.NO_KEY))
                continue
            plan.append((target, key, None, None))
        nodes = [
            (target, url, self.state.blocked(target.provider, url))
            for target, _key, reason, _kind in plan
            if reason is None
            for url in target.provider.urls
        ]
        position = 0
        deferred: list[tuple[Target, Any, str]] = []
        for target, key, reason, kind in plan:
            if reason is not None:
                assert kind is not None
                self._skip(result, target, reason, kind)
                continue
            client = None
            for url in target.provider.urls:
                blocked = nodes[position][2]
                position += 1
                if blocked and any(later is None for _t, _u, later in nodes[position:]):
                    attempt = Attempt(target.provider.name, url, target.model, "skipped", blocked, kind="cooldown")
                    result.attempts.append(attempt)
                    self.observer.attempt_ended(attempt, None)
                    deferred.append((target, key, url))
                    continue
                client = client or client_for(target.provider, key.value, http)
                if self._try_node(client, target, url, request, result, emit) != "next":
                    return True
        # Everything after them failed: the nodes skipped for cooldown are now the only candidates left.
        for target, key, url in deferred:
            client = client_for(target.provider, key.value, http)
            if self._try_node(client, target, url, request, result, emit) != "next":
                return True
        return False

    def _skip(self, result: ChatResult, target: Target, reason: str, kind: FailureKind) -> None:
        attempt = Attempt(target.provider.name, target.provider.url, target.model, "skipped", reason, kind=kind.value)
        if kind is FailureKind.NO_KEY:
            attempt.hint = f"exobridge keys set {target.provider.name}, or export {target.provider.key_env}"
        result.attempts.append(attempt)
        self.observer.attempt_ended(attempt, None)

    def _try_node(
        self,
        client: Any,
        target: Target,
        url: str,
        request: ChatRequest,
        result: ChatResult,
        emit: Callable[[str], None],
    ) -> str:
        """One node, with at most one retry. Returns "ok", "next" (fail over) or "stop"."""
        retried = False
        while True:
            attempt_started = time.monotonic()
            model = target.model
            try:
                model = client.choose_model(url, target)
                self.observer.attempt_started(target, url, model)
                reply, backend = client.chat(url, model, request, emit, keep_text=False)
            except KeyboardInterrupt:
                attempt = Attempt(
                    target.provider.name, url, model, "failed", "interrupted", None, _ms(attempt_started), "interrupted"
                )
                result.attempts.append(attempt)
                if result.printed:
                    result.provider, result.url, result.model = target.provider.name, url, model
                raise
            except Failure as failure:
                failure.reason = keys_mod.redact(failure.reason, client.key)
                self.state.failed(target.provider, url, failure)
                attempt = Attempt(
                    target.provider.name,
                    url,
                    model,
                    "failed",
                    failure.reason,
                    failure.status,
                    _ms(attempt_started),
                    failure.kind.value,
                    hint_for(failure, target),
                )
                result.attempts.append(attempt)
                decision = decide(failure, already_retried=retried, printed=result.printed)
                self.observer.attempt_ended(attempt, decision)
                if decision.retry_same:
                    retried = True
                    self.sleep(decision.retry_delay)
                    continue
                if decision.fail_over:
                    return "next"
                result.provider, result.url, result.model = target.provider.name, url, model
                result.error = f"{target.provider.name}: {failure.reason}"
                result.exit_code = EXIT_PARTIAL if result.printed else EXIT_NO_PROVIDER
                return "stop"
            self.state.succeeded(target.provider, url)
            attempt = Attempt(target.provider.name, url, model, "ok", None, 200, _ms(attempt_started))
            result.attempts.append(attempt)
            self.observer.attempt_ended(attempt, None)
            result.provider = target.provider.name
            result.model = reply.served_model or model
            result.url = url
            result.backend = backend
            result.usage = reply.usage
            result.cost = client.cost(reply.usage)
            return "ok"
