"""`exobridge config …`: edits keep what the user wrote, are atomic, locked, validated and keep file modes."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from exobridge.core import config as config_mod
from exobridge.core import config_file as config_file_mod
from exobridge.core import config_keys
from exobridge.render.io import IOStreams
from tests.conftest import local_config

CANARY_OR = "sk-or-v1-CANARYc0ffee0123456789abcdefWXYZ"
CANARY_HF = "hf_CANARYtokenABCDEFGHIJKLMNOPQRSTUV1234"

USER_FILE = """\
# my exobridge config — hand written
default_model = "llama-3.2-3b"  # the usual

[providers.exo]
# my cluster
url = "http://127.0.0.1:52415"  # head node
connect_timeout = 2

[providers.openrouter]
enabled = false

[providers.huggingface]
enabled = false

[my_notes]  # not exobridge's: must survive
owner = "me"
list = [1, 2, 3]
"""


def config_file() -> Path:
    return Path(os.environ["EXOBRIDGE_CONFIG"])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- set / unset / get ------------------------------------------------------------------------------------------


def test_set_keeps_comments_order_and_unknown_tables(write_config, cli) -> None:
    path = write_config(USER_FILE)
    result = cli("config", "set", "providers.exo.url", "http://127.0.0.1:9999/")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    text = path.read_text()
    assert text == USER_FILE.replace("http://127.0.0.1:52415", "http://127.0.0.1:9999")

    result = cli("config", "set", "models.llama-3.1-8b.openrouter", "meta-llama/llama-3.1-8b-instruct")
    assert result.exit_code == 0, result.stderr
    data = tomllib.loads(path.read_text())
    assert data["models"]["llama-3.1-8b"] == {"openrouter": "meta-llama/llama-3.1-8b-instruct"}
    assert data["my_notes"] == {"owner": "me", "list": [1, 2, 3]}
    assert path.read_text().startswith(USER_FILE.replace("52415", "9999")[:200])
    assert "# my cluster" in path.read_text() and "# not exobridge's: must survive" in path.read_text()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "providers.exo.urls",
            '["http://127.0.0.1:1","http://127.0.0.1:2/"]',
            ["http://127.0.0.1:1", "http://127.0.0.1:2"],
        ),
        ("providers.exo.urls", "http://127.0.0.1:1, http://127.0.0.1:2", ["http://127.0.0.1:1", "http://127.0.0.1:2"]),
        ("providers.exo.enabled", "no", False),
        ("providers.exo.priority", "7", 7),
        ("providers.exo.connect_timeout", "0.5", 0.5),
        ("providers.exo.headers", '{ "X-Title" = "me" }', {"X-Title": "me"}),
        ('models."llama-3.2-3b".exo', "my-llama", "my-llama"),
    ],
)
def test_set_types_values(write_config, key: str, value: str, expected: object) -> None:
    from typer.testing import CliRunner

    from exobridge.cli.app import app

    path = write_config(USER_FILE)
    result = CliRunner().invoke(app, ["config", "set", key, value])
    assert result.exit_code == 0, result.output
    data = tomllib.loads(path.read_text())
    parts = config_keys.split_key(key)
    for part in parts:
        data = data[part]
    assert data == expected
    if key.endswith(".urls"):  # `urls` replaced `url` in place, with its comment
        assert 'url = "' not in path.read_text()
        assert "]  # head node" in path.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["providers.exo.priority", "high"], "expected an integer"),
        (["providers.exo.url", "localhost:52415"], "not an http(s) URL"),
        (["providers.exo.url", "http://[::1"], "not an http(s) URL"),
        (["providers.exo.urls", "http://a:52415,http://b:99999"], "not an http(s) URL"),
        (["providers.exo.urls", "[1, 2]"], "list of URL strings"),
        (["providers.exo.enabled", "maybe"], "expected true or false"),
        (["providers.exo.idle_timeout", "-1"], "positive number"),
        (["providers.exo.kind", "ollama"], "unknown kind"),
        (["providers.exo.ulr", "http://127.0.0.1:1"], "did you mean providers.exo.url"),
        (["providers.nope.url", "http://127.0.0.1:1"], "no provider 'nope'"),
        (["default_modle", "x"], "did you mean default_model"),
        (["colour", "x"], "keys are default_model, providers.NAME.FIELD"),
        (["providers.exo", "x"], "is a table"),
        (["providers.exo.headers.X-Ünï", "v"], "bad header name"),
        (["providers.exo.headers.X-Title", "café"], "ASCII text on one line"),
        (["providers.exo.headers", '{ "X-T" = "a\\nb" }'], "ASCII text on one line"),
    ],
)
def test_set_refuses_bad_keys_and_values_with_exit_2(write_config, cli, args: list[str], message: str) -> None:
    path = write_config(USER_FILE)
    result = cli("config", "set", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("exobridge: error: ") and result.stderr.count("\n") == 1
    assert path.read_text() == USER_FILE


def test_set_force_writes_unknown_key_and_invalid_result_exits_4(write_config, cli) -> None:
    path = write_config(USER_FILE)
    assert cli("config", "set", "--force", "my_notes.owner", "you").exit_code == 0
    assert tomllib.loads(path.read_text())["my_notes"]["owner"] == "you"

    assert cli("providers", "add", "local", "--kind", "openai", "--url", "http://127.0.0.1:8080/v1").exit_code == 0
    before = path.read_text()
    result = cli("config", "unset", "providers.local.kind")
    assert result.exit_code == 4
    assert "providers.local" in result.stderr and "missing 'kind'" in result.stderr
    assert path.read_text() == before


def test_unset_restores_default_and_prunes_empty_tables(write_config, cli) -> None:
    path = write_config(USER_FILE)
    assert cli("config", "unset", "providers.openrouter.enabled").exit_code == 0
    text = path.read_text()
    assert "[providers.openrouter]" not in text and "[providers.huggingface]" in text
    result = cli("config", "unset", "providers.openrouter.enabled")
    assert result.exit_code == 0 and "nothing to remove" in result.stderr
    assert cli("config", "unset", "providers.exo.url").exit_code == 0
    assert "# my cluster" in path.read_text()  # the table keeps its comment and other keys
    assert cli("config", "get", "providers.exo.url").stdout == "http://localhost:52415\n"


def test_get_prints_raw_values_and_suggests_on_unknown(write_config, cli) -> None:
    write_config(USER_FILE)
    assert cli("config", "get", "providers.exo.url").stdout == "http://127.0.0.1:52415\n"
    assert cli("config", "get", "providers.openrouter.enabled").stdout == "false\n"
    assert cli("config", "get", "providers.exo.connect_timeout").stdout == "2.0\n"
    assert cli("config", "get", "providers.exo.urls").stdout == '["http://127.0.0.1:52415"]\n'
    builtin = "meta-llama/llama-3.2-3b-instruct\n"
    assert cli("config", "get", 'models."llama-3.2-3b".openrouter').stdout == builtin
    assert cli("config", "get", "models.llama-3.2-3b.openrouter").stdout == builtin
    as_json = json.loads(cli("config", "get", "--json", "default_model").stdout)
    assert as_json == {"key": "default_model", "value": "llama-3.2-3b", "source": "file"}

    result = cli("config", "get", "providers.exo.ulr")
    assert result.exit_code == 2 and result.stdout == ""
    assert "did you mean providers.exo.url" in result.stderr
    assert cli("config", "get", "default_modl").exit_code == 2


def test_bad_existing_file_is_a_config_error(write_config, cli) -> None:
    write_config("[providers.exo\n")
    result = cli("config", "get", "default_model")
    assert result.exit_code == 4 and "line 1" in result.stderr
    result = cli("config", "set", "default_model", "x")
    assert result.exit_code == 4


# --- concurrency, atomicity, modes -----------------------------------------------------------------------------

WRITER = """
import sys
from exobridge.core.config_file import edit_config
worker = sys.argv[1]
sys.stdout.write("ready\\n")
sys.stdout.flush()
sys.stdin.read(1)  # the start line: both writers run their read-modify-write loops at the same moment
for i in range(10):
    def mutate(doc, i=i):
        models = doc.setdefault("models", {})
        models[f"m-{worker}-{i}"] = {"exo": f"id-{worker}-{i}"}
    edit_config(mutate)
