"""`POST /v1/exobridge/exo/load`: load a model onto an Exo cluster from the dashboard, with the same progress
as `exobridge models load` (core/exo_loading.py does the work; this is only its HTTP front).

Body `{"model": "MODEL" | "provider:id", "timeout": seconds?}`. The answer is a stream of server-sent events,
one `LoadEvent.to_json()` object each (`phase`, `message`, per-node download bytes, layers loaded), the last
one `ready`, `failed` or `timeout`; then `data: [DONE]`. A model Exo cannot load is a 400 (which provider,
which model) or a 502 (Exo unreachable) before the stream starts; trouble after it started is one
`{"error": {"message"}}` event. A client that goes away stops the waiting; Exo keeps loading (as Ctrl-C on
`models load` without `--cancel`).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 64 * 1024


def available() -> bool:
    try:
        from exobridge.core import exo_loading
    except ImportError:
        return False
    return hasattr(exo_loading, "ExoLoader") and hasattr(exo_loading, "resolve")


class ExoLoadEndpoint:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from exobridge.serve import wire
        from exobridge.serve.asgi import read_body, send_problem
        from exobridge.serve.bridge import ClientGone

        try:
            model, timeout = _parse(await read_body(scope, receive, MAX_BODY))
        except wire.RequestProblem as problem:
            await send_problem(send, scope, problem)
            return
        except ClientGone:
            return
        if not available():
            await send_problem(send, scope, wire.RequestProblem(404, "loading models is not in this version"))
            return
        from exobridge.core import exo_loading, keys
        from exobridge.core.errors import ExobridgeError, UsageError

        try:
            target = exo_loading.resolve(model, self.ctx.live.get())
        except UsageError as exc:
            await send_problem(send, scope, wire.RequestProblem(400, self.ctx.redact(str(exc)), param="model"))
            return
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def hand(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        def work() -> None:
            try:
                with exo_loading.ExoLoader(target.provider, keys.resolve(target.provider).value) as loader:
                    for event in loader.load(target, timeout=timeout or exo_loading.DEFAULT_TIMEOUT):
                        if stop.is_set():
                            return  # the page left: stop waiting, Exo keeps loading
                        hand("event", event.to_json())
                hand("end", None)
            except ExobridgeError as exc:
                hand("error", exc)
            except Exception as exc:  # a bug: one line to the page, never a traceback
                hand("error", exc)

        async def watch() -> None:  # the body was read: the next message is the disconnect
            while (await receive())["type"] != "http.disconnect":
                pass
            stop.set()
            events.put_nowait(("gone", None))

        threading.Thread(target=work, name="exobridge-serve-exo-load", daemon=True).start()
        watcher = asyncio.ensure_future(watch())
        started = False
        try:
            while True:
                kind, value = await events.get()
                if kind == "gone":
                    scope.setdefault("exobridge", {})["error"] = "client disconnected"
                    return
                if kind == "error" and not started:
                    status = 400 if isinstance(value, UsageError) else 502
                    message = self.ctx.redact(str(value) or type(value).__name__)
                    await send_problem(send, scope, wire.RequestProblem(status, message, code="exo_load_failed"))
                    return
                if not started:
                    started = True
                    headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                if kind in ("end", "error"):  # the cluster changed (or may have): probe it again next time
                    self.ctx.status_cache.invalidate()
                if kind == "end":
                    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
                    return
                if kind == "error":
                    value = {"error": {"message": self.ctx.redact(str(value) or type(value).__name__)}}
                    data = f"data: {wire.dumps(value)}\n\n".encode()
                    await send({"type": "http.response.body", "body": data, "more_body": False})
                    return
                data = f"data: {self.ctx.redact(wire.dumps(value))}\n\n".encode()
                await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            stop.set()
            watcher.cancel()


def _parse(body: bytes) -> tuple[str, float | None]:
    from exobridge.serve import wire

    try:
        data = json.loads(body)
    except ValueError:
        raise wire.RequestProblem(400, "the body is not JSON", code="invalid_json") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, str) or not model.strip():
        raise wire.RequestProblem(400, "model: expected the model to load", param="model")
    timeout = data.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0
    ):
        raise wire.RequestProblem(400, "timeout: expected a positive number of seconds", param="timeout")
    return model.strip(), timeout
