"""Tool calls, reasoning and the other fields of a reply besides its text (core/reply.py `MESSAGE_FIELDS`).

A consumer that relays them (serve) gets each delta's fields as they come and the whole message at the end; a
consumer that shows text only (the terminal) gets neither, and a reply of tool calls alone is empty for it.
The recorded versions of these streams are replayed in tests/test_recordings.py; tests/test_serve.py sends
them through a real serve process to the openai SDK.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exobridge.core import reply as reply_mod
from exobridge.core.errors import Failure, FailureKind
from exobridge.core.reply import MessageParts, ReplyBuilder, feed_event
from tests.conftest import FIXTURES
from tests.recordings import load_http, replay


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "x", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def call(index: int, **fields: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, **fields}]}


def build(chunks: list[dict[str, Any]], relay: bool = True) -> tuple[reply_mod.Reply, list[Any]]:
    """Feed chunks; the events the consumer saw, in order: ("text", piece) or ("part", fields)."""
    seen: list[Any] = []
    builder = ReplyBuilder(
        lambda piece: seen.append(("text", piece)),
        emit_part=(lambda fields: seen.append(("part", fields))) if relay else None,
    )
    for obj in chunks:
        builder.chunk(obj)
    return builder.result(), seen


STREAMED_CALLS = [
    chunk({"role": "assistant", "content": None, **call(0, id="call_1", type="function", function={"name": "get"})}),
    chunk(call(0, function={"arguments": '{"city":'})),
    chunk(call(1, id="call_2", type="function", function={"name": "now", "arguments": ""})),
    chunk(call(0, type="function", function={"arguments": '"Paris"}'})),  # `type` repeated, as some providers do
    chunk(call(1, function={"arguments": "{}"})),
    chunk({}, finish="tool_calls"),
]


def test_streamed_tool_calls_are_relayed_as_they_come_and_merged_by_index() -> None:
    reply, seen = build(STREAMED_CALLS)
    assert [kind for kind, _ in seen] == ["part"] * 5
    assert seen[1] == ("part", call(0, function={"arguments": '{"city":'}))
    assert reply.text == "" and reply.finish_reason == "tool_calls"
    assert reply.message == {
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ]
    }


def test_without_a_consumer_of_parts_a_reply_of_tool_calls_alone_is_empty() -> None:
    with pytest.raises(Failure) as empty:
        build(STREAMED_CALLS, relay=False)
    assert empty.value.kind is FailureKind.BAD_RESPONSE
    assert str(empty.value.reason) == "empty reply (finish_reason: tool_calls)"


def test_reasoning_comes_before_the_text_of_its_delta_and_is_kept_whole() -> None:
    reply, seen = build(
        [
            chunk({"role": "assistant", "content": "", "reasoning": "We need", "reasoning_details": [{"index": 0}]}),
            chunk({"reasoning": " to greet.", "content": "Hi", "reasoning_details": []}),
            chunk({"content": "!"}, finish="stop"),
        ]
    )
    assert seen == [
        ("part", {"reasoning": "We need", "reasoning_details": [{"index": 0}]}),
        ("part", {"reasoning": " to greet."}),
        ("text", "Hi"),
        ("text", "!"),
    ]
    assert reply.text == "Hi!" and reply.message == {
        "reasoning": "We need to greet.",
        "reasoning_details": [{"index": 0}],
    }


def test_reasoning_alone_answers_a_consumer_of_parts_but_not_the_terminal() -> None:
    thinking = [chunk({"reasoning_content": "hmm"}), chunk({}, finish="length")]
    reply, _ = build(thinking)
    assert reply.text == "" and reply.finish_reason == "length" and reply.message == {"reasoning_content": "hmm"}
    with pytest.raises(Failure, match="empty reply"):
        build(thinking, relay=False)


def test_reasoning_keeps_a_silent_stream_alive_for_either_consumer() -> None:
    for relay in (True, False):
        builder = ReplyBuilder(lambda piece: None, emit_part=(lambda fields: None) if relay else None)
        builder.chunk(chunk({"reasoning": "thinking"}))
        assert builder.producing  # the idle deadline applies from here, not the first-token one


def test_a_whole_completion_keeps_its_tool_calls_and_reasoning() -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    message = {"role": "assistant", "content": None, "tool_calls": calls, "reasoning_content": "why", "refusal": None}
    obj = {"model": "m", "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    parts: list[dict[str, Any]] = []
    builder = ReplyBuilder(lambda piece: None, emit_part=parts.append)
    builder.completion(obj)
    result = builder.result()
    assert result.message == {"tool_calls": calls, "reasoning_content": "why"} and parts == [result.message]


@pytest.mark.parametrize(
    "delta",
    [{"tool_calls": {"index": 0}}, {"tool_calls": ["call"]}, {"function_call": "f()"}],
)
def test_a_malformed_tool_call_is_a_bad_reply(delta: dict[str, Any]) -> None:
    with pytest.raises(Failure) as bad:
        build([chunk(delta)])
    assert bad.value.kind is FailureKind.BAD_RESPONSE and "malformed" in str(bad.value.reason)


def test_the_terminal_does_not_judge_fields_it_does_not_show() -> None:
    reply, seen = build([chunk({"tool_calls": {"index": 0}, "content": "ok"})], relay=False)
    assert reply.text == "ok" and reply.message == {} and seen == [("text", "ok")]


def test_reasoning_of_an_unexpected_shape_is_left_out_not_fatal() -> None:
    reply, seen = build([chunk({"reasoning": {"text": "x"}, "reasoning_details": "x", "content": "ok"})])
    assert reply.text == "ok" and reply.message == {} and seen == [("text", "ok")]


def test_tool_calls_count_against_the_reply_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reply_mod, "REPLY_TEXT_CAP", 200)
    builder = ReplyBuilder(lambda piece: None, emit_part=lambda fields: None)
    with pytest.raises(Failure, match="cap"):
        for _ in range(10):
            builder.chunk(chunk(call(0, function={"arguments": "x" * 30})))


@given(
    arguments=st.lists(st.text(max_size=20), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6),
)
def test_arguments_cut_anywhere_merge_back_whole(arguments: list[str], cuts: list[int]) -> None:
    """However a provider cuts each call's arguments into pieces, and however the calls interleave, every
    call comes out whole."""
    queues = []
    for text in arguments:
        bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
        queues.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    pieces: list[tuple[int, str]] = []  # round robin: the calls interleave, each call's pieces stay in order
    while any(queues):
        pieces += [(index, queue.pop(0)) for index, queue in enumerate(queues) if queue]
    parts = MessageParts()
    for index in range(len(arguments)):
        parts.add(call(index, id=f"call_{index}", type="function", function={"name": f"f{index}"}))
    for index, text in pieces:
        parts.add(call(index, function={"arguments": text}))
    whole = parts.whole()["tool_calls"]
    assert [c["function"]["arguments"] for c in whole] == arguments


def test_the_sse_reader_hands_tool_calls_through(server: Any) -> None:
    """Our own fixture of OpenRouter's tool-call stream (comment first, content null, no text at all),
    replayed through the router as serve's observer sees it."""
    recorded = load_http(FIXTURES / "replies" / "openrouter-tool-calls-no-text.http")
    run = replay(server, recorded, "openrouter", "example/tools", True, relay=True)
    result = run.result
    assert result.exit_code == 0 and result.provider == "openrouter" and result.text == ""
    assert result.finish_reason == "tool_calls"
    assert result.message == {
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]
    }
    assert [p["tool_calls"][0]["index"] for p in run.parts] == [0, 0]


def test_feed_event_keeps_the_order_of_fields_and_text() -> None:
    seen: list[Any] = []
    builder = ReplyBuilder(lambda piece: seen.append(piece), emit_part=lambda fields: seen.append(fields))
    feed_event(builder, json.dumps(chunk({"refusal": "I can't", "content": "Sorry"})))
    assert seen == [{"refusal": "I can't"}, "Sorry"]
