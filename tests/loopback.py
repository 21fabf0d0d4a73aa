"""A real HTTP server on 127.0.0.1 and an ephemeral port, scripted per test.

Raw sockets, so a handler can do what real providers do and friendly servers don't: stall, reset the
connection, send SSE comments, end a stream without `[DONE]`, put an error inside a 200 stream.
Synchronisation is by threading.Event, never by sleeping.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    307: "Temporary Redirect",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Exchange:
    """The handler's side of one request: write a reply in pieces, or misbehave."""

    def __init__(self, conn: socket.socket, request: Request, server: LoopbackServer) -> None:
        self.conn = conn
        self.request = request
        self.server = server
        self._chunked = False

    def raw(self, data: bytes) -> None:
        self.conn.sendall(data)

    def reply(
        self,
        status: int,
        body: bytes | str | Any,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        head = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(data)}",
            "Connection: close",
        ]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.raw(("\r\n".join(head) + "\r\n\r\n").encode() + data)

    def start_stream(
        self, status: int = 200, content_type: str = "text/event-stream", headers: dict[str, str] | None = None
    ) -> None:
        head = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
            "Transfer-Encoding: chunked",
            "Connection: close",
            "Cache-Control: no-cache",
        ]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.raw(("\r\n".join(head) + "\r\n\r\n").encode())
        self._chunked = True

    def chunk(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if raw:
            self.raw(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")

    def event(self, obj: Any) -> None:
        self.chunk(f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n")

    def comment(self, text: str = "keep-alive") -> None:
        self.chunk(f": {text}\n\n")

    def end(self) -> None:
        if self._chunked:
            self.raw(b"0\r\n\r\n")

    def reset(self) -> None:
        """Close with RST instead of FIN, as a crashed or killed peer does."""
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()

    def stall(self) -> None:
        """Hold the connection open, saying nothing, until the server stops."""
        self.server.released.wait()

    def drip(self, data: bytes | str, every: float = 0.02, forever: bool = False) -> None:
        """Send `data` one byte at a time, one byte per `every` seconds (pacing, not synchronisation), until it
        is all sent (or, with `forever`, again and again) or the client hangs up or the server stops."""
        raw = data.encode() if isinstance(data, str) else data
        with contextlib.suppress(OSError):
            while True:
                for byte in raw:
                    if self.server.released.wait(every):
                        return
                    self.conn.sendall(bytes([byte]))
                if not forever:
                    return

    def flood(self, piece: bytes, limit: int = 1 << 34) -> None:
        """Send `piece` again and again (an endless body) until the client hangs up, or `limit` bytes."""
        sent = 0
        with contextlib.suppress(OSError):
            while sent < limit and not self.server.released.is_set():
                self.conn.sendall(piece)
                sent += len(piece)

    def head(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Only the status line and headers (the body is the handler's business)."""
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.raw(("\r\n".join(lines) + "\r\n\r\n").encode())


Handler = Callable[[Exchange], None]


@dataclass
class LoopbackServer:
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method, path)] = handler
            return handler

        return register

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            thread.start()
            with self._lock:  # close() joins only started threads
                self._threads.append(thread)

    def _read_request(self, conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return None
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            piece = conn.recv(65536)
            if not piece:
                break
            rest += piece
        return Request(method, path, headers, rest[:length])

    def _handle(self, conn: socket.socket) -> None:
        try:
            request = self._read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
            handler = self.routes.get((request.method, request.path.split("?")[0]))
            exchange = Exchange(conn, request, self)
            if handler is None:
                exchange.reply(404, {"detail": "Not Found"})
            else:
                handler(exchange)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.released.set()
        self._sock.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class BlackHole:
    """Accepts TCP connections (the kernel completes the handshake) and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FullBacklog:
    """A listening port whose accept queue is full: the kernel drops new SYNs, so connecting times out,
    as it does for a host that is down or firewalled, without leaving 127.0.0.1.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)  # fills the queue

    def close(self) -> None:
        self._filler.close()
        self._sock.close()

    def __enter__(self) -> FullBacklog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- reply builders shared by the tests ---------------------------------------------------------


def chunk(
    content: str | None = None,
    model: str = "m",
    finish: str | None = None,
    role: bool = False,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    obj: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        obj["usage"] = usage
    return obj


def completion(content: str, model: str = "m", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    if usage is not None:
        obj["usage"] = usage
    return obj


def stream_words(words: list[str], model: str = "m", done: bool = True, usage: dict[str, Any] | None = None) -> Handler:
    """A well-behaved stream: role chunk, one chunk per word, finish chunk, optional [DONE]."""

    def handler(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk(model=model, role=True))
        for word in words:
            ex.event(chunk(word, model=model))
        ex.event(chunk(model=model, finish="stop", usage=usage))
        if done:
            ex.event("[DONE]")
        ex.end()

    return handler


def exo_models(*ids: str) -> Handler:
    def handler(ex: Exchange) -> None:
        ex.reply(200, {"object": "list", "data": [{"id": i, "object": "model", "ready": True} for i in ids]})

    return handler
