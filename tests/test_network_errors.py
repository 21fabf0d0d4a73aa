"""One network fault, one message, one exit code, in every command that touches the network (issue 8, point 1).

Each fault is set up once and every command runs against it in-process: `chat`, `providers status`,
`models --refresh`, `doctor` and `providers add --check` (`config import-legacy` never touches the network).
The reason chat records for its attempt is the reason every other command shows, word for word; the exit code
is each command's documented one for "nothing could be reached" (doctor: 1 for a failed check; the others: 3),
and a malformed proxy setting is a config error (4) everywhere, with one wording.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import local_config
from tests.loopback import closed_port

KEY = "hf_networkerrors0123456789"
ENV = {"HF_TOKEN": KEY}
NETWORK_FAILED = {"chat": 3, "providers status": 3, "models --refresh": 3, "doctor": 1, "providers add --check": 3}


def commands(url: str) -> dict[str, list[str]]:
    return {
        "chat": ["chat", "--json", "hi"],
        "providers status": ["providers", "status", "--json"],
        "models --refresh": ["models", "--json", "--refresh", "-p", "huggingface"],
        "doctor": ["doctor", "--json"],
        "providers add --check": ["providers", "add", "x", "--url", url, "--key-env", "HF_TOKEN", "--check"],
    }


def reason_shown(name: str, data: Any, stderr: str) -> str:
    """The failure text each command shows for the one provider (from its --json object, or its error line)."""
    if name == "chat":
        return data["attempts"][0]["reason"]
    if name == "providers status":
        return data["nodes"][0]["problem"]
    if name == "models --refresh":
        return next(p["reason"] for p in data["providers"] if p["name"] == "huggingface")
    if name == "doctor":
        return next(c["detail"] for c in data["checks"] if c["id"] == "provider.huggingface.reach")
    return stderr


def run_all(cli: Any, url: str, env: dict[str, str] | None = None) -> dict[str, tuple[int, str, Any, str]]:
    """Every command against `url`: name -> (exit code, stdout, parsed JSON or None, stderr)."""
    import json

    results = {}
    for name, args in commands(url).items():
        result = cli(*args, env={**ENV, **(env or {})})
        try:
            data = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:
            data = None
        results[name] = (result.exit_code, result.stdout, data, result.stderr)
    return results


def assert_one_reason(results: dict[str, tuple[int, str, Any, str]], expected: str) -> str:
    """The same reason, containing `expected`, in every command; the documented exit code in each."""
    _, _, chat_data, chat_err = results["chat"]
    reason = reason_shown("chat", chat_data, chat_err)
    assert expected in reason, reason
    for name, (code, stdout, data, stderr) in results.items():
        assert "Traceback" not in stdout + stderr and "internal error" not in stdout + stderr, name
        assert KEY not in stdout + stderr, name
        assert code == NETWORK_FAILED[name], (name, code, stderr)
        assert reason in reason_shown(name, data, stderr), (name, reason, stdout[-500:], stderr)
    return reason


@pytest.fixture
def provider_at(write_config):
    def configure(url: str) -> str:
        write_config(local_config(huggingface=url, extra=""))
        return url

    return configure


@contextlib.contextmanager
def plain_http_speaker() -> Iterator[str]:
    """A loopback server that answers any bytes (a TLS ClientHello too) with a plain HTTP 400, then hangs up:
    what a client that speaks https to an http port meets."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def test_connection_refused(cli, provider_at):
    url = provider_at(f"http://127.0.0.1:{closed_port()}")
    assert assert_one_reason(run_all(cli, url), "connection refused") == "connection refused"


@pytest.mark.timeout(60)
def test_tls_to_a_plain_http_port(cli, provider_at):
    with plain_http_speaker() as https_url:
        url = provider_at(https_url)
        assert_one_reason(run_all(cli, url), "TLS handshake failed")


def test_dns_failure(cli, provider_at, monkeypatch):
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    url = provider_at("http://nonexistent.invalid:8080/v1")
    assert assert_one_reason(run_all(cli, url), "host not found (DNS)") == "host not found (DNS)"


def test_unreachable_proxy(cli, provider_at, backup):
    backup.route("GET", "/models")(lambda ex: ex.reply(200, {"data": [{"id": "m"}]}))
    url = provider_at(backup.url)  # a healthy provider, behind a proxy that refuses connections
    results = run_all(cli, url, env={"HTTP_PROXY": f"http://127.0.0.1:{closed_port()}"})
    assert_one_reason(results, "proxy unreachable")
    assert backup.requests == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [("HTTP_PROXY", "http://[::1"), ("HTTPS_PROXY", "http://[::1"), ("HTTP_PROXY", "::garbage::")],
)
def test_malformed_proxy_is_a_config_error_everywhere(cli, provider_at, backup, variable, value):
    url = provider_at(backup.url)
    results = run_all(cli, url, env={variable: value})
    lines = set()
    for name, (code, stdout, data, stderr) in results.items():
        assert code == 4, (name, code, stdout[-300:], stderr)
        assert "Traceback" not in stdout + stderr and "internal error" not in stdout + stderr, name
        [line] = [x for x in stderr.splitlines() if "invalid proxy setting" in x] or [
            str(data.get("error")) if isinstance(data, dict) else ""
        ]
        assert f"invalid proxy setting in the environment: {variable}=" in line, (name, line)
        lines.add(line.split("invalid proxy setting", 1)[1])
        if isinstance(data, dict):  # --json: the one object, with the error and the exit code
            assert data.get("exit_code") == 4 and "invalid proxy setting" in str(data.get("error")), name
    assert len(lines) == 1, lines
    assert backup.requests == []


def test_the_fixture_config_is_what_the_commands_read(provider_at):
    """Guard for the tests above: the provider they break is the only one enabled."""
    import os

    from exobridge.core import config as config_mod

    provider_at("http://127.0.0.1:1")
    cfg = config_mod.load(Path(os.environ["EXOBRIDGE_CONFIG"]))
    assert [p.name for p in cfg.ordered()] == ["huggingface"]


def drip_forever(ex: Any) -> None:
    """200 and headers at once, then the body one byte every 50 ms, for ever (issue 9, defect 1)."""
    ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000000"})
    ex.drip(b'{"data": [' + b" " * 10_000, every=0.05, forever=True)


@pytest.mark.timeout(60)
def test_a_server_that_drips_ends_every_command_at_its_deadline(cli, write_config, server, monkeypatch):
    """chat, providers status, models --refresh and doctor all end, with their 'nothing could be reached'
    exit code and a 'no reply within' reason, however long the drip would go."""
    srv = server()
    for path in ("/models", "/chat/completions", "/key", "/node_id", "/healthcheck", "/state", "/v1/models"):
        srv.route("GET", path)(drip_forever)
        srv.route("POST", path)(drip_forever)
    write_config(
        local_config(
            huggingface=srv.url,
            extra="",
        ).replace(f'url = "{srv.url}"', f'url = "{srv.url}"\nfirst_token_timeout = 0.3\nconnect_timeout = 0.2')
    )
    monkeypatch.setenv("EXOBRIDGE_DOCTOR_DEADLINE", "2")
    for name, args in commands(srv.url).items():
        if name == "providers add --check":
            continue  # its fixed 10 s deadline (core/provider_check.py) is held by the config tests
        result = cli(*args, env=ENV)
        output = result.stdout + result.stderr
        assert result.exit_code == NETWORK_FAILED[name], (name, result.exit_code, output[-600:])
        assert "no reply within" in output or "did not finish" in output, (name, output[-600:])
        assert "Traceback" not in output and KEY not in output, name
