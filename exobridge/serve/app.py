"""The ASGI application behind `exobridge serve` (Starlette routes, pure-ASGI edges).

- `POST /v1/chat/completions` (serve/chat_endpoint.py): routed like `exobridge chat` (Exo first, failover only
  before the first token); the reply is always a clean OpenAI reply. The provider that answered and the
  attempts are in `X-Exobridge-*` headers, never in the content.
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

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from exobridge.core.parallel import DaemonPool
from exobridge.serve import dashboard, wire
from exobridge.serve.asgi import Message, Receive, Scope, Send, send_json, send_problem
from exobridge.serve.bridge import UpstreamClients
from exobridge.serve.chat_endpoint import ChatEndpoint
from exobridge.serve.logs import AccessLog
from exobridge.serve.shared import LiveConfig, SharedRouteState, TtlValue

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
