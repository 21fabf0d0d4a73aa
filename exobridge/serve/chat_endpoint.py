"""`POST /v1/chat/completions`: one request routed like `exobridge chat` (Exo first, failover only before the
first token) on a worker thread (serve/bridge.py), its reply written back as a clean OpenAI reply (serve/wire.py),
whole or streamed, with who answered in `X-Exobridge-*` headers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from exobridge.serve import exo_autoload, wire
from exobridge.serve.asgi import Receive, Scope, Send, headers_of, read_body, send_json, send_problem
from exobridge.serve.bridge import REPLY_EVENTS, ClientGone, Event, RouteRun
from exobridge.serve.exo_autoload import COMMENT

if TYPE_CHECKING:
    from exobridge.serve.app import ServeContext


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
        fields = json.loads(run.fields_json(result.message)) if result.message else None
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
                "headers": headers_of(headers, b"text/event-stream; charset=utf-8"),
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
