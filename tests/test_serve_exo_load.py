"""Issue 12 in `serve`: what a request does when Exo answers 404 "No instance found", by the provider's `load`.

serve's application runs in-process (Starlette's TestClient, or straight through ASGI), in front of the
simulated current-line Exo of tests/exo_sim.py and a loopback OpenAI-compatible backup (conftest's `backup`).
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from exobridge.core import exo_loading
from tests.exo_sim import V1_ID, CurrentExo
from tests.serve_support import check_stream, sse_payloads, stream_text

OR_KEY = "sk-or-v1-serve-exo-load-key-0000"


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process loads read progress every few ms."""
    monkeypatch.setattr(exo_loading, "FIRST_POLL", 0.005)
    monkeypatch.setattr(exo_loading, "POLL", 0.01)
    monkeypatch.setenv("TEST_OR_KEY", OR_KEY)


def serve_config(exo_url: str, backup_url: str | None, load: str | None, first_token_timeout: int = 10) -> str:
    load_line = f'load = "{load}"\n' if load else ""
    cloud = (
        f'[providers.openrouter]\nurl = "{backup_url}"\nkey_env = "TEST_OR_KEY"\n\n'
        if backup_url
        else "[providers.openrouter]\nenabled = false\n\n"
    )
    return (
        'default_model = "llama-3.2-3b"\n\n'
        f'[providers.exo]\nkind = "exo"\nurl = "{exo_url}"\nfirst_token_timeout = {first_token_timeout}\n{load_line}\n'
        + cloud
        + "[providers.huggingface]\nenabled = false\n"
    )


class Threads:
    """serve's route pool, with threads a test can wait for (instead of serve's daemon pool)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def submit(self, job: Callable[[], None]) -> None:
        thread = threading.Thread(target=job, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(15)
            assert not thread.is_alive(), "a route still runs"


class Serve:
    """serve's application in-process, its log in `log`."""

    def __init__(self) -> None:
        from starlette.testclient import TestClient

        from exobridge.serve.app import create_app
        from exobridge.serve.options import ServeOptions
        from exobridge.serve.server import build_context

        self.log = io.StringIO()
        self.ctx = build_context(ServeOptions(), None, self.log)
        self.routes = Threads()
        self.ctx.pool = self.routes
        self.app = create_app(self.ctx)
        self.client = TestClient(self.app, base_url="http://127.0.0.1")

    def chat(self, stream: bool) -> Any:
        body = {"model": "llama-3.2-3b", "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}
        response = self.client.post("/v1/chat/completions", json=body)
        self.routes.join()
        return response

    def notices(self) -> list[str]:
        return [line for line in self.log.getvalue().splitlines() if "exobridge models load" in line]


@pytest.fixture
def serve(isolated: Any) -> Serve:
    return Serve()


def comments(body: str) -> list[str]:
    return [line[2:] for line in body.split("\n") if line.startswith(": ")]


def test_auto_keeps_the_stream_open_with_comments_then_answers_from_exo(server, backup, write_config) -> None:
    sim = CurrentExo(server())
    write_config(serve_config(sim.url, backup.url, "auto"))
    response = Serve().chat(stream=True)
    assert response.status_code == 200 and response.headers["x-exobridge-provider"] == "exo"
    body = response.text
    notes = comments(body)
    assert notes[0] == "llama-3.2-3b is not loaded on exo: loading it (up to 10 s)", notes
    assert any(n.startswith("loading llama-3.2-3b on exo: placing llama-3.2-3b (1.9 GB") for n in notes), notes
    assert any("ready on 2 nodes" in n for n in notes), notes
    assert body.index(": loading") < body.index("data:")  # every comment comes before the first chunk
    chunks = check_stream(body)
    assert stream_text(chunks) == "Hello from Exo" and chunks[0]["model"] == V1_ID
    assert sim.place_bodies and not backup.requests


def test_the_openai_sdk_reads_a_kept_open_stream_as_an_ordinary_one(server, backup, write_config) -> None:
    openai = pytest.importorskip("openai")
    sim = CurrentExo(server())
    write_config(serve_config(sim.url, backup.url, "auto"))
    serve = Serve()
    client = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="unused", http_client=serve.client)
    stream = client.chat.completions.create(
        model="llama-3.2-3b", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    serve.routes.join()
    assert text == "Hello from Exo" and not backup.requests


def test_auto_without_streaming_waits_for_the_load_then_answers_from_exo(server, backup, write_config) -> None:
    sim = CurrentExo(server())
    write_config(serve_config(sim.url, backup.url, "auto"))
    response = Serve().chat(stream=False)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from Exo"
    assert response.headers["x-exobridge-provider"] == "exo" and not backup.requests


@pytest.mark.parametrize("stream", [True, False])
def test_auto_that_cannot_load_fails_over_to_the_cloud(server, backup, write_config, stream) -> None:
    sim = CurrentExo(server(), fits=False)
    write_config(serve_config(sim.url, backup.url, "auto"))
    serve = Serve()
    response = serve.chat(stream=stream)
    assert response.status_code == 200, response.text
    if stream:
        assert stream_text(check_stream(response.text)) == "from backup"
        assert any(
            n.startswith("could not load llama-3.2-3b on exo: llama-3.2-3b does not fit")
            for n in comments(response.text)
        )
    else:
        assert response.json()["choices"][0]["message"]["content"] == "from backup"
        assert response.headers["x-exobridge-provider"] == "openrouter"
        assert not comments(response.text)
    assert len(backup.requests) == 1 and not sim.place_bodies
    assert "could not load llama-3.2-3b on exo" in serve.log.getvalue()


def test_a_kept_open_stream_that_nobody_answers_ends_with_one_error_event(server, write_config) -> None:
    sim = CurrentExo(server(), fits=False)
    write_config(serve_config(sim.url, None, "auto"))
    response = Serve().chat(stream=True)
    assert response.status_code == 200  # sent with the first comment, before anybody knew
    payloads = sse_payloads(response.text)
    assert "[DONE]" not in payloads and len(payloads) == 1, response.text
    error = json.loads(payloads[0])["error"]
    assert error["code"] == "no_provider" and "exo" in error["message"]


def test_ask_fails_over_with_one_notice_per_model_however_many_requests(server, backup, write_config) -> None:
    sim = CurrentExo(server())
    write_config(serve_config(sim.url, backup.url, None))  # ask is the default
    serve = Serve()
    for stream in (True, False):
        response = serve.chat(stream=stream)
        assert response.status_code == 200 and response.headers["x-exobridge-provider"] == "openrouter"
        text = (
            stream_text(check_stream(response.text)) if stream else response.json()["choices"][0]["message"]["content"]
        )
        assert text == "from backup" and not comments(response.text)
    assert len(serve.notices()) == 1, serve.log.getvalue()
    assert "llama-3.2-3b is not loaded on your Exo cluster (exo)" in serve.notices()[0]
    assert "`exobridge models load llama-3.2-3b` would keep it local next time" in serve.notices()[0]
    assert len(backup.requests) == 2 and not sim.place_bodies


def test_never_fails_over_without_a_notice(server, backup, write_config) -> None:
    sim = CurrentExo(server())
    write_config(serve_config(sim.url, backup.url, "never"))
    serve = Serve()
    response = serve.chat(stream=True)
    assert response.status_code == 200 and stream_text(check_stream(response.text)) == "from backup"
    assert not comments(response.text) and not serve.notices() and not sim.place_bodies


def stream_through_asgi(serve: Serve, on_body: Callable[[bytes], bool]) -> list[dict[str, Any]]:
    """One streamed chat request straight through serve's ASGI application; the client disconnects as soon as
    `on_body` says so of a body message it was sent. The messages it was sent."""
    body = json.dumps({"model": "llama-3.2-3b", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})
    sent: list[dict[str, Any]] = []

    async def go() -> None:
        gone = asyncio.Event()
        request = [{"type": "http.request", "body": body.encode(), "more_body": False}]

        async def receive() -> dict[str, Any]:
            if request:
                return request.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and on_body(message.get("body", b"")):
                gone.set()

        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "client": ("127.0.0.1", 1)}
        scope |= {"headers": [(b"host", b"127.0.0.1")], "query_string": b"", "root_path": "", "scheme": "http"}
        await serve.app(scope | {"http_version": "1.1"}, receive, send)

    asyncio.run(go())
    serve.routes.join()  # the route ended
    return sent


