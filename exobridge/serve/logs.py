"""serve's stderr: one start-up line, one line per request, warnings; text or JSON lines (`--json-logs`).

Every field that came from a provider or a client passes the redactor (no upstream key, nor a piece of one)
and, in text lines, has its control characters shown escaped, so a log line cannot rewrite a terminal.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Hashable
from typing import IO, Any

from exobridge.core.sanitize import terminal_text


def _cost(cost: float | None) -> str:
    if cost is None:
        return "cost unknown"
    return "free" if cost == 0 else f"${cost:.6f}"


class AccessLog:
    def __init__(
        self, stream: IO[str] | None = None, json_lines: bool = False, redact: Callable[[str], str] = lambda s: s
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.json_lines = json_lines
        self.redact = redact
        self._said: set[Hashable] = set()  # the keys of warn_once
        self._said_lock = threading.Lock()

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or full: serving matters more than the log
            pass

    def _emit(self, event: str, text: str, fields: dict[str, Any]) -> None:
        if self.json_lines:
            self._write(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, ensure_ascii=False))
        else:
            self._write(f"exobridge serve: {terminal_text(self.redact(text))}")

    def startup(self, url: str, providers: list[str], key_required: bool) -> None:
        order = ", ".join(providers) or "none enabled"
        auth = "client key required" if key_required else "no client key (loopback only)"
        dashboard = url.removesuffix("v1")  # the page is at `GET /`
        self._emit(
            "start",
            f"listening on {url} · providers: {order} · {auth} · dashboard {dashboard}",
            {"url": url, "providers": providers, "key_required": key_required, "dashboard": dashboard},
        )

    def warn(self, message: str) -> None:
        self._emit("warning", f"warning: {message}", {"message": self.redact(message)})

    def warn_once(self, key: Hashable, message: str) -> None:
        """`warn`, the first time this log is given `key`: a notice that would otherwise repeat per request."""
        with self._said_lock:
            if key in self._said:
                return
            self._said.add(key)
        self.warn(message)

    def stopping(self, signal_name: str, open_requests: int, grace: float) -> None:
        self._emit(
            "stopping",
            f"{signal_name}: not accepting new requests; {open_requests} open, given up to {grace:g} s to finish",
            {"signal": signal_name, "open_requests": open_requests, "grace": grace},
        )

    def stopped(self) -> None:
        self._emit("stop", "stopped", {})

    def request(self, scope: dict[str, Any] | Any, status: int, seconds: float) -> None:
        info = scope.get("exobridge", {})
        result = info.get("result")
        client = scope.get("client") or ("-", 0)
        fields: dict[str, Any] = {
            "client": f"{client[0]}",
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "latency_ms": round(seconds * 1000, 1),
            "provider": None,
            "model": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "first_token_ms": None,
            "cost": None,
            "finish_reason": None,
            "error": info.get("error"),
        }
        if result is not None:
            usage = result.usage if isinstance(result.usage, dict) else {}
            fields.update(
                provider=result.provider,
                model=result.model,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                first_token_ms=result.first_token_ms,
                cost=result.cost,
                finish_reason=result.finish_reason,
                attempts=[f"{a.provider}={getattr(a.outcome, 'value', a.outcome)}" for a in result.attempts],
            )
        for name in ("model", "error", "path"):
            if isinstance(fields.get(name), str):
                fields[name] = self.redact(fields[name])
        parts = [f"{fields['client']} {fields['method']} {fields['path']} {status}"]
        if fields["provider"]:
            parts.append(str(fields["provider"]))
            parts.append(str(fields["model"] or "?"))
            tokens = (fields["prompt_tokens"], fields["completion_tokens"])
            parts.append(f"{tokens[0]}+{tokens[1]} tok" if tokens != (None, None) else "tokens unknown")
        parts.append(f"{fields['latency_ms']:.0f} ms")
        if fields["provider"]:
            parts.append(_cost(fields["cost"]))
        if fields["finish_reason"] not in (None, "stop"):  # cut at max_tokens, tool calls, a content filter
            parts.append(str(fields["finish_reason"]))
        if fields["error"]:
            parts.append(f"error: {fields['error']}")
        self._emit("request", " · ".join(parts), fields)
