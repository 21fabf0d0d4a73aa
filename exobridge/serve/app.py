"""The ASGI application behind `exobridge serve` (Starlette routes, pure-ASGI edges).

- `POST /v1/chat/completions`: routed like `exobridge chat` (Exo first, failover only before the first token);
  the reply is always a clean OpenAI reply. The provider that answered and the attempts are in
  `X-Exobridge-*` headers, never in the content.
- `GET /v1/models`: logical names and every provider's ids (`provider:id`), from `exobridge models`' cache.
- `GET /health`: liveness, no upstream call. `GET /v1/exobridge/status`: `providers status --json`; the probes
  are cached (`STATUS_TTL`), the cooldowns are serve's current ones; an `Age` header says how old the probes are.
- `GET /`: the dashboard (serve/dashboard.py), and `GET /v1/exobridge/dashboard`: what it can show;
  `GET /v1/exobridge/history[/{id}]` and `/v1/exobridge/spend`: its history and spend (serve/history_view.py);
  `POST /v1/exobridge/exo/load`: load a model onto Exo, progress as server-sent events (serve/exo_load.py).

Every error is an OpenAI-style JSON body (`{"error": {"message", "type", "param", "code"}}`), never a
traceback; error text passes the redactor, so an upstream key never reaches a client or a log line.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from exobridge.core.parallel import DaemonPool
from exobridge.serve import dashboard, exo_autoload, wire
from exobridge.serve.bridge import REPLY_EVENTS, ClientGone, Event, RouteRun, UpstreamClients
from exobridge.serve.exo_autoload import COMMENT
from exobridge.serve.logs import AccessLog
from exobridge.serve.shared import LiveConfig, SharedRouteState, TtlValue

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPEN_PATHS = frozenset({"/health", *dashboard.PUBLIC_PATHS})  # answered without the client key: no data
STATUS_TTL = 5.0  # seconds a `/v1/exobridge/status` answer is reused: a polling dashboard cannot flood providers
MODELS_TTL = 30.0


@dataclass
class ServeContext:
    """Everything the endpoints share for the life of the server."""

    live: LiveConfig
    state: SharedRouteState
    pool: DaemonPool
    log: AccessLog
    redact: Callable[[str], str]  # whole keys and 8-character pieces: errors, headers, log lines
    quick_redact: Callable[[str], str] = str  # whole keys only: cheap enough for every piece of model text
    client_key: str | None = None
    clients: UpstreamClients | None = None  # lends each route an upstream httpx client of its own
    loopback: bool = True  # bound to loopback: only loopback Host names are answered (DNS rebinding)

    def __post_init__(self) -> None:
        self.open_requests = 0
        self.status_cache = TtlValue(STATUS_TTL, self._status)
        self.models_cache = TtlValue(MODELS_TTL, self._models)

    def _status(self) -> tuple[list[Any], Any, dict[str, Any]]:
        from exobridge.core import provider_status

        cooldowns = self.state.cooldowns()
        results = provider_status.probe_all(self.live.get(), cooldowns=cooldowns)
        # the `providers status --json` object
        return results, _cooldown_signature(cooldowns), provider_status.status_json(results)

    async def status(self) -> tuple[dict[str, Any], float]:
        """The status object and the age of its probes. Probes are reused for `STATUS_TTL` seconds, but a
        cooldown serve learned meanwhile (or one a CLI reset cleared) shows at once."""
        from dataclasses import replace

        from exobridge.core import provider_status

        self.live.get()  # notices a changed config file
        results, signature, body = await self.status_cache.get(self.live.generation)
        age = self.status_cache.age()
        cooldowns = self.state.cooldowns()
        if _cooldown_signature(cooldowns) == signature:
            return body, age
        fresh = [replace(r, cooldown=None, cooldown_left=None, last_failure=None) for r in results]
        provider_status.annotate_cooldowns(fresh, cooldowns)
        return provider_status.status_json(fresh), 0.0

    def _models(self) -> dict[str, Any]:
        from exobridge.core import model_lists

        config = self.live.get()
        lists = model_lists.provider_lists(config)
        data: list[dict[str, Any]] = []
        for entry in model_lists.model_table(config, lists):
            if entry.providers:  # a name no configured provider has an id for is not servable
                serving = [name for name, column in entry.providers.items() if column.get("available") is not False]
                data.append(_model_entry(entry.name, "exobridge", serving))
        for item in lists:
            if str(item.status) != "ok":
                continue
            for model in item.models:
                data.append(_model_entry(f"{item.name}:{model['id']}", item.name, [item.name]))
        return {"object": "list", "data": data}


def _cooldown_signature(cooldowns: Any) -> tuple[tuple[Any, ...], ...]:
    return tuple(sorted((e.provider, e.url, e.kind, e.reason, e.at, e.until) for e in cooldowns.entries()))


def _model_entry(model_id: str, owner: str, providers: list[str]) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner, "providers": providers}


# --- small ASGI helpers ---------------------------------------------------------------------------------


def _headers(extra: dict[str, str] | None, content_type: bytes) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    for name, value in (extra or {}).items():
        headers.append((name.lower().encode("latin-1"), wire.header_value(value).encode("latin-1")))
    return headers


async def send_json(send: Send, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
    body = wire.dumps(obj).encode()
    fields = [*_headers(headers, b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


async def send_problem(
    send: Send, scope: Scope, problem: wire.RequestProblem, headers: dict[str, str] | None = None
) -> None:
    scope.setdefault("exobridge", {})["error"] = problem.message
    await send_json(send, problem.status, problem.body(), headers)


async def read_body(scope: Scope, receive: Receive, limit: int = wire.MAX_BODY_BYTES) -> bytes:
    """The whole request body, or a 413 RequestProblem past `limit` bytes (checked before reading when the
    client declared its length)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise wire.RequestProblem(400, "invalid Content-Length") from None
            if declared > limit:
                raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _too_large(limit: int) -> wire.RequestProblem:
    return wire.RequestProblem(413, f"request body larger than {limit // (1024 * 1024)} MiB", code="body_too_large")


