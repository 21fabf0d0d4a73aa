"""core/provider_status under hostile servers: every probe ends at its deadline or cap (issue 9, defects 1, 2
and 5), a hung probe is reported at the deadline and never joined, a broken proxy is a config error."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from exobridge.core import config as config_mod
from exobridge.core import keys as keys_mod
from exobridge.core import provider_status
from exobridge.core.errors import ExitCode, ProxyError
from exobridge.core.provider_status import NodeState
from tests.loopback import Exchange, LoopbackServer, closed_port

CANARY = "sk-or-v1-CANARYstatus0123456789abcdefghij"


def make_config(providers: dict[str, dict[str, Any]]) -> config_mod.Config:
    raw: dict[str, Any] = {"providers": {name: {"enabled": False} for name in ("exo", "openrouter", "huggingface")}}
    raw["providers"].update(providers)
    return config_mod.build(raw, Path("test.toml"), env={})


def only(cfg: config_mod.Config, **kw: Any) -> provider_status.ProbeResult:
    [result] = provider_status.probe_all(cfg, **kw)
    return result


def dripping(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000000"})
    ex.drip(b'"node-' + b"x" * 1000, every=0.05, forever=True)


def endless(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json"})
    ex.raw(b'{"instances": {')
    ex.flood(b'"i": {}, ' * 8192)


def v1_exo(srv: LoopbackServer) -> None:
    srv.route("GET", "/node_id")(lambda ex: ex.reply(200, '"node-1"'))
    instances = {"i1": {"MlxRingInstance": {"shardAssignments": {"modelId": "m1"}}}}
    srv.route("GET", "/state")(lambda ex: ex.reply(200, {"instances": instances, "topology": {"nodes": {"a": {}}}}))


def test_states_and_the_status_json_object(server):
    ready = server()
    v1_exo(ready)
    dead = f"http://127.0.0.1:{closed_port()}"
    cfg = make_config({"exo": {"enabled": True, "urls": [ready.url, dead]}})
    results = provider_status.probe_all(cfg)
    assert [r.state for r in results] == [NodeState.READY, NodeState.UNREACHABLE]
    assert (results[0].nodes, results[0].models, results[1].problem) == (1, ["m1"], "connection refused")
    data = provider_status.status_json(results)
    assert data["can_answer"] == ["exo"]
    assert [n["state"] for n in data["nodes"]] == ["ready", "unreachable"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", ["/node_id", "/state"])
def test_a_dripping_exo_ends_at_the_probe_deadline(server, path):
    srv = server()
    v1_exo(srv)
    srv.route("GET", path)(dripping)
    config = make_config({"exo": {"enabled": True, "url": srv.url, "connect_timeout": 0.2}})
    result = only(config, read_timeout=0.5)  # the wall-clock deadline: connect_timeout + read_timeout
    assert not result.can_answer
    assert result.problem == "no reply within 0.5 s"


@pytest.mark.timeout(30)
def test_an_endless_state_is_cut_at_the_cap(server):
    srv = server()
    v1_exo(srv)
    srv.route("GET", "/state")(endless)
    result = only(make_config({"exo": {"enabled": True, "url": srv.url}}))
    assert (result.reachable, result.can_answer) == (True, False)
    assert "larger than 4 MiB" in (result.problem or "")


def test_a_401_echoing_the_key_after_250_characters_leaks_no_piece_of_it(server):
    srv = server()
    echo = {"error": {"message": "y" * 250 + f" Bearer {CANARY}", "code": 401}}
    srv.route("GET", "/key")(lambda ex: ex.reply(401, echo))
    cfg = make_config({"openrouter": {"enabled": True, "url": srv.url}})
    result = only(cfg, keys={"openrouter": keys_mod.ResolvedKey(CANARY, "env OPENROUTER_API_KEY")})
    assert (result.key_valid, result.status) == (False, 401)
    text = repr(result.to_json())
    assert not any(CANARY[i : i + 8] in text for i in range(2, len(CANARY) - 7))


def test_a_configured_header_secret_echoed_back_is_removed(server):
    secret = "hdr-secret-0123456789abcdef"
    srv = server()
    srv.route("GET", "/models")(lambda ex: ex.reply(403, {"error": f"bad X-Api-Key {secret}"}))
    cfg = make_config({"lab": {"kind": "openai", "url": srv.url, "headers": {"X-Api-Key": secret}}})
    result = only(cfg)
    assert srv.requests[0].headers["x-api-key"] == secret
    assert result.problem is not None and "HTTP 403" in result.problem
    assert not any(secret[i : i + 8] in result.problem for i in range(len(secret) - 7))


def test_a_hung_probe_is_reported_at_the_deadline_and_never_joined(monkeypatch):
    released = threading.Event()

    def hang(*args: Any, **kw: Any) -> provider_status.ProbeResult:
        released.wait()  # a probe that never returns on its own (released when the test ends)
        raise AssertionError("released")

    monkeypatch.setattr(provider_status, "probe_provider", hang)
    monkeypatch.setattr(provider_status, "RUN_SECONDS", 0.2)
    cfg = make_config({"exo": {"enabled": True, "url": "http://127.0.0.1:1"}})
    try:
        [exo] = provider_status.probe_all(cfg)
    finally:
        released.set()
    assert (exo.reachable, exo.can_answer, exo.problem) == (False, False, "did not finish within 0.2 s")
    assert exo.state is NodeState.UNREACHABLE


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"])
def test_a_malformed_proxy_is_a_config_error_not_a_row(monkeypatch, server, variable):
    srv = server()
    monkeypatch.setenv(variable, "http://[::1")
    with pytest.raises(ProxyError) as caught:
        provider_status.probe_all(make_config({"lab": {"kind": "openai", "url": srv.url}}))
    assert caught.value.exit_code == ExitCode.CONFIG
    assert str(caught.value).startswith("invalid proxy setting in the environment:")
    assert srv.requests == []
