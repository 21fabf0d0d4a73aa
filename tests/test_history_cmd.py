"""`exobridge history …` and `chat -c/--cid` on real SQLite files (in-process, test IO)."""

from __future__ import annotations

import os
from pathlib import Path

from exobridge.core import history
from exobridge.render.io import IOStreams
from tests.conftest import local_config
from tests.loopback import stream_words


def db_path() -> Path:
    return Path(os.environ["EXOBRIDGE_DATA_DIR"]) / "history.db"


def seed(*entries: history.Entry) -> list[int]:
    with history.Store() as store:
        return [store.add(e) for e in entries]


def entry(prompt: str, reply: str = "ok", **kw) -> history.Entry:
    kw.setdefault("conversation", "conv1")
    kw.setdefault("outcome", "complete")
    return history.Entry(prompt=prompt, reply=reply, **kw)


def test_list_is_newest_first_with_filters_and_json(cli):
    seed(
        entry("first", provider="exo", served_model="llama", ts=1_000_000_000),
        entry("second", provider="openrouter", served_model="gpt", outcome="partial", conversation="conv2"),
        entry("third", provider="exo", served_model="llama", outcome="failed"),
    )
    proc = cli("history", "list", "--json")
    assert proc.exit_code == 0, proc.stderr
    assert [r["prompt"] for r in proc.json()] == ["third", "second", "first"]
    assert [r["prompt"] for r in cli("history", "list", "-n", "1", "--json").json()] == ["third"]
    assert [r["prompt"] for r in cli("history", "list", "-p", "exo", "--json").json()] == ["third", "first"]
    assert [r["prompt"] for r in cli("history", "list", "-m", "gpt", "--json").json()] == ["second"]
    assert [r["prompt"] for r in cli("history", "list", "--outcome", "failed", "--json").json()] == ["third"]
    assert [r["prompt"] for r in cli("history", "list", "--since", "7d", "--json").json()] == ["third", "second"]
    assert [r["prompt"] for r in cli("history", "list", "--until", "2010-01-01", "--json").json()] == ["first"]
    assert [r["prompt"] for r in cli("history", "list", "--cid", "conv2", "--json").json()] == ["second"]
    table = cli("history", "list").stdout
    assert table.splitlines()[0].startswith("ID") and "third" in table.splitlines()[1]
    assert cli("history", "list", "--outcome", "bad").exit_code == 2
    assert cli("history", "list", "--since", "yesterday").exit_code == 2


def test_an_empty_history_is_no_error_and_creates_nothing(cli):
    proc = cli("history", "list", "--json")
    assert (proc.exit_code, proc.json()) == (0, [])
    assert cli("history", "show", "3").exit_code == 2
    assert not db_path().exists()


def test_show_a_request_or_a_conversation(cli):
    _first, second, _ = seed(entry("q1", "a1"), entry("q2", "a2"), entry("other", conversation="x"))
    proc = cli("history", "show", "conv1")
    assert proc.exit_code == 0
    assert proc.stdout.index("q1") < proc.stdout.index("a1") < proc.stdout.index("q2") < proc.stdout.index("a2")
    assert "other" not in proc.stdout
    assert [r["reply"] for r in cli("history", "show", str(second), "--json").json()] == ["a2"]
    assert cli("history", "show", "999").exit_code == 2


def test_show_escapes_control_characters(cli):
    seed(entry("hi", "evil \x1b]0;title\x07 reply"))
    proc = cli("history", "show", "conv1", io=IOStreams.test(tty=True))
    assert "\x1b" not in proc.stdout and "\\x1b" in proc.stdout


def test_show_and_export_list_tool_calls_reasoning_and_a_refusal(cli):
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    seed(
        entry("weather?", "", reply_parts={"tool_calls": [call], "reasoning": "they want \x1b[31mParis"}),
        entry("rude?", "", reply_parts={"refusal": "I can't help with that."}),
        entry("plain", "", error="exo: refused"),
    )
    shown = cli("history", "show", "conv1", io=IOStreams.test(tty=True)).stdout
    assert 'tool call: get_weather({"city":"Paris"})' in shown
    assert "reasoning: they want" in shown and "\x1b" not in shown  # sanitised like every stored string
    assert "refusal: I can't help with that." in shown
    assert shown.count("(no reply)") == 0 and "(exo: refused)" in shown  # tool calls are a reply, not "none"
    [first] = cli("history", "show", "1", "--json").json()
    assert first["reply_parts"]["tool_calls"] == [call]
    md = cli("history", "export", "--format", "markdown").stdout
    assert '**Tool calls:**\n\n    get_weather({"city":"Paris"})' in md and "**Refusal:** I can't" in md


