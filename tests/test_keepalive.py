"""Kept-alive upstream connections (`http.client(keepalive=True)`, serve's upstream clients): the next request
reuses the connection (no new TCP or TLS handshake), and a deadline still cuts a reused connection that stalls.

The upstream here keeps connections open (HTTP/1.1 keep-alive; tests/loopback.py always closes them) and counts
the connections it accepted.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from exobridge.core import http, model_targets
from exobridge.core.errors import Failure, FailureKind
from exobridge.core.routing import ChatRequest, Router
from tests.test_routing import make_config


class KeepAliveUpstream(ThreadingHTTPServer):
    """OpenAI-compatible chat on 127.0.0.1 with keep-alive. By the requested model: `whole` (JSON), `stream`
    (chunked SSE ending with [DONE]), `stall` (reads the request, answers nothing, notes when the client cuts)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.cut = threading.Event()  # a stalled request's connection was closed by the client
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: KeepAliveUpstream

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # the Exo-less model list the router may ask for
        self._send(200, b'{"object":"list","data":[]}', "application/json")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body["model"]
        if model == "stall":
            if self.connection.recv(1) == b"":  # blocks until the client closes or shuts the connection
                self.server.cut.set()
            self.close_connection = True
            return
        if model == "stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for word in ("Hello", " again"):
                event = {"model": model, "choices": [{"index": 0, "delta": {"content": word}}]}
                self._chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        reply = {"model": model, "choices": [{"index": 0, "message": {"content": "Hello"}, "finish_reason": "stop"}]}
        self._send(200, json.dumps(reply).encode(), "application/json")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream() -> Iterator[KeepAliveUpstream]:
    server = KeepAliveUpstream()
    yield server
    server.shutdown()
    server.server_close()


def local(url: str) -> Any:
    return make_config({"local": {"kind": "openai", "url": f"{url}/v1"}})


def post(client: Any, url: str, model: str, deadline: float = 5.0) -> bytes:
    response = http.send(
        client,
        "POST",
        f"{url}/v1/chat/completions",
        json_body={"model": model, "messages": []},
        timeout=http.timeout_for(local(url).providers["local"], read=60.0),
        deadline=time.monotonic() + deadline,
    )
    return http.read_body(response, cap=http.JSON_CAP, deadline=time.monotonic() + deadline)


def test_a_keep_alive_client_reuses_its_connection(upstream: KeepAliveUpstream) -> None:
    with http.client(keepalive=True) as client:
        assert http.reuses_connections(client)
        for _ in range(3):
            assert b"Hello" in post(client, upstream.url, "whole")
    assert upstream.connections == 1


def test_the_default_client_opens_a_connection_per_request(upstream: KeepAliveUpstream) -> None:
    with http.client() as client:
        assert not http.reuses_connections(client)
        for _ in range(3):
            post(client, upstream.url, "whole")
    assert upstream.connections == 3


def test_a_reused_connection_that_stalls_is_cut_at_the_deadline(upstream: KeepAliveUpstream) -> None:
    """The read timeout is 60 s: only the deadline (0.5 s) can end the wait and close the reused socket."""
    with http.client(keepalive=True) as client:
        post(client, upstream.url, "whole")  # the connection is now in the pool
        with pytest.raises(Failure) as stalled:
            post(client, upstream.url, "stall", deadline=0.5)
        assert stalled.value.kind is FailureKind.FIRST_TOKEN_TIMEOUT
        assert upstream.cut.wait(5), "the stalled, reused connection was left open"
        assert upstream.connections == 1  # it was the reused one
        assert b"Hello" in post(client, upstream.url, "whole")  # the pool opens a new one after the cut


def test_a_routed_stream_leaves_its_connection_for_the_next_request(upstream: KeepAliveUpstream) -> None:
    """The router reads a stream to its end (after [DONE], the chunked body's last chunk), so the next
    request, streamed or not, goes over the same connection."""
    config = local(upstream.url)
    with http.client(keepalive=True) as client:
        for model, stream in (("stream", True), ("stream", True), ("whole", False)):
            request = ChatRequest([{"role": "user", "content": "hi"}], model=model, stream=stream)
            result = Router(config, http=client).run(request, model_targets.targets(f"local:{model}", config))
            assert result.exit_code == 0 and result.text.startswith("Hello"), result.attempts
    assert upstream.connections == 1


def test_serve_reuses_its_upstream_connection_from_request_to_request(
    upstream: KeepAliveUpstream, write_config
) -> None:
    """serve's application in-process: three requests, streamed and whole, one connection to the provider."""
    from starlette.testclient import TestClient

    from exobridge.serve.app import create_app
    from exobridge.serve.options import ServeOptions
    from exobridge.serve.server import build_context

    write_config(
        "[providers.exo]\nenabled = false\n[providers.openrouter]\nenabled = false\n"
        f'[providers.huggingface]\nenabled = false\n[providers.local]\nkind = "openai"\nurl = "{upstream.url}/v1"\n'
    )
    ctx = build_context(ServeOptions(), None, io.StringIO())
    with TestClient(create_app(ctx), base_url="http://127.0.0.1") as client:
        for model, stream in (("stream", True), ("whole", False), ("stream", True)):
            body = {"model": f"local:{model}", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
            response = client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200 and "Hello" in response.text
    assert upstream.connections == 1
