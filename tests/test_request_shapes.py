"""Exact request and response shapes per provider kind (pytest-httpx: no sockets at all)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from exobridge.core import config as config_mod
from exobridge.core import model_targets
from exobridge.core.routing import ChatRequest, Router

COMPLETION = {"model": "x", "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}


def run(raw: dict, model: str, keys: dict[str, str] | None = None, **request):
    cfg = config_mod.build(raw, Path("t.toml"), env={})
    req = ChatRequest(messages=[{"role": "user", "content": "Hi"}], model=model, **request)
    return Router(cfg, cli_keys=keys).run(req, model_targets.targets(model, cfg))


def only(name: str, **fields) -> dict:
    providers = {n: {"enabled": False} for n in ("exo", "openrouter", "huggingface")}
    providers[name] = {"enabled": True, **fields}
    return {"providers": providers}


def test_openrouter_request(httpx_mock):
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "cost": 0.00042}
    httpx_mock.add_response(
        url="https://openrouter.ai/api/v1/chat/completions",
        method="POST",
        json={**COMPLETION, "model": "meta-llama/llama-3.2-3b-instruct", "usage": usage},
    )
    result = run(
        only("openrouter"),
        "llama-3.2-3b",
        keys={"openrouter": "sk-or-v1-abc"},
        stream=False,
        temperature=0.5,
        max_tokens=9,
        top_p=0.8,
    )
    request = httpx_mock.get_request()
    assert request.headers["authorization"] == "Bearer sk-or-v1-abc"
    assert request.headers["x-title"] == "exobridge"
    assert request.headers["x-openrouter-title"] == "exobridge"
    assert request.headers["http-referer"]
    assert json.loads(request.content) == {
        "model": "meta-llama/llama-3.2-3b-instruct",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
        "temperature": 0.5,
        "max_tokens": 9,
        "top_p": 0.8,
    }
    assert result.cost == pytest.approx(0.00042)
    assert result.usage["completion_tokens"] == 1


def test_openrouter_stream_asks_for_usage(httpx_mock):
    httpx_mock.add_response(
        url="https://openrouter.ai/api/v1/chat/completions",
        headers={"content-type": "text/event-stream"},
        content=b'data: {"model":"m","choices":[{"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n',
    )
    run(only("openrouter"), "some/model", keys={"openrouter": "sk-or-v1-abc"})
    body = json.loads(httpx_mock.get_request().content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_huggingface_goes_to_the_router_chat_endpoint_and_reports_the_backend(httpx_mock):
    httpx_mock.add_response(
        url="https://router.huggingface.co/v1/chat/completions",
        json=COMPLETION,
        headers={"x-inference-provider": "together"},
    )
    result = run(only("huggingface"), "llama-3.2-3b", keys={"huggingface": "hf_abc"}, stream=False)
    request = httpx_mock.get_request()
    assert json.loads(request.content)["model"] == "meta-llama/Llama-3.2-3B-Instruct"
    assert request.headers["authorization"] == "Bearer hf_abc"
    assert "x-title" not in request.headers
    assert result.backend == "together"
    assert result.cost is None


def test_exo_uses_the_node_root_and_sends_no_key(httpx_mock):
    httpx_mock.add_response(
        url="http://exo.local:52415/v1/models", method="GET", json={"data": [{"id": "llama-3.2-3b"}]}
    )
    httpx_mock.add_response(
        url="http://exo.local:52415/v1/chat/completions", method="POST", json={**COMPLETION, "model": "llama-3.2-3b"}
    )
    result = run(only("exo", url="http://exo.local:52415"), "llama-3.2-3b", stream=False)
    chat = httpx_mock.get_requests()[-1]
    assert "authorization" not in chat.headers
    body = json.loads(chat.content)
    assert body["model"] == "llama-3.2-3b" and "stream_options" not in body
    assert result.cost == 0.0


def test_openai_kind_custom_headers_and_optional_key(httpx_mock):
    httpx_mock.add_response(url="http://127.0.0.1:11434/v1/chat/completions", json=COMPLETION)
    raw = only("exo")
    raw["providers"]["exo"]["enabled"] = False
    raw["providers"]["ollama"] = {"kind": "openai", "url": "http://127.0.0.1:11434/v1", "headers": {"X-Team": "t"}}
    result = run(raw, "qwen2.5:7b", stream=False)
    request = httpx_mock.get_request()
    assert request.headers["x-team"] == "t"
    assert "authorization" not in request.headers
    assert json.loads(request.content)["model"] == "qwen2.5:7b"
    assert result.exit_code == 0


def test_connect_timeout_is_classified(httpx_mock):
    httpx_mock.add_exception(httpx.ConnectTimeout("timed out"))
    result = run(only("openrouter"), "m", keys={"openrouter": "k"}, stream=False)
    assert result.attempts[0].kind == "connect"
    assert "connect timeout after 5 s" in result.attempts[0].reason
