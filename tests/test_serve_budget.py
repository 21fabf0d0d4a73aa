"""`[budget]` in serve: the same pre-send check as chat, never overridden by a client, with a 402 when no
provider within the budget could be asked and the 80 % notice once in serve's log (in-process ASGI app)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.conftest import local_config
from tests.loopback import LoopbackServer, stream_words
from tests.test_budget import spent_today

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


def cloud_reply(cost: float):
    """OpenRouter's answer, with the cost it reports in `usage.cost`."""

    def answer(ex) -> None:
        usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "cost": cost}
        choice = {"index": 0, "message": {"role": "assistant", "content": "cloud"}, "finish_reason": "stop"}
        ex.reply(200, {"id": "gen-1", "object": "chat.completion", "model": "m", "choices": [choice], "usage": usage})

    return answer


@pytest.fixture
def serve(isolated, write_config, monkeypatch):
    """A serve app (in this process) with OpenRouter on loopback and, with `local=True`, a free local provider
    after it; returns (client, stderr log, the cloud server)."""
    from starlette.testclient import TestClient

    from exobridge.serve.app import create_app
    from exobridge.serve.options import ServeOptions
    from exobridge.serve.server import build_context

    servers: list[LoopbackServer] = []

    def make(budget: str, local: bool = False, cost: float = 0.3) -> tuple[Any, io.StringIO, LoopbackServer]:
        cloud = LoopbackServer()
        cloud.route("POST", "/chat/completions")(cloud_reply(cost))
        servers.append(cloud)
        extra = ""
        if local:
            free = LoopbackServer()
            free.route("POST", "/v1/chat/completions")(stream_words(["local"], model="m"))
            servers.append(free)
            extra = f'[providers.local]\nkind = "openai"\nurl = "{free.url}/v1"\npriority = 5\n'
        write_config(local_config(openrouter=cloud.url) + extra + budget)
        monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
        log = io.StringIO()
        ctx = build_context(ServeOptions(), None, log)
        return TestClient(create_app(ctx), base_url="http://127.0.0.1"), log, cloud

    yield make
    for server in servers:
        server.close()


def ask(client: Any) -> Any:
    return client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "Hi"}]})


def test_a_provider_over_budget_is_skipped_with_the_reason_and_the_free_one_answers(serve):
    client, _log, cloud = serve("[budget]\ndaily_usd = 2.0\n", local=True)
    spent_today(2.03)
    response = ask(client)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "local"
    assert response.headers["x-exobridge-provider"] == "local"
    assert response.headers["x-exobridge-attempts"] == "openrouter=skipped:budget, local=ok"
    assert cloud.requests == []


def test_no_provider_within_the_budget_is_a_402_even_when_the_client_pins_one(serve):
    client, _log, cloud = serve("[budget]\ndaily_usd = 1.0\n")
    spent_today(1.0)  # exactly at the limit counts as over
    for model in ("m", "openrouter:m"):  # pinning a provider is no override in serve
        response = client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "Hi"}]}
        )
        assert response.status_code == 402, response.text
        error = response.json()["error"]
        assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
        assert "over daily budget: $1.00 of $1.00" in error["message"]
    assert cloud.requests == []


def test_what_serve_just_spent_counts_before_its_row_is_written(serve):
    client, _log, cloud = serve("[budget]\ndaily_usd = 1.0\n", cost=0.6)
    spent_today(0.5)
    assert ask(client).status_code == 200  # $0.50 spent: asked, reports $0.60
    response = ask(client)  # $1.10 now, though serve writes its history on a thread of its own
    assert response.status_code == 402 and "over daily budget: $1.10 of $1.00" in response.text
    assert len(cloud.requests) == 1


def test_the_eighty_percent_notice_is_logged_once_not_per_request(serve):
    client, log, _cloud = serve("[budget]\ndaily_usd = 2.0\n", cost=0.0)
    spent_today(1.7)
    for _ in range(3):
        assert ask(client).status_code == 200
    lines = [line for line in log.getvalue().splitlines() if "budget" in line]
    assert lines == ["exobridge serve: warning: daily budget 85% used: $1.70 of $2.00"], log.getvalue()


def test_json_logs_keep_the_notice_a_warning_event(isolated, write_config, monkeypatch):
    from exobridge.serve.logs import AccessLog

    stream = io.StringIO()
    log = AccessLog(stream, json_lines=True)
    log.warn_once(("budget", "daily budget", 0.0), "daily budget 85% used: $1.70 of $2.00")
    log.warn_once(("budget", "daily budget", 0.0), "daily budget 90% used: $1.80 of $2.00")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["event"] == "warning" and "85%" in json.loads(line)["message"]