# --- POST /v1/chat/completions ------------------------------------------------------------------------------


TARGETS_KEPT = 256  # model names whose provider list is kept per configuration


class ChatEndpoint:
    def __init__(self, ctx: ServeContext) -> None:
        self.ctx = ctx
        self._targets_of: Any = None
        self._targets: dict[str, list[Any]] = {}

    def targets(self, spec: str, config: Any) -> list[Any]:
        """`model_targets.targets`, kept per model name until the configuration changes (they depend on
        nothing else, and working them out cost a few per cent of a request)."""
        if config is not self._targets_of:
            self._targets_of, self._targets = config, {}
        found = self._targets.get(spec)
        if found is None:
            from exobridge.core import model_targets

            if len(self._targets) >= TARGETS_KEPT:
                self._targets.clear()
            found = self._targets[spec] = model_targets.targets(spec, config)
        return list(found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = scope.setdefault("exobridge", {})
        try:
            body = await read_body(scope, receive)
            call = wire.parse_chat(body)
        except wire.RequestProblem as problem:
            await send_problem(send, scope, problem)
            return
        except ClientGone:
            return
        from exobridge.core.routing import ChatRequest

        config = self.ctx.live.get()
        spec = call.model or config.default_model
        info["requested_model"] = spec
        targets = self.targets(spec, config)
        if not targets:
            problem = wire.RequestProblem(
                404, f"no configured provider serves model {spec!r}", param="model", code="model_not_found"
            )
            await send_problem(send, scope, problem)
            return
        request = ChatRequest(
            messages=call.messages,
            model=spec,
            temperature=call.temperature,
            max_tokens=call.max_tokens,
            top_p=call.top_p,
            stream=call.stream,
            extra=call.extra,
        )
        run = RouteRun(
            config,
            request,
            targets,
            self.ctx.state,
            asyncio.get_running_loop(),
            clients=self.ctx.clients,
            secrets=self.ctx.quick_redact,
            log=self.ctx.log,
        )
        self.ctx.pool.submit(run.work)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, run))
        try:
            if call.stream:
                await self._stream(scope, send, run, call)
            else:
                await self._whole(scope, send, run)
        except BaseException:
            run.cancel()
            raise
        finally:
            watcher.cancel()

    async def _end(self, run: RouteRun, pending: list[Event]) -> Event:
        while True:
            for event in pending:
                if event.kind == "end":
                    return event
            pending = await run.events()

    async def _whole(self, scope: Scope, send: Send, run: RouteRun) -> None:
        end = await self._end(run, [])
        if run.cancelled.is_set():  # the client left: whatever the route ended with, nobody is listening
            end = Event("end", error=ClientGone())
        if end.error is not None or end.result is None:
            await self._crashed(scope, send, end.error)
            return
        result = end.result
        self._note(scope, result)
        if result.exit_code != 0 or result.provider is None:
            await self._failed(scope, send, result)
            return
        model = result.model or run.model or result.requested_model
        fields = json.loads(run.secrets(wire.dumps(result.message))) if result.message else None
        reply = wire.completion(
            wire.new_id(), int(time.time()), model, run.secrets(result.text), result.usage, result.finish_reason, fields
        )
        await send_json(send, 200, reply, self._reply_headers(result.provider, model, result.attempts, result))

    async def _stream(self, scope: Scope, send: Send, run: RouteRun, call: wire.ChatCall) -> None:
        # Wait for the first token (or the end) before answering: until then, failover can still happen and
        # a failure can still have its own HTTP status. Unless Exo is loading the model (serve/exo_autoload.py):
        # then the stream opens at once, kept alive with comment lines until the first token or the end.
        batch = await run.events()
        opened = False
        while all(e.kind == COMMENT for e in batch) and not run.cancelled.is_set():
            if not opened:
                await self._open(send, run)
                opened = True
            await send({"type": "http.response.body", "body": _comments(batch), "more_body": True})
            try:  # the load reports changes only: a quiet spell still gets a line, so no proxy cuts the stream
                batch = await asyncio.wait_for(run.events(), exo_autoload.KEEP_ALIVE)
            except TimeoutError:
                batch = [Event(COMMENT, text=f"still loading {run.model} on {run.provider}")]
        if not any(e.kind in REPLY_EVENTS for e in batch):  # the route ended without a token
            end = next((e for e in batch if e.kind == "end"), None)
            if run.cancelled.is_set() or end is None:
                end = Event("end", error=ClientGone())
            if opened:  # too late for a status: the stream ends with one error event
                data = _comments(batch) + self._kept_open_tail(scope, end)
                await send({"type": "http.response.body", "body": data, "more_body": False})
                return
            if end.error is not None or end.result is None:
                await self._crashed(scope, send, end.error)
                return
            self._note(scope, end.result)
            if end.result.exit_code != 0 or end.result.provider is None:
                await self._failed(scope, send, end.result)
                return
        model = run.model or "unknown"
        chunks = wire.ChunkWriter(model, call.include_usage)
        if not opened:
            await self._open(send, run)
        opening = chunks.role()
        while True:
            ends = [e for e in batch if e.kind == "end"]
            data = _comments(batch) + opening + _reply_chunks(chunks, batch)
            opening = b""
            if ends:
                data += self._stream_tail(scope, chunks, ends[0], run.cancelled.is_set())
                await send({"type": "http.response.body", "body": data, "more_body": False})
                return
            await send({"type": "http.response.body", "body": data, "more_body": True})
            batch = await run.events()

    async def _open(self, send: Send, run: RouteRun) -> None:
        """The stream's headers: who answers (or, kept open while Exo loads, who is loading)."""
        headers = self._reply_headers(run.provider or "", run.model or "unknown", run.attempts, None)
        headers["Cache-Control"] = "no-cache"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": _headers(headers, b"text/event-stream; charset=utf-8"),
            }
        )

    def _kept_open_tail(self, scope: Scope, end: Event) -> bytes:
        """The end of a stream opened while Exo loaded, when no provider answered after all."""
        result = end.result
        if isinstance(end.error, ClientGone):
            if result is not None:
                self._note(scope, result)
            scope["exobridge"]["error"] = "client disconnected"
            return b""
        if result is None or end.error is not None:
            return wire.ChunkWriter.error(self._internal(scope, end.error), "internal_error")
        self._note(scope, result)
        failure = wire.route_failure(result.attempts)
        error = failure.body["error"]
        message = self.ctx.redact(result.error if not result.attempts else error["message"])
        scope["exobridge"]["error"] = message
        return wire.ChunkWriter.error(message, error.get("code") or "no_provider")

    def _stream_tail(self, scope: Scope, chunks: wire.ChunkWriter, end: Event, client_left: bool) -> bytes:
        result = end.result
        if client_left:
            if result is not None:
                self._note(scope, result)
            scope["exobridge"]["error"] = "client disconnected"
            return b""
        if result is None or end.error is not None:
            if isinstance(end.error, ClientGone):
                return b""
            message = self._internal(scope, end.error)
            return chunks.error(message, "internal_error")
        self._note(scope, result)
        if result.exit_code == 0:
            return chunks.finish(result.usage, result.finish_reason)
        # Broken after the first token: one error event and no [DONE], so the client sees an error.
        message = self.ctx.redact(result.error or "the stream broke")
        scope["exobridge"]["error"] = message
        return chunks.error(f"the reply broke after it started: {message}", "stream_broken")

    # --- pieces -----------------------------------------------------------------------------------------
    def _reply_headers(self, provider: str, model: str, attempts: list[Any], result: Any) -> dict[str, str]:
        headers = {
            "X-Exobridge-Provider": provider,
            "X-Exobridge-Model": self.ctx.redact(model),
            "X-Exobridge-Attempts": wire.attempts_header(attempts, answering=provider if result is None else None),
        }
        if result is not None:
            if result.cost is not None:
                headers["X-Exobridge-Cost"] = f"{result.cost:.6f}"
            if result.latency_ms is not None:
                headers["X-Exobridge-Latency-Ms"] = str(result.latency_ms)
        return headers

    def _note(self, scope: Scope, result: Any) -> None:
        """Keep the route's result for the access log line."""
        scope["exobridge"]["result"] = result

    async def _failed(self, scope: Scope, send: Send, result: Any) -> None:
        if not result.attempts:  # nothing could be tried: serve's own trouble (e.g. a malformed proxy variable)
            from exobridge.core.errors import ExitCode

            message = self.ctx.redact(result.error or "no provider could be tried")
            code = "config_error" if result.exit_code == ExitCode.CONFIG else "internal_error"
            await send_problem(send, scope, wire.RequestProblem(500, message, code=code))
            return
        failure = wire.route_failure(result.attempts)
        failure.body["error"]["message"] = self.ctx.redact(failure.body["error"]["message"])
        scope["exobridge"]["error"] = failure.body["error"]["message"]
        headers = {"X-Exobridge-Attempts": wire.attempts_header(result.attempts)}
        await send_json(send, failure.status, failure.body, headers)

    def _internal(self, scope: Scope, error: BaseException | None) -> str:
        what = f"{type(error).__name__}: {error}" if error is not None else "no result"
        message = self.ctx.redact(f"internal error: {what}")
        scope["exobridge"]["error"] = message
        return message

    async def _crashed(self, scope: Scope, send: Send, error: BaseException | None) -> None:
        from exobridge.core.errors import ExobridgeError

        if isinstance(error, ClientGone):
            scope["exobridge"]["error"] = "client disconnected"
            return
        if isinstance(error, ExobridgeError):  # e.g. a keys file that became malformed: one line, exit-code kind
            message = self.ctx.redact(error.line())
            scope["exobridge"]["error"] = message
            await send_json(send, 500, wire.error_body(message, "server_error", code="config_error"))
            return
        message = self._internal(scope, error)
        await send_json(send, 500, wire.error_body(message, "server_error", code="internal_error"))


