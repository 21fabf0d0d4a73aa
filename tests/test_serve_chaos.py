"""Chaos through serve: two loopback providers serving seeded random mixes of faults (tests/chaos.py), many
requests at once, streaming and not. Whatever they send, every reply is well-formed OpenAI (a JSON body, or
SSE chunks ending in `[DONE]` or in one error event), its status is one serve documents, and no secret (nor
any 8-character piece of one) reaches a client byte or a log line. `EXOBRIDGE_CHAOS_RUNS=200` asks more.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from tests.chaos import CANARY_KEY, chaos_config_text, chaos_server, leaked
from tests.loopback import LoopbackServer
from tests.serve_support import ServeProcess, serve_env, sse_payloads

REQUESTS = int(os.environ.get("EXOBRIDGE_CHAOS_RUNS", "24"))
DOCUMENTED = {200, 400, 413, 422, 429, 500, 503}


def check_reply(response: httpx.Response, stream: bool) -> None:
    text = response.text
    assert "Traceback" not in text
    assert response.status_code in DOCUMENTED, (response.status_code, text[:300])
    if response.status_code != 200 or not stream:
        data = response.json()
        if response.status_code != 200:
            assert set(data["error"]) == {"message", "type", "param", "code"}
        else:
            assert data["object"] == "chat.completion" and isinstance(data["choices"][0]["message"]["content"], str)
        return
    payloads = sse_payloads(text)
    assert payloads, text[:300]
    if payloads[-1] == "[DONE]":
        assert payloads.count("[DONE]") == 1
        events = [json.loads(p) for p in payloads[:-1]]
        assert all(e["object"] == "chat.completion.chunk" for e in events)
    else:
        events = [json.loads(p) for p in payloads]
        assert "[DONE]" not in payloads and set(events[-1]) == {"error"}
        assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])


@pytest.mark.process  # a real serve process under chaos
@pytest.mark.timeout(90)
def test_serve_survives_chaos(tmp_path: Path) -> None:
    made: list[LoopbackServer] = []

    def make() -> LoopbackServer:
        made.append(LoopbackServer())
        return made[-1]

    upstreams = [chaos_server(make, seed) for seed in (11, 12)]
    config = chaos_config_text([upstream.url for upstream in upstreams], first_kind="exo", cooldown=0)
    serve = ServeProcess(serve_env(tmp_path / "home", config, CHAOS_KEY=CANARY_KEY))
    try:

        async def burst() -> list[tuple[httpx.Response, bool]]:
            async with httpx.AsyncClient(base_url=serve.url, timeout=30) as client:

                async def one(index: int) -> tuple[httpx.Response, bool]:
                    stream = index % 2 == 0
                    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
                    return await client.post("/v1/chat/completions", json=body), stream

                return await asyncio.gather(*(one(i) for i in range(REQUESTS)))

        replies = asyncio.run(burst())
        httpx.get(f"{serve.url}/health")
        serve.wait_for_line(lambda line: "GET /health" in line)
    finally:
        serve.stop()
        for upstream in made:
            upstream.close()
    for response, stream in replies:
        check_reply(response, stream)
        assert not leaked(str(response.headers) + response.text), response.text[:300]
    logs = serve.text()
    assert not leaked(logs) and "Traceback" not in logs
    assert len(set(upstreams[0].served + upstreams[1].served)) > 5  # the mix really was mixed
