"""serve's parts in-process: the wire format, the status of a failed route, options and the client key,
redaction, the socket it binds, the shared cooldown gate, and the live config."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exobridge.serve import wire
from exobridge.serve.options import ServeOptions, ServeUsageError, check, is_loopback, resolve_client_key


def body(**fields: object) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


# --- requests -----------------------------------------------------------------------------------------------------


def test_a_request_keeps_known_fields_and_passes_the_rest_on() -> None:
    call = wire.parse_chat(
        body(stream=True, stream_options={"include_usage": True}, temperature=0.2, max_tokens=9, stop=["x"], seed=1)
    )
    assert (call.model, call.stream, call.include_usage, call.temperature, call.max_tokens) == ("m", True, True, 0.2, 9)
    assert call.extra == {"stop": ["x"], "seed": 1}


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"[1, 2]", None),
        (b"\xff\xfe", None),
        (json.dumps({"model": "m", "messages": "hi"}).encode(), "messages"),
        (json.dumps({"model": "m", "messages": []}).encode(), "messages"),
        (json.dumps({"model": "m", "messages": ["hi"]}).encode(), "messages[0]"),
        (json.dumps({"model": "m", "messages": [{"role": "user", "content": 5}]}).encode(), "messages[0]"),
        (body(model=""), "model"),
        (body(stream="yes"), "stream"),
        (body(temperature="hot"), "temperature"),
        (body(temperature=float("inf")).replace(b"Infinity", b"1e999"), "temperature"),
        (body(max_tokens=0), "max_tokens"),
        (body(n=2), "n"),
        (body(stream_options=[]), "stream_options"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_field(raw: bytes, param: str | None) -> None:
    with pytest.raises(wire.RequestProblem) as problem:
        wire.parse_chat(raw)
    assert problem.value.status == 400 and problem.value.param == param
    error = problem.value.body()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"


@given(st.binary(max_size=300))
def test_any_body_parses_or_is_a_400(raw: bytes) -> None:
    try:
        wire.parse_chat(raw)
    except wire.RequestProblem as problem:
        assert problem.status == 400


# --- replies ------------------------------------------------------------------------------------------------------


@given(st.lists(st.text(max_size=20), max_size=5), st.booleans())
def test_chunks_are_openai_chunks_whatever_the_text(pieces: list[str], include_usage: bool) -> None:
    writer = wire.ChunkWriter("served/model", include_usage)
    raw = writer.role() + writer.text(pieces) + writer.finish({"prompt_tokens": 2, "completion_tokens": 1})
    events = [block[len("data: ") :] for block in raw.decode().split("\n\n") if block]
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {writer.id} and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "".join(pieces)
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 3
    else:
        assert all("usage" not in c for c in chunks)


def test_the_error_event_ends_a_stream_without_done() -> None:
    event = wire.ChunkWriter.error("broke", "stream_broken")
    assert event.startswith(b"data: ") and b"[DONE]" not in event
    assert json.loads(event[6:])["error"]["code"] == "stream_broken"


def attempt(provider: str, outcome: str, kind: str | None = None, status: int | None = None, reason: str = "r"):
    return SimpleNamespace(provider=provider, outcome=outcome, kind=kind, status=status, reason=reason)


@pytest.mark.parametrize(
    ("attempts", "status", "code"),
    [
        ([attempt("exo", "failed", "connect"), attempt("cloud", "failed", "server", 502)], 503, "no_provider"),
        ([attempt("exo", "failed", "bad_request", 422)], 422, "rejected_by_provider"),
        ([attempt("exo", "failed", "model_unavailable"), attempt("c", "failed", "bad_request", 400)], 400, None),
        ([attempt("a", "failed", "context_length", 400), attempt("b", "failed", "context_length", 400)], 400, None),
        ([attempt("a", "failed", "rate_limited", 429), attempt("b", "skipped", "no_key")], 429, "rate_limited"),
        ([attempt("a", "skipped", "no_key"), attempt("b", "skipped", "disabled")], 503, "no_provider"),
    ],
)
def test_a_failed_route_gets_the_status_that_fits(attempts: list, status: int, code: str | None) -> None:
    failure = wire.route_failure(attempts)
    assert failure.status == status
    if code:
        assert failure.body["error"]["code"] == code
    assert all(a.provider in failure.body["error"]["message"] for a in attempts[-1:])


def test_the_attempts_header_has_no_provider_text() -> None:
    header = wire.attempts_header([attempt("exo", "failed", "connect", reason="evil\r\nX-Injected: 1")], "cloud")
    assert header == "exo=failed:connect, cloud=ok"
    assert wire.header_value("a\r\nb\x1b[31m") == "a??b?[31m"


# --- options, the client key, the socket --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.lan", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_client_key_comes_from_the_env_variable_named_then_serves_own_then_the_keys_file() -> None:
    opts = ServeOptions(api_key_env="MY_KEY")
    assert resolve_client_key(opts, {"MY_KEY": " k1 "}, {}).value == "k1"
    assert resolve_client_key(ServeOptions(), {"EXOBRIDGE_SERVE_KEY": "k2"}, {"serve": "k3"}).value == "k2"
    assert resolve_client_key(ServeOptions(), {}, {"serve": "k3"}).source == "keys file"
    bare = resolve_client_key(ServeOptions(api_key="k4"), {}, {})
    assert bare.value == "k4" and "ps" in (bare.warning or "")
    with pytest.raises(ServeUsageError):
        resolve_client_key(opts, {}, {})


def test_a_non_loopback_bind_needs_a_key() -> None:
    with pytest.raises(ServeUsageError, match="without a client key") as refused:
        check(ServeOptions(host="0.0.0.0"), resolve_client_key(ServeOptions(host="0.0.0.0"), {}, {}))
    assert refused.value.code == 2
    check(
        ServeOptions(host="0.0.0.0"), resolve_client_key(ServeOptions(host="0.0.0.0"), {"EXOBRIDGE_SERVE_KEY": "k"}, {})
    )


def test_a_busy_port_is_a_usage_error_and_a_broken_config_a_config_error(write_config) -> None:
    from exobridge.core.errors import ConfigError
    from exobridge.serve.server import serve_run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ServeUsageError, match=r"cannot listen on 127\.0\.0\.1:\d+") as busy:
            serve_run(ServeOptions(port=taken.getsockname()[1]))
    assert busy.value.code == 2
    write_config("default_model = [\n")
    with pytest.raises(ConfigError) as broken:
        serve_run(ServeOptions(port=0))
    assert broken.value.code == 4


def test_the_listening_socket_says_it_is_tcp_so_asyncio_turns_nagle_off() -> None:
    from exobridge.serve.server import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


# --- redaction ----------------------------------------------------------------------------------------------------


def test_secrets_are_removed_whole_and_in_pieces(monkeypatch: pytest.MonkeyPatch, write_config) -> None:
    from exobridge.core.config import load
    from exobridge.serve.server import Secrets

    write_config(
        """
        [providers.cloud]
        kind = "openai"
        url = "http://127.0.0.1:9/v1"
        key_env = "CLOUD_KEY"
        headers = { "X-Api-Key" = "hdr-secret-0123456789" }
        """
    )
    monkeypatch.setenv("CLOUD_KEY", "sk-cloud-ABCDEFGHIJKLMNOP")
    live = SimpleNamespace(config=load(), generation=0)
    secrets = Secrets(live, "client-key-QRSTUVWXYZ")
    text = "got sk-cloud-ABCDEFGHIJKLMNOP, hdr-secret-0123456789 and client-key-QRSTUVWXYZ; piece GHIJKLMN"
    redacted = secrets(text)
    for secret in ("ABCDEFGHIJKLMNOP", "0123456789", "QRSTUVWXYZ", "GHIJKLMN"):
        assert secret not in redacted
    assert secrets.quick("model says sk-cloud-ABCDEFGHIJKLMNOP") == "model says [redacted]"


# --- shared state -------------------------------------------------------------------------------------------------


def test_concurrent_requests_wait_for_the_one_trying_an_unproven_node(tmp_path: Path) -> None:
    from exobridge.core.config import ProviderConfig
    from exobridge.core.cooldown import CooldownStore
    from exobridge.core.errors import Failure, FailureKind
    from exobridge.serve.shared import SharedRouteState

    state = SharedRouteState(store_factory=lambda: CooldownStore(tmp_path))
    exo = ProviderConfig("exo", "exo", ["http://127.0.0.1:9"], 0, connect_timeout=5)
    first, others = object(), [object() for _ in range(5)]
    assert state.enter(exo, exo.url, first) is None  # the first one tries it
    answers: list[str | None] = []
    entered = threading.Barrier(len(others) + 1)

    def wait(owner: object) -> None:
        entered.wait()
        answers.append(state.enter(exo, exo.url, owner))

    threads = [threading.Thread(target=wait, args=(o,)) for o in others]
    for thread in threads:
        thread.start()
    entered.wait()
    state.failed(exo, exo.url, Failure(FailureKind.CONNECT, "connection refused"))
    for thread in threads:
        thread.join(10)
    assert len(answers) == 5 and all(a and "cooling down" in a for a in answers)
    # and the CLI's state file has it
    assert CooldownStore(tmp_path).active("exo", exo.url) is not None


def test_a_proven_node_lets_everyone_through(tmp_path: Path) -> None:
    from exobridge.core.config import ProviderConfig
    from exobridge.core.cooldown import CooldownStore
    from exobridge.serve.shared import SharedRouteState

    state = SharedRouteState(store_factory=lambda: CooldownStore(tmp_path))
    node = ProviderConfig("exo", "exo", ["http://127.0.0.1:9"], 0)
    owner = object()
    assert state.enter(node, node.url, owner) is None
    state.answered(node, node.url)
    assert all(state.enter(node, node.url, object()) is None for _ in range(3))  # no waiting: it answered
    state.leave(owner)


def test_the_live_config_follows_the_file_and_keeps_the_last_good_one(write_config) -> None:
    from exobridge.core.config import load
    from exobridge.serve.shared import LiveConfig

    path = write_config('default_model = "one"\n')
    warnings: list[str] = []
    live = LiveConfig(load, path, warnings.append, check_every=0)
    assert live.get().default_model == "one"
    path.write_text('default_model = "two-two"\n')
    assert live.get().default_model == "two-two" and live.generation == 1
    path.write_text("default_model = [broken\n")
    assert live.get().default_model == "two-two"
    assert any("does not load" in w for w in warnings)


def test_a_failure_after_the_client_left_puts_nobody_in_cooldown(tmp_path: Path) -> None:
    from exobridge.core.config import ProviderConfig
    from exobridge.core.cooldown import CooldownStore
    from exobridge.core.errors import Failure, FailureKind
    from exobridge.serve.bridge import RouteRun, _RouteView
    from exobridge.serve.shared import SharedRouteState

    state = SharedRouteState(store_factory=lambda: CooldownStore(tmp_path))
    node = ProviderConfig("exo", "exo", ["http://127.0.0.1:9"], 0)
    run = RouteRun(None, None, [], state, None)  # type: ignore[arg-type]
    view = _RouteView(run)
    run.cancel()
    view.failed(node, node.url, Failure(FailureKind.CONNECT, "connection reset"))
    assert CooldownStore(tmp_path).active("exo", node.url) is None
    run.cancelled.clear()
    view.failed(node, node.url, Failure(FailureKind.CONNECT, "connection refused"))
    assert CooldownStore(tmp_path).active("exo", node.url) is not None


def test_log_lines_show_escapes_escaped_and_json_lines_parse() -> None:
    import io

    from exobridge.serve.logs import AccessLog

    result = SimpleNamespace(
        provider="exo",
        model="evil\x1b]0;pwned\x07model",
        usage={"prompt_tokens": 1, "completion_tokens": 2},
        first_token_ms=5,
        cost=0.0,
        finish_reason="length",
        attempts=[attempt("exo", "ok")],
    )
    scope = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "client": ("127.0.0.1", 5),
        "exobridge": {"result": result},
    }
    text, lines = io.StringIO(), io.StringIO()
    AccessLog(text).request(scope, 200, 0.0123)
    AccessLog(lines, json_lines=True).request(scope, 200, 0.0123)
    assert "\x1b" not in text.getvalue() and "\\x1b" in text.getvalue()
    assert "200 · exo · evil" in text.getvalue() and "1+2 tok · 12 ms · free · length" in text.getvalue()
    record = json.loads(lines.getvalue())
    assert record["event"] == "request" and record["status"] == 200 and record["completion_tokens"] == 2
    assert record["finish_reason"] == "length"
    result.finish_reason = "stop"  # the usual end is not worth a word in a text line
    AccessLog(stopped := io.StringIO()).request(scope, 200, 0.0123)
    assert stopped.getvalue().rstrip().endswith("12 ms · free")


def test_a_model_the_node_lacks_does_not_make_others_queue(tmp_path: Path) -> None:
    from exobridge.core.config import ProviderConfig
    from exobridge.core.cooldown import CooldownStore
    from exobridge.core.errors import Failure, FailureKind
    from exobridge.serve.shared import SharedRouteState

    state = SharedRouteState(store_factory=lambda: CooldownStore(tmp_path))
    node = ProviderConfig("exo", "exo", ["http://127.0.0.1:9"], 0)
    state.answered(node, node.url)
    state.failed(node, node.url, Failure(FailureKind.MODEL_UNAVAILABLE, "No instance found for model x"))
    prober = object()
    assert state.enter(node, node.url, prober) is None
    assert state._gates[("exo", node.url)].trying is None  # still proven: nobody has to wait behind `prober`
    state.failed(node, node.url, Failure(FailureKind.SERVER, "HTTP 502"))
    assert state._gates[("exo", node.url)].proven is False


def test_a_proxy_setting_httpx_cannot_use_stops_serve_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from exobridge.core.errors import ProxyError
    from exobridge.serve.server import serve_run

    monkeypatch.setenv("HTTPS_PROXY", "http://[::1")
    with pytest.raises(ProxyError) as refused:
        serve_run(ServeOptions(port=0))
    assert refused.value.code == 4 and "invalid proxy setting" in str(refused.value)


def call(app, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request straight through the ASGI application, in-process."""
    import asyncio

    async def go() -> tuple[int, bytes]:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        never = asyncio.Event()
        sent: list[dict] = []

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "headers": [], "client": ("127.0.0.1", 1)}
        scope |= {"query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1"}
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    return asyncio.run(go())


