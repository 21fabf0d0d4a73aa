"""core/http.py and the chat path under hostile servers: deadlines no drip extends, byte caps, one wording per
transport failure, proxy settings that cannot work (issue 9 defects 1, 2, 9, 11). Real loopback servers."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
from typing import Any

import httpx
import pytest

from exobridge.core import failover, http
from exobridge.core.errors import ExitCode, Failure, FailureKind, ProxyError
from exobridge.core.routing import ChatRequest, Router
from tests.loopback import Exchange, FullBacklog, chunk, closed_port, completion, stream_words
from tests.test_routing import Recorder, make_config, route, two_providers

pytestmark = pytest.mark.timeout(30)

FAST = {"first_token_timeout": 0.3, "idle_timeout": 0.3}


def answered_by_backup(result: Any) -> None:
    assert result.exit_code == 0, result.attempts
    assert result.provider == "second"
    assert result.text == "from backup"


# --- defect 1: a drip never extends the wall-clock deadline ------------------------------------------------


def test_a_200_that_drips_its_json_body_fails_over_at_the_first_token_deadline(server, backup):
    drip = server()

    @drip.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        ex.drip(b" ", forever=True)

    result, _ = route(two_providers(drip.url, backup.url, **FAST), stream=False)
    answered_by_backup(result)
    assert result.attempts[0].kind is FailureKind.FIRST_TOKEN_TIMEOUT
    assert result.attempts[0].reason == "no reply within 0.3 s"


def test_a_500_that_drips_its_error_body_fails_over_at_the_deadline(server, backup):
    drip = server()

    @drip.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.head(500, {"Content-Type": "application/json", "Content-Length": "100000"})
        ex.drip(b" ", forever=True)

    result, _ = route(two_providers(drip.url, backup.url, **FAST))
    answered_by_backup(result)
    assert result.attempts[0].status == 500  # the status is known even though its body never ended


def test_headers_that_drip_fail_over_at_the_deadline(server, backup):
    drip = server()

    @drip.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.raw(b"HTTP/1.1 200 OK\r\n")
        ex.drip(b"X-Slow: a\r\n", forever=True)

    result, _ = route(two_providers(drip.url, backup.url, **FAST))
    answered_by_backup(result)
    assert result.attempts[0].kind is FailureKind.FIRST_TOKEN_TIMEOUT


def test_an_sse_stream_that_drips_bytes_without_an_event_fails_over(server, backup):
    drip = server()

    @drip.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.start_stream()
        ex.drip(b"1\r\n:\r\n", forever=True)  # one chunk of ':' at a time: a comment line that never ends

    result, _ = route(two_providers(drip.url, backup.url, **FAST))
    answered_by_backup(result)
    assert result.attempts[0].reason == "no first token within 0.3 s"


def test_get_json_ends_at_its_deadline_whatever_drips(server):
    drip = server()

    @drip.route("GET", "/models")
    def _(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        ex.drip(b" ", forever=True)

    with http.client() as client, pytest.raises(Failure) as caught:
        http.get_json(client, f"{drip.url}/models", deadline_s=0.3)
    assert caught.value.kind is FailureKind.FIRST_TOKEN_TIMEOUT


# --- defect 2: byte caps on every body, counted after decompression ---------------------------------------


def test_an_endless_json_body_fails_as_a_bad_response_and_fails_over(server, backup):
    endless = server()

    @endless.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json"})  # no length: the body ends when the socket does
        ex.raw(b'{"choices": [{"message": {"content": "')
        ex.flood(b"x" * 65536)

    result, _ = route(two_providers(endless.url, backup.url), stream=False)
    answered_by_backup(result)
    assert result.attempts[0].kind is FailureKind.BAD_RESPONSE
    assert result.attempts[0].reason == "reply larger than 4 MiB (cap)"


def test_a_gzip_bomb_fails_once_it_unpacks_past_the_cap(server, backup):
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", compresslevel=9)
    assert len(bomb) < 128 * 1024
    served = server()

    @served.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip", "Content-Length": str(len(bomb))})
        ex.raw(bomb)

    result, _ = route(two_providers(served.url, backup.url), stream=False)
    answered_by_backup(result)
    assert result.attempts[0].reason == "reply larger than 4 MiB (cap)"


def test_a_huge_sse_line_fails_as_a_bad_response(server, backup):
    served = server()

    @served.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.start_stream()
        ex.chunk(b"data: " + b"x" * (2 * 1024 * 1024))
        ex.stall()

    result, _ = route(two_providers(served.url, backup.url))
    answered_by_backup(result)
    assert result.attempts[0].kind is FailureKind.BAD_RESPONSE
    assert "(cap)" in (result.attempts[0].reason or "")


def test_an_error_body_is_read_only_up_to_its_cap(server, backup):
    served = server()
    message = "boom " + "y" * (200 * 1024)

    @served.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.reply(503, {"error": {"message": message}})

    result, _ = route(two_providers(served.url, backup.url))
    answered_by_backup(result)
    # 64 KiB of a JSON body is not JSON any more: its first line (cut at 300 characters) is what is shown.
    assert result.attempts[0].status == 503
    assert len(result.attempts[0].reason or "") < 400


def test_read_body_keeps_the_first_bytes_of_an_error_body_when_truncating(server):
    served = server()
    served.route("GET", "/e")(lambda ex: ex.reply(500, "z" * 100_000, content_type="text/plain"))
    with http.client() as client:
        response = http.send(client, "GET", f"{served.url}/e")
        body = http.read_body(response, cap=1000, deadline=None, truncate=True)
    assert body == b"z" * 1000


# --- defect 9: Retry-After parsed safely and capped -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("99999999999999", failover.RETRY_AFTER_CAP),
        ("1e400", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", failover.RETRY_AFTER_CAP),
    ],
)
def test_retry_after_is_finite_and_capped(header: str, expected: float | None) -> None:
    assert failover.parse_retry_after(header) == expected


def test_a_huge_retry_after_is_capped_in_the_failure(server, backup):
    limited = server()
    limited.route("POST", "/chat/completions")(
        lambda ex: ex.reply(429, {"error": "slow down"}, headers={"Retry-After": "99999999999999"})
    )
    result, _ = route(two_providers(limited.url, backup.url))
    answered_by_backup(result)
    failure = failover.classify_http(429, failover.ErrorBody("x"), "99999999999999")
    assert failure.retry_after == failover.RETRY_AFTER_CAP == 3600.0


def test_estimated_time_in_a_503_body_is_capped_and_nan_is_ignored() -> None:
    big = failover.parse_error_body(json.dumps({"error": "loading", "estimated_time": 1e300}).encode())
    assert big.retry_after == failover.RETRY_AFTER_CAP
    nan = failover.parse_error_body(b'{"error": "loading", "estimated_time": NaN}')
    assert nan.retry_after is None


# --- defect 11 and one wording: proxies and transport failures --------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [("HTTPS_PROXY", "http://[::1"), ("HTTP_PROXY", "::garbage::"), ("ALL_PROXY", "socks5://127.0.0.1:1080")],
)
def test_a_broken_proxy_setting_is_a_proxy_error(monkeypatch, variable: str, value: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ProxyError) as caught:
        http.client()
    assert str(caught.value).startswith("invalid proxy setting in the environment: ")
    assert caught.value.code == ExitCode.CONFIG


def test_chat_with_a_broken_proxy_ends_with_exit_4(monkeypatch, backup):
    monkeypatch.setenv("HTTPS_PROXY", "http://[::1")
    result, _ = route(two_providers(backup.url, backup.url))
    assert result.exit_code == ExitCode.CONFIG
    assert (result.error or "").startswith("invalid proxy setting in the environment: ")


def failure_of(url: str, **provider: Any) -> Failure:
    cfg = make_config({"only": {"kind": "openai", "url": url, **provider}})
    with http.client() as client, pytest.raises(Failure) as caught:
        http.send(client, "GET", f"{url}/models", provider=cfg.providers["only"], deadline=None)
    return caught.value


def test_a_refused_connection_has_one_wording() -> None:
    failure = failure_of(f"http://127.0.0.1:{closed_port()}")
    assert (failure.kind, failure.reason) == (FailureKind.CONNECT, "connection refused")


def test_a_connect_timeout_has_one_wording() -> None:
    with FullBacklog() as hole:
        failure = failure_of(hole.url, connect_timeout=0.2)
    assert (failure.kind, failure.reason) == (FailureKind.CONNECT, "connect timeout after 0.2 s")


def test_tls_to_a_plain_http_server_has_one_wording() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_in_plain_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer_in_plain_http, daemon=True).start()
    with listener:
        failure = failure_of(f"https://127.0.0.1:{listener.getsockname()[1]}")
    assert failure.kind is FailureKind.CONNECT
    assert failure.reason.startswith("TLS handshake failed (")


def test_a_name_that_does_not_resolve_has_one_wording(monkeypatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    failure = failure_of("http://nonexistent.invalid")
    assert (failure.kind, failure.reason) == (FailureKind.CONNECT, "host not found (DNS)")


def test_an_unreachable_proxy_has_one_wording(monkeypatch, server) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    failure = failure_of("http://127.0.0.1:9")
    assert failure.kind is FailureKind.CONNECT
    assert failure.reason == f"proxy unreachable (http://127.0.0.1:{port}: connection refused)"


def test_transport_failure_maps_each_httpx_error_to_one_wording() -> None:
    request = httpx.Request("GET", "http://x")
    cases = {
        httpx.ConnectError("[Errno 111] Connection refused", request=request): "connection refused",
        httpx.ReadError("reset", request=request): "connection reset (reset)",
        httpx.RemoteProtocolError("peer closed", request=request): "connection reset (peer closed)",
        httpx.ReadTimeout("timed out", request=request): "no reply within 2 s",
        httpx.ProxyError("502", request=request): "proxy unreachable (502)",
        httpx.ConnectError("[Errno -3] Temporary failure in name resolution"): "host not found (DNS)",
        httpx.ConnectError("[Errno 8] nodename nor servname provided, or not known"): "host not found (DNS)",
        httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"): (
            "TLS handshake failed ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed)"
        ),
        httpx.ConnectError("[Errno 101] Network is unreachable"): "cannot connect ([Errno 101] Network is unreachable)",
    }
    for exc, reason in cases.items():
        assert http.transport_failure(exc, waited=2).reason == reason


# --- the router's contract with serve ---------------------------------------------------------------------


def test_a_shared_client_is_used_and_left_open(server) -> None:
    served = server()
    served.route("POST", "/chat/completions")(stream_words(["Hi"]))
    cfg = two_providers(served.url, served.url)
    with http.client(keepalive=True) as shared:
        router = Router(cfg, http=shared)
        first = router.run(ChatRequest([{"role": "user", "content": "x"}], "m"), _targets(cfg))
        second = router.run(ChatRequest([{"role": "user", "content": "x"}], "m"), _targets(cfg))
        assert not shared.is_closed
    assert (first.text, second.text) == ("Hi", "Hi")


def test_extra_fields_pass_through_but_never_override_the_request(server) -> None:
    served = server()
    served.route("POST", "/chat/completions")(stream_words(["Hi"]))
    cfg = two_providers(served.url, served.url)
    extra = {"stop": ["\n"], "seed": 7, "response_format": {"type": "json_object"}, "model": "evil", "stream": False}
    Router(cfg).run(ChatRequest([{"role": "user", "content": "x"}], "m", extra=extra), _targets(cfg))
    sent = served.requests[0].json()
    assert (sent["stop"], sent["seed"], sent["response_format"]) == (["\n"], 7, {"type": "json_object"})
    assert (sent["model"], sent["stream"]) == ("m", True)


class ClientGone(Exception):
    pass


def test_an_exception_from_observer_text_propagates_and_closes_the_upstream(server) -> None:
    served = server()
    hung_up = threading.Event()

    @served.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("first"))
        try:
            for _ in range(10_000):
                if served.released.wait(0.01):
                    return
                ex.event(chunk("more"))
        except OSError:
            hung_up.set()

    class Leaving(Recorder):
        def text(self, piece: str) -> None:
            raise ClientGone

    cfg = two_providers(served.url, served.url)
    with pytest.raises(ClientGone):
        Router(cfg, observer=Leaving()).run(ChatRequest([{"role": "user", "content": "x"}], "m"), _targets(cfg))
    assert hung_up.wait(10)
    assert len(served.requests) == 1  # no failover, no retry


def test_a_whole_reply_still_reads_normally(server) -> None:
    served = server()
    served.route("POST", "/chat/completions")(lambda ex: ex.reply(200, completion("Hello")))
    result, _ = route(two_providers(served.url, served.url), stream=False)
    assert (result.exit_code, result.text) == (0, "Hello")


def _targets(cfg: Any) -> Any:
    from exobridge.core import model_targets

    return model_targets.targets("m", cfg)


def test_an_endless_stream_of_text_ends_at_the_reply_cap(server, backup, monkeypatch) -> None:
    from exobridge.core import reply

    monkeypatch.setattr(reply, "REPLY_TEXT_CAP", 1000)
    endless = server()

    @endless.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        ex.start_stream()
        with contextlib.suppress(OSError):
            while not endless.released.is_set():
                ex.event(chunk("word "))

    result, _ = route(two_providers(endless.url, backup.url))
    assert result.exit_code == ExitCode.PARTIAL  # text was printed: no failover, the partial text is kept
    assert 1000 - 5 <= len(result.text) <= 1000
    assert result.error == "first: reply longer than 1000 characters (cap)"


def test_core_http_is_the_only_module_that_builds_clients_or_timeouts() -> None:
    """The rule of issue 8 point 1, held: no other module calls httpx.Client/AsyncClient/Timeout/Limits."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "exobridge"
    offenders = []
    for path in root.rglob("*.py"):
        if path == root / "core" / "http.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "httpx"
                and node.func.attr in ("Client", "AsyncClient", "Timeout", "Limits", "HTTPTransport")
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} httpx.{node.func.attr}")
    assert offenders == []


