"""Reading one chat reply, streamed or whole, into text pieces, usage and the served model.

Streams are read on a helper thread and handed over through a queue, so the first-token and idle deadlines
are wall-clock deadlines: keep-alive comments, role-only chunks and a drip of bytes cannot keep a silent model
alive forever. SSE is decoded by `SSEDecoder` (fed bytes, capped per line and per event); whole replies are
read within the first-token deadline and `http.JSON_CAP`.
"""

from __future__ import annotations

import codecs
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core.errors import Failure, FailureKind
from exobridge.core.http import REPLY_TEXT_CAP, SSE_LINE_CAP

if TYPE_CHECKING:
    import httpx

_END = object()


# The fields of an assistant message besides its text: tool calls (and the older `function_call`), a refusal,
# and reasoning (`reasoning`: OpenRouter; `reasoning_content`: DeepSeek, vLLM and the Hugging Face router;
# `reasoning_details`: OpenRouter's structured form).
MESSAGE_FIELDS = ("tool_calls", "function_call", "refusal", "reasoning", "reasoning_content", "reasoning_details")


@dataclass
class Reply:
    """One attempt's reply, read whole."""

    text: str
    served_model: str | None
    usage: dict[str, Any] | None
    finish_reason: str | None
    chunks: int = 0
    message: dict[str, Any] = field(default_factory=dict)  # MESSAGE_FIELDS the reply had, merged whole


def _parts_of(delta: dict[str, Any]) -> dict[str, Any]:
    """The MESSAGE_FIELDS of one delta (or message) that carry something. A malformed tool call is a bad
    reply; a reasoning field of an unexpected shape is left out (it is not the answer)."""
    parts = {}
    for name in MESSAGE_FIELDS:
        value = delta.get(name)
        if value is None or value == "" or value == []:
            continue
        if name == "tool_calls":
            if not isinstance(value, list) or not all(isinstance(call, dict) for call in value):
                raise Failure(FailureKind.BAD_RESPONSE, "malformed tool_calls in the reply")
        elif name == "function_call":
            if not isinstance(value, dict):
                raise Failure(FailureKind.BAD_RESPONSE, "malformed function_call in the reply")
        elif not isinstance(value, list if name == "reasoning_details" else str):
            continue
        parts[name] = value
    return parts


def _joined(held: dict[str, Any], piece: dict[str, Any], fragments: tuple[str, ...]) -> None:
    """Fold one streamed piece into the item held: the `fragments` fields arrive in pieces and are joined; any
    other field counts from its first value (some providers repeat `id` or `type` in every piece)."""
    for key, value in piece.items():
        if key in fragments and isinstance(value, str):
            held[key] = (held.get(key) or "") + value
        elif held.get(key) is None:
            held[key] = value


def _by_index(held: dict[int, dict[str, Any]], items: list[Any], fold: Callable[[dict[str, Any], Any], None]) -> None:
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        index = item.get("index")
        fold(held.setdefault(index if isinstance(index, int) else len(held) + position, {}), item)


def _fold_call(held: dict[str, Any], call: dict[str, Any]) -> None:
    for key, value in call.items():
        if key == "function" and isinstance(value, dict):
            _joined(held.setdefault("function", {}), value, ("name", "arguments"))
        elif key != "index" and held.get(key) is None:
            held[key] = value


class MessageParts:
    """A reply's MESSAGE_FIELDS merged whole from what was streamed: tool calls and reasoning details by their
    `index` (a function's name and arguments, a detail's text, joined), other text fields joined."""

    def __init__(self) -> None:
        self.lists: dict[str, dict[int, dict[str, Any]]] = {}
        self.fields: dict[str, Any] = {}

    def add(self, parts: dict[str, Any]) -> None:
        for name, value in parts.items():
            if name == "tool_calls":
                _by_index(self.lists.setdefault(name, {}), value, _fold_call)
            elif name == "reasoning_details":
                _by_index(
                    self.lists.setdefault(name, {}),
                    value,
                    lambda held, item: _joined(held, item, ("text", "summary", "data")),
                )
            elif name == "function_call":
                _joined(self.fields.setdefault(name, {}), value, ("name", "arguments"))
            else:
                self.fields[name] = self.fields.get(name, "") + value

    @property
    def empty(self) -> bool:
        return not self.fields and not self.lists

    def whole(self) -> dict[str, Any]:
        message = dict(self.fields)
        for name, items in self.lists.items():
            message[name] = [items[index] for index in sorted(items)]
        for call in message.get("tool_calls", []):
            if isinstance(call.get("function"), dict):  # a call whose arguments never came has "" (OpenAI's shape)
                call["function"].setdefault("arguments", "")
        return message


