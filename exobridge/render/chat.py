"""What `exobridge chat` shows: the model's text on stdout, notices and the summary on stderr.

stdout gets only the text, written as it arrives and flushed, never re-rendered. Piped, it is byte-exact; on a
terminal, control characters other than newline, tab and CR are shown escaped (`\\x1b`), so an answer cannot
retitle the window or clear the screen. stderr gets colour only when IOStreams says so; every provider string
on it (reasons, URLs, served model ids) goes through `terminal_text` and is never read as Rich markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exobridge.core.routing import Outcome
from exobridge.core.sanitize import model_text_for_terminal, terminal_text
from exobridge.render import io as iostreams
from exobridge.render.io import IOStreams


def _duration(ms: int | None) -> str:
    if ms is None:
        return "?"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _cost(cost: float | None, free: bool) -> str:
    if free or cost == 0:
        return "free"
    if cost is None:
        return "cost n/a"
    return f"${cost:.6f}".rstrip("0").rstrip(".") if cost < 0.01 else f"${cost:.4f}"


MIN_RATE_WINDOW_MS = 100


def summary_line(result: dict[str, Any], free: bool = False) -> str:
    """`exo (http://localhost:52415) · llama-3.2-3b · 1.2 s · 42 tok/s · free`; `free` is the kind's."""
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
    parts.append(_cost(result.get("cost"), free))
    if result.get("finish_reason") == "length":
        parts.append("cut at the token limit (--max-tokens)")
    return terminal_text(" · ".join(parts))


def result_json(result: Any, exit_code: int | None = None) -> dict[str, Any]:
    """chat's `--json` object: the result's schema plus the exit code the run ends with."""
    data = result.to_json()
    data["exit_code"] = int(result.exit_code if exit_code is None else exit_code)
    return data


THINKING = "thinking…"


class ChatView:
    """Observer of one routed chat (duck-typed to the core's RouteObserver).

    `hint(attempt)` gives the next step for a failed or skipped attempt (the CLI makes it from the failure
    kind); `free(provider_name)` says whether that provider's kind costs nothing.
    """

    def __init__(
        self,
        *,
        json_mode: bool,
        quiet: bool,
        verbose: bool,
        io: IOStreams | None = None,
        hint: Callable[[Any], str | None] | None = None,
        free: Callable[[str], bool] | None = None,
    ) -> None:
        self.io = io or iostreams.current()
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.hint = hint or (lambda attempt: None)
        self.free = free or (lambda name: False)
        self.notices = verbose or (not quiet and self.io.is_stderr_tty)
        self._last_char = ""
        self._escape_text = self.io.is_stdout_tty
        self._thinking = False  # "thinking…" is on stderr's line now, to be wiped before anything else shows

    def warn(self, message: str) -> None:
        self._end_thinking()
        self.io.notice(f"exobridge: warning: {terminal_text(message)}", "yellow")

    def error(self, message: str) -> None:
        self._end_thinking()
        self.io.notice(f"exobridge: error: {terminal_text(message)}", "bold red")

    # --- RouteObserver --------------------------------------------------------------------------
    def text(self, piece: str) -> None:
        if self.json_mode or not piece:
            return
        self._end_thinking()
        self.io.write_out(model_text_for_terminal(piece) if self._escape_text else piece)
        self._last_char = piece[-1]

    def attempt_started(self, target: Any, url: str, model: str) -> None:
        if self.verbose:
            self.io.notice(terminal_text(f"→ {target.provider.name} {url} model {model}"), "dim")

    def thinking(self) -> None:
        """A reasoning model at work before its text: one transient word on a terminal's stderr, wiped (with
        a carriage return and spaces, no escape codes) before the text or any other line."""
        if self._thinking or self.json_mode or self.quiet or not self.io.is_stderr_tty:
            return
        self._thinking = True
        self.io.write_err(THINKING)

    def _end_thinking(self) -> None:
        if self._thinking:
            self._thinking = False
            self.io.write_err("\r" + " " * len(THINKING) + "\r")

    def attempt_ended(self, attempt: Any, decision: Any) -> None:
        self._end_thinking()
        if not self.notices or attempt.outcome == Outcome.OK:
            return
        if attempt.outcome == Outcome.SKIPPED:
            if self.verbose:
                self.io.notice(terminal_text(f"· {attempt.provider}: skipped, {attempt.reason}"), "dim")
            return
        then = ""
        if decision is not None:
            if decision.retry_same:
                then = f" — retrying in {decision.retry_delay:g} s"
            elif decision.fail_over:
                then = " — failing over"
        line = terminal_text(f"! {attempt.provider} ({attempt.url}): {attempt.reason}")
        self.io.notice(f"{line}{then}", "yellow")

    # --- the end --------------------------------------------------------------------------------
    def finish_output(self, result: Any) -> None:
        """stdout's part of the end: the JSON object, or the newline that ends printed text."""
        self._end_thinking()
        if self.json_mode:
            self.io.write_out(iostreams.json_line(result_json(result)))
        elif result.printed and self._last_char != "\n":
            self.io.write_out("\n")

    def finish_notices(self, result: Any, interrupted_as: str = "interrupted") -> None:
        """stderr's part of the end: the summary, or what went wrong and each attempt with its hint."""
        self._end_thinking()
        if result.exit_code == 0:
            if self.notices:
                free = bool(result.provider) and self.free(result.provider)
                self.io.notice(summary_line(result.to_json(), free), "dim")
            return
        if result.exit_code >= 128:
            self.io.notice(f"exobridge: {interrupted_as}", "yellow")
            return
        if result.printed:
            self.error(f"the reply broke after partial output: {result.error}")
            return
        self.error(result.error or "no provider could answer")
        for attempt in result.attempts:
            if attempt.outcome == Outcome.OK:
                continue
            line = f"  {attempt.provider}: {attempt.outcome}, {attempt.reason}"
            if attempt.url and attempt.outcome == Outcome.FAILED:
                line += f" [{attempt.url}]"
            line = terminal_text(line)
            hint = self.hint(attempt)
            if hint:
                line += f" → {terminal_text(hint)}"
            self.io.notice(line)

    def finish(self, result: Any, interrupted_as: str = "interrupted") -> None:
        self.finish_output(result)
        self.finish_notices(result, interrupted_as)
