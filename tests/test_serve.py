"""`exobridge serve` end to end: one real serve process, real clients (the openai SDK, raw httpx), and loopback
upstreams that behave like legacy Exo, current Exo, OpenRouter/Hugging Face errors and broken servers.

Routing for a model name outside the model table: exo (kind exo) → gone (refuses connections) → backup. Each
upstream picks its behaviour from the requested model name, so one serve process covers every case.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHARED_RECORDINGS
from tests.loopback import Exchange, LoopbackServer, closed_port
from tests.serve_support import ServeProcess, check_stream, pieces, serve_env, sse_payloads, stream_text

CLIENT_KEY = "exb-client-KEY-4f1d9a7c2e8b"
BACKUP_CANARY = "sk-canary-BACKUPKEY-9z8y7x6w5v4u"
HEADER_CANARY = "hdr-canary-HEADERSECRET-1a2b3c4d"
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}

EXO_MODELS = [
    "legacy",
    "v1",
    "v1-inband",
    "v1-noinstance",
    "reset-mid",
    "inband-mid",
    "stall",
    "rate-limited",
    "bad-request",
    "slow",
    "slow-stall",
    "dummy",  # the served model of the recorded legacy Exo stream
    "tools-mid",
]


# --- upstream behaviours ---------------------------------------------------------------------------------------


def legacy_exo(ex: Exchange, model: str, stream: bool) -> None:
    """Exo's aiohttp line: `chat.completion` objects carrying message and delta, no usage, no [DONE]."""
    words = ["Bonjour", " from", " legacy"]
    if not stream:
        ex.reply(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "system_fingerprint": "exo_0.0.1",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}
                ],
                "usage": USAGE,
            },
            content_type="application/json; charset=utf-8",
        )
        return
    ex.start_stream()
    for index, word in enumerate(words):
        part = {"role": "assistant", "content": word}
        obj = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "system_fingerprint": "exo_0.0.1",
            "choices": [
                {
                    "index": 0,
                    "message": part,
                    "delta": part,
                    "logprobs": None,
                    "finish_reason": "stop" if index == len(words) - 1 else None,
                }
            ],
        }
        ex.chunk("data: " + json.dumps(obj) + "\n\n")  # json.dumps spacing, as Exo sends it
    ex.end()


COMMAND_ID = "7a1c-command-id"  # Exo v1's chunks carry the command's id


def v1_chunk(model: str, content: str | None, finish: str | None = None, usage: dict | None = None) -> dict:
    delta = {"role": "assistant", "content": content}
    return {
        "id": COMMAND_ID,
        "object": "chat.completion",
        "created": 2,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, "usage": None}],
        "usage": usage,
        "service_tier": None,
    }


def current_exo(ex: Exchange, model: str, stream: bool) -> None:
    """Exo's FastAPI line: keep-alive and progress comments, explicit nulls, usage on the finish chunk."""
    if model == "v1-noinstance":
        ex.reply(
            404,
            {
                "error": {
                    "message": f"No instance found for model {model}",
                    "type": "Not Found",
                    "param": None,
                    "code": 404,
                }
            },
        )
        return
    ex.start_stream()
    ex.comment("keep-alive")
    ex.comment('prefill_progress {"processed": 3, "total": 7}')
    if model == "v1-inband":
        ex.event({"error": {"message": "runner crashed", "type": "InternalServerError", "param": None, "code": 500}})
        ex.event("[DONE]")
        ex.end()
        return
    for word in ["Hello", " from", " v1"]:
        ex.event(v1_chunk(model, word))
        ex.comment("keep-alive")
    ex.event(v1_chunk(model, "", "stop", USAGE))
    ex.comment('generation_stats {"tps": 40}')
    ex.event("[DONE]")
    ex.end()


WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}
TIME_CALL = {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}


