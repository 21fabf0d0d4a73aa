"""Cost per request and `exobridge usage` on real SQLite files: reported cost from recorded OpenRouter replies,
price lists × tokens, "unknown" never guessed, and what running locally saved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exobridge.core import history, spend
from exobridge.core.cache import JsonCache
from exobridge.render.io import IOStreams
from tests.conftest import local_config
from tests.loopback import Exchange, stream_words

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


def recorded_openrouter(server, write_config, fixture: str):
    srv = server()

    def replay(ex: Exchange) -> None:
        ex.raw((FIXTURES / fixture).read_bytes())
        ex.conn.close()

    srv.route("POST", "/chat/completions")(replay)
    write_config(local_config(openrouter=srv.url))
    return srv


@pytest.mark.parametrize(
    ("fixture", "cost", "flag"),
    [
        ("openrouter-comments-trailing-usage.http", 0.0012, []),
        ("openrouter-keepalive-json.http", 0.00042, ["--no-stream"]),
    ],
)
def test_openrouter_reported_cost_is_recorded(server, write_config, cli, fixture, cost, flag):
    recorded_openrouter(server, write_config, fixture)
    proc = cli("chat", "-p", "openrouter", "-m", "openrouter:x-ai/grok-x", *flag, "--key", KEY, "Hi")
    assert proc.exit_code == 0, proc.stderr
    [row] = cli("history", "list", "--json").json()
    assert (row["cost"], row["cost_source"]) == (cost, "reported")


def priced(server, write_config, prices: dict | None):
    srv = server()
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    srv.route("POST", "/v1/chat/completions")(stream_words(["ok"], model="paid/model", usage=usage))
    # A key makes it a priced endpoint even on loopback (a keyless one on this machine costs nothing).
    write_config(
        local_config(
            extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\nkey_env = "LOCAL_KEY"\n'
        )
    )
    if prices is not None:
        spend.store_prices("local", prices)
    return srv


def test_price_list_times_tokens(server, write_config, cli):
    priced(server, write_config, {"paid/model": {"prompt": 0.000001, "completion": 0.000002}})
    assert cli("chat", "-m", "local:paid/model", "Hi", env={"LOCAL_KEY": "k" * 20}).exit_code == 0
    [row] = cli("history", "list", "--json").json()
    assert row["cost_source"] == "price list"
    assert row["cost"] == pytest.approx(1000 * 0.000001 + 500 * 0.000002)


def test_unknown_price_is_unknown_never_guessed(server, write_config, cli):
    priced(server, write_config, {"other/model": {"prompt": 0.1, "completion": 0.1}})
    assert cli("chat", "-m", "local:paid/model", "Hi", env={"LOCAL_KEY": "k" * 20}).exit_code == 0
    [row] = cli("history", "list", "--json").json()
    assert (row["cost"], row["cost_source"]) == (None, None)
    assert "unknown" in cli("history", "list").stdout
    report = cli("usage", "--json").json()
    assert report["total"]["unknown_cost_requests"] == 1 and report["total"]["cost"] == 0
    assert "1 unknown" in cli("usage").stdout


def test_price_lists_are_read_from_openrouter_and_hf_shapes():
    openrouter = {"data": [{"id": "a", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}, {"id": "b"}]}
    assert spend.prices_from_list(openrouter) == {"a": {"prompt": 0.000001, "completion": 0.000002}}
    hf = {
        "data": [
            {
                "id": "same",
                "providers": [{"pricing": {"input": 1, "output": 2}}, {"pricing": {"input": 1, "output": 2}}],
            },
            {
                "id": "differ",
                "providers": [{"pricing": {"input": 1, "output": 2}}, {"pricing": {"input": 3, "output": 4}}],
            },
        ]
    }
    found = spend.prices_from_list(hf)
    assert found["same"]["prompt"] == pytest.approx(1e-6) and found["same"]["completion"] == pytest.approx(2e-6)
    assert "prompt" not in found["differ"]  # the offers disagree: no price shown as fact
    assert found["differ"]["worst_completion"] == pytest.approx(4e-6)


def test_refresh_prices_reads_the_providers_model_list(server, write_config, cli):
    srv = server()
    srv.route("GET", "/models")(
        lambda ex: ex.reply(
            200,
            {
                "data": [
                    {
                        "id": "meta-llama/llama-3.2-3b-instruct",
                        "pricing": {"prompt": "0.00000002", "completion": "0.00000004"},
                    }
                ]
            },
        )
    )
    write_config(local_config(openrouter=srv.url))
    proc = cli("usage", "--refresh-prices", env={"OPENROUTER_API_KEY": KEY})
    assert proc.exit_code == 0, proc.stderr
    assert "openrouter: 1 prices" in proc.stderr
    assert spend.cached_price("openrouter", "meta-llama/llama-3.2-3b-instruct").completion == pytest.approx(4e-8)
    assert srv.requests[0].headers.get("authorization") == f"Bearer {KEY}"


def add(**kw) -> None:
    kw.setdefault("conversation", "c")
    kw.setdefault("prompt", "p")
    kw.setdefault("reply", "r")
    kw.setdefault("outcome", "complete")
    with history.Store() as store:
        store.add(history.Entry(**kw))


def test_usage_groups_and_saved_by_running_locally(write_config, cli):
    write_config(local_config(exo="http://127.0.0.1:9", openrouter="http://127.0.0.1:9"))
    JsonCache("prices").put(
        "openrouter", {"meta-llama/llama-3.2-3b-instruct": {"prompt": 0.00001, "completion": 0.00002}}
    )
    day = 86400
    now = time.time()
    add(
        provider="exo",
        requested_model="llama-3.2-3b",
        served_model="llama-3.2-3b",
        prompt_tokens=100,
        completion_tokens=50,
        cost=0.0,
        cost_source="free",
        ts=now - 2 * day,
    )
    add(
        provider="exo",
        requested_model="qwen-unknown",
        prompt_tokens=10,
        completion_tokens=10,
        cost=0.0,
        cost_source="free",
        ts=now,
    )
    add(
        provider="openrouter",
        requested_model="llama-3.2-3b",
        prompt_tokens=10,
        completion_tokens=10,
        cost=0.25,
        cost_source="reported",
        ts=now,
    )
    add(provider="openrouter", requested_model="old", cost=9.0, cost_source="reported", ts=now - 40 * day)
    report = cli("usage", "--json").json()  # default: the last 30 days
    assert report["total"]["requests"] == 3 and report["total"]["cost"] == pytest.approx(0.25)
    by_provider = {g["key"]: g for g in report["groups"]}
    assert by_provider["exo"]["requests"] == 2 and by_provider["openrouter"]["cost"] == pytest.approx(0.25)
    saved = report["saved_by_running_locally"]
    assert saved["usd"] == pytest.approx(100 * 0.00001 + 50 * 0.00002)
    assert (saved["local_requests"], saved["priced_requests"]) == (2, 1)
    assert saved["price_date"] == time.strftime("%Y-%m-%d") and saved["priced_at"] == "openrouter"
    assert next(g["key"] for g in cli("usage", "--by", "model", "--json").json()["groups"]) == "llama-3.2-3b"
    days = cli("usage", "--by", "day", "--since", "3d", "--json").json()["groups"]
    assert len(days) == 2
    assert cli("usage", "--since", "60d", "--json").json()["total"]["requests"] == 4
    shown = cli("usage", io=IOStreams.test(tty=True)).stdout
    assert "saved by running locally: $0.00" in shown and "█" in shown and time.strftime("%Y-%m-%d") in shown
    assert "█" not in cli("usage").stdout  # bars only on a terminal
    assert cli("usage", "--by", "week").exit_code == 2


def test_usage_with_no_history(cli):
    proc = cli("usage", "--json")
    assert proc.exit_code == 0 and proc.json()["total"]["requests"] == 0
    assert "nothing yet" in cli("usage").stdout


# --- price lists cached from reads exobridge makes anyway, and read by usage itself when it needs them --------

LLAMA_OR = "meta-llama/llama-3.2-3b-instruct"
OR_LIST = {"data": [{"id": LLAMA_OR, "pricing": {"prompt": "0.00001", "completion": "0.00002"}}]}


def list_server(server, body: dict | None, path: str = "/models"):
    srv = server()
    srv.route("GET", path)(lambda ex: ex.reply(200, body) if body is not None else ex.reply(500, {"error": "down"}))
    return srv


def model_list_gets(srv, path: str = "/models") -> int:
    return sum(1 for r in srv.requests if r.method == "GET" and r.path.split("?")[0] == path)


def test_models_refresh_caches_the_prices_of_the_same_read(server, write_config, cli):
    srv = list_server(server, OR_LIST)
    write_config(local_config(openrouter=srv.url))
    assert spend.cached_price("openrouter", LLAMA_OR) is None
    proc = cli("models", "--refresh", "-p", "openrouter", "--json", env={"OPENROUTER_API_KEY": KEY})
    assert proc.exit_code == 0, proc.stderr
    assert model_list_gets(srv) == 1  # one request: the list and its prices
    price = spend.cached_price("openrouter", LLAMA_OR)
    assert price is not None and price.completion == pytest.approx(0.00002)


def test_providers_status_caches_the_prices_of_a_model_list_it_reads(server, write_config, cli):
    hf_list = {"data": [{"id": "org/m", "providers": [{"pricing": {"input": 1, "output": 3}}]}]}
    srv = list_server(server, hf_list, "/v1/models")
    write_config(local_config(huggingface=f"{srv.url}/v1"))
    proc = cli("providers", "status", "--json", env={"HF_TOKEN": "hf_" + "x" * 30})
    assert proc.exit_code == 0, proc.stderr
    assert model_list_gets(srv, "/v1/models") == 1
    price = spend.cached_price("huggingface", "org/m")
    assert price is not None and price.prompt == pytest.approx(1e-6) and price.completion == pytest.approx(3e-6)


def local_requests() -> None:
    add(
        provider="exo",
        requested_model="llama-3.2-3b",
        prompt_tokens=100,
        completion_tokens=50,
        cost=0.0,
        cost_source="free",
    )


def test_usage_reads_a_missing_price_list_itself_once(server, write_config, cli):
    srv = list_server(server, OR_LIST)
    write_config(local_config(exo="http://127.0.0.1:9", openrouter=srv.url))
    local_requests()
    proc = cli("usage", "--json")
    assert proc.exit_code == 0 and proc.stderr == ""
    saved = proc.json()["saved_by_running_locally"]
    assert saved["usd"] == pytest.approx(100 * 0.00001 + 50 * 0.00002) and saved["priced_requests"] == 1
    assert model_list_gets(srv) == 1
    assert cli("usage", "--json").json()["saved_by_running_locally"]["priced_requests"] == 1
    assert model_list_gets(srv) == 1  # the cached list is fresh: not read again
    JsonCache("prices").put("openrouter", {})  # a fresh list without the model: still not read again
    assert cli("usage", "--json").json()["saved_by_running_locally"]["priced_requests"] == 0
    assert model_list_gets(srv) == 1


def test_usage_reads_a_price_list_older_than_a_day_again(server, write_config, cli, monkeypatch):
    srv = list_server(server, OR_LIST)
    write_config(local_config(exo="http://127.0.0.1:9", openrouter=srv.url))
    local_requests()
    JsonCache("prices").put("openrouter", {})
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + spend.PRICE_MAX_AGE + 60)
    assert cli("usage", "--json").json()["saved_by_running_locally"]["priced_requests"] == 1
    assert model_list_gets(srv) == 1


def test_a_price_list_usage_cannot_read_is_one_notice_once_a_day(server, write_config, cli):
    srv = list_server(server, None)
    write_config(local_config(exo="http://127.0.0.1:9", openrouter=srv.url))
    local_requests()
    proc = cli("usage")
    assert proc.exit_code == 0
    [line] = proc.stderr.splitlines()
    assert line.startswith("exobridge: could not read openrouter's price list (") and "500" in line
    assert "saved by running locally: unknown" in proc.stdout
    again = cli("usage")
    assert again.exit_code == 0 and again.stderr == "" and model_list_gets(srv) == 1


def test_usage_reads_no_price_list_when_nothing_needs_one(server, write_config, cli):
    srv = list_server(server, OR_LIST)
    write_config(local_config(exo="http://127.0.0.1:9", openrouter=srv.url))
    add(provider="openrouter", requested_model="llama-3.2-3b", cost=0.1, cost_source="reported")
    assert cli("usage", "--json").exit_code == 0  # no local request to price
    add(provider="exo", requested_model="no-cloud-twin", prompt_tokens=1, completion_tokens=1, cost_source="free")
    assert cli("usage", "--json").exit_code == 0  # a local request with no cloud equivalent: no price could help
    assert model_list_gets(srv) == 0
    write_config(local_config(exo="http://127.0.0.1:9"))  # openrouter disabled
    local_requests()
    proc = cli("usage", "--json")
    assert proc.exit_code == 0 and proc.stderr == ""
    assert proc.json()["saved_by_running_locally"]["priced_requests"] == 0
    assert model_list_gets(srv) == 0
