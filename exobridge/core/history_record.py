"""What front ends call to keep the history: continue a conversation, record a finished request.

Neither ever changes a run's outcome: trouble with the database comes back as warning lines.

Continuing (`chat -c`, `--cid ID`): the earlier turns of the conversation are sent again, oldest first.
When they do not fit the model's context (the `context_length` of the first target's model in the cached
model lists, else `DEFAULT_CONTEXT_TOKENS`), counting 4 characters a token and keeping room for `max_tokens`
(else `REPLY_RESERVE_TOKENS`), the oldest turns are dropped and `Continuation.dropped` says how many.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core import history
from exobridge.core.errors import ExitCode, ExobridgeError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    from exobridge.core.config import Config
    from exobridge.core.routing import ChatResult
    from exobridge.core.secrets import Redactor

DEFAULT_CONTEXT_TOKENS = 8192
REPLY_RESERVE_TOKENS = 1024


@dataclass
class Continuation:
    """The earlier turns to send again, and how many were dropped to fit the context."""

    conversation: str
    parent: int | None = None
    system: str | None = None
    prior: list[dict[str, str]] = field(default_factory=list)
    dropped: int = 0  # earlier turns left out to fit the context
    context_tokens: int = DEFAULT_CONTEXT_TOKENS


def outcome_of(result: ChatResult) -> str:
    code = int(result.exit_code)
    if code == ExitCode.OK:
        return "complete"
    if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED, ExitCode.HANGUP):
        return "interrupted"
    if code == ExitCode.PARTIAL or (result.printed and result.text):
        return "partial"
    return "failed"


def context_length(provider: str | None, model: str | None) -> int | None:
    """The `context_length` the cached model list gives for `model` at `provider`, when it says."""
    if not provider or not model:
        return None
    from exobridge.core.cache import JsonCache

    found = JsonCache("models").entry(provider)
    if found is None or not isinstance(found[1], list):
        return None
    for entry in found[1]:
        if isinstance(entry, dict) and entry.get("id") == model:
            value = entry.get("context_length")
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def fit(prior: list[dict[str, str]], fixed: Iterable[str], context_tokens: int, reserve: int) -> tuple[list, int]:
    """The newest whole turns (user + assistant pairs) that fit with `fixed` texts and `reserve`; and how
    many turns were dropped."""
    from exobridge.core.spend import estimate_tokens

    budget = context_tokens - reserve - sum(estimate_tokens(t) for t in fixed)
    pairs = [prior[i : i + 2] for i in range(0, len(prior), 2)]
    kept: list[list[dict[str, str]]] = []
    for pair in reversed(pairs):
        cost = sum(estimate_tokens(m["content"]) for m in pair)
        if cost > budget:
            break
        budget -= cost
        kept.append(pair)
    kept.reverse()
    return [m for pair in kept for m in pair], len(pairs) - len(kept)


def continuation(
    *,
    latest: bool,
    cid: str | None,
    prompt: str,
    system: str | None,
    max_tokens: int | None,
    provider: str | None,
    model: str | None,
    path: Path | None = None,
) -> Continuation:
    """The conversation `chat -c` / `--cid` continues. UsageError (exit 2) when there is none to continue;
    `history.HistoryUnavailable` when the database cannot be read."""
    store = history.Store(path, create=False)
    if not store.exists():
        raise UsageError("no conversation to continue: the history is empty")
    with store:
        conversation = cid or store.latest_conversation()
        if conversation is None:
            raise UsageError("no conversation to continue: the history is empty")
        turns = store.conversation(conversation)
    if not turns:
        raise UsageError(f"no conversation {conversation!r} in the history (exobridge history list)")
    system = system if system is not None else next((t.system for t in reversed(turns) if t.system), None)
    context = context_length(provider, model) or DEFAULT_CONTEXT_TOKENS
    prior, dropped = fit(
        history.prior_messages(turns),
        [prompt, system or ""],
        context,
        max_tokens or REPLY_RESERVE_TOKENS,
    )
    return Continuation(conversation, turns[-1].id, system, prior, dropped, context)


def entry_for(
    result: ChatResult,
    *,
    prompt: str,
    system: str | None,
    messages: list[dict[str, Any]] | None,
    conversation: str,
    parent: int | None,
    config: Config,
    source: str = "chat",
) -> history.Entry:
    from exobridge.core import spend

    provider = config.providers.get(result.provider) if result.provider else None
    cost, cost_source = (None, None)
    if provider is not None and (result.exit_code == ExitCode.OK or result.text or result.usage):
        cost, cost_source = spend.request_cost(provider, result.model, result.usage)
    prompt_tokens, completion_tokens = spend.tokens(result.usage)
    return history.Entry(
        conversation=conversation,
        parent=parent,
        source=source,
        prompt=prompt,
        system=system,
        messages=messages,
        reply=result.text,
        outcome=outcome_of(result),
        provider=result.provider,
        node=result.url,
        backend=result.backend,
        requested_model=result.requested_model,
        served_model=result.model,
        attempts=[a.public() for a in result.attempts],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        cost_source=cost_source,
        latency_ms=result.latency_ms,
        first_token_ms=result.first_token_ms,
        error=result.error,
        reply_parts=result.message or None,
    )


def record(entry: history.Entry, redactor: Redactor | None, path: Path | None = None) -> list[str]:
    """Store `entry`; the warning lines to show (none when it was stored and nothing was odd)."""

    def add(warnings: list[str]) -> None:
        with history.Store(path) as store:
            _note_moved_aside(store, warnings)
            store.add(entry, redactor)

    return _warnings_of(add)


def _warnings_of(add: Callable[[list[str]], None]) -> list[str]:
    """Run `add(warnings)`: the warning lines it left, and a failure to store as one more line."""
    warnings: list[str] = []
    try:
        add(warnings)
    except history.HistoryUnavailable as exc:
        warnings.append(str(exc))
    except (ExobridgeError, OSError, ImportError) as exc:  # no data dir (HOME unset), no sqlite3 module …
        warnings.append(f"history not recorded: {exc}")
    return warnings


def _note_moved_aside(store: history.Store, warnings: list[str]) -> None:
    if store.moved_aside is not None:
        warnings.append(f"history database was corrupt: moved aside to {store.moved_aside}; a new one was started")
        store.moved_aside = None


MakeEntry = Callable[[], "tuple[history.Entry, Redactor | None]"]  # builds one request's row, on the writer
Warn = Callable[[str], None]


class HistoryWriter:
    """Writes requests to the history on a thread of its own, for a long-running front end (`serve`).

    `submit()` queues a request and returns at once: the reply is not held up by the database, and no request
    waits for another's write. The writer adds everything queued in one transaction (a burst of requests costs
    one commit, not one each) over one connection kept open, opened again when the file was replaced, moved
    aside or removed by another process (`history clear` keeps the file, a corrupt file moved aside by `chat`
    does not). At most `QUEUED` requests wait; beyond that `submit` waits for room (a disk that slow slows the
    requests, it does not grow memory). `flush()` waits until everything submitted is written: serve's own
    history reads call it, and so does the process's exit. Each request goes to the database that was the
    history's (`history.default_path()`) when it was submitted. Trouble (locked, read-only, corrupt, full disk)
    goes to the `warn` given with the request, one line each time, and never stops the writer.
    """

    QUEUED = 256
    BATCH = 64

    def __init__(self) -> None:
        import queue
        import threading

        self._queue: queue.Queue[tuple[Path, MakeEntry, Warn]] = queue.Queue(self.QUEUED)
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._store: history.Store | None = None
        self._identity: tuple[str, int, int] | None = None

    def submit(self, make: MakeEntry, warn: Warn, path: Path | None = None) -> None:
        """Queue one request: `make()` (called on the writer's thread) gives its entry and the redactor; `warn`
        gets the line of any trouble writing it."""
        path = history.default_path() if path is None else path
        with self._idle:
            self._pending += 1
            if self._thread is None:
                import atexit
                import threading

                self._thread = threading.Thread(target=self._run, name="exobridge-history", daemon=True)
                self._thread.start()
                atexit.register(self.close)
        self._queue.put((path, make, warn))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted is written (or given up on); False when `timeout` ran out first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting at most `timeout`), then close the connection (unless still in use)."""
        if self.flush(timeout):
            self._drop()

    def _run(self) -> None:
        import itertools
        import queue

        while True:
            batch = [self._queue.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                for path, items in itertools.groupby(batch, key=lambda item: item[0]):  # a transaction per file
                    group = list(items)
                    makes = [make for _, make, _ in group]
                    for line in _warnings_of(lambda warnings, p=path, m=makes: self._write(p, m, warnings)):
                        group[0][2](line)
            except BaseException as exc:  # the writer outlives anything one batch does
                with contextlib.suppress(BaseException):
                    batch[0][2](f"history not recorded: {type(exc).__name__}: {exc}")
            finally:
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _write(self, path: Path, batch: list[MakeEntry], warnings: list[str]) -> None:
        entries = [make() for make in batch]
        try:
            store = self._current(path)
            _note_moved_aside(store, warnings)
            with store.transaction():
                for entry, redactor in entries:
                    store.add(entry, redactor)
        except BaseException:
            self._drop()  # opened again next time
            raise

    def _current(self, path: Path) -> history.Store:
        import os

        try:
            stat = os.stat(path)
            identity: tuple[str, int, int] | None = (str(path), stat.st_dev, stat.st_ino)
        except OSError:
            identity = None
        if self._store is None or identity is None or identity != self._identity:
            self._drop()
            store = history.Store(path)
            store.open()
            stat = os.stat(path)
            self._store, self._identity = store, (str(path), stat.st_dev, stat.st_ino)
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            self._store.close()  # closing checkpoints the WAL into the file
        self._store = self._identity = None


def record_serve(
    config: Config, messages: list[dict[str, Any]], result: ChatResult, warn: Callable[[str], None]
) -> None:
    """Queue one request `serve` routed for the history (written on `serve_writer`'s thread): the last user
    message is the prompt, the whole `messages` list is kept as sent. Trouble goes to `warn`, later."""
    if history.logging_disabled(config.log):
        return
    import time

    ended = time.time()  # the row's time is the request's, not the (possibly later) write's

    def text(message: dict[str, Any]) -> str:
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content parts: keep the text ones
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        return ""

    def make() -> tuple[history.Entry, Redactor | None]:
        from exobridge.core import secrets

        prompt = next((text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        system = next((text(m) for m in messages if m.get("role") == "system"), None)
        entry = entry_for(
            result,
            prompt=prompt,
            system=system,
            messages=messages,
            conversation=history.new_conversation_id(),
            parent=None,
            config=config,
            source="serve",
        )
        entry.ts = ended
        return entry, secrets.config_redactor(config)

    serve_writer().submit(make, warn)


_SERVE_WRITER: list[HistoryWriter] = []  # the process's one writer for serve, once made


def serve_writer() -> HistoryWriter:
    """The process's one HistoryWriter for `serve`, made on first use."""
    if not _SERVE_WRITER:  # two threads may both append here: both use the first, the other is never started
        _SERVE_WRITER.append(HistoryWriter())
    return _SERVE_WRITER[0]


def flush_serve(timeout: float) -> None:
    """Wait (at most `timeout`) until what serve queued is written, so that its own reads see it."""
    if _SERVE_WRITER:
        _SERVE_WRITER[0].flush(timeout)