def tool_chunk(model: str, *calls: dict, finish: str | None = None) -> dict:
    delta = {"role": "assistant", "content": None, "tool_calls": list(calls)} if calls else {}
    return {
        "id": "x",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def tool_calls_reply(ex: Exchange, model: str, stream: bool) -> None:
    """Two tool calls, as OpenAI streams them: id, type and name first, the arguments in fragments, by index."""
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": [WEATHER_CALL, TIME_CALL]}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        ex.reply(200, {"id": "x", "object": "chat.completion", "model": model, "choices": [choice], "usage": USAGE})
        return
    ex.start_stream()
    ex.event(tool_chunk(model, {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}))
    ex.event(tool_chunk(model, {"index": 0, "function": {"arguments": '{"city":'}}))
    ex.event(tool_chunk(model, {"index": 1, "id": "call_2", "type": "function", "function": {"name": "now"}}))
    ex.event(tool_chunk(model, {"index": 0, "function": {"arguments": '"Paris"}'}}))
    ex.event(tool_chunk(model, {"index": 1, "function": {"arguments": "{}"}}))
    ex.event(tool_chunk(model, finish="tool_calls"))
    ex.event({"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": USAGE})
    ex.event("[DONE]")
    ex.end()


def reasoning_reply(ex: Exchange, model: str, stream: bool) -> None:
    """A thinking model (the field named as DeepSeek and the Hugging Face router name it); `length`: it spent
    its whole budget thinking, and the answer has no text."""
    thoughts, answer = ["The user greets;", " answer briefly."], "" if model == "reasoning-length" else "Hi!"
    finish = "length" if model == "reasoning-length" else "stop"
    if not stream:
        message = {"role": "assistant", "content": answer, "reasoning_content": "".join(thoughts)}
        choice = {"index": 0, "message": message, "finish_reason": finish}
        ex.reply(200, {"id": "x", "object": "chat.completion", "model": model, "choices": [choice], "usage": USAGE})
        return
    ex.start_stream()
    for thought in thoughts:
        delta = {"role": "assistant", "content": None, "reasoning_content": thought}
        ex.event(
            {"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": delta}]}
        )
    if answer:
        ex.event({"id": "x", "model": model, "choices": [{"index": 0, "delta": {"content": answer}}]})
    ex.event({"id": "x", "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    ex.event("[DONE]")
    ex.end()


class ExoUpstream:
    def __init__(self) -> None:
        self.server = LoopbackServer()
        self.closed = {"slow": threading.Event(), "slow-stall": threading.Event()}
        self.server.route("GET", "/v1/models")(self.models)
        self.server.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
        self.server.route("POST", "/v1/chat/completions")(self.chat)
        self.cancelled = threading.Event()  # Exo v1's cancel route was asked for the command of `v1_chunk`
        self.server.route("POST", f"/v1/cancel/{COMMAND_ID}")(self.cancel)

    def cancel(self, ex: Exchange) -> None:
        self.cancelled.set()
        ex.reply(200, {"message": "Command cancelled.", "command_id": COMMAND_ID})

    def models(self, ex: Exchange) -> None:
        ex.reply(200, {"object": "list", "data": [{"id": m, "object": "model", "ready": True} for m in EXO_MODELS]})

    def chat(self, ex: Exchange) -> None:
        body = ex.request.json()
        model, stream = body["model"], body.get("stream", False)
        if model == "legacy":
            legacy_exo(ex, model, stream)
        elif model.startswith("v1"):
            current_exo(ex, model, stream)
        elif model == "reset-mid":
            ex.start_stream()
            ex.event(v1_chunk(model, "partial"))
            ex.event(v1_chunk(model, " answer"))
            ex.reset()
        elif model == "tools-mid":  # a tool call starts, then the connection breaks
            ex.start_stream()
            ex.event(tool_chunk(model, {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f"}}))
            ex.reset()
        elif model == "inband-mid":
            ex.start_stream()
            ex.event(v1_chunk(model, "partial"))
            ex.event({"error": {"message": "runner died", "type": "InternalServerError", "param": None, "code": 500}})
            ex.event("[DONE]")
            ex.end()
        elif model == "stall":
            ex.start_stream()
            ex.comment("keep-alive")
            ex.stall()
        elif model == "rate-limited":
            ex.reply(429, {"detail": "slow down"}, headers={"Retry-After": "3600"})
        elif model == "bad-request":
            ex.reply(400, {"detail": "messages[0].content: unsupported part type"})
        elif model == "dummy":  # a real legacy Exo stream, replayed byte for byte
            recorded = (SHARED_RECORDINGS / "exo-legacy" / "chat-stream.txt").read_bytes()
            ex.start_stream()
            ex.chunk(recorded.split(b"\r\n\r\n", 1)[1])
            ex.end()
        elif model in ("slow", "slow-stall"):
            ex.start_stream()
            ex.comment("keep-alive")
            if model == "slow":
                ex.event(v1_chunk(model, "first"))
            # Hold the stream open until serve closes the connection (recv gives b"" or fails).
            try:
                while ex.conn.recv(1024):
                    pass
            except OSError:
                pass
            self.closed[model].set()
        else:
            ex.reply(500, {"detail": f"unexpected model {model}"})


class BackupUpstream:
    """An OpenAI-compatible cloud: answers "from backup", or errors shaped like OpenRouter's and HF's."""

    def __init__(self) -> None:
        self.server = LoopbackServer()
        self.server.route("POST", "/v1/chat/completions")(self.chat)
        self.server.route("GET", "/v1/models")(
            lambda ex: ex.reply(200, {"object": "list", "data": [{"id": "cloud-model", "object": "model"}]})
        )

    def chat(self, ex: Exchange) -> None:
        body = ex.request.json()
        model, stream = body["model"], body.get("stream", False)
        if model == "echo-401":  # a server that echoes the credentials it got
            echoed = f"{ex.request.headers.get('authorization')} / x-api-key {ex.request.headers.get('x-api-key')}"
            ex.reply(401, {"error": {"message": f"invalid credentials: {echoed}", "code": 401}})
            return
        if model == "or-429":
            raw = json.dumps({"error": {"message": "upstream is rate-limited, retry shortly"}})
            ex.reply(
                429,
                {
                    "error": {"code": 429, "message": "Provider returned error", "metadata": {"raw": raw}},
                    "user_id": "u",
                },
            )
            return
        if model == "hf-401":
            ex.reply(401, {"error": "Invalid username or password."})
            return
        if model == "tools":
            tool_calls_reply(ex, model, stream)
            return
        if model == "echo-tool":  # a model that puts the credentials it got into a tool call's arguments
            key = ex.request.headers.get("authorization", "")[7:]
            call = {
                "index": 0,
                "id": "c",
                "type": "function",
                "function": {"name": "f", "arguments": f'{{"k":"{key}"}}'},
            }
            if stream:
                ex.start_stream()
                ex.event(tool_chunk(model, call, finish="tool_calls"))
                ex.event("[DONE]")
                ex.end()
            else:
                message = {"role": "assistant", "content": None, "tool_calls": [call]}
                choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
                ex.reply(200, {"id": "x", "object": "chat.completion", "model": model, "choices": [choice]})
            return
        if model.startswith("reasoning"):
            reasoning_reply(ex, model, stream)
            return
        if model == "dated":  # a cloud answers with a dated id, as OpenAI does: not a reason to fail over
            model = "dated-2024-08-06"
        text = ["from ", "backup"]
        if model == "echo-content":
            text = ["your key is ", ex.request.headers.get("authorization", "")[7:], " ok"]
        if not stream:
            ex.reply(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(text)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": USAGE,
                },
            )
            return
        ex.start_stream()
        for word in text:
            ex.event(
                {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": word}}],
                }
            )
        ex.event({"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": USAGE})
        ex.event("[DONE]")
        ex.end()


# --- the serve process ------------------------------------------------------------------------------------------


class Stack:
    def __init__(self, home: Path) -> None:
        self.exo = ExoUpstream()
        self.backup = BackupUpstream()
        config = f"""
            default_model = "v1"

            [providers.exo]
            url = "{self.exo.server.url}"
            connect_timeout = 2
            first_token_timeout = 1
            idle_timeout = 1
            cooldown = 0

            [providers.openrouter]
            enabled = false

            [providers.huggingface]
            enabled = false

            [providers.gone]
            kind = "openai"
            url = "http://127.0.0.1:{closed_port()}/v1"
            priority = 1
            cooldown = 0

            [providers.backup]
            kind = "openai"
            url = "{self.backup.server.url}/v1"
            key_env = "BACKUP_KEY"
            priority = 2
            cooldown = 0
            headers = {{ "X-Api-Key" = "{HEADER_CANARY}" }}

            [providers.exoslow]
            kind = "exo"
            url = "{self.exo.server.url}"
            priority = 3
            first_token_timeout = 30
            idle_timeout = 30
            """
        env = serve_env(home, config, BACKUP_KEY=BACKUP_CANARY, EXOBRIDGE_SERVE_KEY=CLIENT_KEY)
        self.serve = ServeProcess(env)
        self.url = self.serve.url
        self.auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
        self.received: list[bytes] = []  # every byte a client got, headers included, for the canary check

    def post(self, model: str, stream: bool = False, **fields: object) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **fields}
        response = httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=self.auth, timeout=20)
        self.received.append(str(response.headers).encode() + response.content)
        return response

    def close(self) -> None:
        self.serve.stop()
        self.exo.server.close()
        self.backup.server.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    made = Stack(tmp_path_factory.mktemp("serve"))
    yield made
    made.close()


def openai_client(stack: Stack):
    import openai

    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20)


# --- the openai SDK ---------------------------------------------------------------------------------------------


def test_openai_sdk_whole_reply_from_legacy_exo(stack: Stack) -> None:
    reply = openai_client(stack).chat.completions.create(model="legacy", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Bonjour from legacy"
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.model == "legacy"
    assert reply.usage is not None and reply.usage.total_tokens == 10


def test_openai_sdk_stream_from_legacy_exo_is_clean_and_complete(stack: Stack) -> None:
    stream = openai_client(stack).chat.completions.create(
        model="legacy", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bonjour from legacy"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_sdk_async_stream_with_usage(stack: Stack) -> None:
    import asyncio

    import openai

    async def go() -> tuple[str, object]:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20)
        stream = await client.chat.completions.create(
            model="v1",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage is not None:
                usage = chunk.usage
        whole = await client.chat.completions.create(model="v1", messages=[{"role": "user", "content": "hi"}])
        await client.close()
        assert whole.choices[0].message.content == "Hello from v1"
        return text, usage

    text, usage = asyncio.run(go())
    assert text == "Hello from v1"
    assert usage is not None and usage.prompt_tokens == 7 and usage.completion_tokens == 3


def test_openai_sdk_errors_carry_our_status_and_message(stack: Stack) -> None:
    import openai

    client = openai_client(stack)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="bad-request", messages=[{"role": "user", "content": "hi"}])
    assert bad.value.status_code == 400 and "unsupported part type" in bad.value.message
    with pytest.raises(openai.APIStatusError) as unavailable:
        client.chat.completions.create(model="exo:v1-noinstance", messages=[{"role": "user", "content": "hi"}])
    assert unavailable.value.status_code == 503
    assert "No instance found for model v1-noinstance" in unavailable.value.message
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{stack.url}/v1", api_key="wrong", max_retries=0).models.list()


def test_openai_sdk_stream_broken_after_first_token_raises(stack: Stack) -> None:
    import openai

    stream = openai_client(stack).chat.completions.create(
        model="exo:inband-mid", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    seen = ""
    with pytest.raises(openai.APIError) as broken:
        for chunk in stream:
            seen += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert seen == "partial"
    assert "runner died" in str(broken.value)


# --- the wire format, raw -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["legacy", "v1"])
def test_every_chunk_parses_and_done_comes_once(stack: Stack, model: str) -> None:
    response = stack.post(model, stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-exobridge-provider"] == "exo"
    chunks = check_stream(response.text)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream_text(chunks).startswith(("Bonjour", "Hello"))
    # The usage chunk comes when asked; legacy Exo does not count tokens, so its usage is null, not invented.
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and (usage is None if model == "legacy" else usage["total_tokens"] == 10)
    assert ": keep-alive" not in response.text and "prefill" not in response.text


def test_a_recorded_legacy_exo_stream_comes_out_clean(stack: Stack) -> None:
    if not (SHARED_RECORDINGS / "exo-legacy" / "chat-stream.txt").exists():
        pytest.skip("../shared/recordings is not here")
    response = stack.post("dummy", stream=True)
    chunks = check_stream(response.text)
    assert stream_text(chunks) == "dummy" * 10
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_usage_only_when_asked(stack: Stack) -> None:
    chunks = check_stream(stack.post("v1", stream=True).text)
    assert all("usage" not in c for c in chunks)


@pytest.mark.parametrize(
    ("model", "why"),
    [
        ("v1-inband", "exo=failed:server, exo=failed:server"),  # in-band error code 500 before any token: retried once
        ("v1-noinstance", "exo=failed:model_unavailable"),  # Exo v1's 404 "No instance found"
        ("stall", "exo=failed:first_token_timeout"),  # keep-alive comments are not tokens
        ("rate-limited", "exo=failed:rate_limited"),  # 429 with a long Retry-After: no waiting
    ],
)
def test_failover_before_the_first_token(stack: Stack, model: str, why: str) -> None:
    response = stack.post(model, stream=True)
    assert response.status_code == 200
    assert response.headers["x-exobridge-provider"] == "backup"
    attempts = response.headers["x-exobridge-attempts"]
    assert attempts.startswith(why) and "gone=failed:connect" in attempts and attempts.endswith("backup=ok")
    assert stream_text(check_stream(response.text)) == "from backup"


def test_reset_after_the_first_token_ends_with_one_error_event_and_no_done(stack: Stack) -> None:
    response = stack.post("reset-mid", stream=True)
    assert response.status_code == 200
    payloads = sse_payloads(response.text)
    assert "[DONE]" not in payloads
    error = json.loads(payloads[-1])
    assert set(error) == {"error"} and error["error"]["code"] == "stream_broken"
    assert stream_text(check_stream(response.text, done=False)) == "partial answer"
    assert response.headers["x-exobridge-provider"] == "exo"


def test_whole_reply_after_failover_names_provider_and_attempts(stack: Stack) -> None:
    response = stack.post("v1-noinstance")
    assert response.status_code == 200
    data = response.json()
    assert data["choices"][0]["message"]["content"] == "from backup" and data["object"] == "chat.completion"
    assert response.headers["x-exobridge-provider"] == "backup"
    assert "from backup" not in response.headers["x-exobridge-attempts"]


@pytest.mark.parametrize(
    ("model", "status", "words"),
    [
        ("backup:or-429", 429, "upstream is rate-limited"),  # OpenRouter's error with metadata.raw
        ("backup:hf-401", 503, "Invalid username or password."),  # HF's `"error": "<string>"`
        ("gone:anything", 503, "connection refused"),
        ("bad-request", 400, "unsupported part type"),  # every provider would reject it: no failover
    ],
)
def test_no_provider_gives_the_best_fitting_status(stack: Stack, model: str, status: int, words: str) -> None:
    response = stack.post(model)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and set(error) == {"message", "type", "param", "code"}


def test_request_limits_are_openai_errors(stack: Stack) -> None:
    url = f"{stack.url}/v1/chat/completions"
    not_a_list = httpx.post(url, json={"model": "v1", "messages": "hi"}, headers=stack.auth)
    assert not_a_list.status_code == 400 and not_a_list.json()["error"]["param"] == "messages"
    broken = httpx.post(url, content=b"{not json", headers=stack.auth)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    huge = httpx.post(url, content=b"x" * (10 * 1024 * 1024 + 1), headers=stack.auth)
    assert huge.status_code == 413 and "error" in huge.json()
    unknown = httpx.get(f"{stack.url}/v1/nothing", headers=stack.auth)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    for response in (not_a_list, broken, huge, unknown):
        assert "Traceback" not in response.text


def test_models_lists_logical_names_and_provider_ids(stack: Stack) -> None:
    data = httpx.get(f"{stack.url}/v1/models", headers=stack.auth).json()
    ids = {m["id"]: m for m in data["data"]}
    assert "exo:legacy" in ids and ids["exo:legacy"]["providers"] == ["exo"]
    assert "backup:cloud-model" in ids
    assert all(m["object"] == "model" for m in data["data"])


def test_health_and_status(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/health").json() == {"status": "ok"}  # no key needed for liveness
    first = httpx.get(f"{stack.url}/v1/exobridge/status", headers=stack.auth, timeout=20)
    assert first.status_code == 200
    body = first.json()
    assert set(body) >= {"can_answer", "nodes"} and "backup" in body["can_answer"]
    assert {node["provider"] for node in body["nodes"]} >= {"exo", "gone", "backup"}
    probes = len([r for r in stack.exo.server.requests if r.method == "GET"])
    again = httpx.get(f"{stack.url}/v1/exobridge/status", headers=stack.auth, timeout=20)
    assert again.json() == body  # cached: a polling dashboard does not reach the providers
    assert len([r for r in stack.exo.server.requests if r.method == "GET"]) == probes


# --- cancellation --------------------------------------------------------------------------------------------------


def test_client_disconnect_mid_stream_closes_the_upstream(stack: Stack) -> None:
    body = {"model": "exoslow:slow", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{stack.url}/v1/chat/completions", json=body, headers=stack.auth, timeout=20) as r:
        for line in r.iter_lines():
            if "first" in line:
                break
    assert stack.exo.closed["slow"].wait(1.0), "the upstream connection stayed open after the client left"
    # ... and Exo's current line is also told to stop that command (POST /v1/cancel/{command_id}).
    assert stack.exo.cancelled.wait(5.0), "serve did not ask Exo to cancel the command"
    stack.serve.wait_for_line(lambda line: "200 · exoslow · slow ·" in line and "client disconnected" in line)


def test_client_disconnect_before_the_first_token_closes_the_upstream(stack: Stack) -> None:
    body = {"model": "exoslow:slow-stall", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{stack.url}/v1/chat/completions", json=body, headers=stack.auth, timeout=httpx.Timeout(5, read=0.5)
        )
    assert stack.exo.closed["slow-stall"].wait(1.0), "the upstream connection stayed open after the client left"
    stack.serve.wait_for_line(lambda line: "POST /v1/chat/completions 499" in line)


# --- security ---------------------------------------------------------------------------------------------------------


def test_missing_or_wrong_client_key_is_401(stack: Stack) -> None:
    url = f"{stack.url}/v1/chat/completions"
    body = {"model": "v1", "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": CLIENT_KEY}):
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{stack.url}/v1/models").status_code == 401


def test_fields_are_sent_on_as_chat_sends_them_and_unknown_ones_pass_through(stack: Stack) -> None:
    fields = {"temperature": 0.3, "max_tokens": 5, "top_p": 0.9, "stop": ["\n"], "seed": 7, "x_custom": {"a": 1}}
    assert stack.post("backup:plain", **fields).status_code == 200
    sent = stack.backup.server.requests[-1].json()
    assert sent["model"] == "plain" and sent["messages"] == [{"role": "user", "content": "hi"}]
    assert {k: sent.get(k) for k in fields} == fields


def test_client_authorization_is_never_forwarded(stack: Stack) -> None:
    assert stack.post("v1-noinstance").status_code == 200  # reaches exo, then backup
    for request in stack.exo.server.requests + stack.backup.server.requests:
        assert all(CLIENT_KEY not in value for value in request.headers.values()), request.headers
    assert "authorization" not in stack.exo.server.requests[-1].headers
    assert stack.backup.server.requests[-1].headers["authorization"] == f"Bearer {BACKUP_CANARY}"


def test_canary_keys_reach_no_client_byte_and_no_log_line(stack: Stack) -> None:
    asked = [("backup:echo-401", False), ("backup:echo-401", True), ("backup:echo-content", True)]
    for model, stream in [*asked, ("backup:echo-tool", True), ("backup:echo-tool", False)]:
        response = stack.post(model, stream=stream)
        assert response.status_code in (200, 503)
    echoed = stack.post("backup:echo-content")
    assert echoed.json()["choices"][0]["message"]["content"] == "your key is [redacted] ok"
    in_a_tool_call = stack.post("backup:echo-tool").json()["choices"][0]["message"]["tool_calls"][0]
    assert in_a_tool_call["function"]["arguments"] == '{"k":"[redacted]"}'
    stack.serve.wait_for_line(lambda line: "backup:echo-content" in line or ("backup" in line and "200" in line))
    # every request so far has been logged: the last one's line is written after its body
    httpx.get(f"{stack.url}/health")
    stack.serve.wait_for_line(lambda line: "GET /health" in line)
    received = b"".join(stack.received).decode("utf-8", errors="replace")
    logs = stack.serve.text()
    for secret in (BACKUP_CANARY, HEADER_CANARY, CLIENT_KEY):
        for piece in pieces(secret):
            assert piece not in received, f"{piece!r} of a key reached a client"
            assert piece not in logs, f"{piece!r} of a key reached the log"


# --- tool calls, reasoning, finish reasons and served ids, relayed -------------------------------------------


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def test_openai_sdk_gets_tool_calls_whole(stack: Stack) -> None:
    reply = openai_client(stack).chat.completions.create(
        model="tools", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = [(c.id, c.type, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert calls == [("call_1", "function", "get_weather", '{"city":"Paris"}'), ("call_2", "function", "now", "{}")]
    sent = json.loads(stack.backup.server.requests[-1].body)
    assert sent["tools"] == TOOLS  # passed through to the provider


def test_openai_sdk_gets_tool_calls_streamed(stack: Stack) -> None:
    stream = openai_client(stack).chat.completions.create(
        model="tools", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            held = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            held["id"] += call.id or ""
            held["name"] += call.function.name or "" if call.function else ""
            held["arguments"] += call.function.arguments or "" if call.function else ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls"
    assert calls == {
        0: {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        1: {"id": "call_2", "name": "now", "arguments": "{}"},
    }


def test_a_reply_of_tool_calls_alone_is_an_answer_not_a_failover(stack: Stack) -> None:
    response = stack.post("tools", stream=True, tools=TOOLS)
    assert response.headers["x-exobridge-attempts"].endswith("backup=ok")
    chunks = check_stream(response.text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert [d["tool_calls"][0]["index"] for d in deltas if "tool_calls" in d] == [0, 0, 1, 0, 1]


def test_a_stream_broken_after_a_tool_call_began_does_not_fail_over(stack: Stack) -> None:
    response = stack.post("exo:tools-mid", stream=True, tools=TOOLS)
    payloads = sse_payloads(response.text)
    assert "[DONE]" not in payloads and json.loads(payloads[-1])["error"]["code"] == "stream_broken"
    assert response.headers["x-exobridge-provider"] == "exo"
    assert "backup" not in response.headers["x-exobridge-attempts"]


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_is_relayed_beside_the_text(stack: Stack, stream: bool) -> None:
    response = stack.post("reasoning", stream=stream)
    assert response.status_code == 200
    if stream:
        chunks = check_stream(response.text)
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        thoughts = "".join(d.get("reasoning_content", "") for d in deltas)
        assert (thoughts, stream_text(chunks)) == ("The user greets; answer briefly.", "Hi!")
    else:
        message = response.json()["choices"][0]["message"]
        assert (message["reasoning_content"], message["content"]) == ("The user greets; answer briefly.", "Hi!")


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_that_spent_its_budget_thinking_ends_with_length_not_an_error(stack: Stack, stream: bool) -> None:
    response = stack.post("reasoning-length", stream=stream, max_tokens=5)
    assert response.status_code == 200 and response.headers["x-exobridge-attempts"].endswith("backup=ok")
    if stream:
        chunks = check_stream(response.text)
        assert chunks[-1]["choices"][0]["finish_reason"] == "length" and stream_text(chunks) == ""
    else:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "length" and choice["message"]["content"] == ""


@pytest.mark.parametrize("stream", [False, True])
def test_the_served_model_is_the_dated_id_the_provider_answered_with(stack: Stack, stream: bool) -> None:
    response = stack.post("dated", stream=stream)
    assert response.headers["x-exobridge-model"] == "dated-2024-08-06"
    if stream:
        assert {c["model"] for c in check_stream(response.text)} == {"dated-2024-08-06"}
    else:
        assert response.json()["model"] == "dated-2024-08-06"
