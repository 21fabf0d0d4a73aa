"""core/model_lists: the one model-list fetch and cache, against real loopback servers.

Hostile servers (issue 9, defects 1 and 2): a list that drips one byte a second, an endless body and a gzip
bomb end the read at its deadline or cap. One cache (issue 8): what `exobridge models --refresh` reads is what
the router's Exo model check uses, and the other way round.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exobridge.core import config as config_mod
from exobridge.core import model_lists
from exobridge.core.cache import JsonCache
from exobridge.core.errors import Failure, FailureKind
from exobridge.core.model_lists import ListStatus
from tests.loopback import BlackHole, Exchange, LoopbackServer, closed_port, exo_models

CANARY = "sk-or-v1-CANARYmodellist0123456789abcdef"


def make_config(providers: dict[str, dict[str, Any]]) -> config_mod.Config:
    raw: dict[str, Any] = {"providers": {name: {"enabled": False} for name in ("exo", "openrouter", "huggingface")}}
    raw["providers"].update(providers)
    return config_mod.build(raw, Path("test.toml"), env={})


def exo_config(*urls: str, **extra: Any) -> config_mod.Config:
    where = {"urls": list(urls)} if len(urls) > 1 else {"url": urls[0]}
    return make_config({"exo": {"enabled": True, **where, **extra}})


def read(cfg: config_mod.Config, *names: str, **options: Any) -> list[model_lists.ProviderModels]:
    """The lists of the named providers (the disabled built-ins are left out)."""
    by_name = {r.name: r for r in model_lists.provider_lists(cfg, **options)}
    return [by_name[name] for name in names]


def legacy_exo(srv: LoopbackServer, *ids: str) -> None:
    srv.route("GET", "/v1/models")(exo_models(*ids))


def v1_exo(srv: LoopbackServer, listed: list[str], placed: list[str]) -> None:
    srv.route("GET", "/v1/models")(exo_models(*listed))
    instances = {
        f"i{n}": {"MlxRingInstance": {"shardAssignments": {"modelId": model}}} for n, model in enumerate(placed)
    }
    srv.route("GET", "/state")(lambda ex: ex.reply(200, {"instances": instances, "topology": {"nodes": {}}}))


def dripping(ex: Exchange) -> None:
    """200, headers, then a JSON body one byte at a time, for ever."""
    ex.head(200, {"Content-Type": "application/json", "Content-Length": "100000000"})
    ex.drip(b'{"data": [' + b" " * 1000, every=0.05, forever=True)


def endless(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json"})  # no length: the body ends when the server closes
    ex.raw(b'{"data": [')
    ex.flood(b'{"id": "m"}, ' * 4096)


GZIP_BOMB = gzip.compress(b'{"data": [' + b" " * (64 * 1024 * 1024) + b"]}", compresslevel=9)


def gzip_bomb(ex: Exchange) -> None:
    ex.head(
        200, {"Content-Type": "application/json", "Content-Encoding": "gzip", "Content-Length": str(len(GZIP_BOMB))}
    )
    ex.raw(GZIP_BOMB)


# --- one list ---------------------------------------------------------------------------------------------


def test_an_openai_list_is_parsed_by_the_kind_and_cached(server):
    srv = server()
    srv.route("GET", "/models")(
        lambda ex: ex.reply(
            200,
            {
                "data": [
                    {"id": "free/one", "pricing": {"prompt": "0", "completion": "0"}, "context_length": 8192},
                    {"id": "paid/two", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
                    {"no id": True},
                ]
            },
        )
    )
    cfg = make_config({"openrouter": {"enabled": True, "url": srv.url}})
    [result] = read(cfg, "openrouter", refresh=True)
    assert (result.status, result.cached) == (ListStatus.OK, False)
    assert result.models == [
        {"id": "free/one", "free": True, "context_length": 8192},
        {"id": "paid/two", "free": False},
    ]
    assert result.to_json()["status"] == "ok"
    [again] = read(cfg, "openrouter")
    assert (again.cached, again.models, again.url) == (True, result.models, srv.url)
    assert srv.paths() == ["GET /models"]  # the second answer came from the cache


def test_v1_exo_marks_placed_models_and_adds_placed_ones_it_does_not_list(server):
    srv = server()
    v1_exo(srv, ["a", "b"], placed=["b", "c"])
    [result] = read(exo_config(srv.url), "exo", refresh=True)
    assert result.line == "v1"
    assert result.models == [
        {"id": "a", "free": True, "placed": False, "placed_nodes": 0},
        {"id": "b", "free": True, "placed": True, "placed_nodes": 1},
        {"id": "c", "free": True, "placed": True, "placed_nodes": 1},
    ]


def test_each_exo_node_in_turn_until_one_answers(server):
    alive = server()
    legacy_exo(alive, "llama-3.2-3b")
    [result] = read(exo_config(f"http://127.0.0.1:{closed_port()}", alive.url), "exo", refresh=True)
    assert (result.status, result.url, result.line) == (ListStatus.OK, alive.url, "legacy")


@pytest.mark.timeout(20)
def test_a_list_that_drips_ends_at_its_deadline_and_the_other_provider_is_still_read(server):
    drip, fine = server(), server()
    drip.route("GET", "/v1/models")(dripping)
    legacy_exo(fine, "x")
    cfg = make_config(
        {
            "exo": {"enabled": True, "url": drip.url, "first_token_timeout": 0.5},
            "mine": {"kind": "openai", "url": fine.url + "/v1", "priority": 5},
        }
    )
    exo, mine = read(cfg, "exo", "mine", refresh=True)
    assert (exo.status, exo.reason, exo.failure_kind) == (
        ListStatus.UNREACHABLE,
        "no reply within 0.5 s",
        FailureKind.FIRST_TOKEN_TIMEOUT,
    )
    assert mine.status is ListStatus.OK


@pytest.mark.timeout(30)
@pytest.mark.parametrize("handler", [endless, gzip_bomb], ids=["endless", "gzip-bomb"])
def test_a_list_past_the_cap_is_a_bad_response(server, handler):
    srv = server()
    srv.route("GET", "/models")(handler)
    cfg = make_config({"huggingface": {"enabled": True, "url": srv.url}})
    [result] = read(cfg, "huggingface", refresh=True)
    assert result.status is ListStatus.UNREACHABLE
    assert result.failure_kind is FailureKind.BAD_RESPONSE
    assert "larger than 8 MiB" in (result.reason or "")
    assert JsonCache("models").get("huggingface", 60) is None  # nothing cached from a failed read


def test_an_error_body_echoing_the_key_leaks_no_piece_of_it(server, monkeypatch):
    srv = server()
    body = {"error": {"message": "x" * 250 + f" Bearer {CANARY}", "code": 401}}
    srv.route("GET", "/models")(lambda ex: ex.reply(401, body))
    monkeypatch.setenv("OPENROUTER_API_KEY", CANARY)
    cfg = make_config({"openrouter": {"enabled": True, "url": srv.url}})
    [result] = read(cfg, "openrouter", refresh=True)
    assert result.failure_kind is FailureKind.AUTH
    text = json.dumps(result.to_json())
    assert not any(CANARY[i : i + 8] in text for i in range(2, len(CANARY) - 7))  # beyond the public prefix
    assert srv.requests[0].headers["authorization"] == f"Bearer {CANARY}"


def test_a_disabled_provider_is_not_asked_unless_named(server):
    srv = server()
    legacy_exo(srv, "x")
    cfg = make_config({"exo": {"enabled": False, "url": srv.url}})
    [result] = read(cfg, "exo", refresh=True)
    assert result.status is ListStatus.DISABLED and srv.requests == []
    [result] = model_lists.provider_lists(cfg, only=["exo"], refresh=True)
    assert result.status is ListStatus.OK


# --- the router's Exo check and the shared cache ----------------------------------------------------------


def test_the_router_check_reads_once_and_models_shows_what_it_read(server):
    srv = server()
    legacy_exo(srv, "llama-3.2-3b")
    cfg = exo_config(srv.url)
    provider = cfg.providers["exo"]
    assert model_lists.node_model_ids(provider, srv.url, None) == ["llama-3.2-3b"]
    assert model_lists.node_model_ids(provider, srv.url, None) == ["llama-3.2-3b"]
    assert srv.paths() == ["GET /v1/models"]
    [listed] = read(cfg, "exo")
    assert (listed.cached, [m["id"] for m in listed.models]) == (True, ["llama-3.2-3b"])


def test_models_refresh_refreshes_what_the_router_believes(server):
    srv = server()
    legacy_exo(srv, "old-model")
    cfg = exo_config(srv.url)
    provider = cfg.providers["exo"]
    assert model_lists.node_model_ids(provider, srv.url, None) == ["old-model"]
    legacy_exo(srv, "new-model")
    assert model_lists.node_model_ids(provider, srv.url, None) == ["old-model"]  # cached for ROUTER_TTL
    model_lists.provider_lists(cfg, refresh=True)  # what `exobridge models --refresh` does
    asked = len(srv.requests)
    assert model_lists.node_model_ids(provider, srv.url, None) == ["new-model"]
    assert len(srv.requests) == asked  # from the refreshed cache, no new request


def test_the_router_check_keeps_placed_marks_and_is_per_node(server):
    one, two = server(), server()
    v1_exo(one, ["a", "b"], placed=["b"])
    legacy_exo(two, "z")
    cfg = exo_config(one.url, two.url)
    provider = cfg.providers["exo"]
    model_lists.provider_lists(cfg, refresh=True)  # the provider's list comes from node one
    assert model_lists.node_model_ids(provider, two.url, None) == ["z"]  # another node: read, not the cache
    asked = (len(one.requests), len(two.requests))
    assert model_lists.node_model_ids(provider, one.url, None) == ["a", "b"]
    assert model_lists.node_model_ids(provider, two.url, None) == ["z"]  # the two nodes do not evict each other
    assert (len(one.requests), len(two.requests)) == asked
    [listed] = read(cfg, "exo")
    assert (listed.url, listed.line) == (one.url, "v1")
    assert {m["id"]: m.get("placed") for m in listed.models} == {"a": False, "b": True}
    # A re-read of node one by the router keeps what the fuller read knew (the line, the placed marks).
    assert model_lists.node_model_ids(provider, one.url, None, max_age=0) == ["a", "b"]
    [listed] = read(cfg, "exo")
    assert listed.line == "v1" and {m["id"]: m.get("placed") for m in listed.models} == {"a": False, "b": True}
    # `models --refresh` forgets what the router remembered of node two: it is read again.
    legacy_exo(two, "y")
    model_lists.provider_lists(cfg, refresh=True)
    assert model_lists.node_model_ids(provider, two.url, None) == ["y"]


def test_the_router_check_without_a_usable_list_sends_anyway(server):
    srv = server()
    srv.route("GET", "/v1/models")(lambda ex: ex.reply(404, {"detail": "Not Found"}))
    provider = exo_config(srv.url).providers["exo"]
    assert model_lists.node_model_ids(provider, srv.url, None) is None
    srv.route("GET", "/v1/models")(lambda ex: ex.reply(200, "<html>not json</html>", "text/html"))
    assert model_lists.node_model_ids(provider, srv.url, None) is None


@pytest.mark.timeout(20)
def test_the_router_check_of_a_dripping_node_fails_at_its_deadline(server):
    srv = server()
    srv.route("GET", "/v1/models")(dripping)
    provider = exo_config(srv.url, first_token_timeout=0.5).providers["exo"]
    with pytest.raises(Failure) as caught:
        model_lists.node_model_ids(provider, srv.url, None)
    assert caught.value.kind is FailureKind.FIRST_TOKEN_TIMEOUT


@pytest.mark.timeout(20)
def test_the_router_check_of_a_black_hole_or_a_dead_node_fails_over():
    with BlackHole() as hole:
        provider = exo_config(hole.url, first_token_timeout=0.5).providers["exo"]
        with pytest.raises(Failure) as caught:
            model_lists.node_model_ids(provider, hole.url, None)
        assert caught.value.kind is FailureKind.FIRST_TOKEN_TIMEOUT
    dead = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(Failure) as caught:
        model_lists.node_model_ids(exo_config(dead).providers["exo"], dead, None)
    assert (caught.value.kind, caught.value.reason) == (FailureKind.CONNECT, "connection refused")


@pytest.mark.timeout(30)
def test_the_router_check_of_an_endless_list_fails_as_a_bad_response(server):
    srv = server()
    srv.route("GET", "/v1/models")(endless)
    provider = exo_config(srv.url).providers["exo"]
    with pytest.raises(Failure) as caught:
        model_lists.node_model_ids(provider, srv.url, None)
    assert caught.value.kind is FailureKind.BAD_RESPONSE


def test_a_new_kind_free_or_not_decides_is_free():
    cfg = exo_config("http://127.0.0.1:1")
    assert model_lists.is_free(cfg.providers["exo"], None)
    cfg = make_config({"openrouter": {"enabled": True}})
    assert not model_lists.is_free(cfg.providers["openrouter"], {"id": "x"})
    assert model_lists.is_free(cfg.providers["openrouter"], {"id": "x", "free": True})


# --- whatever a server or a file holds: never an exception ------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
MODEL_ID = st.fixed_dictionaries({"modelId": JSON})
STATE = st.fixed_dictionaries(
    {},
    optional={
        "instances": st.dictionaries(
            st.text(max_size=4),
            JSON
            | st.fixed_dictionaries(
                {
                    "MlxRingInstance": st.fixed_dictionaries(
                        {"shardAssignments": st.fixed_dictionaries({"modelId": JSON})}
                    )
                }
            ),
            max_size=3,
        ),
        "topology": JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=JSON | STATE, listed=st.lists(st.text(min_size=1, max_size=8), max_size=4))
def test_any_cluster_state_marks_models_without_raising(state: Any, listed: list[str]) -> None:
    from exobridge.core import provider_status

    placed = provider_status.state_placed_models(state)
    assert all(isinstance(model, str) for model in placed)
    count = provider_status.state_node_count(state)
    assert count is None or count >= 0
    result = model_lists.ProviderModels("exo", "exo", "http://n", ListStatus.OK, [{"id": i} for i in listed])
    model_lists._mark_placed(result, state, placed)
    assert result.line in ("v1", "legacy")
    assert {m["id"] for m in result.models} >= set(listed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | JSON.map(lambda value: json.dumps(value).encode()))
def test_any_cache_file_reads_as_a_value_or_nothing(raw: bytes) -> None:
    cache = JsonCache(model_lists.CACHE_NAME)
    cache.path.parent.mkdir(mode=0o700, exist_ok=True)
    cache.path.write_bytes(raw)
    cache.path.chmod(0o600)
    cache.get("exo", 3600)  # any value or nothing, never an exception
    cached = model_lists._cached(make_config({"exo": {"enabled": True, "url": "http://n"}}).providers["exo"], 3600)
    assert cached is None or all(isinstance(m.get("id"), str) for m in cached.models)


def test_fetch_list_asks_once_and_caches_nothing(server):
    srv = server()
    srv.route("GET", "/models")(lambda ex: ex.reply(200, {"data": [{"id": "a"}, {"id": "b"}]}))
    provider = make_config({"lab": {"kind": "openai", "url": srv.url}}).providers["lab"]
    assert [m["id"] for m in model_lists.fetch_list(provider, srv.url, None, seconds=5)] == ["a", "b"]
    assert srv.paths() == ["GET /models"] and JsonCache(model_lists.CACHE_NAME).get("lab", 60) is None
    srv.route("GET", "/models")(lambda ex: ex.reply(200, {"object": "not a list"}))
    with pytest.raises(Failure) as caught:
        model_lists.fetch_list(provider, srv.url, None, seconds=5)
    assert (caught.value.kind, caught.value.reason) == (FailureKind.BAD_RESPONSE, "the model list has an unknown shape")
    srv.route("GET", "/models")(lambda ex: ex.reply(401, {"error": f"bad key {CANARY}"}))
    with pytest.raises(Failure) as caught:
        model_lists.fetch_list(provider, srv.url, CANARY, seconds=5)
    assert caught.value.kind is FailureKind.AUTH and CANARY[10:18] not in caught.value.reason


def test_a_list_read_is_bounded_by_the_kind_and_the_first_token_timeout():
    from exobridge.core import http as http_mod

    cfg = make_config(
        {
            "exo": {"enabled": True, "url": "http://127.0.0.1:1"},
            "slow": {"kind": "exo", "url": "http://127.0.0.1:1", "first_token_timeout": 2},
            "cloud": {"kind": "openai", "url": "http://127.0.0.1:1"},
            "quick": {"kind": "openai", "url": "http://127.0.0.1:1", "first_token_timeout": 0.5},
        }
    )
    with http_mod.client() as http:
        bounds = {name: model_lists._Reader(cfg.providers[name], None, http).list_seconds() for name in cfg.providers}
    assert (bounds["exo"], bounds["slow"], bounds["cloud"], bounds["quick"]) == (5.0, 2.0, 15.0, 0.5)
