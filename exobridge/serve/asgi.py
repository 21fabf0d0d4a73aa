"""Small pure-ASGI pieces shared by serve's endpoints: the type names, a JSON reply, an OpenAI-style problem,
and reading a request body under a size limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from exobridge.serve import wire
from exobridge.serve.bridge import ClientGone

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def headers_of(extra: dict[str, str] | None, content_type: bytes) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    for name, value in (extra or {}).items():
        headers.append((name.lower().encode("latin-1"), wire.header_value(value).encode("latin-1")))
    return headers


async def send_json(send: Send, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
    body = wire.dumps(obj).encode()
    fields = [*headers_of(headers, b"application/json"), (b"content-length", str(len(body)).encode())]
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
