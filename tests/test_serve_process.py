"""`exobridge serve` as a process: refusing an unsafe bind, sharing cooldowns between concurrent requests and
with the CLI, reloading the config, stopping gracefully on SIGTERM, JSON log lines."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.loopback import Exchange, LoopbackServer, stream_words
from tests.serve_support import ServeProcess, check_stream, serve_env, stream_text


def two_provider_config(exo: LoopbackServer, backup: LoopbackServer) -> str:
    return f"""
        default_model = "m"

        [providers.exo]
        url = "{exo.url}"
        connect_timeout = 2

        [providers.openrouter]
        enabled = false

        [providers.huggingface]
        enabled = false

        [providers.backup]
        kind = "openai"
        url = "{backup.url}/v1"
        priority = 1
        """


@pytest.fixture
def upstreams() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    exo, backup = LoopbackServer(), LoopbackServer()
    exo.route("GET", "/v1/models")(lambda ex: ex.reply(200, {"object": "list", "data": [{"id": "m"}]}))
    backup.route("POST", "/v1/chat/completions")(stream_words(["from ", "backup"]))
    yield exo, backup
    exo.close()
    backup.close()


@pytest.mark.process  # the serve process's exit code end to end
def test_a_non_loopback_bind_without_a_client_key_is_refused(run_cli) -> None:
    refused = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode == 2
    assert "without a client key" in refused.stderr and "--api-key-env" in refused.stderr
    unset = run_cli("serve", "--host", "0.0.0.0", "--port", "0", "--api-key-env", "EXB_TEST_UNSET_VARIABLE")
    assert unset.returncode == 2 and "EXB_TEST_UNSET_VARIABLE" in unset.stderr


@pytest.mark.process  # a real serve process under load
def test_100_parallel_requests_with_exo_refusing_connections_try_it_once(tmp_path: Path, upstreams) -> None:
    from tests.loopback import closed_port

    exo, backup = upstreams
    config = two_provider_config(exo, backup).replace(exo.url, f"http://127.0.0.1:{closed_port()}")
    serve = ServeProcess(serve_env(tmp_path / "home", config))
    try:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=serve.url, limits=httpx.Limits(max_connections=200)) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                return await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(100)))

        responses = asyncio.run(burst())
    finally:
        serve.stop()
    assert [r.status_code for r in responses] == [200] * 100
    attempts = [r.headers["x-exobridge-attempts"] for r in responses]
    assert sum(a.startswith("exo=failed:connect") for a in attempts) == 1, attempts
    assert sum(a.startswith("exo=skipped:cooldown") for a in attempts) == 99


@pytest.mark.process  # a real serve process under load
def test_100_parallel_requests_try_a_failing_exo_once(tmp_path: Path, upstreams, run_cli) -> None:
    exo, backup = upstreams
    exo.route("POST", "/v1/chat/completions")(
        lambda ex: ex.reply(503, {"detail": "busy"}, headers={"Retry-After": "3600"})
    )
    env = serve_env(tmp_path / "home", two_provider_config(exo, backup))
    serve = ServeProcess(env)
    try:

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=serve.url, limits=limits, timeout=30) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
                return await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(100)))

        responses = asyncio.run(burst())
    finally:
        serve.stop()
    assert [r.status_code for r in responses] == [200] * 100
    assert all(stream_text(check_stream(r.text)) == "from backup" for r in responses)
    tried = [r for r in exo.requests if r.method == "POST"]
    assert len(tried) == 1, f"Exo was tried {len(tried)} times"
    skipped = [r for r in responses if "exo=skipped:cooldown" in r.headers["x-exobridge-attempts"]]
    assert len(skipped) == 99
    # The CLI sees what serve learned: the same state file.
    listed = run_cli("providers", "list", "--json", env=env)
    exo_row = next(p for p in json.loads(listed.stdout)["providers"] if p["name"] == "exo")
    assert exo_row["cooldowns"] and "HTTP 503" in exo_row["cooldowns"][0]["reason"]


@pytest.mark.process  # a long-running serve process
def test_a_config_change_takes_effect_without_a_restart(tmp_path: Path, upstreams) -> None:
    exo, backup = upstreams
    second = LoopbackServer()
    second.route("POST", "/v1/chat/completions")(stream_words(["from ", "second"]))
    config = two_provider_config(exo, backup).replace("[providers.exo]", "[providers.exo]\nenabled = false")
    env = serve_env(tmp_path / "home", config)
    serve = ServeProcess(env, "--api-key", "exb-test-client-key")
    auth = {"Authorization": "Bearer exb-test-client-key"}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        serve.wait_for_line(lambda line: "--api-key shows the key" in line)
        first = httpx.post(f"{serve.url}/v1/chat/completions", json=body, headers=auth)
        assert first.json()["choices"][0]["message"]["content"] == "from backup"
        Path(env["EXOBRIDGE_CONFIG"]).write_text(config.replace(backup.url, second.url).replace("    ", ""))
        for _ in range(40):  # serve looks at the file at most once a second, when a request comes
            reply = httpx.post(f"{serve.url}/v1/chat/completions", json=body, headers=auth).json()
            if reply["choices"][0]["message"]["content"] == "from second":
                break
            try:
                serve.wait_for_line(lambda line: "config reloaded" in line, timeout=0.25)
            except AssertionError:
                continue
        else:
            pytest.fail(f"the new config was never used:\n{serve.text()}")
    finally:
        serve.stop()
        second.close()


@pytest.mark.process  # SIGTERM
def test_sigterm_lets_an_open_stream_finish_then_exits_0(tmp_path: Path, upstreams) -> None:
    exo, backup = upstreams
    release = threading.Event()

    def slow(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(
            {"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [{"delta": {"content": "one"}}]}
        )
        release.wait(10)
        ex.event(
            {"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [{"delta": {"content": " two"}}]}
        )
        ex.event("[DONE]")
        ex.end()

    exo.route("POST", "/v1/chat/completions")(slow)
    serve = ServeProcess(serve_env(tmp_path / "home", two_provider_config(exo, backup)), "--json-logs")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    received = ""
    with httpx.stream("POST", f"{serve.url}/v1/chat/completions", json=body, timeout=20) as response:
        lines = response.iter_lines()
        for line in lines:
            received += line + "\n"
            if "one" in line:
                break
        serve.proc.send_signal(signal.SIGTERM)
        serve.wait_for_line(lambda line: '"event": "stopping"' in line)
        release.set()
        for line in lines:
            received += line + "\n"
    assert serve.proc.wait(15) == 0
    chunks = check_stream(received.replace("\n", "\n\n"))
    assert stream_text(chunks) == "one two"
    records = [json.loads(line) for line in serve.lines if line != "<eof>"]
    assert records[0]["event"] == "start" and records[-1]["event"] == "stop"
    request = next(r for r in records if r["event"] == "request")
    assert request["status"] == 200 and request["provider"] == "exo" and request["path"] == "/v1/chat/completions"


@pytest.mark.process  # SIGHUP
def test_sighup_stops_gracefully_like_sigterm(tmp_path: Path, upstreams) -> None:
    serve = ServeProcess(serve_env(tmp_path / "home", two_provider_config(*upstreams)))
    assert serve.stop(signal.SIGHUP) == 0
    assert "SIGHUP: not accepting new requests" in serve.text() and serve.lines[-2].endswith("stopped")


@pytest.mark.process  # worker processes
def test_workers_serve_and_stop_cleanly(tmp_path: Path, upstreams) -> None:
    exo, backup = upstreams
    config = two_provider_config(exo, backup).replace("[providers.exo]", "[providers.exo]\nenabled = false")
    serve = ServeProcess(serve_env(tmp_path / "home", config), "--workers", "2")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    replies = [httpx.post(f"{serve.url}/v1/chat/completions", json=body, timeout=20) for _ in range(4)]
    assert [r.json()["choices"][0]["message"]["content"] for r in replies] == ["from backup"] * 4
    assert serve.stop() == 0
    assert "Traceback" not in serve.text()


@pytest.mark.process  # start-up: what a fresh interpreter imports (--help, chat --help: tests/test_project.py)
@pytest.mark.parametrize("argv", [("serve", "--help")])
def test_only_serve_itself_loads_the_server(argv: tuple[str, ...]) -> None:
    import sys

    code = "import sys; sys.argv = ['exobridge', *sys.argv[1:]]; from exobridge.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv], capture_output=True, text=True, timeout=30
    )
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not loaded & {"uvicorn", "starlette", "h11", "anyio"}, f"exobridge {' '.join(argv)} loaded the server"


def test_serve_help_lists_its_options(cli) -> None:
    result = cli("serve", "--help")  # in-process: what the installed command's start-up loads is the test above's
    assert result.exit_code == 0
    for option in ("--host", "--port", "--api-key-env", "--workers", "--json-logs", "--grace"):
        assert option in result.stdout