def test_a_keys_file_that_breaks_while_serving_is_a_500_naming_it(write_config, isolated: Path) -> None:
    import io

    from exobridge.serve.app import create_app
    from exobridge.serve.server import build_context

    write_config(
        """
        [providers.cloud]
        kind = "openai"
        url = "http://127.0.0.1:9/v1"
        key_env = "CLOUD_KEY"
        """
    )
    app = create_app(build_context(ServeOptions(), None, io.StringIO()))
    (isolated / "keys.toml").write_text("cloud = [unterminated\n")
    status, raw = call(app, "POST", "/v1/chat/completions", body(model="cloud:m"))
    error = json.loads(raw)["error"]
    assert status == 500 and error["code"] == "config_error" and "keys.toml" in error["message"]


def test_only_a_current_line_exo_command_gets_a_cancel_request() -> None:
    from exobridge.core.providers import kind_class

    exo = kind_class("exo")
    assert exo.cancel_url("http://10.0.0.2:52415/", "7a1c/x y") == "http://10.0.0.2:52415/v1/cancel/7a1c%2Fx%20y"
    assert exo.cancel_url("http://10.0.0.2:52415", "chatcmpl-1f2e") is None  # the legacy line has no such route
    assert kind_class("openrouter").cancel_url("https://openrouter.ai/api/v1", "gen-123") is None


def test_a_late_cancel_never_cuts_a_connection_the_route_has_handed_back() -> None:
    """With kept-alive upstream connections, a route's connection serves the next route once the router is done
    with it: a client that leaves after that (its reply is written) must not cut it."""
    import socket
    from types import SimpleNamespace

    from exobridge.serve.bridge import RouteRun

    def route_with_a_response() -> tuple[RouteRun, socket.socket]:
        ours, peer = socket.socketpair()
        stream = SimpleNamespace(get_extra_info=lambda name: ours if name == "socket" else None)
        run = RouteRun(config=None, request=None, targets=[], state=None, loop=None)  # type: ignore[arg-type]
        run._responses.append(SimpleNamespace(extensions={"network_stream": stream}))
        return run, peer

    def cut(peer: socket.socket) -> bool:
        """Whether our end was shut down (cancel() has returned: a shutdown would be visible already)."""
        peer.setblocking(False)
        try:
            return peer.recv(1) == b""
        except BlockingIOError:
            return False

    running, peer = route_with_a_response()
    running.cancel()
    assert cut(peer)  # the route still ran: its upstream is cut at once

    over, peer = route_with_a_response()
    over._upstream_over()
    over.cancel()
    assert not cut(peer)
