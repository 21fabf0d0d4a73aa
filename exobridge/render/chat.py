"""What `exobridge chat` shows: the model's text on stdout, notices and the summary on stderr.

stdout gets only the text, written as it arrives and flushed, never re-rendered. stderr gets Rich styling
only when it is a terminal and NO_COLOR is unset; anything else gets plain lines.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any


def stream_is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class StderrLines:
    """One-line messages on stderr, dim or coloured on a terminal, plain otherwise."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.styled = stream_is_tty(self.stream) and not os.environ.get("NO_COLOR")
        self._console: Any = None

    def write(self, text: str, style: str | None = None) -> None:
        if self.styled and style:
            if self._console is None:
                from rich.console import Console

                self._console = Console(file=self.stream, highlight=False, soft_wrap=True)
            from rich.text import Text

            self._console.print(Text(text, style=style))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()


def _duration(ms: int | None) -> str:
    if ms is None:
        return "?"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _cost(cost: float | None, provider_kind: str | None) -> str:
    if provider_kind == "exo" or cost == 0:
        return "free"
    if cost is None:
        return "cost n/a"
    return f"${cost:.6f}".rstrip("0").rstrip(".") if cost < 0.01 else f"${cost:.4f}"


MIN_RATE_WINDOW_MS = 100


def summary_line(result: dict[str, Any], provider_kind: str | None) -> str:
    """`exo (http://localhost:52415) · llama-3.2-3b · 1.2 s · 42 tok/s · free`."""
    where = result.get("backend") or result.get("url") or ""
    if result.get("backend"):
        where = f"via {where}"
    parts = [f"{result['provider']} ({where})" if where else str(result["provider"])]
    parts.append(str(result.get("model") or result.get("requested_model")))
    parts.append(_duration(result.get("latency_ms")))
    usage = result.get("usage") or {}
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    latency, first = result.get("latency_ms"), result.get("first_token_ms")
    if isinstance(completion, int) and completion > 0:
        # A rate over a few milliseconds (a whole reply in one chunk) would be noise, not a speed.
        if latency is not None and first is not None and latency - first >= MIN_RATE_WINDOW_MS:
            parts.append(f"{completion / ((latency - first) / 1000):.1f} tok/s")
        else:
            parts.append(f"{completion} tokens")
    parts.append(_cost(result.get("cost"), provider_kind))
    return " · ".join(parts)


class ChatView:
    """Observer of one routed chat (duck-typed to the core's RouteObserver)."""

    def __init__(
        self,
        *,
        json_mode: bool,
        quiet: bool,
        verbose: bool,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.stdout = stdout or sys.stdout
        self.err = StderrLines(stderr)
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.notices = verbose or (not quiet and stream_is_tty(self.err.stream))
        self._last_char = ""

    def warn(self, message: str) -> None:
        self.err.write(f"exobridge: warning: {message}", "yellow")

    def error(self, message: str) -> None:
        self.err.write(f"exobridge: error: {message}", "bold red")

    # --- RouteObserver --------------------------------------------------------------------------
    def text(self, piece: str) -> None:
        if self.json_mode:
            return
        self.stdout.write(piece)
        self.stdout.flush()
        self._last_char = piece[-1]

    def attempt_started(self, target: Any, url: str, model: str) -> None:
        if self.verbose:
            self.err.write(f"→ {target.provider.name} {url} model {model}", "dim")

    def attempt_ended(self, attempt: Any, decision: Any) -> None:
        if not self.notices or attempt.outcome == "ok":
            return
        if attempt.outcome == "skipped":
            if self.verbose:
                self.err.write(f"· {attempt.provider}: skipped, {attempt.reason}", "dim")
            return
        then = ""
        if decision is not None:
            if decision.retry_same:
                then = f" — retrying in {decision.retry_delay:g} s"
            elif decision.fail_over:
                then = " — failing over"
        self.err.write(f"! {attempt.provider} ({attempt.url}): {attempt.reason}{then}", "yellow")

    # --- the end --------------------------------------------------------------------------------
    def finish(self, result: Any, provider_kind: str | None) -> None:
        data = result.to_json()
        if self.json_mode:
            self.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            self.stdout.flush()
        elif result.printed and self._last_char != "\n":
            self.stdout.write("\n")
            self.stdout.flush()
        if result.exit_code == 0:
            if self.notices:
                self.err.write(summary_line(data, provider_kind), "dim")
            return
        if result.exit_code == 130:
            self.err.write("exobridge: interrupted", "yellow")
            return
        if result.printed:
            self.error(f"the reply broke after partial output: {result.error}")
            return
        self.error(result.error or "no provider could answer")
        for attempt in result.attempts:
            if attempt.outcome == "ok":
                continue
            line = f"  {attempt.provider}: {attempt.outcome}, {attempt.reason}"
            if attempt.url and attempt.outcome == "failed":
                line += f" [{attempt.url}]"
            if attempt.hint:
                line += f" → {attempt.hint}"
            self.err.write(line)