def test_search_is_full_text_over_prompts_and_replies(cli):
    seed(entry("tell me about whales", "they are big"), entry("and foxes", "quick brown"), entry("x", "whales again"))
    assert [r["prompt"] for r in cli("history", "search", "whales", "--json").json()] == ["x", "tell me about whales"]
    assert [r["prompt"] for r in cli("history", "search", "quick brown", "--json").json()] == ["and foxes"]
    assert cli("history", "search", 'quote " and (paren', "--json").json() == []


def test_export_jsonl_and_markdown(cli):
    seed(entry("q1", "a1", system="be brief"), entry("q2", "a2"))
    lines = cli("history", "export").stdout.splitlines()
    import json

    assert [json.loads(line)["prompt"] for line in lines] == ["q1", "q2"]  # oldest first
    md = cli("history", "export", "--format", "markdown").stdout
    assert md.startswith("# Conversation conv1") and "**System:** be brief" in md and "a2" in md
    assert cli("history", "export", "--format", "xml").exit_code == 2


def test_rm_and_clear(cli):
    ids = seed(entry("q1"), entry("q2"), entry("q3", conversation="c3"))
    assert cli("history", "rm", str(ids[0]), "--json").json() == {"removed": 1}
    assert cli("history", "rm", "c3").exit_code == 0
    assert [r["prompt"] for r in cli("history", "list", "--json").json()] == ["q2"]
    assert cli("history", "search", "q3", "--json").json() == []  # the index follows deletions
    refused = cli("history", "clear")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    asked = cli("history", "clear", io=IOStreams.test(tty=True, stdin="n\n"))
    assert asked.exit_code == 0 and len(cli("history", "list", "--json").json()) == 1
    assert cli("history", "clear", "--yes", "--json").json() == {"removed": 1}
    assert cli("history", "list", "--json").json() == []


def test_path(cli):
    proc = cli("history", "path", "--json")
    assert proc.json() == {"path": str(db_path()), "exists": False}


def echo(server, write_config, extra: str = ""):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(["ok"], model="m"))
    write_config(
        local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 0\n' + extra)
    )
    return srv


def test_continue_resends_earlier_turns_and_keeps_the_conversation(server, write_config, cli):
    srv = echo(server, write_config)
    assert cli("chat", "-m", "x", "-s", "sys", "one").exit_code == 0
    assert cli("chat", "-m", "x", "-c", "two").exit_code == 0
    assert srv.requests[-1].json()["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "two"},
    ]
    listed = cli("history", "list", "--json").json()
    assert listed[0]["conversation"] == listed[1]["conversation"]
    assert listed[0]["parent"] == listed[1]["id"]
    assert cli("chat", "-m", "x", "fresh").exit_code == 0  # no -c: a new conversation
    assert cli("history", "list", "--json").json()[0]["conversation"] != listed[0]["conversation"]
    assert cli("chat", "-m", "x", "--cid", listed[0]["conversation"], "three").exit_code == 0
    sent = srv.requests[-1].json()["messages"]
    assert [m["content"] for m in sent] == ["sys", "one", "ok", "two", "ok", "three"]


def test_continue_with_nothing_to_continue_is_a_usage_error(server, write_config, cli):
    echo(server, write_config)
    assert cli("chat", "-m", "x", "-c", "two").exit_code == 2
    assert cli("chat", "-m", "x", "one").exit_code == 0
    proc = cli("chat", "-m", "x", "--cid", "nope", "two")
    assert proc.exit_code == 2 and "nope" in proc.stderr


def test_oldest_turns_are_dropped_to_fit_the_context_and_the_user_is_told(server, write_config, cli):
    from exobridge.core import history_record

    srv = echo(server, write_config)
    seed(*(entry("x" * 8000, f"r{i}", conversation="long") for i in range(5)))  # ~2000 tokens a turn
    proc = cli("chat", "-m", "x", "--cid", "long", "next")
    assert proc.exit_code == 0
    assert history_record.DEFAULT_CONTEXT_TOKENS == 8192
    sent = srv.requests[-1].json()["messages"]
    assert [m["content"] for m in sent if m["role"] == "assistant"] == ["r2", "r3", "r4"]
    assert "dropped the 2 oldest turns" in proc.stderr


def test_context_length_comes_from_the_cached_model_list(server, write_config, cli):
    from exobridge.core.cache import JsonCache

    srv = echo(server, write_config, extra='[models.x]\nlocal = "big-model"\n')
    JsonCache("models").put("local", [{"id": "big-model", "context_length": 100_000}])
    seed(*(entry("x" * 8000, f"r{i}", conversation="long") for i in range(5)))
    proc = cli("chat", "-m", "x", "--cid", "long", "next")
    assert proc.exit_code == 0, proc.stderr
    assert len([m for m in srv.requests[-1].json()["messages"] if m["role"] == "assistant"]) == 5
    assert "dropped" not in proc.stderr