"""


def test_concurrent_writers_lose_nothing(write_config) -> None:
    """Without the lock, two writers released together lose about half of each other's changes."""
    path = write_config(USER_FILE)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, worker],
            env=dict(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for worker in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"g")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    models = tomllib.loads(path.read_text())["models"]
    assert len(models) == 20
    assert all(models[f"m-{w}-{i}"] == {"exo": f"id-{w}-{i}"} for w in "ab" for i in range(10))
    assert "# my cluster" in path.read_text()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_cli_sets_lose_nothing(write_config) -> None:
    """Three `config set` runs at once (threads released together, each its own IO) each keep their change.

    The lock is an flock on its own open file, so threads take turns as processes do (separate processes:
    test_concurrent_writers_lose_nothing above).
    """
    import threading

    from exobridge.cli.config import SetOptions, set_run
    from exobridge.render.io import IOStreams

    path = write_config(USER_FILE)
    changes = (("priority", "4"), ("idle_timeout", "9"), ("first_token_timeout", "8"))
    start = threading.Barrier(len(changes))
    codes: list[int] = []

    def run(key: str, value: str) -> None:
        start.wait(timeout=30)
        codes.append(set_run(SetOptions(f"providers.exo.{key}", value), IOStreams.test()))

    threads = [threading.Thread(target=run, args=change) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert codes == [0, 0, 0]
    exo = tomllib.loads(path.read_text())["providers"]["exo"]
    assert (exo["priority"], exo["idle_timeout"], exo["first_token_timeout"]) == (4, 9, 8)


def test_modes_new_file_0600_existing_0640_kept(write_config, cli) -> None:
    path = config_file()
    assert cli("config", "set", "default_model", "qwen-2.5-7b").exit_code == 0
    assert mode(path) == 0o600
    assert path.read_text() == 'default_model = "qwen-2.5-7b"\n'  # a new file ends with a newline
    path.write_text("# top\n[my_notes]\nx = 1\n")
    assert cli("config", "unset", "--force", "my_notes").exit_code == 0
    assert path.read_text() == "# top\n"  # and so does one that ended with one
    path.chmod(0o640)
    assert cli("config", "set", "default_model", "llama-3.2-3b").exit_code == 0
    assert mode(path) == 0o640
    assert cli("providers", "disable", "huggingface").exit_code == 0
    assert mode(path) == 0o640


def test_a_symlinked_config_and_keys_file_stay_symlinks(cli, tmp_path) -> None:
    """Configs kept in a dotfiles repository: an edit changes the link's target and keeps the link."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "config.toml").write_text('# mine\ndefault_model = "qwen-2.5-7b"\n')
    (dotfiles / "config.toml").chmod(0o640)
    (dotfiles / "keys.toml").write_text('huggingface = "hf_old0000"\n')
    config_file().symlink_to(dotfiles / "config.toml")
    keys = Path(os.environ["EXOBRIDGE_KEYS_FILE"])
    keys.symlink_to(dotfiles / "keys.toml")
    assert cli("config", "set", "default_model", "llama-3.2-3b").exit_code == 0
    assert cli("providers", "disable", "huggingface").exit_code == 0
    assert cli("keys", "set", "openrouter", stdin="sk-or-v1-new2222").exit_code == 0
    assert config_file().is_symlink() and keys.is_symlink()
    text = (dotfiles / "config.toml").read_text()
    assert text.startswith("# mine\n") and 'default_model = "llama-3.2-3b"' in text and "enabled = false" in text
    assert mode(dotfiles / "config.toml") == 0o640
    assert tomllib.loads((dotfiles / "keys.toml").read_text()) == {
        "huggingface": "hf_old0000",
        "openrouter": "sk-or-v1-new2222",
    }
    assert mode(dotfiles / "keys.toml") == 0o600


# --- edit -------------------------------------------------------------------------------------------------------

EDITOR_SCRIPT = """
import os, sys
from pathlib import Path
target = Path(sys.argv[1])
count = Path(os.environ["EDIT_COUNT"])
count.write_text(str(int(count.read_text() or 0) + 1) if count.exists() else "1")
if os.environ.get("EDIT_ALSO_WRITE"):
    Path(os.environ["EXOBRIDGE_CONFIG"]).write_text(os.environ["EDIT_ALSO_WRITE"])
if "EDIT_APPEND" in os.environ:
    target.write_text(target.read_text() + os.environ["EDIT_APPEND"])
else:
    target.write_text(os.environ["EDIT_CONTENT"])
"""


@pytest.fixture
def editor(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "fake editor.py"
    script.write_text(EDITOR_SCRIPT)
    return {
        "EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}",
        "EDIT_COUNT": str(tmp_path / "edit-count"),
    }


def test_edit_valid_result_replaces_file_keeping_mode(write_config, cli, editor) -> None:
    path = write_config(USER_FILE)
    path.chmod(0o640)
    new = USER_FILE.replace("connect_timeout = 2", "connect_timeout = 3  # slower")
    result = cli("config", "edit", env={**editor, "EDIT_CONTENT": new})
    assert result.exit_code == 0, result.stderr
    assert path.read_text() == new
    assert mode(path) == 0o640


def test_edit_invalid_result_non_interactive_keeps_file_exit_4(write_config, cli, editor, tmp_path) -> None:
    path = write_config(USER_FILE)
    bad = USER_FILE.replace('url = "http://127.0.0.1:52415"', 'url = "not a url"')
    result = cli("config", "edit", env={**editor, "EDIT_CONTENT": bad})
    assert result.exit_code == 4
    assert "not an http(s) URL" in result.stderr and "unchanged" in result.stderr
    assert path.read_text() == USER_FILE
    assert (tmp_path / "edit-count").read_text() == "1"

    result = cli("config", "edit", env={**editor, "EDIT_CONTENT": "default_model = [\n"})
    assert result.exit_code == 4 and path.read_text() == USER_FILE


@pytest.mark.parametrize(
    ("editor_value", "code", "message"),
    [
        ('"unclosed', 2, "like a shell would"),
        ("/nonexistent/editor", 2, "cannot start the editor"),
        ("false", 1, "exited with status 1"),
    ],
)
def test_edit_with_an_unusable_editor_is_one_line_and_keeps_the_file(
    write_config, cli, editor_value, code, message
) -> None:
    path = write_config(USER_FILE)
    result = cli("config", "edit", env={"EDITOR": editor_value})
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1 and "internal error" not in result.stderr
    assert path.read_text() == USER_FILE


def test_edit_missing_file_starts_from_the_starter_and_is_0600(cli, editor) -> None:
    path = config_file()
    result = cli("config", "edit", env={**editor, "EDIT_APPEND": '\n[models."x"]\nexo = "y"\n'})
    assert result.exit_code == 0, result.stderr
    assert path.read_text() == config_file_mod.starter_text() + '\n[models."x"]\nexo = "y"\n'
    assert mode(path) == 0o600


def test_edit_does_not_overwrite_a_concurrent_change(write_config, cli, editor) -> None:
    path = write_config(USER_FILE)
    other = 'default_model = "written-meanwhile"\n'
    env = {**editor, "EDIT_APPEND": "\n# mine\n", "EDIT_ALSO_WRITE": other}
    result = cli("config", "edit", env=env)
    assert result.exit_code == 4 and "changed while you were editing" in result.stderr
    assert path.read_text() == other
    kept = Path(result.stderr.rsplit(" in ", 1)[1].strip())
    assert kept.read_text().endswith("# mine\n")
    kept.unlink()


def test_edit_interactive_reopens_after_an_invalid_result(write_config, cli, tmp_path) -> None:
    """stdin is a terminal: the first save is invalid, `r` re-opens, the second save is valid."""
    path = write_config(USER_FILE)
    script = tmp_path / "two-step.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from pathlib import Path
            target = Path(sys.argv[1])
            if target.read_text().startswith("default_model = 5"):
                target.write_text('default_model = "fixed"\\n')
            else:
                target.write_text("default_model = 5\\n")
            """
        )
    )
    env = {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"}
    result = cli("config", "edit", env=env, io=IOStreams.test(stdin="r\n", stdin_tty=True))
    assert result.exit_code == 0, result.stderr
    assert "Re-open the editor" in result.stderr and "expected a model name" in result.stderr
    assert path.read_text() == 'default_model = "fixed"\n'


# --- show / path: sources, and keys only masked ----------------------------------------------------------------


def test_show_sources_and_masked_keys_never_leak(write_config, cli, tmp_path) -> None:
    write_config(local_config(exo="http://127.0.0.1:9", openrouter="http://127.0.0.1:9/v1", huggingface=None))
    Path(os.environ["EXOBRIDGE_KEYS_FILE"]).write_text(f'huggingface = "{CANARY_HF}"\n')
    env = {"OPENROUTER_API_KEY": CANARY_OR, "EXOBRIDGE_EXO_URL": "http://127.0.0.1:7"}
    outputs = []
    for args in (("config", "show"), ("config", "show", "--json"), ("config", "path"), ("config", "path", "--json")):
        result = cli(*args, env=env)
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    for args in (("config", "get", "providers.openrouter"), ("config", "get", "providers")):
        outputs.append(cli(*args, env=env).stdout)
    for text in outputs:
        assert "CANARY" not in text
    assert "sk-or-…WXYZ" in outputs[0] and "hf_…1234" in outputs[0]

    data = json.loads(cli("config", "show", "--json", env=env).stdout)
    values = data["values"]
    assert values["default_model"]["source"] == "file"
    assert values["providers.exo.url"] == {"value": "http://127.0.0.1:7", "source": "env EXOBRIDGE_EXO_URL"}
    assert values["providers.exo.idle_timeout"]["source"] == "default"
    assert values["providers.huggingface.enabled"] == {"value": False, "source": "file"}
    assert data["keys"]["openrouter"] == {"source": "env OPENROUTER_API_KEY", "masked": "sk-or-…WXYZ"}
    assert data["keys"]["huggingface"] == {"source": "keys file", "masked": "hf_…1234"}
    assert data["file_exists"] is True


def test_show_and_get_say_headers_come_from_the_file(write_config, cli) -> None:
    write_config('[providers.openrouter]\nheaders = { "X-Title" = "me" }\n')
    values = json.loads(cli("config", "show", "--json").stdout)["values"]
    assert values["providers.openrouter.headers.X-Title"] == {"value": "me", "source": "file"}
    table = json.loads(cli("config", "get", "--json", "providers.openrouter.headers").stdout)
    assert (table["value"], table["source"]) == ({"X-Title": "me"}, "file")


def test_a_key_put_in_a_header_is_masked_by_show_and_by_get_of_a_table(write_config, cli) -> None:
    secret = "gsk_headersecret12345678"
    write_config(
        '[providers.groq]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1"\n'
        f'headers = {{ Authorization = "Bearer {secret}", "X-Api-Key" = "{secret}", "X-Title" = "me" }}\n'
    )
    for args in (
        ("config", "show"),
        ("config", "show", "--json"),
        ("config", "get", "providers"),
        ("config", "get", "providers.groq"),
        ("config", "get", "--json", "providers.groq.headers"),
    ):
        proc = cli(*args)
        assert proc.exit_code == 0, proc.stderr
        assert secret not in proc.stdout + proc.stderr, args
        assert "gsk_…5678" in proc.stdout and "me" in proc.stdout, args
    # Asked for by name, for a script, it is raw.
    assert cli("config", "get", "providers.groq.headers.Authorization").stdout == f"Bearer {secret}\n"


def test_show_without_file_is_all_defaults_and_path_says_missing(cli) -> None:
    data = json.loads(cli("config", "show", "--json").stdout)
    assert data["file_exists"] is False
    assert {v["source"] for v in data["values"].values()} == {"default"}
    paths = json.loads(cli("config", "path", "--json").stdout)
    assert paths["config"] == {"path": os.environ["EXOBRIDGE_CONFIG"], "exists": False}
    assert set(paths) == {"config", "keys", "cache", "data"}
    plain = cli("config", "path").stdout
    assert "\x1b[" not in plain and os.environ["EXOBRIDGE_CONFIG"] in plain


def test_show_warns_about_unknown_keys(write_config, cli) -> None:
    write_config(USER_FILE)
    result = cli("config", "show")
    assert result.exit_code == 0
    assert "unknown key 'my_notes'" in result.stderr


# --- init -------------------------------------------------------------------------------------------------------


def test_starter_builds_to_the_defaults() -> None:
    starter = config_file_mod.validate_text(config_file_mod.starter_text(), Path("x.toml"))
    defaults = config_mod.build(None, Path("x.toml"), env={})
    assert starter.providers == defaults.providers
    assert (starter.default_model, starter.models, starter.unknown_keys) == (defaults.default_model, {}, [])
    for needle in ("# urls = [", "key_env", "# [providers.ollama]", '# [models."llama-3.2-3b"]'):
        assert needle in config_file_mod.starter_text()


def test_init_writes_starter_0600_and_refuses_overwrite(cli) -> None:
    path = config_file()
    assert cli("config", "init").exit_code == 0
    assert path.read_text() == config_file_mod.starter_text() and mode(path) == 0o600
    path.write_text(USER_FILE)
    result = cli("config", "init")
    assert result.exit_code == 2 and "--force" in result.stderr
    assert path.read_text() == USER_FILE
    assert cli("config", "init", "--force").exit_code == 0
    assert path.read_text() == config_file_mod.starter_text()


# --- key paths (pure) -------------------------------------------------------------------------------------------


def test_split_and_resolve_keys() -> None:
    config = config_mod.build(None, Path("x.toml"), env={})
    assert config_keys.split_key('models."llama-3.2-3b".openrouter') == ["models", "llama-3.2-3b", "openrouter"]
    assert config_keys.resolve_key("models.llama-3.2-3b.openrouter", config).parts == (
        "models",
        "llama-3.2-3b",
        "openrouter",
    )
    assert config_keys.resolve_key("models.llama-3.2-3b", config).parts == ("models", "llama-3.2-3b")
    assert config_keys.format_key(("models", "llama-3.2-3b", "exo")) == 'models."llama-3.2-3b".exo'
    with pytest.raises(config_keys.EditError, match="unclosed quote"):
        config_keys.split_key('models."x')


def test_layout_tomlkit_cannot_edit_safely_is_refused_not_corrupted(write_config, cli) -> None:
    """Dotted keys at the top level: a key added after a new table would land inside it. Such an edit must be
    refused (exit 4, file unchanged), never written with a different meaning."""
    path = write_config('# dotted\nproviders.exo.url = "http://127.0.0.1:1"\n')
    assert cli("config", "set", "providers.exo.priority", "4").exit_code == 0
    before = path.read_text()
    result = cli("config", "set", "providers.openrouter.enabled", "false")
    if result.exit_code == 0:
        data = tomllib.loads(path.read_text())
        assert data["providers"]["exo"] == {"url": "http://127.0.0.1:1", "priority": 4}
        assert data["providers"]["openrouter"] == {"enabled": False}
    else:
        assert result.exit_code == 4 and "config edit" in result.stderr
        assert path.read_text() == before


@pytest.mark.parametrize(
    "args",
    [
        ["config", "show"],
        ["config", "set", "default_model", "x"],
        ["config", "unset", "default_model"],
        ["config", "init"],
        ["providers", "add", "ollama", "--url", "http://127.0.0.1:11434/v1"],
        ["providers", "move", "exo", "--priority", "2"],
        ["providers", "disable", "exo"],
    ],
)
def test_a_config_path_that_cannot_be_used_is_one_line_exit_4(cli, tmp_path, args) -> None:
    """A parent that is a file (a typo in EXOBRIDGE_CONFIG): a config error naming the path, not an internal one."""
    (tmp_path / "afile").write_text("")
    proc = cli(*args, env={"EXOBRIDGE_CONFIG": str(tmp_path / "afile" / "config.toml")})
    assert proc.exit_code == 4, proc.stderr
    assert proc.stderr.startswith("exobridge: error: config: ") and proc.stderr.count("\n") == 1
    assert "afile" in proc.stderr and "internal error" not in proc.stderr


def test_init_force_over_a_directory_and_keys_set_into_a_file_are_config_errors(cli, tmp_path) -> None:
    config_file().mkdir()
    proc = cli("config", "init", "--force")
    assert proc.exit_code == 4 and "is a directory" in proc.stderr and proc.stderr.count("\n") == 1
    config_file().rmdir()
    (tmp_path / "afile").write_text("")
    keys = str(tmp_path / "afile" / "keys.toml")
    proc = cli("keys", "set", "openrouter", stdin="sk-or-v1-abcd1234abcd", env={"EXOBRIDGE_KEYS_FILE": keys})
    assert proc.exit_code == 4 and proc.stderr.count("\n") == 1 and "internal error" not in proc.stderr
    assert "abcd1234abcd" not in proc.stderr


def test_config_set_log_false_turns_the_history_off_through_the_one_schema(write_config, cli) -> None:
    from exobridge.core import history

    write_config(local_config())
    assert config_mod.load().log is True
    proc = cli("config", "set", "log", "false")
    assert proc.exit_code == 0, proc.stderr
    assert config_mod.load().log is False
    assert history.logging_disabled(config_mod.load().log, env={})
    assert cli("config", "get", "log", "--json").json() == {"key": "log", "value": False, "source": "file"}
    assert cli("config", "show", "--json").json()["values"]["log"] == {"value": False, "source": "file"}
    bad = cli("config", "set", "log", "maybe")
    assert bad.exit_code == 2 and "log: expected true or false" in bad.stderr
    write_config('log = "no"\n' + local_config())
    broken = cli("config", "show")
    assert broken.exit_code == 4 and "log" in broken.stderr
