"""`exobridge providers add|remove|enable|disable|move`: locked, validated edits that keep the user's file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from exobridge.core import config as config_mod
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


def test_add_openai_compatible_endpoint_keeps_the_file(write_config, cli) -> None:
    path = write_config(USER_FILE)
    result = cli(
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
    assert result.exit_code == 0, result.stderr
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


def test_add_without_file_creates_it_0600_with_several_urls(cli, isolated: Path) -> None:
    urls = "http://127.0.0.1:1,http://127.0.0.1:2"
    result = cli("providers", "add", "cluster2", "--kind", "exo", "--url", urls, "--priority", "0")
    assert result.exit_code == 0, result.stderr
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
def test_add_refuses_bad_input_with_exit_2(write_config, cli, args: list[str], message: str) -> None:
    path = write_config(USER_FILE)
    result = cli("providers", "add", *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert path.read_text() == USER_FILE


def test_add_check_probes_the_model_list_once(write_config, cli, server) -> None:
    path = write_config(USER_FILE)
    openai_like = server()
    openai_like.route("GET", "/v1/models")(exo_models("llama3.2:3b", "qwen2.5:7b"))
    result = cli("providers", "add", "ollama", "--url", f"{openai_like.url}/v1", "--check")
    assert result.exit_code == 0, result.stderr
    assert "answered (2 models)" in result.stderr
    assert openai_like.paths() == ["GET /v1/models"]
    assert "ollama" in effective(path).providers

    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    result = cli("providers", "add", "exo2", "--kind", "exo", "--url", exo.url, "--check")
    assert result.exit_code == 0, result.stderr
    assert exo.paths() == ["GET /v1/models"]


def test_add_check_failure_adds_nothing(write_config, cli, server) -> None:
    path = write_config(USER_FILE)
    result = cli("providers", "add", "dead", "--url", f"http://127.0.0.1:{closed_port()}/v1", "--check")
    assert result.exit_code == 3 and "connection refused" in result.stderr
    assert path.read_text() == USER_FILE

    unauthorized = server()

    @unauthorized.route("GET", "/v1/models")
    def deny(ex: Exchange) -> None:
        ex.reply(401, {"error": {"message": "bad key"}})

    result = cli("providers", "add", "locked", "--url", f"{unauthorized.url}/v1", "--check")
    assert result.exit_code == 3 and "401" in result.stderr
    assert path.read_text() == USER_FILE


def test_remove_user_provider_and_disable_builtin(write_config, cli) -> None:
    path = write_config(USER_FILE)
    assert cli("providers", "add", "ollama", "--url", "http://127.0.0.1:11434/v1").exit_code == 0
    result = cli("providers", "remove", "ollama")
    assert result.exit_code == 0 and "removed provider ollama" in result.stderr
    assert path.read_text() == USER_FILE

    result = cli("providers", "remove", "exo")
    assert result.exit_code == 0 and "built in" in result.stderr and "enabled = false" in result.stderr
    assert effective(path).providers["exo"].enabled is False
    assert "# head node" in path.read_text()


def test_enable_and_disable(write_config, cli) -> None:
    path = write_config(USER_FILE)
    assert cli("providers", "enable", "openrouter").exit_code == 0
    assert effective(path).providers["openrouter"].enabled is True
    assert "[providers.openrouter]" not in path.read_text()  # the only key went, so the table did too
    assert cli("providers", "disable", "exo").exit_code == 0
    assert effective(path).providers["exo"].enabled is False
    assert cli("providers", "enable", "exo").exit_code == 0
    assert effective(path).providers["exo"].enabled is True
    assert "# providers I use" in path.read_text() and "[my_notes]" in path.read_text()


def test_move_renumbers_the_others_stably(write_config, cli) -> None:
    path = write_config(USER_FILE)
    assert cli("providers", "add", "ollama", "--url", "http://127.0.0.1:11434/v1").exit_code == 0
    assert order(path) == ["exo", "openrouter", "huggingface", "ollama"]
    result = cli("providers", "move", "ollama", "--priority", "1")
    assert result.exit_code == 0, result.stderr
    assert order(path) == ["exo", "ollama", "openrouter", "huggingface"]
    priorities = {name: p.priority for name, p in effective(path).providers.items()}
    assert priorities == {"exo": 0, "ollama": 1, "openrouter": 2, "huggingface": 3}
    assert cli("providers", "move", "exo", "--priority", "99").exit_code == 0
    assert order(path) == ["ollama", "openrouter", "huggingface", "exo"]
    assert "# no cloud today" in path.read_text()


@pytest.mark.parametrize("command", ["remove", "enable", "disable"])
def test_unknown_provider_exits_2_with_nearest_names(write_config, cli, command: str) -> None:
    path = write_config(USER_FILE)
    result = cli("providers", command, "openroute")
    assert result.exit_code == 2
    assert "did you mean openrouter" in result.stderr
    assert path.read_text() == USER_FILE


def test_move_unknown_provider_and_negative_position(write_config, cli) -> None:
    write_config(USER_FILE)
    assert cli("providers", "move", "hugginface", "--priority", "0").exit_code == 2
    result = cli("providers", "move", "exo", "--priority", "-1")
    assert result.exit_code == 2


# --- add --check: custom endpoints answer on the first try (issue 13, part 1) ----------------------------------

ONLY_LOCAL = """\
[providers.exo]
enabled = false

