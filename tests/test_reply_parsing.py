"""Provider quirks, replayed from our own synthetic fixtures (tests/fixtures/replies) through a loopback server
and the real client path, plus the error-body parsing and classification in exobridge.core.failover.

These always run; tests/test_recordings.py checks the same behaviour on third-party recordings when present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exobridge.core.errors import FailureKind
from exobridge.core.failover import (
    ErrorBody,
    classify_http,
    classify_inband,
    decide,
    parse_error_body,
    parse_error_object,
)
from tests.conftest import FIXTURES
from tests.recordings import (
    ABSENT_REASON,
    BACKUP_TEXT,
    PIECE,
    PROVIDER_NAME,
    Recorded,
    expected_reply,
    load_ai_sdk,
    load_cassette,
    load_http,
    parse_http,
    recording_params,
    replay,
    shared_recordings,
    sse_data,
)

REPLIES = FIXTURES / "replies"


def fixture(name: str) -> Recorded:
    return load_http(REPLIES / f"{name}.http")


@dataclass(frozen=True)
class Answer:
    kind: str  # provider kind to replay as
    stream: bool
    text: str
    model: str
    usage: dict[str, Any] | None = None
    backend: str | None = None
    cost: float | None = None
    requested: str | None = None  # when the request names another model than the reply


USAGE_5_2_7 = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}

ANSWERS = {
    # no [DONE]; role-only first delta; no finish_reason key; usage and time_info on the finish chunk
    "hf-no-done-usage-on-finish": Answer("huggingface", True, "Hello there", "llama-x", USAGE_5_2_7, "cerebras"),
    # comments before and between events; reasoning chunk with content ""; role on every delta; finish chunk
    # without usage, then a trailing usage chunk (finish_reason null) with cost; served model != requested
    "openrouter-comments-trailing-usage": Answer(
        "openrouter",
        True,
        "Hi! I am here.",
        "x-ai/grok-x",
        {
            "prompt_tokens": 8,
            "completion_tokens": 4,
            "total_tokens": 12,
            "cost": 0.0012,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 2},
            "cost_details": {"upstream_inference_cost": None},
        },
        cost=0.0012,
        requested="example/requested:free",
    ),
    # json.dumps spacing; cumulative usage on every chunk (last wins); content_filter_results; fingerprint ""
    "hf-cumulative-usage-spaced": Answer(
        "huggingface",
        True,
        "One two three",
        "meta/llama-s",
        {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
        "hyperbolic",
    ),
    # TGI: "id":"", usage null on every chunk, role on every delta, finish on the last content chunk
    "hf-tgi-empty-id-no-usage": Answer("huggingface", True, "Deep thought.", "org/tgi-model"),
    # empty-content chunks besides the first, final delta {"content": ""} with finish, stop_reason, no usage
    "hf-empty-content-chunks": Answer("huggingface", True, "A long first piece of text, then the rest.", "Llama-S"),
    # `text/event-stream;charset=utf-8`, legacy `text` field, token_id, huge seed and usage on the finish chunk
    "hf-together-stream-big-seed": Answer(
        "huggingface",
        True,
        "Deep end",
        "org/together-model",
        {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        "together",
    ),
    # pretty-printed JSON, "prompt": [], seed above 2^53, tool_calls []
    "hf-pretty-json-big-seed": Answer(
        "huggingface",
        False,
        "Pretty\nprinted.",
        "org/together-model",
        {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7},
        "together",
    ),
    "hf-tgi-completion-empty-id": Answer(
        "huggingface",
        False,
        "Whole answer.",
        "org/tgi-model",
        {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9},
    ),
    # keep-alive whitespace lines before the JSON object
    "openrouter-keepalive-json": Answer(
        "openrouter",
        False,
        "Four.",
        "anthropic/claude-x",
        {
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "total_tokens": 12,
            "cost": 0.00042,
            "is_byok": False,
            "cost_details": {"upstream_inference_cost": None},
        },
        cost=0.00042,
    ),
    # object "chat.completion" chunks carrying both message and delta; json.dumps spacing; no usage, no [DONE]
    "exo-legacy-stream": Answer("exo", True, "tic tac toe", "llama-3.2-1b", cost=0.0),
    "exo-legacy-completion": Answer(
        "exo",
        False,
        "tic tac toe",
        "llama-3.2-1b",
        {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
        cost=0.0,
    ),
    "sse-data-without-space": Answer("openai", True, "no space", "plain-model"),
    # CRLF line endings in the SSE body (and a multi-byte character that a 1-byte piece splits)
    "sse-crlf": Answer("openai", True, "crlf lines éè é", "plain-model"),
}


@dataclass(frozen=True)
class Refusal:
    kind: str  # provider kind to replay as
    stream: bool
    failure: str  # FailureKind value
    says: str  # the provider's words that must reach the user
    fails_over: bool


REFUSALS = {
    # 200 stream: reasoning-only chunks (content ""), finish "length" twice, then an error chunk and [DONE]
    "openrouter-stream-inband-error": Refusal(
        "openrouter", True, "stream_broken", "Token budget used up (synthetic)", True
    ),
    # HTTP 200 whose JSON body is an error with metadata.raw
    "openrouter-200-error-body": Refusal("openrouter", False, "rate_limited", "busy upstream (synthetic)", True),
    "openrouter-429-metadata-raw": Refusal("openrouter", False, "rate_limited", "busy upstream (synthetic)", True),
    # 400 JSON (not SSE) to a stream request; metadata.raw is itself a JSON string
    "openrouter-400-json-to-stream": Refusal(
        "openrouter", True, "bad_request", "content must not be empty (synthetic)", False
    ),
    # `{"error": "<string>"}` with 401
    "hf-401-error-string": Refusal("huggingface", False, "auth", "Invalid credentials (synthetic).", True),
    # text/plain 422
    "hf-422-text-plain": Refusal(
        "huggingface", False, "bad_request", "Failed to deserialize the JSON body into the target type", False
    ),
    # tool-call deltas (content null) and no text at all
    "openrouter-tool-calls-no-text": Refusal("openrouter", True, "bad_response", "empty reply", True),
}


def test_every_fixture_has_an_expectation() -> None:
    on_disk = {p.stem for p in REPLIES.glob("*.http")}
    assert on_disk == set(ANSWERS) | set(REFUSALS)


def _answer_params() -> list[Any]:
    params = []
    for name, answer in ANSWERS.items():
        pieces = (1, PIECE) if answer.stream else (PIECE,)
        params += [pytest.param(name, piece, id=f"{name}-{piece}") for piece in pieces]
    return params


@pytest.mark.parametrize("name, piece", _answer_params())
def test_fixture_answers(server: Any, name: str, piece: int) -> None:
    answer = ANSWERS[name]
    recorded = fixture(name)
    hand = expected_reply(recorded)
    # the hand parser and the hand-written expectation agree, so both read the bytes the same way
    assert (hand.text, hand.model, hand.usage) == (answer.text, answer.model, answer.usage)

    requested = answer.requested or answer.model
    run = replay(server, recorded, answer.kind, requested, answer.stream, piece=piece)
    result = run.result
    assert result.exit_code == 0, result.attempts
    assert result.provider == PROVIDER_NAME[answer.kind]
    assert result.text == answer.text
    assert "".join(run.pieces) == answer.text
    assert result.model == answer.model
    assert result.usage == answer.usage
    assert result.backend == answer.backend
    assert result.cost == answer.cost
    assert len(run.posts) == 1
    sent = run.posts[0].json()
    assert (sent["model"], sent["stream"]) == (requested, answer.stream)
    assert run.backup.requests == []


@pytest.mark.parametrize("name", list(REFUSALS))
def test_fixture_refusals(server: Any, name: str) -> None:
    refusal = REFUSALS[name]
    run = replay(server, fixture(name), refusal.kind, "some/model", refusal.stream)
    result = run.result
    attempt = result.attempts[0]
    assert attempt.outcome == "failed"
    assert attempt.kind == refusal.failure, attempt.reason
    assert refusal.says in (attempt.reason or "")
    assert len(run.posts) == 1  # none of these is worth a retry of the same target
    if refusal.fails_over:
        assert result.exit_code == 0
        assert result.provider == "backup"
        assert run.pieces == BACKUP_TEXT
    else:
        assert result.exit_code == 3
        assert run.pieces == []
        assert run.backup.requests == []
        assert refusal.says in (result.error or "")


def test_upstream_provider_name_and_raw_message_reach_the_user(server: Any) -> None:
    run = replay(server, fixture("openrouter-429-metadata-raw"), "openrouter", "some/model", False)
    reason = run.result.attempts[0].reason or ""
    assert reason.startswith("HTTP 429: Provider returned error: example/m:free is busy upstream")
    assert reason.endswith("(upstream Example)")
    assert run.result.attempts[0].status == 429


def test_exo_legacy_substituted_model_is_refused_before_printing(server: Any) -> None:
    # Exo legacy answers an unknown name with its default model: the served-model check catches it.
    run = replay(server, fixture("exo-legacy-stream"), "exo", "llama-3.2-3b", True, listed="llama-3.2-3b")
    attempt = run.result.attempts[0]
    assert attempt.kind == "model_unavailable"
    assert "answered with llama-3.2-1b instead of llama-3.2-3b" in (attempt.reason or "")
    assert run.pieces == BACKUP_TEXT
    assert run.result.provider == "backup"


# --- the fixture files really have the quirks they stand for -------------------------------------------


def _body(name: str) -> bytes:
    return fixture(name).body


QUIRKS = {
    "no [DONE]": (
        ["hf-no-done-usage-on-finish", "exo-legacy-stream"],
        lambda b: b"[DONE]" not in b and b.endswith(b"}\n\n"),
    ),
    "comment before the first data": (
        ["openrouter-comments-trailing-usage", "openrouter-stream-inband-error", "openrouter-tool-calls-no-text"],
        lambda b: b.startswith(b": OPENROUTER PROCESSING\n\n"),
    ),
    "comment between data events": (
        ["openrouter-comments-trailing-usage"],
        lambda b: b": OPENROUTER PROCESSING" in b[b.index(b"data:") :],
    ),
    "data: with no space": (["sse-data-without-space"], lambda b: b"data:{" in b and b"data: " not in b),
    "CRLF in the SSE body": (["sse-crlf"], lambda b: b"}\r\n\r\n" in b and b"\n\n" not in b.replace(b"\r\n", b"")),
    "keep-alive whitespace before JSON": (["openrouter-keepalive-json"], lambda b: b.startswith(b"\n         \n")),
    "integer above 2^53": (
        ["hf-pretty-json-big-seed", "hf-together-stream-big-seed"],
        lambda b: b"3629048360264764400" in b,
    ),
    "pretty-printed JSON": (["hf-pretty-json-big-seed"], lambda b: b.startswith(b"{\n  ")),
    "empty id": (["hf-tgi-empty-id-no-usage", "hf-tgi-completion-empty-id"], lambda b: b'"id":""' in b),
    "finish_reason key absent": (
        ["hf-no-done-usage-on-finish"],
        lambda b: b.count(b'"finish_reason"') == 1,
    ),
    "json.dumps spacing": (["hf-cumulative-usage-spaced", "exo-legacy-stream"], lambda b: b'"id": "' in b),
    "no final newline": (["exo-legacy-completion"], lambda b: b.endswith(b"}")),
}


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_fixtures_have_their_quirks(quirk: str) -> None:
    names, has_it = QUIRKS[quirk]
    for name in names:
        assert has_it(_body(name)), f"{name} lacks: {quirk}"


def test_fixture_headers_are_parsed_from_crlf_lines() -> None:
    recorded = fixture("hf-401-error-string")
    assert recorded.status == 401
    assert recorded.content_type == "application/json; charset=utf-8"
    assert recorded.headers["www-authenticate"].startswith("Bearer realm=")
    exo = fixture("exo-legacy-stream")
    assert "transfer-encoding" not in exo.replay_headers()  # the loopback server does its own framing
    assert exo.replay_headers()["server"].startswith("Python/3.11 aiohttp")


def test_hand_sse_parser_matches_the_spec_corners() -> None:
    body = b': c\r\n\r\ndata:{"a":1}\r\n\r\ndata: [DONE]\n\n'
    assert list(sse_data(body)) == ['{"a":1}', "[DONE]"]


# --- loaders for the third-party formats, on tiny hand-written inputs ---------------------------------


def test_vcr_and_pydantic_ai_cassettes_load(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    cassette = tmp_path / "c.yaml"
    cassette.write_text(
        "interactions:\n"
        "- request:\n"
        '    body: \'{"model": "m", "stream": true}\'\n'
        "    method: POST\n"
        "    uri: https://example.invalid/v1/chat/completions\n"
        "  response:\n"
        "    body:\n"
        '      string: \'data: {"model":"m"}\n\n\n        \'\n'
        "    headers:\n"
        "      Content-Type:\n"
        "      - text/event-stream\n"
        "    status: {code: 200, message: OK}\n"
        "- request:\n"
        "    method: POST\n"
        "    parsed_body: {model: m, stream: false}\n"
        "    uri: https://example.invalid/v1/chat/completions\n"
        "  response:\n"
        "    headers: {content-type: [application/json]}\n"
        "    parsed_body: {error: {code: 429, message: busy}}\n"
        "    status: {code: 429, message: Too Many Requests}\n",
        encoding="utf-8",
    )
    first, second = load_cassette(cassette)
    assert (first.name, first.status, first.is_sse, first.stream_requested) == ("c#0", 200, True, True)
    assert first.body.startswith(b'data: {"model":"m"}\n')
    assert (second.status, second.stream_requested, second.requested_model) == (429, False, "m")
    assert json.loads(second.body) == {"error": {"code": 429, "message": "busy"}}


def test_ai_sdk_triple_loads(tmp_path: Path) -> None:
    (tmp_path / "abc.request.json").write_text(
        json.dumps({"url": "https://example.invalid/chat/completions", "method": "POST", "body": {"json": {}}})
    )
    (tmp_path / "abc.response.json").write_bytes(b"\n   \n{}")
    (tmp_path / "abc.response.meta.json").write_text(
        json.dumps({"status": 200, "headers": {"Content-Type": "application/json", "content-encoding": "gzip"}})
    )
    recorded = load_ai_sdk(tmp_path / "abc")
    assert (recorded.status, recorded.body, recorded.is_chat) == (200, b"\n   \n{}", True)
    assert "content-encoding" not in recorded.replay_headers()  # the stored body is already decompressed


def test_raw_http_capture_needs_a_header_block() -> None:
    with pytest.raises(ValueError, match="no CRLF CRLF"):
        parse_http(b"HTTP/1.1 200 OK\nContent-Type: x\n\n{}", "lf-only")


def test_absent_recordings_give_one_skipped_param_with_the_reason(tmp_path: Path) -> None:
    assert shared_recordings(tmp_path / "nowhere") == []
    (param,) = recording_params([])
    assert param.marks[0].kwargs["reason"] == ABSENT_REASON
    assert ABSENT_REASON == "../shared/recordings not present (third-party recordings are not in the repo)"


# --- error bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, content_type, message, code",
    [
        (b'{"error":"Invalid username or password."}', "application/json", "Invalid username or password.", None),
        (b'{"error":{"message":"busy","code":429}}', "application/json", "busy", "429"),
        (
            b'{"error":{"message":"Provider returned error","code":429,"metadata":{"provider_name":"P",'
            b'"raw":"m is rate-limited upstream"}}}',
            "application/json",
            "Provider returned error: m is rate-limited upstream (upstream P)",
            "429",
        ),
        (
            b'{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\\"type\\":\\"error\\",'
            b'\\"error\\":{\\"type\\":\\"invalid_request_error\\",\\"message\\":\\"bad messages\\"}}"}}}',
            "application/json",
            "Provider returned error: bad messages",
            "400",
        ),
        (
            b'{"error":{"message":"x","metadata":{"raw":{"error":{"message":"inner"}}}}}',
            "application/json",
            "x: inner",
            None,
        ),
        (
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens","type":"invalid_request_error",'
            b'"code":"context_length_exceeded"}}',
            "application/json",
            "This model's maximum context length is 8192 tokens",
            "context_length_exceeded",
        ),
        (b'{"error":{"type":"overloaded_error"}}', "application/json", "overloaded_error", "overloaded_error"),
        (b'{"error":{"code":500}}', "application/json", "unknown error", "500"),
        (
            b'{"detail":"Unsupported model: m with inference engine E"}',
            "application/json",
            "Unsupported model: m with inference engine E",
            None,
        ),
        (
            b'{"detail":[{"loc":["body","messages"],"msg":"field required"}]}',
            "application/json",
            "field required",
            None,
        ),
        (b'{"message":"Unauthorized"}', "application/json", "Unauthorized", None),
        (
            b"Failed to deserialize the JSON body\nsecond line",
            "text/plain",
            "Failed to deserialize the JSON body",
            None,
        ),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html", "HTML page instead of an API reply", None),
        (b"", "", "empty body", None),
        (b'{"error":null,"message":"only the message"}', "application/json", "only the message", None),
        (b'"Not Found"', "application/json", "Not Found", None),
        (b"\n         \n" + b'{"error":"after keep-alive"}', "application/json", "after keep-alive", None),
    ],
)
def test_parse_error_body_shapes(body: bytes, content_type: str, message: str, code: str | None) -> None:
    parsed = parse_error_body(body, content_type)
    assert (parsed.message, parsed.code) == (message, code)


def test_parse_error_body_reads_estimated_time_as_retry_after() -> None:
    parsed = parse_error_body(b'{"error":"Model is currently loading","estimated_time":7.5}')
    assert parsed == ErrorBody("Model is currently loading", None, 7.5)
    assert parse_error_body(b'{"error":"x","estimated_time":true}').retry_after is None


def test_parse_error_object_truncates_a_long_upstream_text() -> None:
    parsed = parse_error_object({"message": "m", "metadata": {"raw": "y" * 1000}})
    assert parsed.message == "m: " + "y" * 300


@pytest.mark.parametrize(
    "status, message, retry_after, kind",
    [
        (401, "Invalid username or password.", None, FailureKind.AUTH),
        (403, "forbidden", None, FailureKind.AUTH),
        (402, "This request requires more credits", None, FailureKind.CREDITS),
        (404, "No instance found", None, FailureKind.MODEL_UNAVAILABLE),
        (408, "Request timed out", None, FailureKind.SERVER),
        (429, "rate-limited upstream", "3", FailureKind.RATE_LIMITED),
        (500, "boom", None, FailureKind.SERVER),
        (503, "loading", None, FailureKind.SERVER),
        (400, "maximum context length is 8192 tokens", None, FailureKind.CONTEXT_LENGTH),
        (413, "context length exceeded", None, FailureKind.CONTEXT_LENGTH),
        (400, "Unsupported model: m with inference engine E", None, FailureKind.MODEL_UNAVAILABLE),
        (400, "Provider returned error: bad messages", None, FailureKind.BAD_REQUEST),
        (413, "too large", None, FailureKind.BAD_REQUEST),
        (422, "Failed to deserialize the JSON body", None, FailureKind.BAD_REQUEST),
        (418, "teapot", None, FailureKind.BAD_RESPONSE),
    ],
)
def test_classify_http(status: int, message: str, retry_after: str | None, kind: FailureKind) -> None:
    failure = classify_http(status, ErrorBody(message), retry_after)
    assert failure.kind is kind
    assert failure.status == status
    assert failure.reason == f"HTTP {status}: {message}"
    if retry_after is not None:
        assert failure.retry_after == float(retry_after)


def test_classify_http_reads_codes_and_retry_hints() -> None:
    assert classify_http(400, ErrorBody("too long", "context_length_exceeded")).kind is FailureKind.CONTEXT_LENGTH
    assert classify_http(400, ErrorBody("nope", "model_not_found")).kind is FailureKind.MODEL_UNAVAILABLE
    assert classify_http(503, ErrorBody("loading", None, 7.5)).retry_after == 7.5
    assert classify_http(503, ErrorBody("loading", None, 7.5), "2").retry_after == 2.0
    assert classify_http(429, ErrorBody("x"), "Wed, 21 Oct 2015 07:28:00 GMT").retry_after == 0.0
    assert classify_http(429, ErrorBody("x"), "soon").retry_after is None


@pytest.mark.parametrize(
    "error, kind, words",
    [
        ({"code": 400, "message": "Token limit reached"}, FailureKind.STREAM_BROKEN, "Token limit reached"),
        (
            {"code": 429, "message": "Provider returned error", "metadata": {"raw": "busy upstream"}},
            FailureKind.RATE_LIMITED,
            "Provider returned error: busy upstream",
        ),
        ({"code": "429", "message": "busy"}, FailureKind.RATE_LIMITED, "busy"),
        ({"code": 429.0, "message": "busy"}, FailureKind.RATE_LIMITED, "(code 429): busy"),
        ({"code": 502, "message": "provider crashed"}, FailureKind.SERVER, "provider crashed"),
        ({"code": 401, "message": "key revoked"}, FailureKind.AUTH, "key revoked"),
        ({"code": 400, "message": "maximum context length exceeded"}, FailureKind.CONTEXT_LENGTH, "maximum context"),
        (
            {"code": "server_error", "message": "upstream died"},
            FailureKind.STREAM_BROKEN,
            "upstream died (server_error)",
        ),
        ({"code": "context_length_exceeded", "message": "too long"}, FailureKind.CONTEXT_LENGTH, "too long"),
        ("plain words", FailureKind.STREAM_BROKEN, "plain words"),
    ],
)
def test_classify_inband(error: object, kind: FailureKind, words: str) -> None:
    failure = classify_inband(error)
    assert failure.kind is kind
    assert failure.status == 200
    assert failure.reason.startswith("error in the reply")
    assert words in failure.reason


def test_inband_code_is_not_reported_as_the_http_status() -> None:
    failure = classify_inband({"code": 429, "message": "Provider returned error"})
    assert failure.reason == "error in the reply (code 429): Provider returned error"
    assert failure.status == 200


def test_inband_400_is_not_a_reason_to_stop_routing() -> None:
    failure = classify_inband({"code": 400, "message": "Token limit reached"})
    assert decide(failure, already_retried=False, printed=False).fail_over
    bad = classify_http(400, ErrorBody("bad messages"))
    assert not decide(bad, already_retried=False, printed=False).fail_over
