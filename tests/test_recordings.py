"""Replay every recorded chat reply in ../shared/recordings through a loopback server and the real client path.

The recordings are third-party data kept outside the repo: without them every test here skips with a clear
reason. tests/test_reply_parsing.py covers the same quirks with our own synthetic fixtures and always runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import SHARED_RECORDINGS
from tests.recordings import (
    ABSENT_REASON,
    BACKUP_TEXT,
    PROVIDER_NAME,
    Recorded,
    Replayed,
    expected_reply,
    provider_kind,
    recording_params,
    replay,
    requires_recordings,
    shared_recordings,
)

ALL = shared_recordings()
CHAT = [r for r in ALL if r.is_chat]


@dataclass(frozen=True)
class Failing:
    kind: str
    says: str  # words of the provider's own message that must reach the user
    fails_over: bool


# Recordings whose reply is a failure, by name. Everything else must answer with text.
FAILING = {
    "TestInferenceClient.test_chat_completion_unprocessable_entity#1": Failing(
        "auth", "Invalid username or password.", True
    ),
    "TestInferenceClient.test_chat_completion_unprocessable_entity.at-5f9d9460#0": Failing(
        "bad_request", "Failed to deserialize the JSON body into the target type", False
    ),
    "pydantic-ai.test_openrouter_errors_raised#0": Failing("rate_limited", "temporarily rate-limited upstream", True),
    "pydantic-ai.test_openrouter_errors_raised#1": Failing("rate_limited", "temporarily rate-limited upstream", True),
    "pydantic-ai.test_openrouter_errors_raised#2": Failing("rate_limited", "temporarily rate-limited upstream", True),
    "pydantic-ai.test_openrouter_errors_raised.at-eb479b64#0": Failing("rate_limited", "rate-limited upstream", True),
    "pydantic-ai.test_openrouter_stream_error#0": Failing("stream_broken", "Token limit reached", True),
    "6gmSSczGYDL": Failing("bad_request", "all messages must have non-empty content", False),
    # A tool-call stream has no text at all; exobridge sends no tools, so it is an empty (bad) reply.
    "llm-openrouter.test_tool_calls#1": Failing("bad_response", "empty reply", True),
}


def replay_recording(make_server: Any, recorded: Recorded) -> Replayed:
    """Serve the recording as the provider kind it came from and ask for the model it was asked for (Exo
    replaces unknown names with its default model, so there ask for the model the capture served)."""
    kind = provider_kind(recorded)
    model = (expected_reply(recorded).model if kind == "exo" else recorded.requested_model) or "some-model"
    return replay(make_server, recorded, kind, model, recorded.stream_requested)


@requires_recordings
def test_recordings_are_found_and_hub_metadata_is_set_aside() -> None:
    assert len(CHAT) >= 30
    non_chat = [r for r in ALL if not r.is_chat]
    assert non_chat and all(r.method == "GET" for r in non_chat)
    assert set(FAILING) <= {r.name for r in CHAT}


@pytest.mark.parametrize("recorded", recording_params(CHAT))
def test_replayed_recording(server: Any, recorded: Recorded) -> None:
    expected = expected_reply(recorded)
    kind = provider_kind(recorded)
    run = replay_recording(server, recorded)
    result, pieces, backup, posts = run.result, run.pieces, run.backup, run.posts
    assert len(posts) == 1
    assert posts[0].json()["stream"] is recorded.stream_requested
    assert "authorization" in posts[0].headers or kind == "exo"

    failing = FAILING.get(recorded.name)
    if failing is None:
        assert expected.ok, f"{recorded.name} is not a text reply: add it to FAILING"
        assert result.exit_code == 0, result.attempts
        assert result.provider == PROVIDER_NAME[kind]
        assert result.text == expected.text
        assert "".join(pieces) == expected.text
        assert result.model == expected.model
        assert result.usage == expected.usage
        if kind == "openrouter":
            cost = (expected.usage or {}).get("cost")
            assert result.cost == (None if cost is None else float(cost))
        if kind == "huggingface":
            assert result.backend == recorded.headers.get("x-inference-provider")
        assert backup.requests == []
        return

    attempt = result.attempts[0]
    assert attempt.outcome == "failed"
    assert attempt.kind == failing.kind, attempt.reason
    assert failing.says in (attempt.reason or "")
    assert pieces == (BACKUP_TEXT if failing.fails_over else [])
    if failing.fails_over:
        assert result.exit_code == 0
        assert result.provider == "backup"
    else:
        assert result.exit_code == 3
        assert backup.requests == []
        assert failing.says in (result.error or "")


# --- the quirks of the README's index, checked on the recordings they are named for -----------------


def _one(name: str) -> Recorded:
    found = [r for r in CHAT if r.name == name]
    if not found:
        pytest.skip(ABSENT_REASON if not SHARED_RECORDINGS.is_dir() else f"{name} not among the recordings")
    return found[0]


@requires_recordings
@pytest.mark.parametrize(
    "name",
    ["TestInferenceClient.test_chat_completion_with_stream_cerebras_conversational#1", "chat-stream"],
)
def test_streams_without_done_end_cleanly(server: Any, name: str) -> None:
    recorded = _one(name)
    assert not expected_reply(recorded).saw_done
    assert b"[DONE]" not in recorded.body
    result = replay_recording(server, recorded).result
    assert result.exit_code == 0
    assert result.text == expected_reply(recorded).text


@requires_recordings
def test_openrouter_comments_between_events_are_skipped(server: Any) -> None:
    recorded = _one("pydantic-ai.test_openrouter_stream_with_native_options#0")
    first_data = recorded.body.index(b"data:")
    assert b": OPENROUTER PROCESSING" in recorded.body[first_data:]
    result = replay_recording(server, recorded).result
    assert result.exit_code == 0
    assert result.model == "x-ai/grok-4" != recorded.requested_model
    assert result.cost is not None


@requires_recordings
def test_inband_error_after_reasoning_only_chunks_fails_over(server: Any) -> None:
    recorded = _one("pydantic-ai.test_openrouter_stream_error#0")
    expected = expected_reply(recorded)
    assert expected.text == "" and expected.error["code"] == 400
    result = replay_recording(server, recorded).result
    assert result.provider == "backup"
    assert result.attempts[0].kind == "stream_broken"
    assert "Token limit reached" in (result.attempts[0].reason or "")


@requires_recordings
def test_keepalive_whitespace_before_json_is_parsed(server: Any) -> None:
    recorded = _one("JBHEylom5vE")
    assert recorded.body[:1].isspace()
    result = replay_recording(server, recorded).result
    assert result.exit_code == 0
    assert result.text == expected_reply(recorded).text
    assert result.cost == float(expected_reply(recorded).usage["cost"])


@requires_recordings
@pytest.mark.parametrize(
    "name, usage_where",
    [
        ("TestInferenceClient.test_chat_completion_with_stream_cerebras_conversational#1", "finish"),
        ("TestInferenceClient.test_chat_completion_with_stream_hyperbolic_conversational#1", "every"),
        ("TestInferenceClient.test_chat_completion_with_stream_novita_conversational#1", "every"),
        ("TestInferenceClient.test_chat_completion_with_stream_nebius_conversational#1", "none"),
        ("llm-openrouter.test_prompt#1", "trailing"),
    ],
)
def test_usage_wherever_the_stream_puts_it(server: Any, name: str, usage_where: str) -> None:
    recorded = _one(name)
    chunks = expected_reply(recorded).chunks
    with_usage = [c for c in chunks if isinstance(c.get("usage"), dict)]
    result = replay_recording(server, recorded).result
    assert result.exit_code == 0
    if usage_where == "none":
        assert with_usage == [] and result.usage is None
        return
    assert result.usage == with_usage[-1]["usage"]
    if usage_where == "every":
        assert len(with_usage) == len(chunks) > 1
    elif usage_where == "finish":
        assert with_usage == [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
    else:
        assert with_usage == [chunks[-1]] and chunks[-1]["choices"][0]["finish_reason"] is None


@requires_recordings
def test_a_recorded_tool_call_stream_is_an_answer_for_a_consumer_of_parts(server: Any) -> None:
    """OpenRouter's tool-call stream (its second piece repeats `type`): whole for serve, empty for the terminal."""
    recorded = _one("llm-openrouter.test_tool_calls#1")
    kind = provider_kind(recorded)
    run = replay(server, recorded, kind, recorded.requested_model or "m", True, relay=True)
    assert run.result.exit_code == 0 and run.result.provider == PROVIDER_NAME[kind]
    assert run.result.finish_reason == "tool_calls"
    (call,) = run.result.message["tool_calls"]
    assert call["type"] == "function" and call["function"] == {"name": "llm_version", "arguments": "{}"}
    assert call["id"].startswith("call_")


@requires_recordings
def test_reasoning_relayed_then_an_inband_error_is_a_broken_stream_not_a_failover(server: Any) -> None:
    """Once serve's client has the reasoning, another provider's answer can no longer follow it."""
    recorded = _one("pydantic-ai.test_openrouter_stream_error#0")
    kind = provider_kind(recorded)
    run = replay(server, recorded, kind, recorded.requested_model or "m", True, relay=True)
    assert run.result.provider == PROVIDER_NAME[kind] and run.result.exit_code != 0
    assert "".join(p.get("reasoning", "") for p in run.parts).startswith("We need to respond to a greeting.")
    assert not run.backup.requests