class ReplyBuilder:
    """Folds chunks (or one whole completion) into a Reply, calling `emit` for each piece of text.

    `check_model` runs on the first `model` field seen, before any text of that chunk is emitted.
    `keep_text` off keeps memory flat for long streams whose text is only printed.
    `emit_part`, when given, gets each delta's MESSAGE_FIELDS (tool calls, reasoning, ...) as they come, before
    that delta's text, and they are merged into `Reply.message`. A reply is empty (a Failure) when it gave its
    consumer nothing: no text and, for a consumer of parts, no part either. Without `emit_part` (the terminal,
    which shows text only) a reply of tool calls alone is empty, and parts only keep the stream alive;
    `on_thinking` then hears of each delta that carried reasoning or other parts before any text (the terminal
    says "thinking…" instead of sitting silent while a reasoning model works).
    """

    def __init__(
        self,
        emit: Callable[[str], None],
        check_model: Callable[[str], None] | None = None,
        keep_text: bool = True,
        emit_part: Callable[[dict[str, Any]], None] | None = None,
        on_thinking: Callable[[], None] | None = None,
    ) -> None:
        self._emit = emit
        self._on_thinking = on_thinking
        self._check_model = check_model
        self._keep_text = keep_text
        self._emit_part = emit_part
        self._parts: list[str] = []
        self._message = MessageParts()
        self.served_model: str | None = None
        self.reply_id: str | None = None  # the first `id` seen (Exo's current line: its command id)
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.producing = False
        self.chunks = 0
        self.text_length = 0
        self.size = 0

    def _model(self, obj: dict[str, Any]) -> None:
        reply_id = obj.get("id")
        if self.reply_id is None and isinstance(reply_id, str) and reply_id:
            self.reply_id = reply_id  # before the model check: its callback may want it
        model = obj.get("model")
        if self.served_model is None and isinstance(model, str) and model:
            self.served_model = model
            if self._check_model is not None:
                self._check_model(model)

    def _grow(self, size: int) -> None:
        """Count characters against REPLY_TEXT_CAP: text, and the JSON of tool calls and reasoning."""
        self.producing = True
        self.size += size
        if self.size > REPLY_TEXT_CAP:
            cap = f"{REPLY_TEXT_CAP >> 20} Mi" if REPLY_TEXT_CAP % (1 << 20) == 0 else str(REPLY_TEXT_CAP)
            raise Failure(FailureKind.BAD_RESPONSE, f"reply longer than {cap} characters (cap)")

    def _text(self, content: str) -> None:
        self._grow(len(content))
        self.text_length += len(content)
        if self._keep_text:
            self._parts.append(content)
        self._emit(content)

    def _fields(self, delta: dict[str, Any]) -> None:
        if self._emit_part is None:  # nobody takes them: they only show the model is at work
            if any(delta.get(name) for name in MESSAGE_FIELDS):
                self.producing = True
                if self._on_thinking is not None and not self.text_length:
                    self._on_thinking()
            return
        parts = _parts_of(delta)
        if not parts:
            return
        self._grow(len(json.dumps(parts)))
        self._message.add(parts)
        self._emit_part(parts)

    def chunk(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise Failure(FailureKind.BAD_RESPONSE, "stream chunk is not a JSON object")
        if obj.get("error"):
            from exobridge.core.failover import classify_inband  # an in-band error: rare

            raise classify_inband(obj["error"])
        self.chunks += 1
        self._model(obj)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices:
            return
        choice = choices[0]
        if not isinstance(choice, dict):
            raise Failure(FailureKind.BAD_RESPONSE, "stream chunk has a malformed choice")
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        self._fields(delta)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text(content)
        finish = choice.get("finish_reason")
        if finish == "error":
            raise Failure(FailureKind.STREAM_BROKEN, "provider ended the stream with finish_reason: error")
        if isinstance(finish, str) and finish:
            self.finish_reason = finish

    def completion(self, obj: Any) -> None:
        """A whole (non-streamed) chat completion."""
        if not isinstance(obj, dict):
            raise Failure(FailureKind.BAD_RESPONSE, "reply is not a JSON object")
        if obj.get("error"):
            from exobridge.core.failover import classify_inband  # an in-band error: rare

            raise classify_inband(obj["error"])
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise Failure(FailureKind.BAD_RESPONSE, "reply has no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise Failure(FailureKind.BAD_RESPONSE, "reply has no message")
        self._model(obj)
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        self._fields(message)
        content = message.get("content")
        if isinstance(content, str) and content:
            self._text(content)
        finish = choices[0].get("finish_reason")
        if isinstance(finish, str):
            self.finish_reason = finish
        self.chunks += 1

    def result(self) -> Reply:
        if not self.text_length and self._message.empty:
            detail = f" (finish_reason: {self.finish_reason})" if self.finish_reason else ""
            raise Failure(FailureKind.BAD_RESPONSE, f"empty reply{detail}")
        return Reply(
            text="".join(self._parts),
            served_model=self.served_model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            chunks=self.chunks,
            message=self._message.whole(),
        )


def feed_event(builder: ReplyBuilder, data: str) -> bool:
    """One SSE `data` payload into the builder. True at `[DONE]`."""
    stripped = data.strip()
    if stripped == "[DONE]":
        return True
    if not stripped:
        return False
    try:
        obj = json.loads(stripped)
    except ValueError:
        raise Failure(FailureKind.BAD_RESPONSE, f"invalid JSON in the stream: {data[:80]!r}") from None
    builder.chunk(obj)
    return False


_NEWLINE = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Server-sent events from bytes, as the spec reads them: lines end with CRLF, LF or CR; `data:` lines
    (one optional space after the colon) join with newlines; an empty line dispatches the event; comments
    (`:`) and other fields are ignored; an event cut off by the end of the stream is not dispatched.

    No line and no event's data may exceed `cap` characters: past it, `Failure(BAD_RESPONSE)`, so a server
    that never sends a newline cannot grow memory.
    """

    def __init__(self, cap: int = SSE_LINE_CAP) -> None:
        self.cap = cap
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""  # the unfinished line
        self._after_cr = False
        self._data: list[str] = []
        self._data_size = 0
        self._has_data = False

    def feed(self, chunk: bytes) -> list[str]:
        """The data of every event completed by `chunk`."""
        return self._lines(self._text.decode(chunk))

    def close(self) -> list[str]:
        """End of stream: flush the decoder; a last line without its empty line dispatches nothing."""
        return self._lines(self._text.decode(b"", final=True))

    def _lines(self, text: str) -> list[str]:
        if not text:  # an empty chunk, or bytes of a character still incomplete: nothing changes
            return []
        events: list[str] = []
        start = 0
        if self._after_cr and text.startswith("\n"):
            start = 1  # the LF of a CRLF split between two chunks
        self._after_cr = False
        for newline in _NEWLINE.finditer(text, start):
            line = self._line + text[start : newline.start()]
            self._line = ""
            event = self._field(line)
            if event is not None:
                events.append(event)
            start = newline.end()
        if text.endswith("\r"):
            self._after_cr = True
        if start < len(text):
            self._line += text[start:]
            if len(self._line) > self.cap:
                raise Failure(FailureKind.BAD_RESPONSE, f"stream line longer than {self.cap} characters (cap)")
        return events

    def _field(self, line: str) -> str | None:
        if len(line) > self.cap:
            raise Failure(FailureKind.BAD_RESPONSE, f"stream line longer than {self.cap} characters (cap)")
        if not line:
            if not self._has_data:
                return None
            data = "\n".join(self._data)
            self._data, self._data_size, self._has_data = [], 0, False
            return data
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.cap:
                raise Failure(FailureKind.BAD_RESPONSE, f"stream event larger than {self.cap} characters (cap)")
            self._data.append(value)
            self._has_data = True
        return None


def read_sse_body(body: bytes, builder: ReplyBuilder) -> Reply:
    """A whole SSE body that arrived under another content type (early Exo builds label streams JSON)."""
    decoder = SSEDecoder()
    # Such bodies may end without the last empty line: add one so the last event counts.
    for data in [*decoder.feed(body), *decoder.feed(b"\n\n"), *decoder.close()]:
        if feed_event(builder, data):
            break
    return builder.result()


def read_json_reply(
    response: httpx.Response, builder: ReplyBuilder, streamed: bool, deadline: float, first_token_timeout: float
) -> Reply:
    """A whole reply (not text/event-stream): read by the first-token deadline, at most JSON_CAP bytes."""
    from exobridge.core import http

    try:
        body = http.read_body(response, cap=http.JSON_CAP, deadline=deadline)
    except Failure as failure:
        if failure.kind is FailureKind.FIRST_TOKEN_TIMEOUT:
            failure.reason = f"no reply within {first_token_timeout:g} s"
        elif failure.kind is FailureKind.STREAM_BROKEN:
            failure.reason = f"connection broke while reading the reply ({failure.reason})"
        raise
    if streamed and body.lstrip().startswith(b"data:"):
        return read_sse_body(body, builder)
    try:
        data = json.loads(body)
    except ValueError:
        snippet = body[:60].decode("utf-8", errors="replace").strip()
        what = "HTML" if snippet.startswith("<") else "invalid JSON"
        raise Failure(FailureKind.BAD_RESPONSE, f"{what} in a 200 reply: {snippet!r}", 200) from None
    builder.completion(data)
    return builder.result()


END_GRACE = 0.05  # seconds a reusable stream's end is awaited after `[DONE]` (it usually comes with it)


class QueuedBody:
    """A response body read on a helper thread and handed over through a bounded queue.

    The reader thread only does socket reads, so the consumer can give up at a wall-clock deadline even
    while the socket is silent or dripping; the bound (at most MAX_CHUNKS network reads waiting) keeps memory
    flat when the server is faster than the terminal, by letting TCP flow control slow the server down.
    The socket's own read timeout (`http.timeout_for`: the longer of first-token and idle) is only a backstop.
    """

    MAX_CHUNKS = 64

    def __init__(
        self,
        response: httpx.Response,
        builder: ReplyBuilder,
        deadline: float,
        first_token_timeout: float,
        idle_timeout: float,
    ) -> None:
        self.response = response
        self.builder = builder
        self.deadline = deadline
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self._chunks: queue.Queue[object] = queue.Queue(maxsize=self.MAX_CHUNKS)
        self._closed = threading.Event()
        self._ended = threading.Event()  # the body was read to its end: the connection may be reused
        from exobridge.core import parallel

        parallel.READERS.submit(self._pump)

    def _put(self, item: object) -> None:
        while not self._closed.is_set():
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _pump(self) -> None:
        from exobridge.core import http

        try:
            for chunk in http.iter_decoded(self.response):
                if self._closed.is_set():
                    return
                self._put(chunk)
        except BaseException as exc:
            self._put(exc)
        else:
            self._ended.set()
        self._put(_END)

    def _timed_out(self) -> Failure:
        if self.builder.producing:
            return Failure(FailureKind.IDLE_TIMEOUT, f"stream stalled: nothing for {self.idle_timeout:g} s")
        return Failure(FailureKind.FIRST_TOKEN_TIMEOUT, f"no first token within {self.first_token_timeout:g} s")

    def iter_bytes(self) -> Iterator[bytes]:
        """Network chunks until the end of the body; a Failure at the current deadline."""
        import httpx

        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out()
            try:
                item = self._chunks.get(timeout=remaining)
            except queue.Empty:
                raise self._timed_out() from None
            if item is _END:
                return
            if isinstance(item, httpx.TimeoutException):
                raise self._timed_out() from None
            if isinstance(item, httpx.DecodingError):
                raise Failure(FailureKind.BAD_RESPONSE, f"undecodable stream ({_short(item)})")
            if isinstance(item, httpx.HTTPError):
                raise Failure(FailureKind.STREAM_BROKEN, f"connection broke mid-stream ({_short(item)})")
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def wait_for_end(self, seconds: float) -> None:
        """At `[DONE]`: give the reader a moment to see the body end, so the connection can be reused."""
        self._ended.wait(seconds)

    def close(self) -> None:
        """A body read to its end is closed (its connection goes back to a keep-alive pool); any other is cut,
        which also wakes a reader blocked on the socket."""
        from exobridge.core import http

        self._closed.set()
        if self._ended.is_set():
            self.response.close()
        else:
            http.shutdown_response(self.response)


def read_stream(
    response: httpx.Response,
    builder: ReplyBuilder,
    started: float,
    first_token_timeout: float,
    idle_timeout: float,
    reusable: bool = False,
) -> Reply:
    """Consume an SSE chat stream with wall-clock deadlines. `[DONE]` is optional (Exo legacy, Cerebras).

    Until the first token, only `started + first_token_timeout` counts (keep-alive comments, role-only
    chunks and a drip of bytes do not extend it); after it, each silence may last `idle_timeout`.
    `reusable`: the connection can serve the next request (`http.reuses_connections`); after `[DONE]` the body's
    end is awaited briefly (END_GRACE) so that it can.
    """
    body = QueuedBody(response, builder, started + first_token_timeout, first_token_timeout, idle_timeout)
    decoder = SSEDecoder()
    try:
        for chunk in body.iter_bytes():
            for data in decoder.feed(chunk):
                if feed_event(builder, data):
                    if reusable:
                        body.wait_for_end(END_GRACE)
                    return builder.result()
                if builder.producing:
                    body.deadline = time.monotonic() + idle_timeout
        for data in decoder.close():
            if feed_event(builder, data):
                break
    finally:
        body.close()
    return builder.result()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:120]
