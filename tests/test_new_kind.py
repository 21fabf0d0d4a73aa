"""A provider kind is a plug-in (issue 8, point 2): a kind defined HERE, as a class and one registration, is
handled by every command — `chat`, `providers list/status`, `models`, `doctor`, `providers add --kind` — and by
shell completion, with no change anywhere else. All in-process against a loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from exobridge.core import providers
from exobridge.core.providers.base import ProviderKind, Timeouts
from tests.loopback import LoopbackServer, stream_words

KEY = "lab-key-0123456789abcdefghij"


class LabKind(ProviderKind):
    """A made-up vendor: its own default key variable, its own list route and a cost it reports in a header."""

    name = "labkind-test"
    label = "Lab Inc."
    default_url = None
    default_timeouts = Timeouts(2.0, 20.0, 20.0)
    default_key_env = "LABKIND_TEST_KEY"
    needs_key = True
    models_path = "/catalogue"

    @classmethod
    def cost(cls, usage: dict[str, Any] | None) -> float | None:
        return 0.5 if usage else None


@pytest.fixture
def lab(server, write_config, monkeypatch) -> Iterator[LoopbackServer]:
    providers.register(LabKind)
    srv: LoopbackServer = server()
    srv.route("GET", "/catalogue")(
        lambda ex: ex.reply(200, {"data": [{"id": "lab/small", "context_length": 4096}, {"id": "lab/large"}]})
    )
    srv.route("POST", "/chat/completions")(stream_words(["hello ", "from ", "lab"], model="lab/small", usage={"x": 1}))
    write_config(
        f"""
        default_model = "lab/small"
        [providers.exo]
        enabled = false
        [providers.openrouter]
        enabled = false
        [providers.huggingface]
        enabled = false
        [providers.lab]
        kind = "labkind-test"
        url = "{srv.url}"
        key_env = "LABKIND_TEST_KEY"
        """
    )
    monkeypatch.setenv("LABKIND_TEST_KEY", KEY)
    try:
        yield srv
    finally:
        providers.unregister(LabKind.name)


def no_leak(*outputs: str) -> None:
    for text in outputs:
        assert KEY not in text and "Traceback" not in text and "internal error" not in text


def test_chat_routes_to_the_new_kind_with_its_key(cli, lab: LoopbackServer) -> None:
    result = cli("chat", "--json", "hi")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["text"], data["provider"], data["model"]) == ("hello from lab", "lab", "lab/small")
    assert data["cost"] == 0.5  # the kind's own cost()
    [post] = [r for r in lab.requests if r.method == "POST"]
    assert post.headers["authorization"] == f"Bearer {KEY}"
    no_leak(result.stdout, result.stderr)


def test_providers_list_and_status(cli, lab: LoopbackServer) -> None:
    listed = cli("providers", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    [row] = [p for p in json.loads(listed.stdout)["providers"] if p["name"] == "lab"]
    assert row["kind"] == "labkind-test"
    status = cli("providers", "status", "--json")
    assert status.exit_code == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["can_answer"] == ["lab"]
    [node] = data["nodes"]
    assert (node["state"], node["models"], node["key_valid"]) == ("ready", ["lab/small", "lab/large"], True)
    assert lab.paths()[-1] == "GET /catalogue"  # the kind's own list route
    no_leak(listed.stdout, status.stdout, status.stderr)


def test_models_reads_and_caches_its_list_and_completion_offers_it(
    cli, lab: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli("models", "--json", "--refresh")
    assert result.exit_code == 0, result.stderr
    [item] = [p for p in json.loads(result.stdout)["providers"] if p["name"] == "lab"]
    assert (item["status"], [m["id"] for m in item["models"]]) == ("ok", ["lab/small", "lab/large"])
    assert item["models"][0]["context_length"] == 4096

    from exobridge.core import completion_values

    assert "lab" in [c.value for c in completion_values.provider_names("la")]
    offered = [c.value for c in completion_values.model_names("lab:")]
    assert {"lab:lab/small", "lab:lab/large"} <= set(offered)
    no_leak(result.stdout, result.stderr)


def test_doctor_checks_the_new_kind(cli, lab: LoopbackServer) -> None:
    result = cli("doctor", "--json")
    data = json.loads(result.stdout)
    lab_checks = [c for c in data["checks"] if c["id"].startswith("provider.lab.")]
    assert lab_checks and all(c["status"] == "ok" for c in lab_checks), lab_checks
    assert result.exit_code == 0, [c for c in data["checks"] if c["status"] != "ok"]
    no_leak(result.stdout, result.stderr)


def test_providers_add_with_the_new_kind_and_check(cli, lab: LoopbackServer) -> None:
    result = cli("providers", "add", "lab2", "--kind", "labkind-test", "--url", lab.url, "--check")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(cli("providers", "list", "--json").stdout)["providers"]
    [row] = [p for p in listed if p["name"] == "lab2"]
    assert row["kind"] == "labkind-test"
    assert "GET /catalogue" in lab.paths()  # --check asked the kind's own list route
    no_leak(result.stdout, result.stderr)


def test_an_unregistered_kind_is_a_config_error_naming_the_known_ones(cli, lab: LoopbackServer) -> None:
    providers.unregister(LabKind.name)
    result = cli("providers", "status", "--json")
    assert result.exit_code == 4
    assert "labkind-test" in result.stderr and "openrouter" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 4


def test_the_kind_is_asked_not_named(lab: LoopbackServer) -> None:
    """What the commands above relied on comes from the class: no table elsewhere knows this kind."""
    from exobridge.core import config as config_mod

    cfg = config_mod.load()
    provider = cfg.providers["lab"]
    assert provider.key_envs == ["LABKIND_TEST_KEY"]
    assert (provider.connect_timeout, provider.first_token_timeout) == (2.0, 20.0)
    assert providers.kind_class("labkind-test") is LabKind
