"""`exobridge providers add|remove|enable|disable|move`: locked, validated edits that keep the user's file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from exobridge.core import config as config_mod
from tests.cli_inprocess import inprocess_run_cli, real_process_run  # noqa: F401  (fixtures run_cli, run_process)
from tests.loopback import Exchange, closed_port, exo_models

USER_FILE = """\
# providers I use
[providers.exo]
url = "http://127.0.0.1:52415"  # head node

[providers.openrouter]
enabled = false  # no cloud today

[providers.huggingface]
enabled = false

[my_notes]
keep = true
"""


def effective(path: Path) -> config_mod.Config:
    return config_mod.load(path, env={})


def order(path: Path) -> list[str]:
    return [p.name for p in effective(path).ordered(include_disabled=True)]


def test_add_openai_compatible_endpoint_keeps_the_file(write_config, run_cli) -> None:
    path = write_config(USER_FILE)
    result = run_cli(
        "providers",
        "add",
        "ollama",
        "--kind",
        "openai",
        "--url",
        "http://localhost:11434/v1/",
        "--key-env",
        "OLLAMA_KEY",
    )
    assert result.returncode == 0, result.stderr
    assert "added provider ollama" in result.stderr and result.stdout == ""
    text = path.read_text()
    added = '[providers.ollama]\nkind = "openai"\nurl = "http://localhost:11434/v1"\n'
    added += 'key_env = "OLLAMA_KEY"\npriority = 3\n\n'
    assert text == USER_FILE.replace("[my_notes]", added + "[my_notes]")  # beside the other providers
    assert tomllib.loads(text)["providers"]["ollama"] == {
        "kind": "openai",
        "url": "http://localhost:11434/v1",
        "key_env": "OLLAMA_KEY",
        "priority": 3,
    }
    assert order(path)[-1] == "ollama"


def test_add_without_file_creates_it_0600_with_several_urls(run_cli, isolated: Path) -> None:
    urls = "http://127.0.0.1:1,http://127.0.0.1:2"
    result = run_cli("providers", "add", "cluster2", "--kind", "exo", "--url", urls, "--priority", "0")
    assert result.returncode == 0, result.stderr
    path = isolated / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    provider = effective(path).providers["cluster2"]
    assert (provider.urls, provider.priority) == (["http://127.0.0.1:1", "http://127.0.0.1:2"], 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exo", "--url", "http://127.0.0.1:1"], "already exists"),
        (["openrouter", "--url", "http://127.0.0.1:1"], "already exists"),
        (["my box", "--url", "http://127.0.0.1:1"], "bad provider name"),
        (["box", "--url", "localhost:11434"], "not an http(s) URL"),
        (["box", "--kind", "ollama", "--url", "http://127.0.0.1:1"], "unknown kind"),
        (["box", "--url", "http://127.0.0.1:1", "--key-env", "MY KEY"], "not an environment variable name"),
        (["box"], "--url is required"),
    ],
)
def test_add_refuses_bad_input_with_exit_2(write_config, run_cli, args: list[str], message: str) -> None:
    path = write_config(USER_FILE)
    result = run_cli("providers", "add", *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert path.read_text() == USER_FILE


def test_add_check_probes_the_model_list_once(write_config, run_cli, server) -> None:
    path = write_config(USER_FILE)
    openai_like = server()
    openai_like.route("GET", "/v1/models")(exo_models("llama3.2:3b", "qwen2.5:7b"))
    result = run_cli("providers", "add", "ollama", "--url", f"{openai_like.url}/v1", "--check")
    assert result.returncode == 0, result.stderr
    assert "answered (2 models)" in result.stderr
    assert openai_like.paths() == ["GET /v1/models"]
    assert "ollama" in effective(path).providers

    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    result = run_cli("providers", "add", "exo2", "--kind", "exo", "--url", exo.url, "--check")
    assert result.returncode == 0, result.stderr
    assert exo.paths() == ["GET /v1/models"]


def test_add_check_failure_adds_nothing(write_config, run_cli, server) -> None:
    path = write_config(USER_FILE)
    result = run_cli("providers", "add", "dead", "--url", f"http://127.0.0.1:{closed_port()}/v1", "--check")
    assert result.returncode == 3 and "connection refused" in result.stderr
    assert path.read_text() == USER_FILE

    unauthorized = server()

    @unauthorized.route("GET", "/v1/models")
    def deny(ex: Exchange) -> None:
        ex.reply(401, {"error": {"message": "bad key"}})

    result = run_cli("providers", "add", "locked", "--url", f"{unauthorized.url}/v1", "--check")
    assert result.returncode == 3 and "401" in result.stderr
    assert path.read_text() == USER_FILE


def test_remove_user_provider_and_disable_builtin(write_config, run_cli) -> None:
    path = write_config(USER_FILE)
    assert run_cli("providers", "add", "ollama", "--url", "http://127.0.0.1:11434/v1").returncode == 0
    result = run_cli("providers", "remove", "ollama")
    assert result.returncode == 0 and "removed provider ollama" in result.stderr
    assert path.read_text() == USER_FILE

    result = run_cli("providers", "remove", "exo")
    assert result.returncode == 0 and "built in" in result.stderr and "enabled = false" in result.stderr
    assert effective(path).providers["exo"].enabled is False
    assert "# head node" in path.read_text()


def test_enable_and_disable(write_config, run_cli) -> None:
    path = write_config(USER_FILE)
    assert run_cli("providers", "enable", "openrouter").returncode == 0
    assert effective(path).providers["openrouter"].enabled is True
    assert "[providers.openrouter]" not in path.read_text()  # the only key went, so the table did too
    assert run_cli("providers", "disable", "exo").returncode == 0
    assert effective(path).providers["exo"].enabled is False
    assert run_cli("providers", "enable", "exo").returncode == 0
    assert effective(path).providers["exo"].enabled is True
    assert "# providers I use" in path.read_text() and "[my_notes]" in path.read_text()


def test_move_renumbers_the_others_stably(write_config, run_cli) -> None:
    path = write_config(USER_FILE)
    assert run_cli("providers", "add", "ollama", "--url", "http://127.0.0.1:11434/v1").returncode == 0
    assert order(path) == ["exo", "openrouter", "huggingface", "ollama"]
    result = run_cli("providers", "move", "ollama", "--priority", "1")
    assert result.returncode == 0, result.stderr
    assert order(path) == ["exo", "ollama", "openrouter", "huggingface"]
    priorities = {name: p.priority for name, p in effective(path).providers.items()}
    assert priorities == {"exo": 0, "ollama": 1, "openrouter": 2, "huggingface": 3}
    assert run_cli("providers", "move", "exo", "--priority", "99").returncode == 0
    assert order(path) == ["ollama", "openrouter", "huggingface", "exo"]
    assert "# no cloud today" in path.read_text()


@pytest.mark.parametrize("command", ["remove", "enable", "disable"])
def test_unknown_provider_exits_2_with_nearest_names(write_config, run_cli, command: str) -> None:
    path = write_config(USER_FILE)
    result = run_cli("providers", command, "openroute")
    assert result.returncode == 2
    assert "did you mean openrouter" in result.stderr
    assert path.read_text() == USER_FILE


def test_move_unknown_provider_and_negative_position(write_config, run_cli) -> None:
    write_config(USER_FILE)
    assert run_cli("providers", "move", "hugginface", "--priority", "0").returncode == 2
    result = run_cli("providers", "move", "exo", "--priority", "-1")
    assert result.returncode == 2
