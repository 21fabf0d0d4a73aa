"""What front ends call to keep the history: continue a conversation, record a finished request.

Neither ever changes a run's outcome: trouble with the database comes back as warning lines.

Continuing (`chat -c`, `--cid ID`): the earlier turns of the conversation are sent again, oldest first.
When they do not fit the model's context (the `context_length` of the first target's model in the cached
model lists, else `DEFAULT_CONTEXT_TOKENS`), counting 4 characters a token and keeping room for `max_tokens`
(else `REPLY_RESERVE_TOKENS`), the oldest turns are dropped and `Continuation.dropped` says how many.
"""

from __future__ import annotations

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


class LongLivedStore:
    """One history connection kept open across requests, for a long-running front end (`serve`).

    Opening a connection per request costs more than the insert (pragmas, and a WAL checkpoint on each
    close), and serialises concurrent requests on the file. Writes go through one lock; the connection is
    opened again when the file was replaced, moved aside or removed by another process (`history clear`
    keeps the file, a corrupt file moved aside by `chat` does not).
    """

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._store: history.Store | None = None
        self._identity: tuple[str, int, int] | None = None
        self._closed_at_exit = False

    def record(self, entry: history.Entry, redactor: Redactor | None) -> list[str]:
        def add(warnings: list[str]) -> None:
            try:
                store = self._current()
                _note_moved_aside(store, warnings)
                store.add(entry, redactor)
            except BaseException:
                self._drop()  # opened again next time
                raise

        with self._lock:
            return _warnings_of(add)

    def _current(self) -> history.Store:
        import os

        path = history.default_path()
        try:
            stat = os.stat(path)
            identity: tuple[str, int, int] | None = (str(path), stat.st_dev, stat.st_ino)
        except OSError:
            identity = None
        if self._store is None or identity is None or identity != self._identity:
            self._drop()
            store = history.Store(path)
            store.open()
            if not self._closed_at_exit:  # closing checkpoints the WAL into the file
                import atexit

                atexit.register(self.close)
                self._closed_at_exit = True
            stat = os.stat(path)
            self._store, self._identity = store, (str(path), stat.st_dev, stat.st_ino)
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = self._identity = None

    def close(self) -> None:
        with self._lock:
            self._drop()


_SERVE_STORE = LongLivedStore()


def record_serve(config: Config, messages: list[dict[str, Any]], result: ChatResult) -> list[str]:
    """Record one request `serve` routed (on its worker thread, after the answer ended): the last user message
    is the prompt, the whole `messages` list is kept as sent. Returns the warning lines (none when off)."""
    if history.logging_disabled(config.log):
        return []

    def text(message: dict[str, Any]) -> str:
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content parts: keep the text ones
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        return ""

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
    from exobridge.core import secrets

    return _SERVE_STORE.record(entry, secrets.config_redactor(config))
