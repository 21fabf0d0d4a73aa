"""The failover table, row by row, against real loopback servers (in-process Router)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from exobridge.core import config as config_mod
from exobridge.core import model_targets, routing
from exobridge.core.routing import ChatRequest, Router
from tests.loopback import BlackHole, Exchange, FullBacklog, chunk, closed_port, exo_models, stream_words


def make_config(providers: dict[str, dict[str, Any]], models: dict[str, Any] | None = None) -> config_mod.Config:
    raw: dict[str, Any] = {"providers": {}}
    for name in ("exo", "openrouter", "huggingface"):
        raw["providers"][name] = {"enabled": False}
    raw["providers"].update(providers)
    if models:
        raw["models"] = models
    return config_mod.build(raw, Path("test.toml"), env={})


class Recorder:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.ended: list[tuple[Any, Any]] = []

    def text(self, piece: str) -> None:
        self.pieces.append(piece)

    def attempt_started(self, target: Any, url: str, model: str) -> None:
        pass

    def attempt_ended(self, attempt: Any, decision: Any) -> None:
        self.ended.append((attempt, decision))


def route(
    cfg: config_mod.Config,
    model: str = "m",
    stream: bool = True,
    keys: dict[str, str] | None = None,
    sleeps: list[float] | None = None,
    **request: Any,
):
    recorder = Recorder()
    router = Router(
        cfg, cli_keys=keys, observer=recorder, sleep=(sleeps.append if sleeps is not None else (lambda s: None))
    )
    result = router.run(
        ChatRequest(messages=[{"role": "user", "content": "Hi"}], model=model, stream=stream, **request),
        model_targets.targets(model, cfg),
    )
    return result, recorder


def two_providers(first_url: str, second_url: str, **first: Any) -> config_mod.Config:
    return make_config(
        {
            "first": {"kind": "openai", "url": first_url, "priority": 0, **first},
            "second": {"kind": "openai", "url": second_url, "priority": 1},
        }
    )


def test_answers_from_first_provider_and_streams_text(server, backup):
    first = server()
    first.route("POST", "/chat/completions")(stream_words(["Hello", ", ", "world"], model="m"))
    result, rec = route(two_providers(first.url, backup.url))
    assert result.exit_code == 0
    assert rec.pieces == ["Hello", ", ", "world"]
    assert result.provider == "first"
    assert backup.requests == []


def test_a_long_stream_keeps_every_piece_in_order(server, backup):
    """The router joins kept pieces into blocks as they come (routing.TEXT_BLOCK): the text is still whole."""
    words = [f"w{i} " for i in range(3 * routing.TEXT_BLOCK + 7)]
    first = server()
    first.route("POST", "/chat/completions")(stream_words(words, model="m"))
    result, rec = route(two_providers(first.url, backup.url))
    assert result.text == "".join(words) and rec.pieces == words


def test_connection_refused_fails_over(backup):
    result, _ = route(two_providers(f"http://127.0.0.1:{closed_port()}", backup.url))
    assert result.provider == "second"
    assert result.attempts[0].outcome == "failed"
    assert "refused" in result.attempts[0].reason
    assert result.attempts[0].kind == "connect"


def test_dns_failure_fails_over(backup):
    result, _ = route(two_providers("http://no-such-host.invalid", backup.url))
    assert result.provider == "second"
    assert result.attempts[0].kind == "connect"


def test_connect_timeout_fails_over(backup):
    with FullBacklog() as unreachable:
        result, _ = route(two_providers(unreachable.url, backup.url, connect_timeout=0.3))
    assert result.provider == "second"
    assert result.attempts[0].kind == "connect"
    assert result.attempts[0].reason == "connect timeout after 0.3 s"
    assert result.attempts[0].ms < 2000


def test_no_first_token_in_time_fails_over_despite_keepalives(server, backup):
    stalled = server()
    done = threading.Event()

    @stalled.route("POST", "/chat/completions")
    def keepalive_forever(ex: Exchange) -> None:
        ex.start_stream()
        ex.comment("keep-alive")
        ex.event(chunk(role=True))  # role-only: not a token
        while not ex.server.released.wait(0.05):
            try:
                ex.comment("keep-alive")
            except OSError:
                break
        done.set()

    result, rec = route(two_providers(stalled.url, backup.url, first_token_timeout=0.6))
    assert result.provider == "second"
    assert result.attempts[0].kind == "first_token_timeout"
    assert rec.pieces == ["from ", "backup"]


def test_silent_server_times_out_on_first_token(server, backup):
    stalled = server()
    stalled.route("POST", "/chat/completions")(lambda ex: ex.stall())
    result, _ = route(two_providers(stalled.url, backup.url, first_token_timeout=0.5))
    assert result.provider == "second"
    assert result.attempts[0].kind == "first_token_timeout"


def test_black_holed_server_costs_the_first_token_timeout_then_fails_over(backup):
    with BlackHole() as hole:
        result, _ = route(two_providers(hole.url, backup.url, first_token_timeout=0.5))
    assert result.provider == "second"
    assert result.attempts[0].kind == "first_token_timeout"


def test_reset_before_first_token_fails_over(server, backup):
    broken = server()

    @broken.route("POST", "/chat/completions")
    def reset(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk(role=True))
        ex.reset()

    result, _ = route(two_providers(broken.url, backup.url))
    assert result.provider == "second"
    assert result.attempts[0].kind == "stream_broken"


def test_inband_error_before_first_token_fails_over(server, backup):
    broken = server()

    @broken.route("POST", "/chat/completions")
    def inband(ex: Exchange) -> None:
        ex.start_stream()
        ex.comment("OPENROUTER PROCESSING")
        ex.event(chunk("", role=True))
        ex.event(
            {
                "error": {"code": "server_error", "message": "upstream died"},
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            }
        )
        ex.event("[DONE]")
        ex.end()

    result, rec = route(two_providers(broken.url, backup.url))
    assert result.provider == "second"
    assert "upstream died" in result.attempts[0].reason
    assert rec.pieces == ["from ", "backup"]


def test_error_after_first_token_stops_and_keeps_partial_text(server, backup):
    broken = server()

    @broken.route("POST", "/chat/completions")
    def inband(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Partial "))
        ex.event({"error": {"code": 502, "message": "provider crashed"}})
        ex.end()

    result, rec = route(two_providers(broken.url, backup.url))
    assert result.exit_code == 5
    assert rec.pieces == ["Partial "]
    assert backup.requests == []
    assert "provider crashed" in result.error


def test_reset_after_first_token_exits_5(server, backup):
    broken = server()

    @broken.route("POST", "/chat/completions")
    def reset(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Half"))
        ex.reset()

    result, rec = route(two_providers(broken.url, backup.url))
    assert result.exit_code == 5
    assert rec.pieces == ["Half"]
    assert backup.requests == []


def test_idle_timeout_after_first_token_exits_5(server, backup):
    broken = server()

    @broken.route("POST", "/chat/completions")
    def stall_midway(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Half"))
        ex.stall()

    cfg = make_config(
        {
            "first": {"kind": "openai", "url": broken.url, "idle_timeout": 0.4},
            "second": {"kind": "openai", "url": backup.url, "priority": 5},
        }
    )
    result, _ = route(cfg)
    assert result.exit_code == 5
    assert result.attempts[0].kind == "idle_timeout"


@pytest.mark.parametrize("status", [401, 403, 402])
def test_auth_and_credit_errors_fail_over_without_retry(server, backup, status):
    bad = server()
    bad.route("POST", "/chat/completions")(lambda ex: ex.reply(status, {"error": {"code": status, "message": "nope"}}))
    result, _ = route(two_providers(bad.url, backup.url))
    assert result.provider == "second"
    assert len(bad.requests) == 1
    assert result.attempts[0].status == status


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_server_errors_retry_once_then_fail_over(server, backup, status):
    bad = server()
    bad.route("POST", "/chat/completions")(lambda ex: ex.reply(status, {"error": "busy"}))
    sleeps: list[float] = []
    result, _ = route(two_providers(bad.url, backup.url), sleeps=sleeps)
    assert result.provider == "second"
    assert len(bad.requests) == 2
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 1


def test_server_error_then_success_on_retry(server, backup):
    flaky = server()
    calls = []

    @flaky.route("POST", "/chat/completions")
    def once_bad(ex: Exchange) -> None:
        calls.append(1)
        if len(calls) == 1:
            ex.reply(502, "<html>Bad gateway</html>", "text/html")
        else:
            stream_words(["ok"])(ex)

    result, _ = route(two_providers(flaky.url, backup.url), sleeps=[])
    assert result.provider == "first"
    assert [a.outcome for a in result.attempts] == ["failed", "ok"]


def test_503_estimated_time_beyond_budget_fails_over_without_waiting(server, backup):
    loading = server()
    loading.route("POST", "/chat/completions")(
        lambda ex: ex.reply(503, {"error": "Model is currently loading", "estimated_time": 120.0})
    )
    sleeps: list[float] = []
    result, _ = route(two_providers(loading.url, backup.url), sleeps=sleeps)
    assert result.provider == "second"
    assert sleeps == []
    assert len(loading.requests) == 1


def test_429_with_short_retry_after_waits_it_and_retries_once(server, backup):
    limited = server()
    limited.route("POST", "/chat/completions")(
        lambda ex: ex.reply(429, {"error": {"code": 429, "message": "slow down"}}, headers={"Retry-After": "2"})
    )
    sleeps: list[float] = []
    result, _ = route(two_providers(limited.url, backup.url), sleeps=sleeps)
    assert sleeps == [2.0]
    assert len(limited.requests) == 2
    assert result.provider == "second"


def test_429_with_long_retry_after_fails_over_at_once(server, backup):
    limited = server()
    limited.route("POST", "/chat/completions")(
        lambda ex: ex.reply(429, {"error": "slow down"}, headers={"Retry-After": "30"})
    )
    sleeps: list[float] = []
    result, _ = route(two_providers(limited.url, backup.url), sleeps=sleeps)
    assert sleeps == []
    assert len(limited.requests) == 1
    assert result.provider == "second"


def test_context_length_400_fails_over(server, backup):
    short = server()
    short.route("POST", "/chat/completions")(
        lambda ex: ex.reply(
            400,
            {"error": {"code": "context_length_exceeded", "message": "This model's maximum context length is 8192"}},
        )
    )
    result, _ = route(two_providers(short.url, backup.url))
    assert result.provider == "second"


@pytest.mark.parametrize("status", [400, 413, 422])
def test_bad_request_stops_without_failover(server, backup, status):
    bad = server()
    bad.route("POST", "/chat/completions")(
        lambda ex: ex.reply(status, "Failed to deserialize the JSON body", "text/plain")
    )
    result, _ = route(two_providers(bad.url, backup.url))
    assert result.exit_code == 3
    assert backup.requests == []
    assert "Failed to deserialize" in result.error


@pytest.mark.parametrize(
    "body,ctype",
    [
        ("<html><body>Gateway</body></html>", "text/html"),
        ("{not json", "application/json"),
        ('{"unexpected": true}', "application/json"),
    ],
)
def test_garbage_in_a_200_fails_over(server, backup, body, ctype):
    bad = server()
    bad.route("POST", "/chat/completions")(lambda ex: ex.reply(200, body, ctype))
    result, _ = route(two_providers(bad.url, backup.url), stream=False)
    assert result.provider == "second"
    assert result.attempts[0].kind == "bad_response"


def test_404_model_not_found_fails_over(server, backup):
    missing = server()
    missing.route("POST", "/chat/completions")(
        lambda ex: ex.reply(
            404, {"error": {"message": "No instance found for model m", "type": "Not Found", "code": 404}}
        )
    )
    result, _ = route(two_providers(missing.url, backup.url))
    assert result.provider == "second"
    assert "No instance found" in result.attempts[0].reason


def test_redirect_is_not_followed(server, backup):
    moved = server()
    moved.route("POST", "/chat/completions")(
        lambda ex: ex.reply(307, "", headers={"Location": f"{backup.url}/elsewhere"})
    )
    result, _ = route(two_providers(moved.url, backup.url, key_env="FIRST_KEY"), keys={"first": "sk-first-secret"})
    assert result.provider == "second"
    assert all("elsewhere" not in r.path for r in backup.requests)


def test_non_streamed_reply(server):
    srv = server()
    srv.route("POST", "/chat/completions")(
        lambda ex: ex.reply(
            200, b"\n         \n" * 8 + b'{"model": "m", "choices": [{"message": {"content": "whole"}}]}'
        )
    )
    result, rec = route(make_config({"only": {"kind": "openai", "url": srv.url}}), stream=False)
    assert result.exit_code == 0
    assert rec.pieces == ["whole"]
    assert srv.requests[0].json()["stream"] is False


def test_nothing_answers_lists_every_attempt():
    cfg = make_config(
        {
            "first": {"kind": "openai", "url": f"http://127.0.0.1:{closed_port()}"},
            "cloud": {"kind": "openrouter", "url": "http://127.0.0.1:9/v1", "key_env": "NO_SUCH_KEY_VAR"},
        }
    )
    result, _ = route(cfg)
    assert result.exit_code == 3
    assert [(a.provider, a.outcome) for a in result.attempts] == [("first", "failed"), ("cloud", "skipped")]
    assert "no API key (set NO_SUCH_KEY_VAR)" in result.attempts[1].reason


# --- Exo specifics --------------------------------------------------------------------------------


def exo_config(*urls: str, backup_url: str | None = None) -> config_mod.Config:
    providers: dict[str, Any] = {"exo": {"enabled": True, "urls": list(urls), "connect_timeout": 2}}
    if backup_url:
        providers["cloud"] = {"kind": "openai", "url": backup_url, "priority": 5}
    return make_config(providers, models={"llama-3.2-3b": {"cloud": "meta-llama/llama-3.2-3b-instruct"}})


def test_exo_legacy_stream_without_done(server):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))

    @exo.route("POST", "/v1/chat/completions")
    def legacy(ex: Exchange) -> None:
        ex.start_stream()
        for word in ("dummy", "dummy"):
            ex.event(
                {
                    "object": "chat.completion",
                    "model": "llama-3.2-3b",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": word},
                            "delta": {"role": "assistant", "content": word},
                            "finish_reason": None,
                        }
                    ],
                }
            )
        ex.end()

    result, rec = route(exo_config(exo.url), model="llama-3.2-3b")
    assert result.exit_code == 0
    assert rec.pieces == ["dummy", "dummy"]
    assert result.cost == 0.0
    assert exo.requests[-1].json()["model"] == "llama-3.2-3b"


def test_exo_substituted_model_fails_over_before_printing(server, backup):
    exo = server()
    exo.route("GET", "/v1/models")(lambda ex: ex.reply(404, {"detail": "Not Found"}))
    exo.route("POST", "/v1/chat/completions")(stream_words(["wrong"], model="llama-3.2-1b", done=False))
    result, rec = route(exo_config(exo.url, backup_url=backup.url), model="gpt-4o")
    assert result.provider == "cloud"
    assert rec.pieces == ["from ", "backup"]
    assert "instead of gpt-4o" in result.attempts[0].reason


def test_exo_is_not_sent_a_model_missing_from_its_list(server, backup):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-1b", "llama-3.2-3b"))
    result, _ = route(exo_config(exo.url, backup_url=backup.url), model="gpt-4o")
    assert result.provider == "cloud"
    assert exo.paths() == ["GET /v1/models"]


def test_exo_v1_ids_are_chosen_from_the_node_list(server):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("mlx-community/Llama-3.2-3B-Instruct-4bit"))

    @exo.route("POST", "/v1/chat/completions")
    def v1(ex: Exchange) -> None:
        ex.start_stream()
        ex.comment("keep-alive")
        ex.comment("prefill_progress 0.5")
        ex.event(chunk("hi", model="mlx-community/Llama-3.2-3B-Instruct-4bit"))
        ex.event(
            chunk(
                model="mlx-community/Llama-3.2-3B-Instruct-4bit",
                finish="stop",
                usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            )
        )
        ex.event("[DONE]")
        ex.end()

    result, _rec = route(exo_config(exo.url), model="llama-3.2-3b")
    assert result.exit_code == 0
    assert exo.requests[-1].json()["model"] == "mlx-community/Llama-3.2-3B-Instruct-4bit"
    assert result.usage["completion_tokens"] == 1


def test_exo_tries_every_node_before_leaving_and_reports_the_node(server, backup):
    second = server()
    second.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    second.route("POST", "/v1/chat/completions")(stream_words(["node2"], model="llama-3.2-3b"))
    dead = f"http://127.0.0.1:{closed_port()}"
    result, _ = route(exo_config(dead, second.url, backup_url=backup.url), model="llama-3.2-3b")
    assert result.provider == "exo"
    assert result.url == second.url
    assert [a.url for a in result.attempts] == [dead, second.url]
    assert backup.requests == []


def test_exo_unsupported_model_400_fails_over(server, backup):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    exo.route("POST", "/v1/chat/completions")(
        lambda ex: ex.reply(
            400, {"detail": "Unsupported model: llama-3.2-3b with inference engine MLXDynamicShardInferenceEngine"}
        )
    )
    result, _ = route(exo_config(exo.url, backup_url=backup.url), model="llama-3.2-3b")
    assert result.provider == "cloud"


def test_cloud_dated_model_id_is_not_failed_over(server):
    cloud = server()
    cloud.route("POST", "/chat/completions")(stream_words(["fine"], model="gpt-4o-2024-08-06"))
    result, _ = route(
        make_config({"openrouter": {"enabled": True, "url": cloud.url}}),
        model="openai/gpt-4o",
        keys={"openrouter": "sk-or-v1-test"},
    )
    assert result.exit_code == 0
    assert result.model == "gpt-4o-2024-08-06"


def test_a_key_echoed_in_an_error_is_masked(server, backup):
    echo = server()
    echo.route("POST", "/chat/completions")(
        lambda ex: ex.reply(401, {"error": f"Invalid key {ex.request.headers['authorization'][7:]}"})
    )
    cfg = two_providers(echo.url, backup.url, key_env="FIRST_KEY")
    result, _ = route(cfg, keys={"first": "sk-first-0123456789SECRET"})
    assert result.provider == "second"
    assert "SECRET" not in result.attempts[0].reason
    assert "sk-…CRET" in result.attempts[0].reason  # the known vendor prefix and the last 4, nothing else


def test_a_stream_labelled_json_is_still_read_as_a_stream(server):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    body = "".join(f"data: {json.dumps(chunk(w, model='llama-3.2-3b'))}\n\n" for w in ("early", " exo"))
    exo.route("POST", "/v1/chat/completions")(lambda ex: ex.reply(200, body, "application/json"))
    result, rec = route(exo_config(exo.url), model="llama-3.2-3b")
    assert result.exit_code == 0
    assert rec.pieces == ["early", " exo"]


def test_mid_stream_silence_longer_than_first_token_timeout_is_allowed_up_to_idle_timeout(server, backup):
    """The first-token timeout bounds the wait for the first token only; between tokens idle_timeout rules."""
    paused = server()

    @paused.route("POST", "/chat/completions")
    def pause(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("one "))
        ex.server.released.wait(0.9)  # silent for three first-token timeouts, well within idle_timeout
        ex.event(chunk("two"))
        ex.event("[DONE]")
        ex.end()

    result, rec = route(two_providers(paused.url, backup.url, first_token_timeout=0.3, idle_timeout=5))
    assert result.exit_code == 0, result.error
    assert rec.pieces == ["one ", "two"]


def test_partial_text_and_first_token_are_kept_when_the_stream_breaks(server, backup):
    broken = server()

    @broken.route("POST", "/chat/completions")
    def reset(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Half "))
        ex.event(chunk("an answer"))
        ex.reset()

    result, rec = route(two_providers(broken.url, backup.url))
    assert result.exit_code == 5
    assert result.text == "Half an answer" == "".join(rec.pieces)
    assert result.first_token_ms is not None and result.first_token_ms <= result.latency_ms
    assert (result.provider, result.url) == ("first", broken.url)


def test_ctrl_c_after_the_first_token_keeps_the_text_and_the_attempt(server, backup):
    srv = server()

    @srv.route("POST", "/chat/completions")
    def slow(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("Partial"))
        ex.stall()

    class InterruptedAfterFirstPiece(Recorder):
        def text(self, piece: str) -> None:
            super().text(piece)
            raise KeyboardInterrupt

    recorder = InterruptedAfterFirstPiece()
    cfg = two_providers(srv.url, backup.url)
    result = Router(cfg, observer=recorder).run(
        ChatRequest(messages=[{"role": "user", "content": "Hi"}], model="m"), model_targets.targets("m", cfg)
    )
    assert result.exit_code == 130
    assert result.text == "Partial" and result.error == "interrupted"
    assert (result.provider, result.url) == ("first", srv.url)
    assert [(a.provider, a.outcome, a.reason) for a in result.attempts] == [("first", "failed", "interrupted")]
    assert backup.requests == []


def test_exo_model_list_is_fetched_once_and_then_read_from_the_cache(server, backup):
    exo = server()
    exo.route("GET", "/v1/models")(exo_models("llama-3.2-3b"))
    exo.route("POST", "/v1/chat/completions")(stream_words(["hi"], model="llama-3.2-3b"))
    cfg = exo_config(exo.url, backup_url=backup.url)
    for model in ("llama-3.2-3b", "gpt-4o", "llama-3.2-3b"):
        route(cfg, model=model)
    assert exo.paths() == ["GET /v1/models", "POST /v1/chat/completions", "POST /v1/chat/completions"]
    assert len(backup.requests) == 1  # gpt-4o, refused from the cached list without asking Exo


def test_503_with_a_short_estimated_time_waits_it_and_retries_once(server, backup):
    loading = server()
    loading.route("POST", "/chat/completions")(
        lambda ex: ex.reply(503, {"error": "Model is currently loading", "estimated_time": 2.5})
    )
    sleeps: list[float] = []
    result, _ = route(two_providers(loading.url, backup.url), sleeps=sleeps)
    assert sleeps == [2.5]
    assert len(loading.requests) == 2
    assert result.provider == "second"


@pytest.mark.parametrize(
    "events",
    [
        ["{not json"],
        ['{"choices": "oops"}', "[DONE]"],
        ["[1, 2]"],
    ],
)
def test_garbage_inside_a_200_stream_before_the_first_token_fails_over(server, backup, events):
    bad = server()

    @bad.route("POST", "/chat/completions")
    def garbage(ex: Exchange) -> None:
        ex.start_stream()
        for event in events:
            ex.event(event)
        ex.end()

    result, rec = route(two_providers(bad.url, backup.url))
    assert result.provider == "second"
    assert result.attempts[0].kind == "bad_response"
    assert rec.pieces == ["from ", "backup"]


def test_html_page_for_a_stream_request_fails_over(server, backup):
    portal = server()
    portal.route("POST", "/chat/completions")(lambda ex: ex.reply(200, "<html>Sign in</html>", "text/html"))
    result, _ = route(two_providers(portal.url, backup.url))
    assert result.provider == "second"
    assert result.attempts[0].kind == "bad_response" and "HTML" in result.attempts[0].reason


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_key_cut_by_the_error_body_limit_leaks_no_piece(server, backup, content_type):
    """Issue 9 defect 5: 250 characters, then `Bearer <key>`: the 300-character cut used to keep 42 of its
    47 characters. Neither the key, nor any 8 characters of it, nor the configured header secret may remain."""
    key = "sk-or-v1-0123456789abcdefghijklmnopqrstuvwxyzAB"
    header_secret = "hdr-secret-ZYXWVUTSRQ987654"
    echo = server()

    @echo.route("POST", "/chat/completions")
    def _(ex: Exchange) -> None:
        text = "x" * 250 + f" {ex.request.headers['authorization']} {ex.request.headers['x-api-key']}"
        body = json.dumps({"error": {"message": text}}) if content_type == "application/json" else text
        ex.reply(401, body, content_type=content_type)

    cfg = two_providers(echo.url, backup.url, key_env="FIRST_KEY", headers={"X-Api-Key": header_secret})
    result, _ = route(cfg, keys={"first": key})
    reason = result.attempts[0].reason or ""
    assert result.provider == "second"
    for secret in (key, header_secret):
        assert not [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in reason], reason
