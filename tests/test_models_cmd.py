"""`exobridge models` against loopback providers: lists, Exo lines, --free, the cache and its TTL."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.conftest import local_config
from tests.loopback import BlackHole, Exchange, closed_port, exo_models

ANSI = re.compile(r"\x1b\[")
V1_ID = "mlx-community/Llama-3.2-3B-Instruct-4bit"


def exo_v1(srv, placed: list[str]) -> None:
    srv.route("GET", "/node_id")(lambda ex: ex.reply(200, '"12D3KooWtest"'))

    @srv.route("GET", "/state")
    def state(ex: Exchange) -> None:
        instances = {
            f"inst-{i}": {"MlxRingInstance": {"instanceId": f"inst-{i}", "shardAssignments": {"modelId": model}}}
            for i, model in enumerate(placed)
        }
        ex.reply(200, {"instances": instances, "topology": {"nodes": ["n1"]}})

    @srv.route("GET", "/v1/models")
    def models(ex: Exchange) -> None:
        data = [
            {"id": "llama-3.2-3b", "hugging_face_id": V1_ID, "context_length": 131072},
            {"id": "llama-3.2-1b", "hugging_face_id": "mlx-community/Llama-3.2-1B-Instruct-4bit"},
        ]
        ex.reply(200, {"object": "list", "data": data})


def openrouter_models(srv) -> None:
    @srv.route("GET", "/models")
    def models(ex: Exchange) -> None:
        data = [
            {"id": "meta-llama/llama-3.2-3b-instruct", "pricing": {"prompt": "0.00000002", "completion": "0.00000002"}},
            {"id": "meta-llama/llama-3.2-3b-instruct:free", "pricing": {"prompt": "0", "completion": "0"}},
        ]
        ex.reply(200, {"data": data})


def models_json(cli, *args: str, env: dict[str, str] | None = None):
    proc = cli("models", "--json", *args, env=env)
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else None


def test_exo_v1_marks_placed_models_and_writes_the_shared_cache(server, write_config, cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=exo.url))
    proc, data = models_json(cli)
    assert proc.exit_code == 0, proc.stderr
    exo_list = data["providers"][0]
    assert exo_list["name"] == "exo" and exo_list["line"] == "v1" and exo_list["status"] == "ok"
    placed = {m["id"]: m["placed"] for m in exo_list["models"]}
    assert placed == {"llama-3.2-3b": True, "llama-3.2-1b": False}
    assert [p["status"] for p in data["providers"][1:]] == ["disabled", "disabled"]
    entry = next(e for e in data["table"] if e["name"] == "llama-3.2-3b")
    assert entry["default"] is True
    assert entry["providers"]["exo"]["available"] is True
    small = next(e for e in data["table"] if e["name"] == "llama-3.2-1b")
    assert small["providers"]["exo"]["available"] is False and small["providers"]["exo"]["listed"] is True
    proc = cli("models")
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line}
    assert rows["llama-3.2-3b*"] == ["placed"]
    assert rows["llama-3.2-1b"] == ["not", "placed"]
    assert rows["deepseek-r1"] == ["missing"]

    cache = json.loads((Path(os.environ["EXOBRIDGE_CACHE_DIR"]) / "models.json").read_text())
    assert [m["id"] for m in cache["exo"]["value"]] == ["llama-3.2-3b", "llama-3.2-1b"]
    assert all(isinstance(m["id"], str) for m in cache["exo"]["value"])


def test_legacy_exo_says_its_list_is_every_card(server, write_config, cli):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b", "llama-3.1-8b"))
    exo.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
    write_config(local_config(exo=exo.url))
    proc = cli("models")
    assert proc.exit_code == 0, proc.stderr
    assert "every model card" in proc.stderr
    assert not ANSI.search(proc.stdout + proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["PROVIDER", "MODEL", "FREE", "PLACED", "CONTEXT"]
    assert lines[2].split() == ["exo", "llama-3.1-8b", "yes", "-", "-"]
    row = next(line for line in lines if line.startswith("llama-3.2-3b*"))
    assert row.split() == ["llama-3.2-3b*", "listed"]


def test_free_keeps_zero_priced_openrouter_models_and_sends_the_key_to_openrouter_only(server, write_config, cli):
    exo, router = server(), server()
    exo_v1(exo, [])
    openrouter_models(router)
    write_config(local_config(exo=exo.url, openrouter=router.url))
    proc, data = models_json(cli, "--free", env={"OPENROUTER_API_KEY": "test-or-key-1234"})
    assert proc.exit_code == 0, proc.stderr
    listed = {p["name"]: [m["id"] for m in p["models"]] for p in data["providers"]}
    assert listed["openrouter"] == ["meta-llama/llama-3.2-3b-instruct:free"]
    assert len(listed["exo"]) == 2  # Exo models are free
    assert router.requests[0].headers["authorization"] == "Bearer test-or-key-1234"
    assert all("authorization" not in r.headers for r in exo.requests)
    assert "test-or-key" not in proc.stdout


def test_unreachable_provider_is_reported_and_the_rest_still_listed(server, write_config, cli):
    router = server()
    openrouter_models(router)
    write_config(local_config(exo=f"http://127.0.0.1:{closed_port()}", openrouter=router.url))
    proc = cli("models")
    assert proc.exit_code == 0
    assert "exo (http://127.0.0.1:" in proc.stderr and "unreachable: connection refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert any(
        line.split()[:2] == ["openrouter", "meta-llama/llama-3.2-3b-instruct"] for line in proc.stdout.splitlines()
    )


def test_black_holed_exo_costs_its_short_timeout_and_says_which(write_config, cli):
    with BlackHole() as hole:
        write_config(
            local_config(exo=hole.url).replace(f'url = "{hole.url}"', f'url = "{hole.url}"\nfirst_token_timeout = 0.5')
        )
        proc = cli("models", "-p", "exo", "--refresh")
    assert proc.exit_code == 3
    assert "unreachable: no reply within 0.5 s" in proc.stderr  # its own 0.5 s, not the 15 s a cloud list may take


def test_huggingface_401_is_unreachable_with_the_reason_and_exit_3_when_asked_alone(server, write_config, cli):
    hf = server()
    hf.route("GET", "/models")(lambda ex: ex.reply(401, {"error": "Invalid credentials in Authorization header"}))
    write_config(local_config(huggingface=hf.url))
    proc, data = models_json(cli, "-p", "huggingface", env={"HF_TOKEN": "hf_testtoken"})
    assert proc.exit_code == 3
    (item,) = data["providers"]
    assert item["status"] == "unreachable"
    assert "HTTP 401" in item["reason"] and "exobridge keys set huggingface" in item["hint"]


def test_unknown_provider_is_a_usage_error(write_config, cli):
    write_config(local_config())
    proc = cli("models", "-p", "nope")
    assert proc.exit_code == 2
    assert proc.stderr.startswith("exobridge: error: unknown provider 'nope'")


def test_cache_is_reused_until_refresh_or_ttl(server, write_config, cli):
    exo = server()
    exo_v1(exo, [V1_ID])
    write_config(local_config(exo=exo.url))
    assert cli("models", "--json").exit_code == 0
    first = len(exo.requests)
    assert first >= 2
    _, data = models_json(cli)
    assert len(exo.requests) == first  # answered from the cache
    assert data["providers"][0]["cached"] is True
    assert data["providers"][0]["line"] == "v1"  # the list's details come back from the cache too
    _, data = models_json(cli, "--refresh")
    assert len(exo.requests) == 2 * first and data["providers"][0]["cached"] is False

    path = Path(os.environ["EXOBRIDGE_CACHE_DIR"]) / "models.json"
    stale = json.loads(path.read_text())
    stale["exo"]["at"] -= 2 * 3600
    path.write_text(json.dumps(stale))
    _, data = models_json(cli)
    assert len(exo.requests) == 3 * first and data["providers"][0]["cached"] is False


def terminal(**env: str):
    from exobridge.render.io import IOStreams

    return IOStreams.test(stdout_tty=True, stderr_tty=True, env={**os.environ, **env})


def test_model_ids_with_markup_or_escapes_are_shown_literally_on_a_terminal(server, write_config, cli):
    hostile = server()

    @hostile.route("GET", "/models")
    def models(ex: Exchange) -> None:
        ex.reply(
            200,
            {
                "data": [
                    {"id": "foo[/bar]"},
                    {"id": "[bold red]x[/] [link=http://evil.invalid]y"},
                    {"id": "t\x1b]0;owned\x07"},
                ]
            },
        )

    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{hostile.url}"\npriority = 1\n'))
    for io in (terminal(FORCE_COLOR="1"), terminal(NO_COLOR="1")):
        result = cli("models", "-p", "local", io=io)
        assert result.exit_code == 0, result.stderr
        assert "foo[/bar]" in result.stdout and "[bold red]x[/] [link=http://evil.invalid]y" in result.stdout
        assert "t\\x1b]0;owned\\x07" in result.stdout and "\x1b]0;" not in result.stdout
    again = cli("models", "-p", "local", io=terminal())  # from the cache: the same
    assert again.exit_code == 0 and "foo[/bar]" in again.stdout
    piped = cli("models", "-p", "local")
    assert "t\\x1b]0;owned\\x07" in piped.stdout
    data = cli("models", "-p", "local", "--json").json()
    assert [m["id"] for m in data["providers"][0]["models"]][2] == "t\x1b]0;owned\x07"  # JSON keeps the data


def test_an_unreachable_error_with_escapes_is_escaped_on_stderr(server, write_config, cli):
    broken = server()
    broken.route("GET", "/models")(lambda ex: ex.reply(500, {"error": "down \x1b[2J [/oops]"}))
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{broken.url}"\npriority = 1\n'))
    result = cli("models", "-p", "local", io=terminal(FORCE_COLOR="1"))
    assert result.exit_code == 3
    assert "down \\x1b[2J [/oops]" in result.stderr and "\x1b[2J" not in result.stderr


def test_unknown_provider_under_json_still_prints_one_object(write_config, cli):
    write_config(local_config())
    result = cli("models", "--json", "-p", "nope")
    assert result.exit_code == 2
    assert result.json() == {"error": result.stderr.removeprefix("exobridge: error: ").strip(), "exit_code": 2}
