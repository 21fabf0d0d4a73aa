"""Issue 9, the config helper's defects: folders, caches, symlinks, numbers, cooldowns, BOM, HOME, keys file.

Each test names the defect it holds; each failed before its fix.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import math
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exobridge.core import config as config_mod
from exobridge.core import cooldown, files, keys_file, paths
from exobridge.core.config_schema import MAX_COOLDOWN, PROVIDER_KEYS
from exobridge.core.errors import ConfigError, Failure, FailureKind, KeysFileError

CANARY = "sk-or-v1-CANARYcanary0123456789abcdefWXYZ"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_000():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --- defect 4: folders 0700, and no trusted cache -----------------------------------------------------------


def test_defect_4_every_folder_exobridge_creates_is_0700_under_umask_000(umask_000, tmp_path, monkeypatch) -> None:
    home = tmp_path / "fresh-home"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("EXOBRIDGE_CONFIG")
    monkeypatch.delenv("EXOBRIDGE_KEYS_FILE")
    monkeypatch.setenv("EXOBRIDGE_CACHE_DIR", str(home / ".cache" / "exobridge"))
    from exobridge.core import config_file

    config_file.write_starter()  # config folder
    keys_file.set_key("openrouter", CANARY)  # keys file beside it
    store = cooldown.CooldownStore()  # state in the cache folder
    provider = config_mod.build(None, paths.config_path(), env={}).providers["exo"]
    store.record_failure(provider, provider.url, Failure(FailureKind.CONNECT, "refused"))
    files.write_atomic(tmp_path / "data" / "deeper" / "x.json", "{}")  # any data folder, parents included
    for folder in (
        home / ".config",
        home / ".config" / "exobridge",
        home / ".cache",
        home / ".cache" / "exobridge",
        tmp_path / "data",
        tmp_path / "data" / "deeper",
    ):
        assert mode_of(folder) == 0o700, folder
    assert mode_of(paths.keys_path()) == 0o600
    assert mode_of(paths.config_path()) == 0o600


def _plant_parse_cache(config_path: Path, raw: bytes, data: dict) -> Path:
    cache = config_mod._parsed_cache()
    cache.write_bytes(marshal.dumps((config_mod.PARSED_CACHE_VERSION, str(config_path), raw, data)))
    return cache


@pytest.mark.parametrize("loosen", ["folder", "file"])
def test_defect_4_a_parse_cache_others_could_write_never_decides_where_a_key_goes(write_config, loosen) -> None:
    path = write_config('[providers.openrouter]\nurl = "https://openrouter.ai/api/v1"\n')
    assert config_mod.load().providers["openrouter"].url == "https://openrouter.ai/api/v1"  # stores the cache
    raw = path.read_bytes()
    evil = {"providers": {"openrouter": {"url": "http://attacker.example.test/v1"}}}
    cache = _plant_parse_cache(path, raw, evil)
    os.chmod(cache, 0o600)
    os.chmod(cache.parent, 0o700)
    # A private cache of exactly these bytes is used (the speed-up stays) …
    assert config_mod.load().providers["openrouter"].url == "http://attacker.example.test/v1"
    # … but one another local user could have written is not.
    if loosen == "folder":
        os.chmod(cache.parent, 0o777)
    else:
        os.chmod(cache, 0o666)
    assert config_mod.load().providers["openrouter"].url == "https://openrouter.ai/api/v1"


def test_defect_4_a_cache_for_other_bytes_is_ignored(write_config) -> None:
    path = write_config('[providers.openrouter]\nurl = "https://openrouter.ai/api/v1"\n')
    config_mod.load()
    _plant_parse_cache(path, b"other bytes", {"providers": {"openrouter": {"url": "http://elsewhere.test/v1"}}})
    assert config_mod.load().providers["openrouter"].url == "https://openrouter.ai/api/v1"


# --- defect 6: writes refuse a target that is not a regular file ---------------------------------------------


@pytest.mark.parametrize("target", ["fifo", "directory"])
def test_defect_6_keys_set_refuses_a_keys_file_symlinked_to_a_fifo_or_folder(cli, isolated, target) -> None:
    special = isolated / f"special-{target}"
    if target == "fifo":
        os.mkfifo(special)
    else:
        special.mkdir()
    keys_path = Path(os.environ["EXOBRIDGE_KEYS_FILE"])
    keys_path.symlink_to(special)
    result = cli("keys", "set", "openrouter", stdin=CANARY)
    assert result.exit_code == 4, result.stderr
    assert "not a regular file" in result.stderr and CANARY not in result.stderr + result.stdout
    assert keys_path.is_symlink()
    assert stat.S_ISFIFO(os.stat(special).st_mode) if target == "fifo" else special.is_dir()


def test_defect_6_config_writes_refuse_a_fifo_without_hanging(cli, isolated) -> None:
    config_path = Path(os.environ["EXOBRIDGE_CONFIG"])
    os.mkfifo(config_path)
    result = cli("config", "set", "default_model", "x")
    assert result.exit_code == 4, result.stderr
    assert "FIFO" in result.stderr
    assert stat.S_ISFIFO(os.stat(config_path).st_mode)
    with pytest.raises(files.NotRegularFile):
        files.write_atomic(config_path, "x")


def test_a_symlink_to_a_regular_file_is_still_written_through(tmp_path) -> None:
    real = tmp_path / "dotfiles" / "config.toml"
    real.parent.mkdir()
    real.write_text("a = 1\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    files.write_atomic(link, "a = 2\n")
    assert link.is_symlink() and real.read_text() == "a = 2\n"


# --- defect 9: cooldowns capped ------------------------------------------------------------------------------


def test_defect_9_retry_after_and_cooldowns_are_capped_at_one_hour(tmp_path) -> None:
    from exobridge.core.failover import RETRY_AFTER_CAP

    assert MAX_COOLDOWN == cooldown.MAX_COOLDOWN == RETRY_AFTER_CAP == 3600
    provider = config_mod.build(None, tmp_path / "c.toml", env={}).providers["openrouter"]
    huge = Failure(FailureKind.RATE_LIMITED, "slow down", 429, retry_after=99999999999999.0)
    assert cooldown.cooldown_for(provider, huge) == 3600
    nan = Failure(FailureKind.RATE_LIMITED, "slow down", 429, retry_after=math.nan)
    assert cooldown.cooldown_for(provider, nan) == cooldown.RATE_LIMIT_COOLDOWN
    store = cooldown.CooldownStore(tmp_path / "cache", clock=lambda: 1000.0)
    entry = store.record_failure(provider, provider.url, huge)
    assert entry is not None and entry.until == 1000.0 + 3600


def test_defect_9_a_state_file_asking_for_years_keeps_a_node_away_an_hour_at_most(tmp_path) -> None:
    state = tmp_path / "cache" / "state.json"
    state.parent.mkdir()
    entry = {"provider": "exo", "url": "http://x", "kind": "rate_limited", "reason": "", "status": 429}
    nodes = {
        "exo http://x": {**entry, "at": 1000.0, "until": 1e17},
        "exo http://y": {**entry, "url": "http://y", "at": 1000.0, "until": float("nan")},
    }
    state.write_text(json.dumps({"format": 1, "nodes": nodes}).replace("NaN", "NaN"))
    store = cooldown.CooldownStore(tmp_path / "cache", clock=lambda: 1000.0)
    assert store.get("exo", "http://x").left(1000.0) == 3600
    assert store.get("exo", "http://y") is None


# --- defect 7 (state), defect 5 (state): stored reasons are redacted and terminal-safe ------------------------


def test_defects_5_and_7_the_state_file_keeps_no_key_piece_and_no_escape(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", CANARY)
    cfg = config_mod.build(
        {"providers": {"openrouter": {"headers": {"X-Api-Key": "hdr-secret-0123456789"}}}}, tmp_path / "c", env={}
    )
    provider = cfg.providers["openrouter"]
    reason = "x" * 250 + f" Bearer {CANARY[:30]} \x1b]0;pwned\x07\x1b[2J [/oops] hdr-secret-0123456789"
    store = cooldown.CooldownStore(tmp_path / "cache")
    store.record_failure(provider, provider.url, Failure(FailureKind.AUTH, reason, 401))
    text = (tmp_path / "cache" / "state.json").read_text()
    for start in range(len(CANARY) - 8 + 1):
        piece = CANARY[start : start + 8]
        assert piece not in text or (CANARY.startswith(piece) and start < 2), piece
    assert "secret-0" not in text
    assert "\x1b" not in json.loads(text)["nodes"]["openrouter https://openrouter.ai/api/v1"]["reason"]


def test_defect_7_an_escape_planted_in_the_state_file_is_shown_escaped(tmp_path) -> None:
    state = tmp_path / "cache" / "state.json"
    state.parent.mkdir()
    node = {"provider": "exo", "url": "http://x", "kind": "connect", "reason": "\x1b[2Jgone", "status": None}
    state.write_text(json.dumps({"format": 1, "nodes": {"exo http://x": {**node, "at": 1.0, "until": 2.0}}}))
    entry = cooldown.CooldownStore(tmp_path / "cache").get("exo", "http://x")
    assert entry is not None and "\x1b" not in entry.reason and "\\x1b" in entry.reason


# --- defect 10: numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "connect_timeout = nan",
        "connect_timeout = inf",
        "first_token_timeout = 1e10",
        "idle_timeout = -inf",
        "cooldown = nan",
        "cooldown = 1e308",
        "priority = 9223372036854775807",
    ],
)
def test_defect_10_non_finite_or_huge_numbers_in_the_file_are_config_errors(write_config, cli, line) -> None:
    write_config(f"[providers.exo]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        config_mod.load()
    assert f"providers.exo.{line.split()[0]}" in str(info.value)
    result = cli("config", "show")
    assert result.exit_code == 4 and "internal error" not in result.stderr


@pytest.mark.parametrize(
    "key,value",
    [
        ("providers.exo.first_token_timeout", "1e10"),
        ("providers.exo.connect_timeout", "1e308"),
        ("providers.exo.connect_timeout", "nan"),
        ("providers.exo.idle_timeout", "inf"),
        ("providers.exo.cooldown", "nan"),
        ("providers.exo.cooldown", "86400"),
        ("providers.exo.priority", "99999999999999999999"),
    ],
)
def test_defect_10_config_set_refuses_what_the_file_reader_refuses(cli, isolated, key, value) -> None:
    result = cli("config", "set", key, value)
    assert result.exit_code == 2, result.stderr
    assert not Path(os.environ["EXOBRIDGE_CONFIG"]).exists()


def test_defect_10_a_nan_cooldown_in_the_file_no_longer_breaks_every_config_set(write_config, cli) -> None:
    write_config("[providers.exo]\ncooldown = nan\n")
    result = cli("config", "set", "providers.exo.cooldown", "30")
    assert result.exit_code == 0, result.stderr
    assert config_mod.load().providers["exo"].cooldown == 30


# --- defect 15: BOM, one key_env grammar, HOME="" ---------------------------------------------------------------


def test_defect_15_a_config_with_a_utf8_bom_is_read_and_edited(write_config, cli) -> None:
    path = write_config('default_model = "phi-4"\n')
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert config_mod.load().default_model == "phi-4"
    assert cli("config", "set", "default_model", "qwen").exit_code == 0
    assert config_mod.load().default_model == "qwen"


def test_defect_15_the_file_refuses_a_key_env_config_set_refuses(write_config, cli) -> None:
    write_config('[providers.openrouter]\nkey_env = "A=B"\n')
    with pytest.raises(ConfigError, match=r"providers\.openrouter\.key_env"):
        config_mod.load()
    assert cli("config", "set", "providers.huggingface.key_env", "A=B").exit_code == 2


def test_defect_15_an_empty_home_never_puts_files_under_root(monkeypatch) -> None:
    import pwd

    for name in ("EXOBRIDGE_CONFIG", "EXOBRIDGE_KEYS_FILE", "EXOBRIDGE_CACHE_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # relative XDG values are ignored
    expected = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert paths.config_path() == expected / ".config" / "exobridge" / "config.toml"
    assert paths.keys_path().parent == expected / ".config" / "exobridge"
    assert paths.cache_dir() == expected / ".cache" / "exobridge"
    assert not str(paths.config_path()).startswith("/.config")


# --- a malformed keys file is never "no key" -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,where",
    [
        ('openrouter = "sk-or-v1-abc\nbroken = = =\n', "line 1"),
        ("openrouter = 5\n", "openrouter"),
        ("\xff\xfe", "UTF-8"),
    ],
)
def test_a_malformed_keys_file_is_a_keys_file_error_naming_file_and_line(isolated, content, where) -> None:
    path = Path(os.environ["EXOBRIDGE_KEYS_FILE"])
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    with pytest.raises(KeysFileError) as info:
        keys_file.read_keys_file()
    assert str(path) in str(info.value) and where in str(info.value)
    assert info.value.exit_code == 4
    assert "sk-or-v1-abc" not in str(info.value)


def test_a_malformed_keys_file_makes_keys_list_exit_4_not_report_missing_keys(isolated, cli) -> None:
    Path(os.environ["EXOBRIDGE_KEYS_FILE"]).write_text('openrouter = "sk-or-v1-abcdefgh0123456789\n')
    result = cli("keys", "list", "--json")
    assert result.exit_code == 4, result.stderr
    assert "keys.toml" in result.stderr and "line 1" in result.stderr
    assert result.json()["exit_code"] == 4
    assert "abcdefgh0123" not in result.stdout + result.stderr


# --- guard: the config reader never raises anything but ConfigError -----------------------------------------

toml_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
provider_tables = st.dictionaries(
    st.sampled_from(sorted([*PROVIDER_KEYS, "other"])),
    toml_values | st.sampled_from(["exo", "openai", "http://127.0.0.1:1/v1", "https://a.test", "HF_TOKEN", "A=B"]),
    max_size=6,
)
config_dicts = st.fixed_dictionaries(
    {},
    optional={
        "default_model": toml_values,
        "providers": st.dictionaries(
            st.sampled_from(["exo", "openrouter", "mine", "x y"]), provider_tables | toml_values
        )
        | toml_values,
        "models": st.dictionaries(st.text(max_size=8), toml_values, max_size=2) | toml_values,
        "extra": toml_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_dicts)
def test_guard_the_config_reader_gives_a_config_or_a_config_error(raw) -> None:
    try:
        cfg = config_mod.build(raw, Path("/tmp/fuzz.toml"), env={})
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    for provider in cfg.providers.values():
        for seconds in (provider.connect_timeout, provider.first_token_timeout, provider.idle_timeout):
            assert math.isfinite(seconds) and 0 < seconds <= 3600
        assert provider.cooldown is None or 0 <= provider.cooldown <= MAX_COOLDOWN


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_guard_any_bytes_in_the_config_file_give_a_config_or_a_config_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "config.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        config_mod.build(config_mod.read_file(path), path, env={})


# --- defect 5 end to end: a key cut by a 300-character body limit, and header secrets echoed ---------------


def test_defect_5_no_piece_of_a_cut_key_or_a_header_secret_in_any_output(cli, write_config, server, isolated) -> None:
    from tests.conftest import local_config
    from tests.loopback import Exchange

    header_secret = "hdr-CANARY-0123456789abcdef"
    echoing = server()

    def echo(ex: Exchange) -> None:
        said = ex.request.headers.get("authorization", "")
        echoed = ex.request.headers.get("x-api-key", "")
        ex.reply(401, {"error": {"message": "x" * 250 + f" {said} {echoed}", "code": 401}})

    for method, path in (("POST", "/api/v1/chat/completions"), ("GET", "/api/v1/models"), ("GET", "/api/v1/key")):
        echoing.route(method, path)(echo)
    write_config(
        local_config(openrouter=f"{echoing.url}/api/v1")
        + f'\n[providers.openrouter.headers]\nX-Api-Key = "{header_secret}"\n'
    )
    env = {"OPENROUTER_API_KEY": CANARY}
    outputs = []
    for args in (["chat", "--json", "Hi"], ["chat", "-v", "Hi"], ["providers", "status", "--json"]):
        result = cli(*args, env=env)
        assert "Traceback" not in result.stderr, args
        outputs.append(result.stdout + result.stderr)
    state = Path(os.environ["EXOBRIDGE_CACHE_DIR"]) / "state.json"
    if state.exists():
        outputs.append(state.read_text())
    assert any(request.headers.get("x-api-key") == header_secret for request in echoing.requests)
    shown = "\n".join(outputs)
    assert "x" * 100 in shown  # the echoed bodies were shown (so the check below means something)
    for secret in (CANARY, header_secret):
        for start in range(2, len(secret) - 8 + 1):  # the vendor prefix `sk-or-v1` alone is public
            assert secret[start : start + 8] not in shown, (secret[start : start + 8], shown[-400:])


# --- providers add --check goes through core/http: the same proxies as chat, a deadline, a byte cap ----------


def test_add_check_uses_the_proxy_settings_chat_uses(cli, isolated) -> None:
    """It used `trust_env=False`: a proxy variable chat would fail on was silently ignored."""
    result = cli(
        "providers", "add", "mine", "--url", "http://127.0.0.1:9/v1", "--check", env={"HTTP_PROXY": "::garbage::"}
    )
    assert result.exit_code == 4, result.stderr
    assert "invalid proxy setting in the environment" in result.stderr
    assert "mine" not in config_mod.load().providers


def test_add_check_ends_at_its_deadline_however_slowly_a_server_drips(server) -> None:
    from exobridge.core.provider_check import probe_models
    from tests.loopback import Exchange

    dripping = server()

    @dripping.route("GET", "/v1/models")
    def drip(ex: Exchange) -> None:
        ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
        ex.drip(b'{"data": [' + b" " * 1000, every=0.05, forever=True)

    provider = config_mod.build(
        {"providers": {"mine": {"kind": "openai", "url": f"{dripping.url}/v1"}}}, Path("c.toml"), env={}
    ).providers["mine"]
    probe = probe_models(provider, None, deadline_s=0.2)
    assert not probe.ok and "no reply within" in probe.detail, probe.detail


def test_add_check_stops_reading_an_endless_model_list(server) -> None:
    from exobridge.core.provider_check import probe_models
    from tests.loopback import Exchange

    flooding = server()

    @flooding.route("GET", "/v1/models")
    def flood(ex: Exchange) -> None:
        ex.start_stream(200, content_type="application/json")
        ex.chunk(b'{"data": [')
        ex.flood(b"10000\r\n" + b" " * 0x10000 + b"\r\n")  # 64 KiB chunks of spaces forever: an endless body

    provider = config_mod.build(
        {"providers": {"mine": {"kind": "openai", "url": f"{flooding.url}/v1"}}}, Path("c.toml"), env={}
    ).providers["mine"]
    probe = probe_models(provider, None, deadline_s=30)
    assert not probe.ok and "MiB" in probe.detail, probe.detail


# --- issue 8: a kind defined in a test is a kind everywhere in config and keys -------------------------------


def test_a_plugin_kind_is_accepted_by_the_file_providers_add_config_set_and_keys(cli, isolated) -> None:
    from exobridge.core import keys, providers
    from exobridge.core.providers import ProviderKind, Timeouts

    class Mistralish(ProviderKind):
        name = "mistralish"
        default_url = "https://api.mistral.example.test/v1"
        default_timeouts = Timeouts(2.0, 30.0, 20.0)
        default_key_env = "MISTRALISH_API_KEY"
        needs_key = True

    providers.register(Mistralish)
    try:
        added = cli("providers", "add", "mist", "--kind", "mistralish", "--url", "http://127.0.0.1:9/v1")
        assert added.exit_code == 0, added.stderr
        assert "no --key-env" in added.stderr  # needs_key comes from the class
        provider = config_mod.load().providers["mist"]
        assert (provider.connect_timeout, provider.first_token_timeout, provider.idle_timeout) == (2.0, 30.0, 20.0)
        assert keys.resolve(provider, env={}, stored={}).missing
        assert cli("config", "set", "providers.mist.key_env", "MISTRALISH_API_KEY").exit_code == 0
        assert cli("config", "set", "providers.mist.kind", "openai").exit_code == 0
        assert cli("config", "set", "providers.mist.kind", "mistralish").exit_code == 0
    finally:
        providers.unregister("mistralish")
    assert cli("config", "set", "providers.exo.kind", "mistralish").exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "Hi"],
        ["chat", "--json", "Hi"],
        ["keys", "list"],
        ["config", "show"],
        ["providers", "list"],
        ["providers", "status"],
        ["models", "--refresh"],
    ],
)
def test_a_malformed_keys_file_is_reported_the_same_by_every_command(cli, write_config, args) -> None:
    """Issue 8: chat said "no API key (set OPENROUTER_API_KEY)" while doctor said "ok keys file"."""
    from tests.conftest import local_config

    write_config(local_config(openrouter="http://127.0.0.1:9/api/v1"))
    Path(os.environ["EXOBRIDGE_KEYS_FILE"]).write_text('openrouter = "sk-or-v1-abcdefgh0123456789\n')
    result = cli(*args)
    assert result.exit_code == 4, (args, result.stderr)
    assert "keys.toml: line 1" in result.stderr and "not a valid keys file" in result.stderr, result.stderr
    assert "no API key" not in result.stderr + result.stdout
    assert "abcdefgh0123" not in result.stdout + result.stderr


# --- guard: config set never writes what the file reader would refuse ----------------------------------------

cli_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["0", "-1", "1e10", "1e308", "nan", "inf", "30", "0.5", "true", "http://127.0.0.1:1/v1"]),
    st.sampled_from(['["http://a.test", "http://b.test"]', '{ "X-Title" = "me" }', "HF_TOKEN", "A=B", "exo"]),
    st.floats().map(str),
    st.integers().map(str),
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(PROVIDER_KEYS)), cli_values)
def test_guard_what_config_set_accepts_the_file_reader_accepts(field_name, raw) -> None:
    from exobridge.core.config_schema import PROVIDER_FIELDS, FieldProblem, parse_text

    try:
        value = parse_text(PROVIDER_FIELDS[field_name], raw, field_name)
    except FieldProblem as problem:
        assert "\n" not in str(problem)
        return
    table = {"kind": "openai", "url": "http://127.0.0.1:1/v1", field_name: value}
    if field_name == "urls":
        table.pop("url")
    config_mod.build({"providers": {"mine": table}}, Path("/tmp/c.toml"), env={})  # never raises


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["keys", "list", "--json"],
        ["providers", "list"],
        ["providers", "list", "--json"],
        ["config", "show"],
        ["config", "show", "--json"],
        ["providers", "status", "--json"],
        ["doctor", "--json"],
    ],
)
def test_defect_3_a_dashed_key_is_never_shown_by_any_command(cli, write_config, args) -> None:
    from exobridge.core.secrets import mask
    from tests.conftest import local_config

    write_config(local_config(openrouter="http://127.0.0.1:9/api/v1"))
    dashed = "ab-CANARY_whole_key_visible-1"
    result = cli(*args, env={"OPENROUTER_API_KEY": dashed})
    shown = result.stdout + result.stderr
    assert "CANARY" not in shown and "visible" not in shown, (args, shown[-300:])
    if args[0] in ("keys", "config") or args[:2] == ["providers", "list"]:
        assert mask(dashed) in shown  # the key is listed, masked


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120) | st.text(max_size=120).map(str.encode))
def test_guard_any_keys_file_gives_keys_or_a_keys_file_error_and_never_quotes_it(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("keys") / "keys.toml"
    path.write_bytes(data)
    try:
        found = keys_file.read_keys_file(path)
    except KeysFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert all(isinstance(value, str) and value for value in found.values())
    assert set(keys_file.secrets_in_keys_file(path).values()) >= set(found.values())


def test_providers_add_checks_its_priority_with_the_schema(cli, isolated) -> None:
    result = cli("providers", "add", "x", "--url", "http://127.0.0.1:9/v1", "--priority", "99999999999")
    assert result.exit_code == 2 and "--priority" in result.stderr, result.stderr
    assert not Path(os.environ["EXOBRIDGE_CONFIG"]).exists()