def test_a_client_that_leaves_during_the_load_stops_the_wait_and_nothing_fails_over(
    server, backup, write_config
) -> None:
    # A download that moves at every read of /state (so every read is an event the route sees).
    steps = ["pending", *(f"downloading:{i / 1000:.3f}" for i in range(1, 1000))]
    sim = CurrentExo(server(), steps=steps)
    # A load bound far beyond the join in Threads: the route ends because the client left, not at the bound.
    write_config(serve_config(sim.url, backup.url, "auto", first_token_timeout=600))
    serve = Serve()
    sent = stream_through_asgi(serve, lambda body: b"downloading" in body)  # leaves while Exo downloads
    assert sent[0]["status"] == 200
    assert not any(b"data:" in m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert sim.place_bodies and not sim.deleted  # Exo keeps loading
    assert not backup.requests  # and nothing failed over
    assert "client disconnected" in serve.log.getvalue()


def test_a_client_that_leaves_ends_its_route_at_once_not_at_the_next_progress_read(
    server, backup, write_config, monkeypatch
) -> None:
    """Progress is read every 60 s here: the route still ends as soon as the client leaves (Threads.join
    waits 15 s at most), and the load is not followed to its bound (600 s)."""
    monkeypatch.setattr(exo_loading, "FIRST_POLL", 60.0)
    monkeypatch.setattr(exo_loading, "POLL", 60.0)
    sim = CurrentExo(server(), steps=["pending", "downloading:0.100"])
    write_config(serve_config(sim.url, backup.url, "auto", first_token_timeout=600))
    serve = Serve()
    sent = stream_through_asgi(serve, lambda body: b"downloading" in body)  # then the loader waits 60 s
    assert sent[0]["status"] == 200 and not backup.requests
    assert "client disconnected" in serve.log.getvalue()


def test_a_load_that_stays_quiet_still_gets_keep_alive_lines(server, backup, write_config, monkeypatch) -> None:
    from exobridge.serve import exo_autoload

    monkeypatch.setattr(exo_autoload, "KEEP_ALIVE", 0.01)
    sim = CurrentExo(server())
    heard = threading.Event()

    def quiet_state(ex: Any) -> None:  # once placed, Exo says nothing new until the client heard a keep-alive
        if sim.placed:
            heard.wait(4)  # a bound below the loader's 5 s per request: without keep-alives the test fails
        sim._state(ex)

    sim.server.route("GET", "/state")(quiet_state)
    write_config(serve_config(sim.url, backup.url, "auto"))

    def listen(body: bytes) -> bool:
        if b"still loading" in body:
            heard.set()
        return False  # the client stays

    sent = stream_through_asgi(Serve(), listen)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
    assert ": still loading mlx-community/Llama-3.2-3B-Instruct-4bit on exo\n\n" in body
    assert stream_text(check_stream(body)) == "Hello from Exo" and not backup.requests
