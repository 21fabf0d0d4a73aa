"""Remembered cooldowns: a dead or black-holed node costs its timeout once, not on every run.

The state lives in `state.json` in the cache dir: per provider node (name + url), the last failure, its class
and when the cooldown ends. Writers take an fcntl lock on `.state.json.lock`, re-read, change and replace the
file atomically, so concurrent runs never lose each other's entries or leave a half-written file. The file is
advisory: a corrupt or unreadable one is ignored (one warning in `warnings`, for the CLI to show).

Every cooldown is capped at `MAX_COOLDOWN` (one hour, `failover.RETRY_AFTER_CAP`): a provider's
`Retry-After: 99999999999999`, a `cooldown` setting or a state file written by anything else can keep a node
away for an hour at most. The reasons stored are redacted (the provider's key and header secrets, and any
8-character piece of one) and made terminal-safe (`sanitize.terminal_text`), because they are shown again by
later runs; entries read back are sanitised again.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from exobridge.core import paths
from exobridge.core.config import ProviderConfig
from exobridge.core.errors import Failure, FailureKind
from exobridge.core.files import locked, write_atomic
from exobridge.core.routing import RouteState

MAX_COOLDOWN = 3600.0  # seconds; the same cap as failover.RETRY_AFTER_CAP and config_schema.MAX_COOLDOWN
MAX_REASON = 500  # characters of a failure reason kept in the state file

STATE_NAME = "state.json"
FORMAT = 1

TIMEOUT_COOLDOWN = 30.0
RATE_LIMIT_COOLDOWN = 60.0
AUTH_COOLDOWN = 600.0
SERVER_COOLDOWN = 30.0

# Failure classes that put a node in cooldown, with the default length. Anything else (bad_request,
# model_unavailable, context_length, a bad reply, a reset stream) is not the node being down.
DEFAULT_COOLDOWNS: dict[FailureKind, float] = {
    FailureKind.CONNECT: TIMEOUT_COOLDOWN,
    FailureKind.FIRST_TOKEN_TIMEOUT: TIMEOUT_COOLDOWN,
    FailureKind.IDLE_TIMEOUT: TIMEOUT_COOLDOWN,
    FailureKind.RATE_LIMITED: RATE_LIMIT_COOLDOWN,
    FailureKind.AUTH: AUTH_COOLDOWN,
    FailureKind.CREDITS: AUTH_COOLDOWN,
    FailureKind.SERVER: SERVER_COOLDOWN,
}

LABELS = {
    FailureKind.CONNECT: "connect failure",
    FailureKind.FIRST_TOKEN_TIMEOUT: "first-token timeout",
    FailureKind.IDLE_TIMEOUT: "idle timeout",
}


def cooldown_for(provider: ProviderConfig, failure: Failure) -> float | None:
    """Seconds to keep away from a node after `failure`, or None when it is not the node's fault.

    429 honours Retry-After; otherwise the provider's `cooldown` setting replaces the default length.
    """
    default = DEFAULT_COOLDOWNS.get(failure.kind)
    if default is None or provider.cooldown == 0:  # `cooldown = 0`: never keep away from this provider
        return None
    if failure.kind is FailureKind.RATE_LIMITED and _finite(failure.retry_after):
        return min(MAX_COOLDOWN, max(1.0, float(failure.retry_after)))  # type: ignore[arg-type]
    length = provider.cooldown if _finite(provider.cooldown) else default
    return min(MAX_COOLDOWN, max(0.0, float(length)))  # type: ignore[arg-type]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _safe_text(text: str, secrets: list[str] | None = None) -> str:
    """A provider string as the state file keeps it: redacted, terminal-safe, and short."""
    from exobridge.core.sanitize import terminal_text
    from exobridge.core.secrets import Redactor

    text = Redactor(secrets or []).redact(text)
    text = terminal_text(text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _secrets_of(provider: ProviderConfig) -> list[str]:
    """Every secret `provider` may send (its key from any source, its configured header credentials)."""
    from exobridge.core.secrets import provider_secrets

    return provider_secrets(provider)


def failure_label(kind: str, status: int | None) -> str:
    """ "connect failure", "first-token timeout", "HTTP 429"…: what went wrong, in a few words."""
    try:
        label = LABELS.get(FailureKind(kind))
    except ValueError:
        label = None
    if label:
        return label
    return f"HTTP {status}" if status else kind.replace("_", " ")


def format_left(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)} min"
    return f"{math.ceil(seconds / 3600)} h"


@dataclass
class NodeState:
    """What is remembered about one node: its last failure (kind, reason, status, when) and when its cooldown ends."""

    provider: str
    url: str
    kind: str  # FailureKind value
    reason: str
    status: int | None
    at: float  # epoch seconds of the failure
    until: float  # epoch seconds when the cooldown ends

    def left(self, now: float | None = None) -> float:
        """Seconds until the cooldown ends: never more than MAX_COOLDOWN, whatever the file says."""
        return min(MAX_COOLDOWN, max(0.0, self.until - (time.time() if now is None else now)))

    def label(self) -> str:
        return failure_label(self.kind, self.status)

    def describe(self) -> str:
        """The last failure, e.g. "connect failure: connection refused"."""
        label = self.label()
        if not self.reason or self.reason.startswith(label):
            return self.reason or label
        return f"{label}: {self.reason}"

    def blocked_reason(self, now: float | None = None) -> str:
        return f"cooling down after {self.label()}, {format_left(self.left(now))} left"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> NodeState | None:
        if not isinstance(data, dict):
            return None
        try:
            status = data.get("status")
            at, until = float(data["at"]), float(data["until"])
            if not (math.isfinite(at) and math.isfinite(until)):
                return None
            return cls(
                provider=_safe_text(str(data["provider"])),
                url=_safe_text(str(data["url"])),
                kind=_safe_text(str(data["kind"])),
                reason=_safe_text(str(data.get("reason") or "")),
                status=int(status) if isinstance(status, int) and not isinstance(status, bool) else None,
                at=at,
                until=min(until, at + MAX_COOLDOWN),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            return None


def node_key(provider: str, url: str) -> str:
    return f"{provider} {url}"


class CooldownStore:
    """The state file. Reads are lock-free (the file is replaced atomically); writes are locked."""

    def __init__(
        self,
        directory: Path | None = None,
        clock: Callable[[], float] = time.time,
        secrets: list[str] | None = None,
    ) -> None:
        """`secrets`: more values to redact from stored reasons (e.g. a `--key`); each provider's own key and
        header secrets are always redacted."""
        directory = paths.cache_dir() if directory is None else directory
        self.secrets = list(secrets or [])
        self.path = directory / STATE_NAME
        self.clock = clock
        self.warnings: list[str] = []
        self._snapshot: dict[str, NodeState] | None = None

    # --- reading --------------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def _read(self) -> dict[str, NodeState]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            self._warn(f"ignoring unreadable state file {self.path} ({type(exc).__name__})")
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            self._warn(f"ignoring corrupt state file {self.path} (not JSON); it will be rewritten")
            return {}
        nodes = data.get("nodes") if isinstance(data, dict) else None
        if not isinstance(nodes, dict):
            self._warn(f"ignoring corrupt state file {self.path} (unexpected shape); it will be rewritten")
            return {}
        entries: dict[str, NodeState] = {}
        for key, raw in nodes.items():
            entry = NodeState.from_json(raw)
            if entry is not None:
                entries[key] = entry
        return entries

    def load(self) -> dict[str, NodeState]:
        """All remembered nodes (read once, then served from memory until the next write)."""
        if self._snapshot is None:
            self._snapshot = self._read()
        return self._snapshot

    def get(self, provider: str, url: str) -> NodeState | None:
        return self.load().get(node_key(provider, url))

    def entries(self) -> list[NodeState]:
        return list(self.load().values())

    def active(self, provider: str, url: str) -> NodeState | None:
        """The node's entry while its cooldown runs, else None."""
        entry = self.get(provider, url)
        if entry is None or entry.left(self.clock()) <= 0:
            return None
        return entry

    # --- writing --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, NodeState]]:
        """Hold the lock, yield the current entries for changing, then write them back atomically."""
        with locked(self.path):
            entries = self._read()
            yield entries
            body = {"format": FORMAT, "nodes": {k: v.to_json() for k, v in sorted(entries.items())}}
            write_atomic(self.path, json.dumps(body, indent=1) + "\n", mode=0o600)
            self._snapshot = entries

    def _safely(self, change: Callable[[dict[str, NodeState]], Any]) -> Any:
        """Run a locked change; a state file that cannot be written is a warning, never fatal."""
        try:
            with self._locked() as entries:
                return change(entries)
        except OSError as exc:
            if not self.warnings:  # one warning per run about the file: "unreadable" already says it all
                self._warn(f"cannot update state file {self.path}: {exc.strerror or exc}")
            return None

    def record_failure(self, provider: ProviderConfig, url: str, failure: Failure) -> NodeState | None:
        """Remember a failure that puts the node in cooldown; other failures are ignored (None)."""
        length = cooldown_for(provider, failure)
        if length is None:
            return None
        now = self.clock()
        reason = _safe_text(failure.reason or "", [*_secrets_of(provider), *self.secrets])
        entry = NodeState(provider.name, url, failure.kind.value, reason, failure.status, now, now + length)

        def change(entries: dict[str, NodeState]) -> NodeState:
            entries[node_key(provider.name, url)] = entry
            return entry

        return self._safely(change)

    def clear(self, provider: str | None = None, url: str | None = None) -> int:
        """Forget all nodes, one provider's, or one node's. Returns how many entries went."""

        def change(entries: dict[str, NodeState]) -> int:
            gone = [
                k
                for k, v in entries.items()
                if (provider is None or v.provider == provider) and (url is None or v.url == url)
            ]
            for k in gone:
                del entries[k]
            return len(gone)

        if not self.path.exists():
            return 0
        return self._safely(change) or 0


class FileRouteState(RouteState):
    """The Router's memory across runs, backed by a CooldownStore."""

    def __init__(self, store: CooldownStore | None = None) -> None:
        self.store = store or CooldownStore()

    @property
    def warnings(self) -> list[str]:
        return self.store.warnings

    def blocked(self, provider: ProviderConfig, url: str) -> str | None:
        entry = self.store.active(provider.name, url)
        return entry.blocked_reason(self.store.clock()) if entry else None

    def failed(self, provider: ProviderConfig, url: str, failure: Failure) -> None:
        self.store.record_failure(provider, url, failure)

    def succeeded(self, provider: ProviderConfig, url: str) -> None:
        # Only touch the file (lock + write) when this node had an entry: a healthy run costs one read.
        if self.store.get(provider.name, url) is not None:
            self.store.clear(provider.name, url)
