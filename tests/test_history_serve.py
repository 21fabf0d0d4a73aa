"""serve records every request it routes in the same history database (a real serve process)."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from exobridge.core import history
from tests.loopback import LoopbackServer, stream_words
from tests.serve_support import ServeProcess, serve_env

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


@pytest.mark.process  # a real serve process
def test_serve_requests_are_recorded_whole_and_redacted(tmp_path):
    from tests.test_serve import TIME_CALL, WEATHER_CALL, tool_calls_reply

    upstream = LoopbackServer()
    words = stream_words(["Bon", "jour"], model="up-model")

    def answer(ex):
        body = ex.request.json()
        if body["messages"][-1]["content"] == "weather?":
            tool_calls_reply(ex, "up-model", bool(body.get("stream")))
        else:
            words(ex)

    upstream.route("POST", "/v1/chat/completions")(answer)
    config = f"""
        [providers.exo]
        enabled = false
        [providers.openrouter]
        enabled = false
        [providers.huggingface]
        enabled = false
        [providers.local]
        kind = "openai"
        url = "{upstream.url}/v1"
        key_env = "LOCAL_KEY"
        """
    serve = ServeProcess(serve_env(tmp_path / "home", config, LOCAL_KEY=KEY))
    try:
        for stream in (False, True):
            body = {
                "model": "m",
                "stream": stream,
                "messages": [
                    {"role": "system", "content": "be nice"},
                    {"role": "user", "content": "earlier"},
                    {"role": "assistant", "content": "yes"},
                    {"role": "user", "content": f"hi {KEY}"},
                ],
            }
            response = httpx.post(f"{serve.url}/v1/chat/completions", json=body, timeout=20)
            assert response.status_code == 200, response.text
            tools = {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "weather?"}]}
            response = httpx.post(f"{serve.url}/v1/chat/completions", json=tools, timeout=20)
            assert response.status_code == 200, response.text
        # serve's own history read waits for its queued writes: all four are there
        assert len(httpx.get(f"{serve.url}/v1/exobridge/history", timeout=20).json()["requests"]) == 4
        # A database another process holds locked does not hold up the reply (serve waits up to 10 s for the
        # lock, on its writer thread): the answer comes at once, and the row once the lock is let go.
        holder = sqlite3.connect(tmp_path / "home" / "data" / "history.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            late = {"model": "m", "messages": [{"role": "user", "content": "while locked"}]}
            response = httpx.post(f"{serve.url}/v1/chat/completions", json=late, timeout=5)
            assert response.status_code == 200, response.text
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        recent = httpx.get(f"{serve.url}/v1/exobridge/history?limit=1", timeout=20).json()["requests"]
        assert [r["outcome"] for r in recent] == ["complete"] and len(recent) == 1
    finally:
        serve.stop()
        upstream.close()
    with history.Store(tmp_path / "home" / "data" / "history.db", create=False) as store:
        everything = store.list(limit=None)
    assert everything[0].prompt == "while locked"
    called = [row for row in everything if row.prompt == "weather?"]
    rows = [row for row in everything[1:] if row.prompt != "weather?"]
    assert (len(called), len(rows)) == (2, 2)
    for row in called:  # streamed arguments arrive in fragments: stored merged, as the client got them
        assert (row.outcome, row.reply) == ("complete", "")
        assert row.reply_parts["tool_calls"] == [WEATHER_CALL, TIME_CALL]
    for row in rows:
        assert (row.source, row.outcome, row.reply, row.provider) == ("serve", "complete", "Bonjour", "local")
        assert row.system == "be nice" and row.prompt.startswith("hi ") and KEY not in row.prompt
        assert [m["content"] for m in row.messages][:3] == ["be nice", "earlier", "yes"]
        assert KEY not in str(row.messages)


def test_a_history_serve_cannot_write_costs_one_warning_in_its_log(isolated):
    import os
    from pathlib import Path

    from exobridge.core import history_record
    from tests.test_dashboard import make_client

    upstream = LoopbackServer()
    upstream.route("POST", "/v1/chat/completions")(stream_words(["Bon", "jour"], model="up-model"))
    (Path(os.environ["EXOBRIDGE_DATA_DIR"]) / history.FILE_NAME).mkdir(parents=True)  # a folder: no database there
    client, ctx = make_client(isolated, upstream, None)
    try:
        for _ in range(3):
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            response = client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "Bonjour"
        history_record.flush_serve(30)
    finally:
        upstream.close()
    warnings = [line for line in ctx.log.stream.getvalue().splitlines() if "history not recorded" in line]
    assert len(warnings) == 1, ctx.log.stream.getvalue()