def _comments(batch: list[Event]) -> bytes:
    return b"".join(wire.ChunkWriter.comment(e.text) for e in batch if e.kind == COMMENT)


def _reply_chunks(chunks: wire.ChunkWriter, batch: list[Event]) -> bytes:
    """The batch's text and parts (tool calls, reasoning) as chunks, in the order they came."""
    if all(e.kind != "part" for e in batch):
        return chunks.text(e.text for e in batch if e.kind == "text")
    return b"".join(
        chunks.part(e.text) if e.kind == "part" else chunks.text([e.text]) for e in batch if e.kind in REPLY_EVENTS
    )


async def _watch_disconnect(receive: Receive, run: RouteRun) -> None:
    """Cancel the route as soon as the client disconnects (the body was read: the next message is that)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            run.cancel()
            return


# --- the other endpoints ------------------------------------------------------------------------------------


class JsonEndpoint:
    """A raw ASGI endpoint answering the JSON that `compute` gives (a class, so Starlette routes to it as is)."""

    def __init__(self, compute: Callable[[], Awaitable[Any]]) -> None:
        self.compute = compute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, await self.compute())


class HistoryEndpoint:
    """`GET /v1/exobridge/history[/{id}]` and `/v1/exobridge/spend` for the dashboard (serve/history_view.py).

    Read on a daemon thread. `{"available": false, "reason": ...}` when there is no history to show."""

    def __init__(self, ctx: ServeContext, what: str) -> None:
        self.ctx = ctx
        self.what = what

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from urllib.parse import parse_qs

        from exobridge.serve import history_view
        from exobridge.serve.shared import on_daemon_thread

        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            number = int(query.get("limit", query.get("days", ["50" if self.what == "recent" else "14"]))[0])
            ident = int(scope.get("path_params", {}).get("ident", "0"))
        except ValueError:
            await send_problem(send, scope, wire.RequestProblem(400, "limit, days and the id are whole numbers"))
            return
        config = self.ctx.live.get()
        work = {
            "recent": lambda: history_view.recent(number),
            "request": lambda: history_view.request(ident),
            "spend": lambda: history_view.spend(config, number),
        }[self.what]
        try:
            answer = await on_daemon_thread(work)
        except history_view.NotAvailable as exc:
            answer = {"available": False, "reason": self.ctx.redact(str(exc))}
        if answer is None:
            problem = wire.RequestProblem(404, f"no request {ident} in the history", code="not_found")
            await send_problem(send, scope, problem)
            return
        answer.setdefault("available", True)
        await send_json(send, 200, answer, {"Cache-Control": "no-store"})


class StatusEndpoint:
    """`GET /v1/exobridge/status`, with an `Age` header: seconds since the providers were probed."""

    def __init__(self, ctx: ServeContext) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, age = await self.ctx.status()
        await send_json(send, 200, body, {"Age": str(int(age)), "Cache-Control": "no-cache"})


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def foreign_request(scope: Scope, loopback: bool) -> str | None:
    """Why a request that a web page of another site made through the user's browser is refused, else None.

    - `Origin` (browsers send it on cross-origin requests and on every POST) must be serve's own origin:
      a page elsewhere cannot spend the user's keys with a form or a `no-cors` fetch.
    - Bound to loopback, the `Host` must be a loopback name: a site whose name is re-pointed at 127.0.0.1
      (DNS rebinding) would otherwise be "same origin" with serve.

    Clients that are not browsers (the openai SDK, curl) send no Origin and a Host they were given.
    """
    host = _header(scope, b"host")
    if loopback and host is not None:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.lower() not in LOOPBACK_NAMES and not name.startswith("127."):
            return f"Host {host!r} is not this loopback server (exobridge serve answers 127.0.0.1 and localhost)"
    origin = _header(scope, b"origin")
    if origin is not None:
        from urllib.parse import urlsplit

        # Behind a reverse proxy the page's origin is the proxy's name: X-Forwarded-Host (a header no page of
        # another site can add without a CORS preflight, which serve never grants).
        forwarded = (_header(scope, b"x-forwarded-host") or "").split(",")[0].strip()
        ours = {name.lower() for name in (host, forwarded) if name}
        if urlsplit(origin).netloc.lower() not in ours:
            return f"requests from web pages of another origin ({origin}) are refused"
    return None


class Edges:
    """Outermost layer: access log, client authentication, and errors as OpenAI JSON (never a traceback)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], ctx: ServeContext) -> None:
        self.app = app
        self.ctx = ctx
        self.expected = f"Bearer {ctx.client_key}".encode() if ctx.client_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        self.ctx.open_requests += 1
        info = scope.setdefault("exobridge", {})
        status: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            refused = foreign_request(scope, self.ctx.loopback)
            if refused:
                await send_problem(sending, scope, wire.RequestProblem(403, refused, code="forbidden_origin"))
            elif self.expected is not None and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
                problem = wire.RequestProblem(
                    401,
                    "missing or wrong API key for exobridge serve",
                    kind="invalid_request_error",
                    code="invalid_api_key",
                )
                await send_problem(sending, scope, problem, {"WWW-Authenticate": "Bearer"})
            else:
                await self.app(scope, receive, sending)
        except Exception as exc:  # a bug: one line in the log and a 500 body, never a traceback to the client
            message = self.ctx.redact(f"internal error: {type(exc).__name__}: {exc}")
            info["error"] = message
            if not status:
                await send_json(sending, 500, wire.error_body(message, "server_error", code="internal_error"))
        finally:
            self.ctx.open_requests -= 1
            # 499, as nginx logs it: the client closed the connection before an answer was sent.
            code = status[0] if status else 499
            if code >= 400 or not dashboard.is_quiet_read(scope):
                self.ctx.log.request(scope, code, time.monotonic() - started)

    def _authorized(self, scope: Scope) -> bool:
        assert self.expected is not None
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        return hmac.compare_digest(given, self.expected)


