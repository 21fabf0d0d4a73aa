"""Reading one chat reply, streamed or whole, into text pieces, usage and the served model.

Streams are read on a helper thread and handed over through a queue, so the first-token and idle deadlines
are wall-clock deadlines: keep-alive comments and role-only chunks cannot keep a silent model alive forever.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exobridge.core.failover import Failure, FailureKind, classify_inband

if TYPE_CHECKING:
    import httpx

_END = object()


@dataclass
class Reply:
    text: str
    served_model: str | None
    usage: dict[str, Any] | None
    finish_reason: str | None
    chunks: int = 0


class ReplyBuilder:
    """Folds chunks (or one whole completion) into a Reply, calling `emit` for each piece of text.

    `check_model` runs on the first `model` field seen, before any text of that chunk is emitted.
    `keep_text` off keeps memory flat for long streams whose text is only printed.
    """

    def __init__(
        self,
        emit: Callable[[str], None],
        check_model: Callable[[str], None] | None = None,
        keep_text: bool = True,
    ) -> None:
        self._emit = emit
        self._check_model = check_model
        self._keep_text = keep_text
        self._parts: list[str] = []
        self.served_model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.producing = False
        self.chunks = 0
        self.text_length = 0

    def _model(self, obj: dict[str, Any]) -> None:
        model = obj.get("model")
        if self.served_model is None and isinstance(model, str) and model:
            self.served_model = model
            if self._check_model is not None:
                self._check_model(model)

    def _text(self, content: str) -> None:
        self.producing = True
        self.text_length += len(content)
        if self._keep_text:
            self._parts.append(content)
        self._emit(content)

    def chunk(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise Failure(FailureKind.BAD_RESPONSE, "stream chunk is not a JSON object")
        if obj.get("error"):
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
        if delta.get("reasoning") or delta.get("reasoning_content"):
            self.producing = True
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
        content = message.get("content")
        if isinstance(content, str) and content:
            self._text(content)
        finish = choices[0].get("finish_reason")
        if isinstance(finish, str):
            self.finish_reason = finish
        self.chunks += 1

    def result(self) -> Reply:
        if self.text_length == 0:
            detail = f" (finish_reason: {self.finish_reason})" if self.finish_reason else ""
            raise Failure(FailureKind.BAD_RESPONSE, f"empty reply{detail}")
        return Reply(
            text="".join(self._parts),
            served_model=self.served_model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            chunks=self.chunks,
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


def read_sse_body(body: bytes, builder: ReplyBuilder) -> Reply:
    """A whole SSE body that arrived under another content type (early Exo builds label streams JSON)."""
    for line in body.decode("utf-8", errors="replace").splitlines():
        if line.startswith("data:") and feed_event(builder, line[5:]):
            break
    return builder.result()


def _shutdown(response: httpx.Response) -> None:
    """Wake a reader blocked in recv(): closing the fd alone does not, shutting the socket down does."""
    stream = response.extensions.get("network_stream")
    sock = None
    if stream is not None:
        try:
            sock = stream.get_extra_info("socket")
        except Exception:
            sock = None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


class QueuedBody:
    """The part of a response that httpx-sse's EventSource reads (`headers`, `iter_text`), fed by a reader
    thread through a bounded queue.

    The reader thread only does socket reads, so the consumer can give up at a wall-clock deadline even
    while the socket is silent; the bound (at most MAX_CHUNKS network reads waiting) keeps memory flat when
    the server is faster than the terminal, by letting TCP flow control slow the server down.
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
        self.headers = response.headers
        self.builder = builder
        self.deadline = deadline
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self._chunks: queue.Queue[object] = queue.Queue(maxsize=self.MAX_CHUNKS)
        self._closed = threading.Event()
        # The consumer enforces both deadlines; the socket's own read timeout (the first-token timeout, set
        # for the wait on the headers) must not cut a pause between tokens that idle_timeout allows.
        # httpcore reads this value when the body iteration starts, i.e. in the reader thread below.
        try:
            timeouts = response.request.extensions.get("timeout")
        except RuntimeError:  # a response built by hand, with no request
            timeouts = None
        if isinstance(timeouts, dict) and timeouts.get("read") is not None:
            timeouts["read"] = max(first_token_timeout, idle_timeout)
        self._reader = threading.Thread(target=self._pump, name="exobridge-stream", daemon=True)
        self._reader.start()

    def _put(self, item: object) -> None:
        while not self._closed.is_set():
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _pump(self) -> None:
        try:
            for chunk in self.response.iter_bytes():
                if self._closed.is_set():
                    return
                self._put(chunk)
        except BaseException as exc:
            self._put(exc)
        self._put(_END)

    def _timed_out(self) -> Failure:
        if self.builder.producing:
            return Failure(FailureKind.IDLE_TIMEOUT, f"stream stalled: nothing for {self.idle_timeout:g} s")
        return Failure(FailureKind.FIRST_TOKEN_TIMEOUT, f"no first token within {self.first_token_timeout:g} s")

    def iter_text(self) -> Iterator[str]:
        import httpx

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                item = self._chunks.get(timeout=max(self.deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise self._timed_out() from None
            if item is _END:
                break
            if isinstance(item, httpx.TimeoutException):
                raise self._timed_out() from None
            if isinstance(item, httpx.HTTPError):
                raise Failure(FailureKind.STREAM_BROKEN, f"connection broke mid-stream ({_short(item)})")
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            text = decoder.decode(item)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def close(self) -> None:
        self._closed.set()
        _shutdown(self.response)


def read_stream(
    response: httpx.Response,
    builder: ReplyBuilder,
    started: float,
    first_token_timeout: float,
    idle_timeout: float,
) -> Reply:
    """Consume an SSE chat stream with wall-clock deadlines. `[DONE]` is optional (Exo legacy, Cerebras)."""
    from httpx_sse import EventSource

    body = QueuedBody(response, builder, started + first_token_timeout, first_token_timeout, idle_timeout)
    try:
        for sse in EventSource(body).iter_sse():  # type: ignore[arg-type]  # duck-typed response
            if feed_event(builder, sse.data):
                break
            if builder.producing:
                body.deadline = time.monotonic() + idle_timeout
    finally:
        body.close()
    return builder.result()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:120]