def test_clients_share_one_tls_context_per_certificate_setting(monkeypatch) -> None:
    """Building a TLS context costs ~50 ms: every client (serve makes one per request) reuses the same one,
    unless SSL_CERT_FILE / SSL_CERT_DIR change."""
    first, second = http.tls_context(), http.tls_context()
    assert first is second
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent-for-this-test")
    assert http.tls_context() is not first


def test_a_long_error_message_is_clipped_to_one_readable_line(server, backup) -> None:
    served = server()
    served.route("POST", "/chat/completions")(lambda ex: ex.reply(401, {"error": {"message": "no " * 10_000}}))
    result, _ = route(two_providers(served.url, backup.url))
    reason = result.attempts[0].reason or ""
    assert reason.startswith("HTTP 401: no no") and reason.endswith("…")
    assert len(reason) <= len("HTTP 401: ") + failover.MESSAGE_LIMIT


def test_cancelled_deadlines_do_not_pile_up_in_the_shared_timer():
    """serve makes a Cutoff per request and cancels it within milliseconds of a 60 s deadline: the shared
    timer's queue must not keep them (nor the sockets they watched) until their deadlines pass."""
    import time

    from exobridge.core import http

    far = time.monotonic() + 3600
    for _ in range(3000):
        cutoff = http.Cutoff(far)
        cutoff.watch(object())
        cutoff.cancel()
        assert cutoff._streams == []
    assert len(http._DEADLINES._heap) < 1100


def test_a_forked_child_gets_its_own_deadline_timer():
    """A child forked while the shared deadline timer's lock is held (by its thread, or any caller) must not
    inherit that lock: its own deadlines still cut its sockets."""
    import multiprocessing
    import socket
    import time

    from exobridge.core import http

    class Stream:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> object:
            return self.sock if name == "socket" else None

    def child(out) -> None:
        mine, other = socket.socketpair()
        other.settimeout(5)
        cutoff = http.Cutoff(time.monotonic() + 0.05)
        cutoff.watch(Stream(mine))
        out.send(other.recv(1) == b"" and cutoff.expired)  # EOF: the deadline shut the socket down

    http.Cutoff(time.monotonic() + 3600).cancel()  # the parent's timer thread is running
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    with http._DEADLINES._wake:  # held across the fork
        proc = context.Process(target=child, args=(send,), daemon=True)
        proc.start()
    proc.join(10)
    if proc.exitcode is None:
        proc.kill()
    assert proc.exitcode == 0, "the child hung on the deadline timer's lock"
    assert receive.poll(1) and receive.recv() is True
