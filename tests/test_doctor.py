"""`exobridge doctor` against loopback providers: each trouble it must find, its fix, the output formats, its
deadline, and the verdicts that must be true (proxies as httpx routes them, "private" only when it is).

In-process (the `cli` fixture) except the one test that needs a process: a dripping server must not keep
`doctor` from exiting (threads are never joined at exit)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from exobridge.core import doctor as doctor_mod
from exobridge.core import parallel, proxies
from exobridge.core.doctor import FAIL, OK, WARN, Check, CheckResult, diagnose, run_checks
from exobridge.core.doctor.environment import file_mode_check
from exobridge.core.doctor.network import check_proxy, is_local_host
from tests.conftest import local_config
from tests.loopback import BlackHole, Exchange, closed_port, exo_models
from tests.test_models_cmd import V1_ID, exo_v1

pytestmark = pytest.mark.timeout(60)

ANSI = re.compile(r"\x1b\[")


def doctor_json(cli, *args: str, env: dict[str, str] | None = None):
    result = cli("doctor", "--json", *args, env=env)
    data = result.json()
    return result, {c["id"]: c for c in data["checks"]}, data


def no_other_port() -> dict[str, str]:
    return {doctor_mod.EXO_PORTS_ENV: str(closed_port())}


def openrouter_key(srv, status: int = 200, remaining: float | None = 9.5) -> None:
    @srv.route("GET", "/key")
    def key(ex: Exchange) -> None:
        if status != 200:
            ex.reply(status, {"error": {"message": "No auth credentials found", "code": status}})
        else:
            ex.reply(200, {"data": {"label": "sk-or-v1-abc", "limit": 10, "limit_remaining": remaining, "usage": 0.5}})


def test_healthy_exo_v1_with_the_default_model_placed_passes(server, write_config, cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=exo.url))
    result, checks, data = doctor_json(cli, env=no_other_port())
    assert result.exit_code == 0, result.stdout
    assert checks["provider.exo.reach"]["status"] == OK and "Exo v1" in checks["provider.exo.reach"]["detail"]
    assert checks["provider.exo.model"]["status"] == OK
    assert checks["config.default_model"]["status"] == OK
    assert data["summary"]["fail"] == 0 and data["summary"]["exit_code"] == 0
    assert "error" not in data
    for check in data["checks"]:
        assert set(check) == {"id", "section", "status", "detail", "fix", "ms"}
        assert check["status"] in ("ok", "warn", "fail")
        assert check["status"] == "ok" or check["fix"], check
    sections = list(dict.fromkeys(c["section"] for c in data["checks"]))
    assert sections == ["Environment", "Config", "Provider exo", "Network"]
    assert all(r.method == "GET" for r in exo.requests)  # never a completion


def test_exo_v1_without_the_model_placed_warns_and_the_default_model_fails(server, write_config, cli):
    exo = server()
    exo_v1(exo, ["mlx-community/Qwen3-0.6B-4bit"])
    write_config(local_config(exo=exo.url))
    result, checks, _ = doctor_json(cli, env=no_other_port())
    assert result.exit_code == 1
    model = checks["provider.exo.model"]
    assert model["status"] == WARN and "no placed instance" in model["detail"]
    assert "mlx-community/Qwen3-0.6B-4bit" in model["fix"]
    default = checks["config.default_model"]
    assert default["status"] == FAIL and "exo: no instance of llama-3.2-3b" in default["detail"]


def test_legacy_exo_without_the_model_in_its_list_warns(server, write_config, cli):
    exo = server()
    exo.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
    exo.route("GET", "/v1/models")(exo_models("llama-3.1-8b"))
    write_config(local_config(exo=exo.url))
    _, checks, _ = doctor_json(cli, env=no_other_port())
    assert "Exo legacy" in checks["provider.exo.reach"]["detail"]
    model = checks["provider.exo.model"]
    assert model["status"] == WARN and "not in the node's model list" in model["detail"]
    assert "exobridge models --provider exo" in model["fix"]


def test_exo_answering_on_the_other_port_suggests_the_url(server, write_config, cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}"))
    result, checks, _ = doctor_json(cli, env={doctor_mod.EXO_PORTS_ENV: f"{closed_port()},{exo.port}"})
    assert result.exit_code == 1
    reach = checks["provider.exo.reach"]
    assert reach["status"] == FAIL and f"answers at {exo.url}" in reach["detail"]
    assert reach["fix"] == f"exobridge config set providers.exo.url {exo.url}"
    env = {doctor_mod.EXO_PORTS_ENV: str(exo.port), "EXOBRIDGE_EXO_URL": f"http://127.0.0.1:{closed_port()}"}
    _, checks, _ = doctor_json(cli, env=env)
    assert checks["provider.exo.reach"]["fix"] == f"export EXOBRIDGE_EXO_URL={exo.url}"


def test_default_exo_ports_are_derived_from_the_configured_one():
    assert doctor_mod.exo_candidate_ports(52415, {}) == [8000]
    assert doctor_mod.exo_candidate_ports(8000, {}) == [52415]
    assert doctor_mod.exo_candidate_ports(9999, {}) == [52415, 8000]
    assert doctor_mod.exo_candidate_ports(1, {doctor_mod.EXO_PORTS_ENV: "5, 6,x"}) == [5, 6]
    assert doctor_mod.with_port("http://localhost:8000", 52415) == "http://localhost:52415"


# --- proxies: the verdict is httpx's routing ------------------------------------------------------------------


def test_proxy_without_no_proxy_for_the_exo_host_fails(write_config, cli):
    write_config(local_config(exo="http://localhost:52415"))
    proxy = f"http://127.0.0.1:{closed_port()}"
    _, checks, _ = doctor_json(cli, env={"https_proxy": proxy, "HTTP_PROXY": proxy, **no_other_port()})
    check = checks["network.proxy"]
    assert check["status"] == FAIL and "requests to local servers would go through the proxy" in check["detail"]
    assert "HTTP_PROXY" in check["detail"] and "HTTPS_PROXY" in check["detail"]
    assert check["fix"] == 'export NO_PROXY="localhost,127.0.0.1"'
    _, checks, _ = doctor_json(cli, env={"ALL_PROXY": proxy, "no_proxy": "127.0.0.1,localhost", **no_other_port()})
    assert checks["network.proxy"]["status"] == OK


PROXY = "http://127.0.0.1:3128"


@pytest.mark.parametrize(
    ("node", "no_proxy"),
    [
        ("http://lan:52415", ".lan"),  # doctor used to call this exempt; httpx proxies it
        ("http://192.168.1.10:52415", "192.168.0.0/16"),  # likewise: httpx reads no address ranges
        ("http://exo.lan:52415", ".lan"),
        ("http://lan:52415", "lan"),
        ("http://192.168.0.0:52415", "192.168.0.0/16"),
        ("http://localhost:52415", "127.0.0.1"),
        ("http://127.0.0.1:52415", "localhost"),
        ("http://[::1]:52415", "::1"),
        ("http://exo.local:52415", "*"),
        ("http://exo.local:52415", ".local:52415"),
        ("http://exo.local:52415", "exo.local:8000"),
    ],
)
def test_the_proxy_verdict_is_the_route_httpx_takes(node: str, no_proxy: str, write_config) -> None:
    """The verdict and core/proxies agree here; tests/test_proxies.py holds core/proxies equal to what a real
    httpx client does for the same rows."""
    from exobridge.core.config import load

    write_config(local_config(exo=node))
    env = {"HTTP_PROXY": PROXY, "NO_PROXY": no_proxy}
    (check,) = check_proxy(load(), env)
    proxied = proxies.from_env(env).route(node).proxied
    assert (check.status == FAIL) == proxied, (check.detail, proxied)
    if proxied:
        host = node.split("//")[1].rsplit(":", 1)[0].strip("[]")
        assert host in check.detail
        assert proxies.from_env({**env, "NO_PROXY": check.fix.split('"')[1]}).route(node).proxied is False


def test_the_two_verdicts_doctor_used_to_get_wrong() -> None:
    assert proxies.from_env({"HTTP_PROXY": PROXY, "NO_PROXY": ".lan"}).route("http://lan:52415").proxied
    assert proxies.from_env({"HTTP_PROXY": PROXY, "NO_PROXY": "192.168.0.0/16"}).route("http://192.168.1.10:1").proxied


def test_a_broken_proxy_setting_is_exit_4_and_failed_checks_never_a_crash(write_config, cli):
    write_config(local_config(exo="http://localhost:52415"))
    result, checks, data = doctor_json(cli, env={"HTTPS_PROXY": "http://[::1", **no_other_port()})
    wording = "invalid proxy setting in the environment: HTTPS_PROXY='http://[::1'"
    assert result.exit_code == 4 and data["exit_code"] == 4 and data["error"].startswith(wording)
    check = checks["network.proxy"]
    assert check["status"] == FAIL and check["detail"].startswith(wording)
    assert "crashed" not in result.stdout
    plain = cli("doctor", env={"HTTPS_PROXY": "http://[::1", **no_other_port()})
    assert plain.exit_code == 4 and plain.stderr.startswith(f"exobridge: error: {wording}")


def test_local_hosts() -> None:
    for host in ("localhost", "127.0.0.1", "::1", "[::1]", "192.168.1.10", "10.0.0.5", "lan", "exo.local", "a.lan"):
        assert is_local_host(host), host
    for host in ("openrouter.ai", "8.8.8.8", "router.huggingface.co", ""):
        assert not is_local_host(host), host


# --- keys --------------------------------------------------------------------------------------------------------


def test_openrouter_key_valid_rejected_and_out_of_credits(server, write_config, cli):
    router = server()
    openrouter_key(router)
    write_config(local_config(openrouter=router.url))
    env = {"OPENROUTER_API_KEY": "sk-or-v1-test0000abcd"}
    result, checks, _ = doctor_json(cli, env=env)
    assert checks["provider.openrouter.key"]["status"] == OK
    assert "sk-or-…abcd" in checks["provider.openrouter.key"]["detail"]
    credits = checks["provider.openrouter.credits"]
    assert credits["status"] == OK and "$9.5" in credits["detail"]
    assert "test0000" not in result.stdout
    assert router.requests[0].headers["authorization"] == "Bearer sk-or-v1-test0000abcd"

    rejected = server()
    openrouter_key(rejected, status=401)
    write_config(local_config(openrouter=rejected.url))
    result, checks, _ = doctor_json(cli, env=env)
    assert result.exit_code == 1
    key = checks["provider.openrouter.key"]
    assert key["status"] == FAIL and "env OPENROUTER_API_KEY" in key["detail"] and "rejected" in key["detail"]
    assert key["fix"].startswith("replace OPENROUTER_API_KEY: exobridge keys set openrouter")

    broke = server()
    openrouter_key(broke, remaining=0)
    write_config(local_config(openrouter=broke.url))
    result, checks, _ = doctor_json(cli, env=env)
    credits = checks["provider.openrouter.credits"]
    assert result.exit_code == 1 and credits["status"] == FAIL and "out of credits" in credits["detail"]


def test_key_from_keys_file_is_named_and_a_readable_keys_file_fails(server, write_config, cli):
    hf = server()
    hf.route("GET", "/models")(lambda ex: ex.reply(401, {"error": "Invalid credentials in Authorization header"}))
    write_config(local_config(huggingface=hf.url))
    keys_file = Path(os.environ["EXOBRIDGE_KEYS_FILE"])
    keys_file.write_text('huggingface = "hf_testtoken1234"\n')
    keys_file.chmod(0o644)
    result, checks, _ = doctor_json(cli)
    assert result.exit_code == 1
    key = checks["provider.huggingface.key"]
    assert key["status"] == FAIL and "keys file" in key["detail"] and "HTTP 401" in key["detail"]
    mode = checks["env.keys_mode"]
    assert mode["status"] == FAIL and mode["fix"] == f"chmod 600 {keys_file}"
    keys_file.chmod(0o600)
    _, checks, _ = doctor_json(cli)
    assert checks["env.keys_mode"]["status"] == OK and "is private" in checks["env.keys_mode"]["detail"]


def test_a_malformed_keys_file_is_exit_4_with_file_and_line_never_no_key(write_config, cli):
    write_config(local_config(openrouter="http://127.0.0.1:9"))
    keys_file = Path(os.environ["EXOBRIDGE_KEYS_FILE"])
    keys_file.write_text('openrouter = "sk-or-v1-abcdefgh12345678"\nthis line is broken\n')
    keys_file.chmod(0o600)
    result, checks, data = doctor_json(cli)
    assert result.exit_code == 4
    assert data["exit_code"] == 4 and data["summary"]["exit_code"] == 4
    assert str(keys_file) in data["error"] and "line 2" in data["error"]
    check = checks["config.keys_file"]
    assert check["status"] == FAIL and str(keys_file) in check["detail"] and "line 2" in check["detail"]
    assert "abcdefgh12345678" not in result.stdout + result.stderr
    plain = cli("doctor")
    assert plain.exit_code == 4 and "keys file does not load" in plain.stdout


def test_missing_key_warns_with_the_variable_to_set(write_config, cli):
    write_config(local_config(openrouter="http://127.0.0.1:9"))
    _, checks, _ = doctor_json(cli)
    key = checks["provider.openrouter.key"]
    assert key["status"] == WARN and "OPENROUTER_API_KEY" in key["fix"]
    assert key["detail"] == "no API key (set OPENROUTER_API_KEY)"  # the one wording every command uses


# --- private means private --------------------------------------------------------------------------------------


def test_a_keys_file_in_a_folder_others_can_write_is_not_private(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    keys_file = folder / "keys.toml"
    keys_file.write_text('openrouter = "x"\n')
    keys_file.chmod(0o600)
    folder.chmod(0o777)
    check = file_mode_check("env.keys_mode", "keys file", keys_file, holds_keys=True)
    assert check.status == FAIL and "writable by group/others" in check.detail
    assert check.fix == f"chmod 700 {folder}"
    folder.chmod(0o700)
    assert file_mode_check("env.keys_mode", "keys file", keys_file, holds_keys=True).status == OK


def test_a_keys_file_that_is_a_symlink_or_not_a_file_is_not_private(tmp_path: Path) -> None:
    target = tmp_path / "real.toml"
    target.write_text('openrouter = "x"\n')
    target.chmod(0o600)
    link = tmp_path / "keys.toml"
    link.symlink_to(target)
    check = file_mode_check("env.keys_mode", "keys file", link, holds_keys=True)
    assert check.status == FAIL and "symbolic link" in check.detail
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo, 0o600)
    assert file_mode_check("env.keys_mode", "keys file", fifo, holds_keys=True).status == FAIL


def test_exobridge_folders_others_can_write_fail(write_config, cli, isolated: Path):
    write_config(local_config())
    cache = Path(os.environ["EXOBRIDGE_CACHE_DIR"])
    cache.mkdir(exist_ok=True)
    cache.chmod(0o777)
    _, checks, _ = doctor_json(cli)
    folders = checks["env.folders"]
    assert folders["status"] == FAIL and str(cache) in folders["detail"] and f"chmod 700 {cache}" in folders["fix"]
    cache.chmod(0o700)
    _, checks, _ = doctor_json(cli)
    assert checks["env.folders"]["status"] == OK


def test_config_holding_headers_must_be_private(write_config, cli):
    path = write_config(
        local_config(
            extra='[providers.mine]\nkind = "openai"\nurl = "http://127.0.0.1:9"\n'
            'enabled = false\nheaders = { Authorization = "Bearer x" }\n'
        )
    )
    path.chmod(0o640)
    _, checks, _ = doctor_json(cli)
    assert checks["env.config_mode"]["status"] == FAIL and checks["env.config_mode"]["fix"] == f"chmod 600 {path}"
    write_config(local_config())
    _, checks, _ = doctor_json(cli)
    assert checks["env.config_mode"]["status"] == OK


# --- config --------------------------------------------------------------------------------------------------------


def test_default_model_no_provider_has(write_config, cli):
    write_config(local_config(openrouter="http://127.0.0.1:9").replace("llama-3.2-3b", "qwen-2.5-14b"))
    result, checks, _ = doctor_json(cli)
    check = checks["config.default_model"]
    assert result.exit_code == 1
    assert check["status"] == FAIL and "no id for any enabled provider" in check["detail"]
    assert "exobridge config set default_model" in check["fix"]


def test_strict_fails_on_warnings_and_piped_output_is_plain(server, write_config, cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config('colour = "blue"\n' + local_config(exo=exo.url))
    result = cli("doctor", env=no_other_port())
    assert result.exit_code == 0, result.stdout
    assert not ANSI.search(result.stdout + result.stderr)
    assert "\n  warn  unknown keys are ignored: colour" in result.stdout
    assert "        fix: remove or rename colour in" in result.stdout
    assert "✓" not in result.stdout and "\n  ok    Python" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("ok, 1 warning, 0 failures")
    strict = cli("doctor", "--strict", env=no_other_port())
    assert strict.exit_code == 1
    assert strict.stdout.splitlines()[-1].endswith("(--strict: warnings fail)")


def test_on_a_terminal_marks_and_provider_text_is_never_markup_or_escapes(server, write_config):
    from exobridge.cli.runner import invoke
    from exobridge.render.io import IOStreams

    exo = server()
    exo_v1(exo, ["evil\x1b]0;owned\x07[bold red]model[/]"])
    write_config(local_config(exo=exo.url))
    io = IOStreams.test(stdout_tty=True)
    result = invoke(["doctor"], io=io, env=no_other_port())
    out = io.stdout_text() or result.stdout
    assert ("✓" in out and "✗" in out) or "!" in out
    assert "\x1b]0;owned" not in out and "\\x1b]0;owned" in out
    assert "[bold red]model[/]" in out


def test_config_that_does_not_parse_is_exit_4_with_a_failed_check(write_config, cli):
    write_config("default_model = [\n")
    result, checks, data = doctor_json(cli)
    assert result.exit_code == 4 and data["exit_code"] == 4 and data["error"]
    assert checks["config.parse"]["status"] == FAIL and checks["config.parse"]["fix"]
    assert "Traceback" not in result.stderr


# --- the runner and the deadline --------------------------------------------------------------------------------


def test_a_crashing_check_is_reported_failed():
    def broken() -> list[CheckResult]:
        raise RuntimeError("boom")

    report = diagnose(extra_checks=[Check("env.broken", "Environment", broken)], env={})
    check = next(c for c in report.checks if c.id == "env.broken")
    assert check.status == FAIL and "RuntimeError: boom" in check.detail
    assert check.fix  # every failure carries a fix
    assert report.exit_code == 1


def test_a_stuck_check_is_cut_off_at_the_deadline():
    release = threading.Event()
    try:

        def stuck() -> list[CheckResult]:
            release.wait(30)
            return []

        results = run_checks([Check("slow", "Network", stuck)], parallel.Deadline(0.2))
    finally:
        release.set()
    assert results[0].status == FAIL and "did not finish within 0.2 s" in results[0].detail and results[0].fix


def test_checks_run_at_once_so_dead_providers_cost_one_timeout_not_the_sum():
    """Three checks that each wait for the other two to start: only concurrent runs can pass."""
    barrier = threading.Barrier(3, timeout=20)

    def meet(name: str):
        def run() -> list[CheckResult]:
            barrier.wait()
            return [CheckResult(name, "Network", OK, "met")]

        return run

    results = run_checks([Check(n, "Network", meet(n)) for n in ("a", "b", "c")], parallel.Deadline(30))
    assert [(r.id, r.status) for r in results] == [("a", OK), ("b", OK), ("c", OK)]


def test_blackholed_providers_are_all_reported(write_config):
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
        report = diagnose(env=no_other_port(), read_timeout=0.4, deadline=10)
    finally:
        for hole in holes:
            hole.close()
    by_id = {c.id: c for c in report.checks}
    for name in ("exo", "second", "third"):
        assert by_id[f"provider.{name}.reach"].status == FAIL


def dripping(srv) -> None:
    """Every route answers 200 and then one byte a second, forever: no read timeout ever fires."""

    def drip(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        ex.drip(b"[" + b" " * 1000, every=0.5, forever=True)

    for path in ("/node_id", "/healthcheck", "/state", "/v1/models", "/models", "/key"):
        srv.route("GET", path)(drip)


def test_a_dripping_provider_fails_at_the_deadline(server, write_config):
    srv = server()
    dripping(srv)
    write_config(local_config(exo=srv.url, openrouter=srv.url))
    report = diagnose(env={**no_other_port(), "OPENROUTER_API_KEY": "sk-or-v1-drip0000abcd"}, deadline=1.5)
    by_id = {c.id: c for c in report.checks}
    assert by_id["provider.exo.reach"].status == FAIL
    assert by_id["provider.openrouter.reach"].status == FAIL or by_id["provider.openrouter.key"].status == FAIL
    assert by_id["config.default_model"].status == FAIL
    assert report.exit_code == 1


@pytest.mark.process  # only a process shows that exit does not join the stuck threads
@pytest.mark.timeout(30)
def test_doctor_exits_although_a_provider_drips_forever(server, write_config, run_cli):
    """Only a process shows it: after "did not finish", nothing joins the stuck threads at exit."""
    srv = server()
    dripping(srv)
    write_config(local_config(exo=srv.url))
    proc = run_cli("doctor", "--json", env={**no_other_port(), doctor_mod.DEADLINE_ENV: "1"})
    assert proc.returncode == 1, proc.stderr
    assert '"provider.exo.reach"' in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_deadline_knob_and_the_computed_bound(write_config):
    from exobridge.core.config import load

    write_config(local_config(exo="http://127.0.0.1:9"))
    config = load()
    assert doctor_mod.doctor_deadline(config, 3.0, {}) == 2 + 9 + 2  # exo's connect_timeout 2 is the largest
    assert doctor_mod.doctor_deadline(config, 3.0, {doctor_mod.DEADLINE_ENV: "4.5"}) == 4.5
    assert doctor_mod.doctor_deadline(config, 3.0, {doctor_mod.DEADLINE_ENV: "nan"}) == 13
    assert doctor_mod.doctor_deadline(None, 1.0, {doctor_mod.DEADLINE_ENV: "-1"}) == 5 + 3 + 2


def test_the_doctor_core_imports_no_cli_library():
    source = "\n".join(p.read_text() for p in Path(doctor_mod.__file__).parent.glob("*.py"))
    assert "typer" not in source and "click" not in source


def test_a_provider_kind_defined_here_is_checked_by_its_strategy(server, write_config, cli):
    """A new kind (a class and one registration) needs nothing in doctor: its model-list strategy is used."""
    from exobridge.core import providers
    from exobridge.core.providers.base import ProviderKind

    @providers.register
    class Lamp(ProviderKind):
        name = "lamp-test"
        label = "Lamp"
        models_path = "/api/tags"

    srv = server()
    srv.route("GET", "/api/tags")(lambda ex: ex.reply(200, {"data": [{"id": "lamp/one"}]}))
    try:
        write_config(local_config(extra=f'[providers.desk]\nkind = "lamp-test"\nurl = "{srv.url}"\n'))
        _, checks, data = doctor_json(cli)
    finally:
        providers.unregister("lamp-test")
    assert checks["provider.desk.reach"]["status"] == OK, checks["provider.desk.reach"]
    assert "Provider desk" in {c["section"] for c in data["checks"]}
    assert [r.path for r in srv.requests] == ["/api/tags"]


# --- chaos: hostile providers on every route doctor reads ---------------------------------------------------

DOCTOR_ROUTES = ("/node_id", "/healthcheck", "/state", "/topology", "/v1/models", "/models", "/key")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(3))
def test_doctor_survives_chaos(seed: int, server, write_config, cli, isolated: Path) -> None:
    """Whatever the servers send (tests/chaos.py): a report, exit 0 or 1, no crash, no secret, no raw escape on
    a terminal, and the run ends at its deadline (pytest-timeout bounds it)."""
    from exobridge.render.io import IOStreams
    from tests.chaos import CANARY_HEADER, CANARY_KEY, chaos, leaked

    servers = []
    for index in range(2):
        srv = server()
        handler, _ = chaos(seed * 2 + index)
        for path in DOCTOR_ROUTES:
            srv.route("GET", path)(handler)
        servers.append(srv)
    write_config(
        local_config(exo=servers[0].url)
        + f'[providers.lab]\nkind = "openai"\nurl = "{servers[1].url}"\nkey_env = "CHAOS_KEY"\n'
        f'headers = {{ "X-Api-Key" = "{CANARY_HEADER}" }}\n'
    )
    Path(os.environ["EXOBRIDGE_CONFIG"]).chmod(0o600)
    env = {"CHAOS_KEY": CANARY_KEY, doctor_mod.DEADLINE_ENV: "2", **no_other_port()}
    result, _, data = doctor_json(cli, env=env)
    assert result.exit_code in (0, 1), (result.stderr, data)
    assert not [c for c in data["checks"] if "crashed" in c["detail"]], data
    assert not leaked(result.stdout + result.stderr)
    from exobridge.cli.runner import invoke

    io = IOStreams.test(stdout_tty=True, env={"NO_COLOR": "1"})  # a terminal without colour: any ESC is theirs
    invoke(["doctor"], io=io, env=env)
    shown = io.stdout_text() + io.stderr_text()
    assert "✓" in shown  # the terminal rendering, not the piped one
    assert not set(shown) & {"\x1b", "\x9b", "\x07"}, shown
    assert not leaked(shown)


# --- a doctor that reads cleanly: one line per fact, groups in order, the one next command -----------------------


def test_a_fresh_machine_says_the_config_fact_once_groups_in_order_and_next_is_setup(isolated: Path, cli):
    env = {"EXOBRIDGE_EXO_URL": f"http://127.0.0.1:{closed_port()}", **no_other_port()}
    result = cli("doctor", env=env)
    assert result.exit_code == 1
    config_path = os.environ["EXOBRIDGE_CONFIG"]
    assert result.stdout.count(config_path) == 1, result.stdout
    assert result.stdout.count(os.environ["EXOBRIDGE_KEYS_FILE"]) == 1, result.stdout
    assert "no file" not in result.stdout and "no config file" not in result.stdout
    assert f"config {config_path} (not created yet: built-in defaults apply)" in result.stdout
    headings = [line for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    sections = headings[: headings.index(next(h for h in headings if h.endswith("failures")))]
    assert sections == [
        "Environment",
        "Config",
        "Provider exo",
        "Provider openrouter",
        "Provider huggingface",
        "Network",
    ]
    assert result.stdout.rstrip().splitlines()[-1] == "next: exobridge setup"
    _, checks, data = doctor_json(cli, env=env)
    assert data["summary"]["next_command"] == "exobridge setup"
    assert "config.parse" not in checks and "env.config_mode" not in checks and "env.keys_mode" not in checks


def test_next_command_is_the_key_when_a_missing_key_is_the_one_fix(write_config, cli):
    write_config(local_config(openrouter="http://127.0.0.1:9"))
    result, checks, data = doctor_json(cli)
    assert result.exit_code == 1 and checks["config.parse"]["status"] == OK  # a config file: not a fresh machine
    assert data["summary"]["next_command"] == "exobridge keys set openrouter"
    plain = cli("doctor")
    assert plain.stdout.rstrip().splitlines()[-1] == "next: exobridge keys set openrouter"


def test_next_command_loads_the_default_model_when_exo_has_not_placed_it(server, write_config, cli):
    exo = server()
    exo_v1(exo, ["mlx-community/Qwen3-0.6B-4bit"])
    write_config(local_config(exo=exo.url))
    result, checks, data = doctor_json(cli, env=no_other_port())
    assert result.exit_code == 1
    assert checks["provider.exo.model"]["fix"].startswith("exobridge models load llama-3.2-3b")
    assert data["summary"]["next_command"] == "exobridge models load llama-3.2-3b"


def test_nothing_failed_means_no_next_command(server, write_config, cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=exo.url))
    result, _, data = doctor_json(cli, env=no_other_port())
    assert result.exit_code == 0 and data["summary"]["next_command"] is None
    assert "next:" not in cli("doctor", env=no_other_port()).stdout


# --- budgets: each limit with what is spent and left (a real history file) -----------------------------------


def spend(amount: float, provider: str = "openrouter") -> None:
    from exobridge.core import history

    with history.Store() as store:
        store.add(
            history.Entry(
                conversation="c",
                prompt="p",
                reply="r",
                outcome="complete",
                provider=provider,
                cost=amount,
                cost_source="reported",
            )
        )


BUDGETS = "[budget]\ndaily_usd = 2.0\nmonthly_usd = 20.0\n[budget.openrouter]\ndaily_usd = 1.0\n"


def test_doctor_shows_each_budget_with_what_is_spent_and_left(write_config, cli):
    write_config(local_config() + BUDGETS)
    spend(1.2)
    spend(0.5, "huggingface")
    _, checks, data = doctor_json(cli)
    daily, monthly, mine = (
        checks["budget.overall.daily"],
        checks["budget.overall.monthly"],
        checks["budget.openrouter.daily"],
    )
    assert daily["status"] == WARN and daily["section"] == "Budget"
    assert daily["detail"] == "daily budget: $1.70 of $2.00 spent today (85%), $0.30 left"
    assert "budget.daily_usd" in daily["fix"]
    assert (
        monthly["status"] == OK
        and monthly["detail"] == "monthly budget: $1.70 of $20.00 spent this month (8%), $18.30 left"
    )
    assert (
        mine["status"] == WARN
        and mine["detail"] == "over daily budget for openrouter: $1.20 of $1.00 spent today, nothing left"
    )
    assert "openrouter is skipped until tomorrow" in mine["fix"] and "budget.openrouter.daily_usd" in mine["fix"]
    assert list(dict.fromkeys(c["section"] for c in data["checks"]))[-1] == "Budget"
    assert "budget.history" not in checks and "budget.free_only" not in checks
    plain = cli("doctor").stdout
    assert "\nBudget\n  warn  daily budget: $1.70 of $2.00 spent today (85%), $0.30 left\n" in plain
    assert "  ok    monthly budget: $1.70 of $20.00 spent this month (8%), $18.30 left\n" in plain


def test_doctor_budget_at_exactly_the_limit_is_over(write_config, cli):
    write_config(local_config() + "[budget]\nmonthly_usd = 1.0\n")
    spend(1.0)
    _, checks, _ = doctor_json(cli)
    assert checks["budget.overall.monthly"]["status"] == WARN
    assert checks["budget.overall.monthly"]["detail"].startswith("over monthly budget: $1.00 of $1.00")
    assert "every priced provider is skipped until next month" in checks["budget.overall.monthly"]["fix"]


def test_doctor_budget_without_history_and_with_free_only(write_config, cli, isolated: Path):
    write_config("log = false\n" + local_config() + BUDGETS.replace("[budget]\n", "[budget]\nfree_only = true\n"))
    _, checks, _ = doctor_json(cli)
    assert (
        checks["budget.history"]["status"] == WARN and "nothing spent is counted" in checks["budget.history"]["detail"]
    )
    assert checks["budget.free_only"]["status"] == OK
    assert checks["budget.overall.daily"]["detail"] == "daily budget: $0.00 of $2.00 spent today (0%), $2.00 left"
    assert not (isolated / "data" / "history.db").exists()  # doctor never creates the database


def test_doctor_has_no_budget_section_without_a_budget(write_config, cli):
    write_config(local_config())
    spend(5.0)
    _, _, data = doctor_json(cli)
    assert not [c for c in data["checks"] if c["section"] == "Budget"]


def test_doctor_budget_with_a_history_it_cannot_read_never_says_nothing_was_spent(write_config, cli, isolated: Path):
    import sqlite3

    write_config(local_config() + "[budget]\ndaily_usd = 2.0\n")
    spend(1.0)
    path = isolated / "data" / "history.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")  # from a newer exobridge: not touched
    _, checks, _ = doctor_json(cli)
    assert "budget.overall.daily" not in checks
    spent = checks["budget.spent"]
    assert spent["status"] == WARN and spent["detail"].startswith("spending unknown: ") and "newer" in spent["detail"]
    path.unlink()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # damaged: moved aside, as every command does
    _, checks, _ = doctor_json(cli)
    assert checks["budget.spent"]["status"] == WARN
    assert "history.db.corrupt-" in checks["budget.spent"]["detail"]
    assert checks["budget.overall.daily"]["detail"].startswith("daily budget: $0.00 of $2.00")