[providers.openrouter]
enabled = false

[providers.huggingface]
enabled = false
"""


def model_list(*entries: dict) -> object:
    def handler(ex: Exchange) -> None:
        ex.reply(200, {"object": "list", "data": list(entries)})

    return handler


def chat_server(server, listing) -> object:
    """An OpenAI-compatible endpoint at {url}/v1 listing `listing`, answering every chat with "hi"."""
    from tests.loopback import stream_words

    srv = server()
    srv.route("GET", "/v1/models")(listing)
    srv.route("POST", "/v1/chat/completions")(stream_words(["hi"]))
    return srv


def sent_models(srv) -> list[str]:
    return [r.json()["model"] for r in srv.requests if r.method == "POST"]


def test_check_llama_cpp_one_model_becomes_the_default_model(write_config, cli, server) -> None:
    path = write_config(ONLY_LOCAL)
    gguf = "Llama-3.2-3B-Instruct-Q4_K_M.gguf"
    srv = chat_server(server, model_list({"id": gguf, "object": "model", "owned_by": "llamacpp", "meta": {}}))
    result = cli("providers", "add", "local", "--url", f"{srv.url}/v1", "--check")
    assert result.exit_code == 0, result.stderr
    assert f'set providers.local.model = "{gguf}"' in result.stderr
    assert f'set models."llama-3.2-3b".local = "{gguf}"' in result.stderr
    config = effective(path)
    assert config.providers["local"].model == gguf
    assert config.models["llama-3.2-3b"] == {"local": gguf}
    # The first chat answers: the default model (a name mapped) and any other name (the provider's own model).
    assert cli("chat", "Hi").exit_code == 0
    assert cli("chat", "-m", "qwen-2.5-7b", "Hi").exit_code == 0
    assert sent_models(srv) == [gguf, gguf]


def test_check_ollama_maps_the_names_it_recognises_and_says_how_to_set_a_default(write_config, cli, server) -> None:
    path = write_config(ONLY_LOCAL)
    ids = ["llama3.2:3b", "qwen2.5:7b", "nomic-embed-text:latest"]
    srv = chat_server(server, exo_models(*ids))
    result = cli("providers", "add", "ollama", "--url", f"{srv.url}/v1", "--check")
    assert result.exit_code == 0, result.stderr
    assert 'set models."llama-3.2-3b".ollama = "llama3.2:3b"' in result.stderr
    assert 'set models."qwen-2.5-7b".ollama = "qwen2.5:7b"' in result.stderr
    assert "exobridge config set providers.ollama.model llama3.2:3b" in result.stderr  # not a terminal: the command
    config = effective(path)
    assert config.providers["ollama"].model is None
    assert config.models == {"llama-3.2-3b": {"ollama": "llama3.2:3b"}, "qwen-2.5-7b": {"ollama": "qwen2.5:7b"}}
    assert cli("chat", "-m", "qwen-2.5-7b", "Hi").exit_code == 0
    assert sent_models(srv) == ["qwen2.5:7b"]
    # A name with no id for it: skipped, and the message gives the exact command for both fixes.
    result = cli("chat", "-m", "phi-4", "Hi")
    assert result.exit_code == 3
    assert "exobridge config set models.phi-4.ollama <id>" in result.stderr
    assert "exobridge config set providers.ollama.model <id>" in result.stderr
    # Both commands work as printed.
    assert cli("config", "set", "models.phi-4.ollama", "phi4").exit_code == 0
    assert effective(path).models["phi-4"] == {"ollama": "phi4"}
    assert cli("config", "set", "providers.ollama.model", "llama3.2:3b").exit_code == 0
    assert cli("chat", "-m", "gemma2-9b", "Hi").exit_code == 0
    assert sent_models(srv)[-1] == "llama3.2:3b"


def test_check_vllm_hugging_face_ids(write_config, cli, server) -> None:
    path = write_config(ONLY_LOCAL)
    hf = "meta-llama/Llama-3.2-3B-Instruct"
    entry = {"id": hf, "object": "model", "owned_by": "vllm", "root": hf, "max_model_len": 131072}
    srv = chat_server(server, model_list(entry))
    result = cli("providers", "add", "vllm", "--url", f"{srv.url}/v1", "--check")
    assert result.exit_code == 0, result.stderr
    config = effective(path)
    assert config.providers["vllm"].model == hf
    assert config.models["llama-3.2-3b"] == {"vllm": hf}
    assert cli("chat", "Hi").exit_code == 0
    assert sent_models(srv) == [hf]


def test_check_on_a_terminal_asks_which_model_is_the_default(write_config, cli, server) -> None:
    from exobridge.render.io import IOStreams

    path = write_config(ONLY_LOCAL)
    srv = chat_server(server, exo_models("llama3.2:3b", "qwen2.5:7b"))
    io = IOStreams.test(stdin="2\n", tty=True)
    result = cli("providers", "add", "ollama", "--url", f"{srv.url}/v1", "--check", io=io)
    assert result.exit_code == 0, result.stderr
    assert "1. llama3.2:3b" in result.stderr and "default model" in result.stderr
    assert 'set providers.ollama.model = "qwen2.5:7b"' in result.stderr
    assert effective(path).providers["ollama"].model == "qwen2.5:7b"


def test_check_keeps_a_mapping_the_config_already_has_and_model_option_wins(write_config, cli, server) -> None:
    path = write_config(ONLY_LOCAL + '\n[models."llama-3.2-3b"]\nbox = "mine"\n')
    srv = chat_server(server, exo_models("llama3.2:3b", "qwen2.5:7b"))
    result = cli("providers", "add", "box", "--url", f"{srv.url}/v1", "--check", "--model", "qwen2.5:7b")
    assert result.exit_code == 0, result.stderr
    assert "kept models.llama-3.2-3b.box" in result.stderr
    config = effective(path)
    assert config.models["llama-3.2-3b"] == {"box": "mine"}
    assert config.providers["box"].model == "qwen2.5:7b"


def test_model_option_without_check_and_config_set_model(write_config, cli) -> None:
    path = write_config(ONLY_LOCAL)
    result = cli("providers", "add", "box", "--url", "http://127.0.0.1:9/v1", "--model", "llama3.2:3b")
    assert result.exit_code == 0, result.stderr
    assert effective(path).providers["box"].model == "llama3.2:3b"
    assert cli("config", "set", "providers.box.model", "qwen2.5:7b").exit_code == 0
    assert effective(path).providers["box"].model == "qwen2.5:7b"
    result = cli("config", "set", "providers.box.model", "  ")
    assert result.exit_code == 2 and "providers.box.model" in result.stderr
    result = cli("providers", "add", "other", "--url", "http://127.0.0.1:9/v1", "--model", "")
    assert result.exit_code == 2 and "--model" in result.stderr
