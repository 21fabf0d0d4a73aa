"""The OpenAI wire format, both ways: a chat request body in, well-formed replies and errors out.

Whatever quirks the upstream had (Exo legacy's `chat.completion` chunks carrying both `message` and `delta`
and no `[DONE]`, Exo v1's keep-alive comments and in-band errors), the router has already reduced the reply to
text pieces, tool calls and reasoning, usage, the finish reason and the served model; this module writes them
back as a clean OpenAI reply: `chat.completion`, or `chat.completion.chunk` events ending with `data: [DONE]`.
A stream that broke after its first token ends with one `data: {"error": …}` event and no `[DONE]`, so a
client sees an error, not a silently short answer.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 10 * 1024 * 1024  # a larger request body is answered 413

# Fields serve itself reads; every other field of the request is passed on to OpenAI-compatible providers.
HANDLED_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "temperature", "max_tokens", "top_p"})

DONE = b"data: [DONE]\n\n"


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class RequestProblem(Exception):
    """A request serve answers itself, without asking a provider: its status and an OpenAI-style error."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, code=self.code, param=self.param)


def error_body(message: str, kind: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`, the shape OpenAI's SDKs read into their exceptions."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass
class ChatCall:
    """A chat completions request, checked: what the router needs and what the reply must look like."""

    model: str | None
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestProblem(400, f"'{name}' must be a number", param=name, code="invalid_type")
    if not low <= value <= high:
        raise RequestProblem(400, f"'{name}' must be between {low:g} and {high:g}", param=name, code="invalid_value")
    return float(value)


def parse_chat(raw: bytes) -> ChatCall:
    """The request body, or a RequestProblem (400) naming the field that is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestProblem(400, "the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise RequestProblem(400, "the request body must be a JSON object", code="invalid_type")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestProblem(400, "'messages' must be a non-empty list", param="messages", code="invalid_type")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestProblem(
                400, f"'messages[{index}]' must be an object with a 'role'", param=f"messages[{index}]"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise RequestProblem(
                400, f"'messages[{index}].content' must be a string or a list of parts", param=f"messages[{index}]"
            )
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise RequestProblem(400, "'model' must be a non-empty string", param="model", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestProblem(400, "'stream' must be true or false", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestProblem(400, "'stream_options' must be an object", param="stream_options", code="invalid_type")
    include_usage = bool(options and options.get("include_usage"))
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise RequestProblem(400, "'max_tokens' must be a positive integer", param="max_tokens", code="invalid_value")
    n = body.get("n")
    if n not in (None, 1):
        raise RequestProblem(400, "only n = 1 is supported", param="n", code="unsupported_value")
    return ChatCall(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=stream and include_usage,
        temperature=_number(body, "temperature", 0.0, 2.0),
        max_tokens=max_tokens,
        top_p=_number(body, "top_p", 0.0, 1.0),
        extra={k: v for k, v in body.items() if k not in HANDLED_FIELDS and k != "n"},
    )


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def clean_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The provider's usage object with the three OpenAI counts made whole numbers (extras kept as sent)."""
    if not isinstance(usage, dict):
        return None
    result = dict(usage)
    counts = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(name)
        counts[name] = int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
    if not counts["total_tokens"]:
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
    result.update(counts)
    return result


# The finish reasons OpenAI's clients know; another word from a provider (`STOP`, `eos`, ...) reads as "stop".
FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})


def finish_reason(reason: str | None) -> str:
    return reason if reason in FINISH_REASONS else "stop"


def completion(
    reply_id: str,
    created: int,
    model: str,
    text: str,
    usage: dict[str, Any] | None,
    finish: str | None = "stop",
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole reply. `fields`: the message's tool calls and reasoning (core.reply.MESSAGE_FIELDS); with tool
    calls and no text, `content` is null, as OpenAI sends it."""
    fields = fields or {}
    calls = "tool_calls" in fields or "function_call" in fields
    message = {"role": "assistant", "content": text or (None if calls else ""), **fields}
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(finish)}],
        "usage": clean_usage(usage),
    }


class ChunkWriter:
    """The SSE events of one streamed reply, as bytes ready to send."""

    def __init__(self, model: str, include_usage: bool, reply_id: str | None = None) -> None:
        self.id = reply_id or new_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        # Every chunk shares this prefix; only the choices (and usage) differ.
        self._head = dumps({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": model})[
            :-1
        ]
        self._usage_null = ',"usage":null' if include_usage else ""

    def _event(self, choices: str, usage: str | None = None) -> bytes:
        tail = f',"usage":{usage}' if usage is not None else self._usage_null
        return f'data: {self._head},"choices":{choices}{tail}}}\n\n'.encode()

    def role(self) -> bytes:
        return self._event(
            '[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]'
        )

    def text(self, pieces: Iterable[str]) -> bytes:
        return b"".join(
            self._event(f'[{{"index":0,"delta":{{"content":{dumps(p)}}},"logprobs":null,"finish_reason":null}}]')
            for p in pieces
        )

    def part(self, delta: str) -> bytes:
        """A chunk whose delta (already JSON) carries tool calls or reasoning."""
        return self._event(f'[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null}}]')

    def finish(self, usage: dict[str, Any] | None, reason: str | None = "stop") -> bytes:
        reason = finish_reason(reason)
        data = self._event(f'[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":{dumps(reason)}}}]')
        if self.include_usage:
            data += self._event("[]", dumps(clean_usage(usage)))
        return data + DONE

    @staticmethod
    def comment(text: str) -> bytes:
        """An SSE comment line (`: text`), which clients skip: serve's keep-alive while Exo loads the model."""
        line = " ".join(text.splitlines()).replace("\r", " ")
        return f": {line}\n\n".encode()

    @staticmethod
    def error(message: str, code: str) -> bytes:
        """The one event that ends a stream broken after its first token (no `[DONE]` follows)."""
        return f"data: {dumps(error_body(message, 'upstream_error', code=code))}\n\n".encode()


# --- a failed route as an HTTP status ----------------------------------------------------------------


def _kind(attempt: Any) -> str:
    return str(attempt.kind or "")


def _outcome(attempt: Any) -> str:
    return str(getattr(attempt.outcome, "value", attempt.outcome))


def attempts_header(attempts: Iterable[Any], answering: str | None = None) -> str:
    """`exo=failed:connect, openrouter=ok`: who was tried and what happened, without any provider text.

    `answering`: a stream's headers go out at its first token, before its own attempt is over; it is listed
    as `ok` (should it break later, the stream's error event says so).
    """
    parts = []
    for attempt in attempts:
        outcome = _outcome(attempt)
        kind = _kind(attempt)
        parts.append(f"{attempt.provider}={outcome}" + (f":{kind}" if kind and outcome != "ok" else ""))
    if answering:
        parts.append(f"{answering}=ok")
    return header_value(", ".join(parts))


def header_value(text: str, limit: int = 1000) -> str:
    """Printable ASCII only: a header never carries control characters or a line break."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text[:limit])


def describe_attempts(attempts: Iterable[Any]) -> str:
    """`exo: connection refused; openrouter: skipped: no API key (set OPENROUTER_API_KEY)`."""
    parts = []
    for attempt in attempts:
        outcome = _outcome(attempt)
        reason = attempt.reason or outcome
        parts.append(f"{attempt.provider}: {'skipped: ' if outcome == 'skipped' else ''}{reason}")
    return "; ".join(parts)


@dataclass
class RouteFailure:
    status: int
    body: dict[str, Any]


def route_failure(attempts: list[Any]) -> RouteFailure:
    """The status and OpenAI-style error that best fit a route where no provider answered.

    400 when a provider rejected the request itself (the router stops there: every provider would);
    429 when every provider that was asked was rate-limiting; 402 when none was asked and a `[budget]` limit
    skipped one (a client's retry cannot help before the day or month turns); 503 otherwise, with every attempt
    in the message.
    """
    failed = [a for a in attempts if _outcome(a) == "failed"]
    tried = describe_attempts(attempts) or "no provider is configured for this model"
    if failed and _kind(failed[-1]) == "bad_request":
        last = failed[-1]
        status = last.status if last.status in (400, 413, 422) else 400
        message = f"{last.provider} rejected the request: {last.reason}"
        return RouteFailure(status, error_body(message, "invalid_request_error", code="rejected_by_provider"))
    if failed and all(_kind(a) == "context_length" for a in failed):
        message = f"the conversation is too long for every provider: {tried}"
        return RouteFailure(400, error_body(message, "invalid_request_error", code="context_length_exceeded"))
    from exobridge.core.routing import BUDGET

    if not failed and any(_kind(a) == BUDGET for a in attempts):
        message = f"no provider within the budget: {tried}"
        return RouteFailure(402, error_body(message, "insufficient_quota", code="budget_exceeded"))
    if failed and all(_kind(a) == "rate_limited" for a in failed):
        message = f"every provider is rate-limiting: {tried}"
        return RouteFailure(429, error_body(message, "rate_limit_error", code="rate_limited"))
    message = f"no provider could answer: {tried}"
    return RouteFailure(503, error_body(message, "server_error", code="no_provider"))