def create_app(ctx: ServeContext) -> Edges:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from exobridge.serve.exo_load import ExoLoadEndpoint

    async def health() -> Any:
        return {"status": "ok"}

    async def dashboard_features() -> Any:
        return dashboard.features()

    async def models() -> Any:
        ctx.live.get()
        return await ctx.models_cache.get(ctx.live.generation)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
        message = f"{request.method} {request.url.path}: {exc.detail}"
        request.scope.setdefault("exobridge", {})["error"] = message
        return JSONResponse(wire.error_body(message, "invalid_request_error", code=code), exc.status_code)

    files = dashboard.DashboardFiles()
    routes = [
        Route("/v1/chat/completions", ChatEndpoint(ctx), methods=["POST"]),
        Route("/chat/completions", ChatEndpoint(ctx), methods=["POST"]),
        Route("/v1/models", JsonEndpoint(models), methods=["GET"]),
        Route("/health", JsonEndpoint(health), methods=["GET"]),
        Route("/v1/exobridge/status", StatusEndpoint(ctx), methods=["GET"]),
        Route("/v1/exobridge/dashboard", JsonEndpoint(dashboard_features), methods=["GET"]),
        Route("/v1/exobridge/history", HistoryEndpoint(ctx, "recent"), methods=["GET"]),
        Route("/v1/exobridge/history/{ident}", HistoryEndpoint(ctx, "request"), methods=["GET"]),
        Route("/v1/exobridge/spend", HistoryEndpoint(ctx, "spend"), methods=["GET"]),
        Route("/v1/exobridge/exo/load", ExoLoadEndpoint(ctx), methods=["POST"]),
        *(Route(path, files, methods=["GET", "HEAD"]) for path in dashboard.FILES),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return Edges(app, ctx)
