"""`exobridge doctor` against loopback providers: each trouble it must find, its fix, the output formats."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from exobridge.core import doctor as doctor_mod
from exobridge.core.doctor import FAIL, OK, CheckResult, Job, diagnose, no_proxy_covers, run_jobs
from tests.conftest import local_config
from tests.loopback import BlackHole, Exchange, closed_port, exo_models
from tests.test_models_cmd import V1_ID, exo_v1

ANSI = re.compile(r"\x1b\[")


def doctor_json(run_cli, *args: str, env: dict[str, str] | None = None):
    proc = run_cli("doctor", "--json", *args, env=env)
    data = json.loads(proc.stdout)
    return proc, {c["id"]: c for c in data["checks"]}, data


def openrouter_key(srv, status: int = 200, remaining: float | None = 9.5) -> None:
    @srv.route("GET", "/key")
    def key(ex: Exchange) -> None:
        if status != 200:
            ex.reply(status, {"error": {"message": "No auth credentials found", "code": status}})
        else:
            ex.reply(200, {"data": {"label": "sk-or-v1-abc", "limit": 10, "limit_remaining": remaining, "usage": 0.5}})


def test_healthy_exo_v1_with_the_default_model_placed_passes(server, write_config, run_cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=exo.url))
    proc, checks, data = doctor_json(run_cli, env={doctor_mod.EXO_PORTS_ENV: str(closed_port())})
    assert proc.returncode == 0, proc.stdout
    assert checks["provider.exo.reach"]["status"] == OK and "Exo v1" in checks["provider.exo.reach"]["detail"]
    assert checks["provider.exo.model"]["status"] == OK
    assert checks["config.default_model"]["status"] == OK
    assert data["summary"]["fail"] == 0 and data["summary"]["exit_code"] == 0
    for check in data["checks"]:
        assert set(check) == {"id", "section", "status", "detail", "fix", "ms"}
        assert check["status"] in ("ok", "warn", "fail")
        assert check["status"] == "ok" or check["fix"], check
    sections = list(dict.fromkeys(c["section"] for c in data["checks"]))
    assert sections == ["Environment", "Config", "Provider exo", "Network"]
    assert all(r.method == "GET" for r in exo.requests)  # never a completion


def test_exo_v1_without_the_model_placed_warns_and_the_default_model_fails(server, write_config, run_cli):
    exo = server()
    exo_v1(exo, ["mlx-community/Qwen3-0.6B-4bit"])
    write_config(local_config(exo=exo.url))
    proc, checks, _ = doctor_json(run_cli, env={doctor_mod.EXO_PORTS_ENV: str(closed_port())})
    assert proc.returncode == 1
    model = checks["provider.exo.model"]
    assert model["status"] == "warn" and "no placed instance" in model["detail"]
    assert "mlx-community/Qwen3-0.6B-4bit" in model["fix"]
    default = checks["config.default_model"]
    assert default["status"] == FAIL and "exo: no instance of llama-3.2-3b" in default["detail"]


def test_legacy_exo_without_the_model_in_its_list_warns(server, write_config, run_cli):
    exo = server()
    exo.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
    exo.route("GET", "/v1/models")(exo_models("llama-3.1-8b"))
    write_config(local_config(exo=exo.url))
    _, checks, _ = doctor_json(run_cli, env={doctor_mod.EXO_PORTS_ENV: str(closed_port())})
    assert "Exo legacy" in checks["provider.exo.reach"]["detail"]
    model = checks["provider.exo.model"]
    assert model["status"] == "warn" and "not in the node's model list" in model["detail"]
    assert "exobridge models --provider exo" in model["fix"]


def test_exo_answering_on_the_other_port_suggests_the_url(server, write_config, run_cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    proc, checks, _ = doctor_json(run_cli, env={doctor_mod.EXO_PORTS_ENV: f"{closed_port()},{exo.port}"})
    assert proc.returncode == 1
    reach = checks["provider.exo.reach"]
    assert reach["status"] == FAIL and f"answers at {exo.url}" in reach["detail"]
    assert reach["fix"] == f"exobridge config set providers.exo.url {exo.url}"
    env = {doctor_mod.EXO_PORTS_ENV: str(exo.port), "EXOBRIDGE_EXO_URL": f"http://127.0.0.1:{closed_port()}"}
    _, checks, _ = doctor_json(run_cli, env=env)
    assert checks["provider.exo.reach"]["fix"] == f"export EXOBRIDGE_EXO_URL={exo.url}"


def test_default_exo_ports_are_derived_from_the_configured_one():
    assert doctor_mod.exo_candidate_ports(52415, {}) == [8000]
    assert doctor_mod.exo_candidate_ports(8000, {}) == [52415]
    assert doctor_mod.exo_candidate_ports(9999, {}) == [52415, 8000]
    assert doctor_mod.exo_candidate_ports(1, {doctor_mod.EXO_PORTS_ENV: "5, 6,x"}) == [5, 6]
    assert doctor_mod.with_port("http://localhost:8000", 52415) == "http://localhost:52415"


def test_proxy_without_no_proxy_for_the_exo_host_fails(write_config, run_cli):
    write_config(local_config(exo="http://localhost:52415"))
    proxy = f"http://127.0.0.1:{closed_port()}"
    ports = {doctor_mod.EXO_PORTS_ENV: str(closed_port())}
    _, checks, _ = doctor_json(run_cli, env={"https_proxy": proxy, "HTTP_PROXY": proxy, **ports})
    check = checks["network.proxy"]
    assert check["status"] == FAIL and "Exo requests would go through the proxy" in check["detail"]
    assert "HTTP_PROXY" in check["detail"] and "HTTPS_PROXY" in check["detail"]
    assert check["fix"] == 'export NO_PROXY="localhost,127.0.0.1"'
    _, checks, _ = doctor_json(run_cli, env={"ALL_PROXY": proxy, "no_proxy": "127.0.0.1,localhost", **ports})
    assert checks["network.proxy"]["status"] == OK


def test_no_proxy_matching():
    assert no_proxy_covers("localhost", "example.com, localhost:52415")
    assert no_proxy_covers("exo.lan", ".lan")
    assert no_proxy_covers("node1.lan", "lan")
    assert no_proxy_covers("10.0.0.5", "10.0.0.0/8")
    assert no_proxy_covers("anything", "*")
    assert not no_proxy_covers("127.0.0.1", "localhost")
    assert not no_proxy_covers("notlan", "lan")


def test_openrouter_key_valid_rejected_and_out_of_credits(server, write_config, run_cli):
    router = server()
    openrouter_key(router)
    write_config(local_config(openrouter=router.url))
    env = {"OPENROUTER_API_KEY": "sk-or-v1-test0000abcd"}
    proc, checks, _ = doctor_json(run_cli, env=env)
    assert checks["provider.openrouter.key"]["status"] == OK
    assert "sk-or-…abcd" in checks["provider.openrouter.key"]["detail"]
    assert (
        checks["provider.openrouter.credits"]["status"] == OK
        and "$9.5" in checks["provider.openrouter.credits"]["detail"]
    )
    assert "sk-or-v1-test0000abcd" not in proc.stdout
    assert router.requests[0].headers["authorization"] == "Bearer sk-or-v1-test0000abcd"

    rejected = server()
    openrouter_key(rejected, status=401)
    write_config(local_config(openrouter=rejected.url))
    proc, checks, _ = doctor_json(run_cli, env=env)
    assert proc.returncode == 1
    key = checks["provider.openrouter.key"]
    assert key["status"] == FAIL and "env OPENROUTER_API_KEY" in key["detail"] and "rejected" in key["detail"]

    broke = server()
    openrouter_key(broke, remaining=0)
    write_config(local_config(openrouter=broke.url))
    proc, checks, _ = doctor_json(run_cli, env=env)
    credits = checks["provider.openrouter.credits"]
    assert proc.returncode == 1 and credits["status"] == FAIL and "out of credits" in credits["detail"]


def test_key_from_keys_file_is_named_and_a_readable_keys_file_fails(server, write_config, run_cli):
    hf = server()
    hf.route("GET", "/models")(lambda ex: ex.reply(401, {"error": "Invalid credentials in Authorization header"}))
    write_config(local_config(huggingface=hf.url))
    keys_file = Path(os.environ["EXOBRIDGE_KEYS_FILE"])
    keys_file.write_text('huggingface = "hf_testtoken1234"\n')
    keys_file.chmod(0o644)
    proc, checks, _ = doctor_json(run_cli)
    assert proc.returncode == 1
    key = checks["provider.huggingface.key"]
    assert key["status"] == FAIL and "keys file" in key["detail"] and "HTTP 401" in key["detail"]
    mode = checks["env.keys_mode"]
    assert mode["status"] == FAIL and mode["fix"] == f"chmod 600 {keys_file}"
    keys_file.chmod(0o600)
    _, checks, _ = doctor_json(run_cli)
    assert checks["env.keys_mode"]["status"] == OK


def test_missing_key_warns_with_the_variable_to_set(write_config, run_cli):
    write_config(local_config(openrouter="http://127.0.0.1:9"))
    _, checks, _ = doctor_json(run_cli)
    key = checks["provider.openrouter.key"]
    assert key["status"] == "warn" and "OPENROUTER_API_KEY" in key["fix"]


def test_default_model_no_provider_has(write_config, run_cli):
    write_config(local_config(openrouter="http://127.0.0.1:9").replace("llama-3.2-3b", "qwen-2.5-14b"))
    proc, checks, _ = doctor_json(run_cli)
    check = checks["config.default_model"]
    assert proc.returncode == 1
    assert check["status"] == FAIL and "no id for any enabled provider" in check["detail"]
    assert "exobridge config set default_model" in check["fix"]


def test_strict_fails_on_warnings_and_piped_output_is_plain(server, write_config, run_cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config('colour = "blue"\n' + local_config(exo=exo.url))
    ports = {doctor_mod.EXO_PORTS_ENV: str(closed_port())}
    proc = run_cli("doctor", env=ports)
    assert proc.returncode == 0, proc.stdout
    assert not ANSI.search(proc.stdout + proc.stderr)
    assert "\n  warn  unknown keys are ignored: colour" in proc.stdout
    assert "        fix: remove or rename colour in" in proc.stdout
    assert "✓" not in proc.stdout and "\n  ok    Python" in proc.stdout
    assert proc.stdout.splitlines()[-1].endswith("ok, 1 warning, 0 failures")
    strict = run_cli("doctor", "--strict", env=ports)
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1].endswith("(--strict: warnings fail)")


def test_config_holding_headers_must_be_private(write_config, run_cli):
    path = write_config(
        local_config(
            extra='[providers.mine]\nkind = "openai"\nurl = "http://127.0.0.1:9"\n'
            'enabled = false\nheaders = { Authorization = "Bearer x" }\n'
        )
    )
    path.chmod(0o640)
    _, checks, _ = doctor_json(run_cli)
    assert checks["env.config_mode"]["status"] == FAIL and checks["env.config_mode"]["fix"] == f"chmod 600 {path}"
    write_config(local_config())
    _, checks, _ = doctor_json(run_cli)
    assert checks["env.config_mode"]["status"] == OK


def test_config_that_does_not_parse_is_a_failed_check(write_config, run_cli):
    write_config("default_model = [\n")
    proc, checks, _ = doctor_json(run_cli)
    assert proc.returncode == 1
    assert checks["config.parse"]["status"] == FAIL and checks["config.parse"]["fix"]
    assert "Traceback" not in proc.stderr


def test_a_crashing_check_is_reported_failed():
    def broken() -> list[CheckResult]:
        raise RuntimeError("boom")

    report = diagnose(extra_jobs=[Job("env.broken", "Environment", broken)], env={})
    check = next(c for c in report.checks if c.id == "env.broken")
    assert check.status == FAIL and "RuntimeError: boom" in check.detail
    assert check.fix  # every failure carries a fix
    assert report.exit_code == 1


def test_a_stuck_check_is_cut_off_at_the_deadline():
    import threading

    release = threading.Event()
    try:

        def stuck() -> list[CheckResult]:
            release.wait(10)
            return []

        results = run_jobs([Job("slow", "Network", stuck)], deadline=0.2)
    finally:
        release.set()
    assert results[0].status == FAIL and "did not finish" in results[0].detail and results[0].fix


def test_dead_providers_cost_one_timeout_not_the_sum(write_config, monkeypatch):
    holes = [BlackHole() for _ in range(3)]
    try:
        extra = f"""
        [providers.second]
        kind = "openai"
        url = "{holes[1].url}"
        [providers.third]
        kind = "openai"
        url = "{holes[2].url}"
        """
        write_config(local_config(exo=holes[0].url, extra=extra))
        started = time.monotonic()
        report = diagnose(env={doctor_mod.EXO_PORTS_ENV: str(closed_port())}, read_timeout=0.4)
        elapsed = time.monotonic() - started
    finally:
        for hole in holes:
            hole.close()
    by_id = {c.id: c for c in report.checks}
    assert by_id["provider.exo.reach"].status == FAIL
    assert by_id["provider.second.reach"].status == FAIL and by_id["provider.third.reach"].status == FAIL
    assert elapsed < 1.1  # three stalled servers at 0.4 s each, probed at once
