"""Running `exobridge serve`: bind, say where, serve with uvicorn, stop gracefully.

uvicorn (with Starlette for routing) is a well-kept ASGI server; serve's own code is only the application.
The socket is bound here, before uvicorn starts, so `--port 0` gets a free port that the start-up line names.

SIGINT/SIGTERM (and SIGHUP): uvicorn stops accepting, lets in-flight requests and streams finish for up to `--grace`
seconds, then cancels what is left (their upstream requests are cut at once); the process then exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import IO, TYPE_CHECKING, Any

import uvicorn  # serve's modules load only for `exobridge serve`

from exobridge.serve.options import ServeOptions, ServeUsageError, check, is_loopback, resolve_client_key

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams

SECRETS_REFRESH_SECONDS = 5.0  # how soon a key added to the keys file or the environment is also redacted


class Secrets:
    """Redacts every upstream key, configured header secret and the client key from outgoing text.

    `__call__` removes whole secrets and any 8-character piece of one (core.secrets): for errors, headers and
    log lines. `quick` removes whole secrets only, cheap enough for every piece of model text.
    """

    def __init__(self, live: Any, client_key: str | None) -> None:
        self.live = live
        self.client_key = client_key
        self._redactor: Any = None
        self._whole: tuple[str, ...] = ()
        self._at = -float("inf")
        self._generation: int | None = None

    def _refresh(self) -> Any:
        now = time.monotonic()
        if self._generation != self.live.generation or now - self._at > SECRETS_REFRESH_SECONDS:
            from exobridge.core.secrets import config_redactor

            self._redactor = config_redactor(self.live.config, extra=[self.client_key])
            self._whole = tuple(sorted(self._redactor.secrets, key=len, reverse=True))
            self._at, self._generation = now, self.live.generation
        return self._redactor

    def quick(self, text: str) -> str:
        self._refresh()
        for secret in self._whole:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    def __call__(self, text: str) -> str:
        return self._refresh().redact(text)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and a
    # response written in two pieces would otherwise wait for the client's delayed ACK (40 ms) on keep-alive.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ServeUsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def build_context(opts: ServeOptions, key: str | None, stderr: IO[str]) -> Any:
    from exobridge.core import config as config_mod
    from exobridge.core import paths
    from exobridge.core.parallel import DaemonPool
    from exobridge.serve.app import ServeContext
    from exobridge.serve.bridge import UpstreamClients
    from exobridge.serve.logs import AccessLog
    from exobridge.serve.shared import LiveConfig, SharedRouteState

    log = AccessLog(stderr, opts.json_logs)
    live = LiveConfig(config_mod.load, paths.config_path(), log.warn)
    _warm_up(live.config)
    secrets = Secrets(live, key)
    log.redact = secrets
    return ServeContext(
        live=live,
        state=SharedRouteState(),
        pool=DaemonPool(name="exobridge-route"),
        log=log,
        redact=secrets,
        quick_redact=secrets.quick,
        client_key=key,
        clients=UpstreamClients(),
        loopback=is_loopback(opts.host),
    )


def _route_uvicorn_logs(log: Any) -> None:
    """uvicorn's own warnings (a malformed request, a slow shutdown) as serve's warning lines, redacted."""
    import logging

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.warn(record.getMessage().splitlines()[0] if record.getMessage() else record.levelname)

    logger = logging.getLogger("uvicorn")
    logger.handlers = [Forward(logging.WARNING)]
    logger.propagate = False


def _warm_up(config: Any) -> None:
    """Import what the first route needs now, so the first request does not pay ~0.2 s for it."""
    from exobridge.core import http, model_targets, reply  # noqa: F401
    from exobridge.core.providers import kind_class

    for provider in config.providers.values():
        kind_class(provider.kind)


def app_from_environment() -> Any:
    """The application for each `--workers` process (uvicorn imports it by name)."""
    import json

    from exobridge.serve.app import create_app

    raw = json.loads(os.environ["_EXOBRIDGE_SERVE"])
    opts = ServeOptions(**raw["options"])
    return create_app(build_context(opts, raw["key"], sys.stderr))


class _Server(uvicorn.Server):
    """uvicorn's server, saying on stderr when a signal starts the graceful stop."""

    def __init__(self, config: uvicorn.Config, ctx: Any, grace: float) -> None:
        super().__init__(config)
        self.ctx = ctx
        self.grace = grace

    def handle_exit(self, sig: int, frame: Any) -> None:
        if not self.should_exit:
            self.ctx.log.stopping(signal.Signals(sig).name, self.ctx.open_requests, self.grace)
        super().handle_exit(sig, frame)


def serve_run(opts: ServeOptions, io: IOStreams | None = None) -> int:
    """Serve until SIGINT/SIGTERM, then return 0. Raises ServeUsageError (exit 2) or the config's error (4)."""
    stderr = io.err if io is not None else sys.stderr
    key = resolve_client_key(opts)
    check(opts, key)
    from exobridge.serve.app import create_app

    ctx = build_context(opts, key.value, stderr)  # loads the config: a bad one fails here, before binding
    if key.warning:
        ctx.log.warn(key.warning)
    sock = _bind(opts.host, opts.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    providers = [p.name for p in ctx.live.config.ordered()]
    settings: dict[str, Any] = {
        "log_config": None,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "timeout_graceful_shutdown": opts.grace,
        "server_header": False,
    }
    _route_uvicorn_logs(ctx.log)
    server = _Server(uvicorn.Config(create_app(ctx), **settings), ctx, opts.grace) if opts.workers == 1 else None
    # From the start-up line on, SIGINT, SIGTERM and SIGHUP (a closed terminal) start the graceful stop, even
    # before uvicorn installs its own handlers (which it does for SIGINT and SIGTERM only). uvicorn re-raises
    # the signal that stopped it once it is done; these handlers make that harmless, so the stop ends with 0.
    stopped_early: list[int] = []
    stop = server.handle_exit if server is not None else (lambda sig, _frame: stopped_early.append(sig))
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        ctx.log.startup(f"http://{shown}:{port}/v1", providers, key.value is not None)
        if server is not None:
            server.run(sockets=[sock])
        elif not stopped_early:  # uvicorn's supervisor takes the signals over for its workers
            import json

            os.environ["_EXOBRIDGE_SERVE"] = json.dumps({"options": opts.__dict__, "key": key.value})
            uvicorn.run(
                "exobridge.serve.server:app_from_environment",
                factory=True,
                fd=sock.fileno(),
                workers=opts.workers,
                **settings,
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    ctx.log.stopped()
    return 0
