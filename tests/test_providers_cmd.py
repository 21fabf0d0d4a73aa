"""`exobridge providers list|status` and the probes behind them, against real loopback servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from exobridge.core import keys as keys_mod
from exobridge.core import provider_status
from exobridge.core.cooldown import CooldownStore
from exobridge.core.errors import Failure, FailureKind
from tests.conftest import exobridge_command, local_config
from tests.loopback import BlackHole, Exchange, closed_port, exo_models
from tests.test_routing import make_config

V1_STATE = {
    "topology": {"nodes": ["n1", "n2", "n3"], "connections": []},
    "instances": {
        "i1": {"MlxRingInstance": {"instanceId": "i1", "shardAssignments": {"modelId": "mlx-community/Llama-3.2-3B"}}},
        "i2": {"MlxJacclInstance": {"instanceId": "i2", "shardAssignments": {"modelId": "mlx-community/Qwen3-8B"}}},
    },
    "runners": {},
}


def exo_v1(server: Any, state: dict[str, Any] = V1_STATE) -> Any:
    srv = server()
    srv.route("GET", "/node_id")(lambda ex: ex.reply(200, '"12D3KooWabc"'))
    srv.route("GET", "/state")(lambda ex: ex.reply(200, state))
    return srv


def exo_legacy(server: Any) -> Any:
    srv = server()
    srv.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
    srv.route("GET", "/topology")(lambda ex: ex.reply(200, {"nodes": {"a": {}, "b": {}}, "peer_graph": {}}))
    srv.route("GET", "/v1/models")(exo_models("llama-3.2-1b", "llama-3.2-3b", "qwen-2.5-7b"))
    return srv


def openrouter(server: Any, path: str = "/key", limit_remaining: float | None = 7.5) -> Any:
    srv = server()
    data = {"label": "sk-or-v1-abc...", "limit": 10, "limit_remaining": limit_remaining, "usage": 2.5}
    srv.route("GET", path)(lambda ex: ex.reply(200, {"data": {**data, "is_free_tier": False}}))
    return srv


def key(value: str | None, source: str) -> keys_mod.ResolvedKey:
    return keys_mod.ResolvedKey(value, source)


def one(
    provider: dict[str, Any], key_value: keys_mod.ResolvedKey | None = None, **kw: Any
) -> provider_status.ProbeResult:
    cfg = make_config({"p": provider})
    keys = {"p": key_value} if key_value else None
    [result] = provider_status.probe_all(cfg, keys, **kw)
    return result


# --- probe shapes ---------------------------------------------------------------------------------


def test_exo_v1_line_nodes_and_placed_models(server):
    srv = exo_v1(server)
    r = one({"kind": "exo", "url": srv.url})
    assert (r.reachable, r.can_answer, r.api_line, r.node_id) == (True, True, "v1", "12D3KooWabc")
    assert r.nodes == 3
    assert r.models == ["mlx-community/Llama-3.2-3B", "mlx-community/Qwen3-8B"]
    assert r.models_ready == 2 and r.models_ready_note is None


def test_exo_v1_without_placed_model_cannot_answer(server):
    srv = exo_v1(server, {"topology": {"nodes": ["n1"]}, "instances": {}})
    r = one({"kind": "exo", "url": srv.url})
    assert r.reachable and not r.can_answer
    assert r.models_ready == 0 and "no model is placed" in (r.problem or "")


def test_exo_legacy_line_counts_cards_and_says_so(server):
    srv = exo_legacy(server)
    r = one({"kind": "exo", "url": srv.url})
    assert (r.api_line, r.nodes, r.models_ready, r.can_answer) == ("legacy", 2, 3, True)
    assert r.models_ready_note == provider_status.LEGACY_MODELS_NOTE
    assert all(not p.startswith("POST") for p in srv.paths())


def test_exo_legacy_topology_falls_back_to_v1_path(server):
    srv = server()
    srv.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
    srv.route("GET", "/v1/topology")(lambda ex: ex.reply(200, {"nodes": {"a": {}}}))
    srv.route("GET", "/v1/models")(exo_models("x"))
    assert one({"kind": "exo", "url": srv.url}).nodes == 1


def test_not_an_exo_server(server):
    srv = server()
    r = one({"kind": "exo", "url": srv.url})
    assert r.reachable and not r.can_answer and "not an Exo API" in (r.problem or "")


def test_openrouter_key_info_and_key_sent_only_there(server):
    srv = openrouter(server)
    exo = exo_legacy(server)
    cfg = make_config(
        {
            "exo": {"enabled": True, "url": exo.url},
            "openrouter": {"enabled": True, "url": srv.url},
        }
    )
    results = provider_status.probe_all(cfg, {"openrouter": key("sk-or-v1-secret9f2c", "env OPENROUTER_API_KEY")})
    r = next(x for x in results if x.provider == "openrouter")
    assert (r.key_valid, r.can_answer, r.credits_limit, r.credits_remaining, r.credits_usage) == (
        True,
        True,
        10.0,
        7.5,
        2.5,
    )
    from exobridge.core.secrets import mask

    assert r.key_masked == mask("sk-or-v1-secret9f2c") and r.key_masked.startswith("sk-or-…")
    assert "secret" not in r.key_masked
    assert srv.requests[0].headers["authorization"] == "Bearer sk-or-v1-secret9f2c"
    assert all("authorization" not in req.headers for req in exo.requests)


def test_openrouter_falls_back_to_auth_key_on_404(server):
    srv = openrouter(server, path="/auth/key")
    r = one({"kind": "openrouter", "url": srv.url}, key("k-123456789", "keys file"))
    assert r.can_answer and srv.paths() == ["GET /key", "GET /auth/key"]


def test_openrouter_used_up_credits_cannot_answer(server):
    srv = openrouter(server, limit_remaining=0)
    r = one({"kind": "openrouter", "url": srv.url}, key("k-123456789", "keys file"))
    assert r.key_valid and not r.can_answer and "credit" in (r.problem or "")


def test_huggingface_rejected_key(server):
    srv = server()
    srv.route("GET", "/models")(lambda ex: ex.reply(401, {"error": "Invalid credentials in Authorization header"}))
    r = one({"kind": "huggingface", "url": srv.url}, key("hf_abcdefgh1234", "env HF_TOKEN"))
    assert (r.reachable, r.key_valid, r.can_answer, r.status) == (True, False, False, 401)
    assert "Invalid credentials" in (r.problem or "")
    assert srv.paths() == ["GET /models"]


def test_openai_models_list(server):
    srv = server()
    srv.route("GET", "/models")(exo_models("a", "b"))
    r = one({"kind": "openai", "url": srv.url})
    assert (r.can_answer, r.models_ready, r.key_source) == (True, 2, "not needed")


def test_missing_key_is_not_probed(server):
    srv = server()
    r = one({"kind": "openrouter", "url": srv.url, "key_env": "NO_SUCH_KEY_VAR"})
    assert r.reachable is None and not r.can_answer and "no API key" in (r.problem or "")
    assert srv.requests == []


def test_black_hole_and_refused_are_unreachable():
    with BlackHole() as hole:
        r = one({"kind": "exo", "url": hole.url}, read_timeout=0.3)
    assert (r.reachable, r.can_answer, r.problem) == (False, False, "no reply within 0.3 s")
    r = one({"kind": "openai", "url": f"http://127.0.0.1:{closed_port()}"})
    assert (r.reachable, r.problem) == (False, "connection refused")


def test_probes_run_concurrently(server):
    """Each provider answers only once all four are being asked at once: one at a time, none would answer."""
    together = threading.Barrier(4)
    slow = []
    for _ in range(4):
        srv = server()

        def hold(ex: Exchange) -> None:
            try:
                together.wait(timeout=10)  # longer than a probe's deadline: alone, a probe gives up first
            except threading.BrokenBarrierError:
                ex.reply(503, {"error": "asked one at a time"})
                return
            ex.reply(200, {"data": [{"id": "m"}]})

        srv.route("GET", "/models")(hold)
        slow.append(srv)
    cfg = make_config({f"p{i}": {"kind": "openai", "url": s.url, "priority": i} for i, s in enumerate(slow)})
    results = provider_status.probe_all(cfg)
    assert [r.provider for r in results] == ["p0", "p1", "p2", "p3"]
    assert all(r.can_answer for r in results), [r.problem for r in results]


def test_cooldowns_are_annotated(server, tmp_path: Path):
    srv = server()
    srv.route("GET", "/models")(exo_models("a"))
    cfg = make_config({"p": {"kind": "openai", "url": srv.url}})
    store = CooldownStore(tmp_path / "state")
    store.record_failure(cfg.providers["p"], srv.url, Failure(FailureKind.SERVER, "HTTP 502: bad gateway", 502))
    [r] = provider_status.probe_all(cfg, cooldowns=CooldownStore(tmp_path / "state"))
    assert r.cooldown is not None and r.cooldown.startswith("cooling down after HTTP 502, ")
    assert r.last_failure == "HTTP 502: bad gateway"


# --- the CLI --------------------------------------------------------------------------------------


def test_status_json_and_exit_codes(server, write_config, cli):
    exo = exo_v1(server)
    orr = openrouter(server)
    write_config(local_config(exo=exo.url, openrouter=orr.url))
    proc = cli("providers", "status", "--json", env={"OPENROUTER_API_KEY": "sk-or-v1-testkey0001"})
    assert proc.exit_code == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["can_answer"] == ["exo", "openrouter"]
    assert [n["provider"] for n in data["nodes"]] == ["exo", "openrouter"]
    assert "sk-or-v1-testkey0001" not in proc.stdout
    assert all(not p.startswith("POST") for p in exo.paths() + orr.paths())

    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    proc = cli("providers", "status")
    assert proc.exit_code == 3
    assert proc.stdout.splitlines()[0].split() == ["NAME", "URL", "REACHABLE", "DETAILS", "KEY", "COOLDOWN", "PROBLEM"]
    assert "\x1b[" not in proc.stdout
    assert "connection refused" in proc.stdout
    assert "no provider can answer" in proc.stderr


def test_status_with_a_malformed_proxy_variable_is_the_one_config_error(write_config, cli):
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    proc = cli("providers", "status", "--json", env={"HTTP_PROXY": "http://bad:port:x"})
    assert proc.exit_code == 4, proc.stderr
    assert proc.stderr.startswith("exobridge: error: invalid proxy setting in the environment: ")
    assert proc.stderr.count("\n") == 1
    assert proc.json() == {"error": proc.stderr.removeprefix("exobridge: error: ").strip(), "exit_code": 4}


def test_can_answer_is_in_priority_order(server, write_config, cli):
    first, second = server(), server()
    for srv in (first, second):
        srv.route("GET", "/models")(exo_models("m"))
    write_config(
        local_config(
            extra=f'[providers.zeta]\nkind = "openai"\nurl = "{first.url}"\npriority = 1\n\n'
            f'[providers.alpha]\nkind = "openai"\nurl = "{second.url}"\npriority = 2\n'
        )
    )
    proc = cli("providers", "status", "--json")
    assert json.loads(proc.stdout)["can_answer"] == ["zeta", "alpha"]
    assert "can answer: zeta, alpha" in cli("providers", "status").stderr


def test_list_shows_key_sources_masked_never_raw(write_config, cli, isolated):
    write_config(
        local_config(exo="http://127.0.0.1:9", openrouter="http://127.0.0.1:9", huggingface="http://127.0.0.1:9")
        + '[providers.local]\nkind = "openai"\nurl = "http://127.0.0.1:9"\nkey_env = "LOCAL_KEY"\nenabled = false\n'
    )
    (isolated / "keys.toml").write_text('huggingface = "hf_storedkey1234"\n', encoding="utf-8")
    env = {"OPENROUTER_API_KEY": "sk-or-v1-abcdefgh9f2c"}
    proc = cli("providers", "list", "--json", env=env)
    assert proc.exit_code == 0, proc.stderr
    rows = {p["name"]: p for p in json.loads(proc.stdout)["providers"]}
    assert list(rows) == ["exo", "openrouter", "huggingface", "local"]
    assert rows["exo"]["key"] == {"source": "not needed", "masked": None}
    assert rows["openrouter"]["key"] == {"source": "env OPENROUTER_API_KEY", "masked": "sk-or-…9f2c"}
    assert rows["huggingface"]["key"] == {"source": "keys file", "masked": "hf_…1234"}
    assert rows["local"]["key"]["source"] == "missing" and rows["local"]["enabled"] is False
    plain = cli("providers", "list", env=env)
    for raw in ("sk-or-v1-abcdefgh9f2c", "hf_storedkey1234"):
        assert raw not in proc.stdout + plain.stdout + plain.stderr
    assert "sk-or-…9f2c (env OPENROUTER_API_KEY)" in plain.stdout


def test_watch_refreshes_until_ctrl_c_and_exits_0(server, write_config, isolated, cli):
    """In-process: a real SIGINT reaches the main thread during the fourth probe, after three frames (a process
    on Ctrl-C: test_watch_stops_at_once_on_ctrl_c_even_while_a_probe_hangs)."""
    exo = exo_legacy(server)
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    probes = 0

    @exo.route("GET", "/healthcheck")
    def healthy(ex: Exchange) -> None:
        nonlocal probes
        probes += 1
        if probes == 4:  # three frames shown: it refreshed
            signal.pthread_kill(main_thread, signal.SIGINT)
        ex.reply(200, {"status": "ok"})

    write_config(local_config(exo=exo.url))
    (isolated / "cache").mkdir()
    (isolated / "cache" / "state.json").write_text("{corrupt", encoding="utf-8")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = cli("providers", "status", "--watch", "0.5")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sum(line.startswith("NAME") for line in result.stdout.splitlines()) >= 3
    assert result.exit_code == 0
    assert "Traceback" not in result.stderr
    # A warning is said once, not on every refresh (on a terminal it would break the redraw in place).
    assert result.stderr.count("corrupt state file") == 1
    assert all(not p.startswith("POST") for p in exo.paths())


def test_status_doctor_and_models_never_post_to_any_provider(server, write_config, cli):
    """Probing is free: across every probe shape, only GETs, and the key goes only to its own provider."""
    v1, legacy, orr, hf = exo_v1(server), exo_legacy(server), openrouter(server), server()
    orr.route("GET", "/models")(exo_models("meta-llama/llama-3.2-3b-instruct"))
    hf.route("GET", "/models")(exo_models("meta-llama/Llama-3.2-3B-Instruct"))
    v1.route("GET", "/v1/models")(exo_models("mlx-community/Llama-3.2-3B"))
    write_config(
        local_config(exo=v1.url, openrouter=orr.url, huggingface=hf.url)
        + f'[providers.old]\nkind = "exo"\nurl = "{legacy.url}"\npriority = 50\n'
    )
    env = {
        "OPENROUTER_API_KEY": "sk-or-v1-testkey0001",
        "HF_TOKEN": "hf_testtoken0001",
        "EXOBRIDGE_DOCTOR_EXO_PORTS": "1",
    }
    for args in (["providers", "status"], ["doctor"], ["models", "--refresh"]):
        proc = cli(*args, env=env)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, (args, proc.stderr)
    for srv in (v1, legacy, orr, hf):
        assert srv.requests, srv.url
        assert {r.method for r in srv.requests} == {"GET"}, srv.paths()
    assert all(r.headers.get("authorization") == "Bearer sk-or-v1-testkey0001" for r in orr.requests)
    assert all(r.headers.get("authorization") == "Bearer hf_testtoken0001" for r in hf.requests)
    assert all("authorization" not in r.headers for r in v1.requests + legacy.requests)


def test_list_never_touches_the_network(server, write_config, cli):
    srv = server()
    write_config(local_config(exo=srv.url, openrouter=srv.url, huggingface=srv.url))
    env = {"OPENROUTER_API_KEY": "sk-or-v1-testkey0001", "HF_TOKEN": "hf_testtoken0001"}
    assert cli("providers", "list", env=env).exit_code == 0
    assert cli("providers", "list", "--json", env=env).exit_code == 0
    assert srv.requests == []


@pytest.mark.process  # a real SIGINT while a probe thread hangs: the process exits without joining it
def test_watch_stops_at_once_on_ctrl_c_even_while_a_probe_hangs(server, write_config):
    """The probe drips a byte every half second, so no read timeout fires and it runs to the node's 10 s
    deadline (NODE_SECONDS): a Ctrl-C that waited for it could not end within the 8 s allowed here."""
    srv = server()
    asked = threading.Event()

    @srv.route("GET", "/node_id")
    def hang(ex: Exchange) -> None:
        asked.set()
        ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        ex.drip(b" ", every=0.5, forever=True)

    assert provider_status.NODE_SECONDS >= 10
    write_config(local_config(exo=srv.url).replace("connect_timeout = 2", "connect_timeout = 60"))
    proc = subprocess.Popen(
        [*exobridge_command(), "providers", "status", "--watch", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert asked.wait(20)
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("Ctrl-C waited for the hung probe") from None
    assert proc.returncode == 0
    assert b"Traceback" not in err


def test_seconds_without_watch_is_a_usage_error(cli):
    proc = cli("providers", "status", "3")
    assert proc.exit_code == 2
    assert proc.stderr == "exobridge: error: SECONDS goes with --watch: exobridge providers status --watch 2\n"


def terminal(**env: str):
    from exobridge.render.io import IOStreams

    return IOStreams.test(stdout_tty=True, stderr_tty=True, env={**os.environ, **env}, width=400)


def test_status_shows_provider_markup_and_escapes_as_text_and_survives_the_state_file(server, write_config, cli):
    hostile = server()
    hostile.route("GET", "/models")(lambda ex: ex.reply(502, {"error": "[/oops] [bold red]x[/] \x1b]0;owned\x07"}))
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{hostile.url}"\npriority = 1\n'))
    hostile.route("POST", "/chat/completions")(lambda ex: ex.reply(502, {"error": "[/oops] \x1b[2J"}))
    assert cli("chat", "-m", "x", "Hi").exit_code == 3  # the failure is remembered in the state file
    for _ in range(2):  # and shown again, from the state file, on the next run
        result = cli("providers", "status", io=terminal(FORCE_COLOR="1"))
        assert result.exit_code == 3, result.stderr
        assert "[/oops] [bold red]x[/] \\x1b]0;owned\\x07" in result.stdout
        assert "\x1b]0;" not in result.stdout and "\x1b[2J" not in result.stdout
    listed = cli("providers", "list", io=terminal(FORCE_COLOR="1"))
    assert listed.exit_code == 0 and "\x1b[2J" not in listed.stdout


@pytest.mark.process  # SIGTERM is handled only in the process's main()
def test_sigterm_during_watch_is_not_a_quiet_ctrl_c(server, write_config):
    exo = exo_legacy(server)
    write_config(local_config(exo=exo.url))
    proc = subprocess.Popen(
        [*exobridge_command(), "providers", "status", "--watch", "0.5"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"NAME")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 143
    assert err.decode().strip().splitlines()[-1] == "exobridge: terminated by SIGTERM"


def test_status_adds_the_cli_hint_to_a_missing_key(write_config, cli):
    write_config(local_config(openrouter="http://127.0.0.1:9"))
    result = cli("providers", "status")
    assert result.exit_code == 3
    row = next(line for line in result.stdout.splitlines() if line.startswith("openrouter"))
    assert row.endswith("no API key (set OPENROUTER_API_KEY) → exobridge keys set openrouter")


def test_providers_list_never_shows_nothing_spent_when_the_history_cannot_be_read(cli, write_config, isolated):
    import sqlite3

    from exobridge.core import history

    write_config(local_config() + "[budget]\ndaily_usd = 2.0\n")
    with history.Store() as store:
        store.add(history.Entry(conversation="c", prompt="p", reply="r", outcome="complete", provider="x", cost=1.5))
    shown = cli("providers", "list")
    assert shown.exit_code == 0 and "$1.50 of $2.00" in shown.stdout
    with sqlite3.connect(isolated / "data" / "history.db") as conn:
        conn.execute("PRAGMA user_version = 99")  # from a newer exobridge: not read
    result = cli("providers", "list")
    assert result.exit_code == 0
    assert "budgets: spending unknown:" in result.stderr and "newer" in result.stderr
    assert "$0.00" not in result.stdout + result.stderr
    assert all(row["budgets"] == [] for row in cli("providers", "list", "--json").json()["providers"])
