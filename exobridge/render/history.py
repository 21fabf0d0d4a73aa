"""How `exobridge history` shows requests: a plain table, one conversation, JSON lines or Markdown.

Every stored string is shown through `sanitize.terminal_text` (a reply cannot take over the terminal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exobridge.core.sanitize import terminal_text

if TYPE_CHECKING:
    from exobridge.core.history import Entry
    from exobridge.render.io import IOStreams


def _time(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def cost_text(entry: Entry) -> str:
    if entry.cost is None:
        return "unknown" if entry.provider else "-"
    if entry.cost == 0:
        return "free" if entry.cost_source == "free" else "$0"
    return f"${entry.cost:.4f}"


def _one_line(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    shown = terminal_text(flat)
    return shown if len(shown) <= width else shown[: max(width - 1, 0)] + "…"


def table(entries: list[Entry], io: IOStreams) -> None:
    if not entries:
        io.write_err("no requests in the history\n")
        return
    head = ("ID", "TIME", "CONVERSATION", "PROVIDER", "MODEL", "OUTCOME", "COST")
    rows = [
        (
            str(e.id),
            _time(e.ts),
            e.conversation,
            terminal_text(e.provider or "-"),
            terminal_text(e.served_model or e.requested_model or "-"),
            e.outcome,
            cost_text(e),
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    used = sum(widths) + 2 * len(widths)
    room = max(io.width - used, 20)
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + "  PROMPT"]
    for row, entry in zip(rows, entries, strict=True):
        cells = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append(f"{cells}  {_one_line(entry.prompt, room)}")
    io.write_out("\n".join(lines) + "\n")


def _summary(entry: Entry) -> str:
    parts = [f"#{entry.id}", _time(entry.ts), entry.outcome]
    if entry.provider:
        parts.append(f"{terminal_text(entry.provider)} {terminal_text(entry.served_model or '')}".strip())
    if entry.prompt_tokens is not None or entry.completion_tokens is not None:
        parts.append(f"{entry.prompt_tokens or 0}+{entry.completion_tokens or 0} tokens")
    parts.append(cost_text(entry))
    if entry.latency_ms is not None:
        parts.append(f"{entry.latency_ms} ms")
    return " · ".join(parts)


def conversation(entries: list[Entry], io: IOStreams) -> None:
    """Every turn: its summary line, the prompt and the reply."""
    out: list[str] = [f"conversation {entries[0].conversation}"] if entries else []
    for entry in entries:
        out.append("")
        out.append(f"── {_summary(entry)}")
        if entry.system:
            out.append(f"system: {terminal_text(entry.system, keep_newlines=True)}")
        out.append(f"> {terminal_text(entry.prompt, keep_newlines=True)}")
        reasoning, calls, refusal = entry.part_texts()
        if reasoning:
            out.append(f"reasoning: {terminal_text(reasoning, keep_newlines=True)}")
        if entry.reply:
            out.append(terminal_text(entry.reply, keep_newlines=True))
        elif not (calls or refusal):
            out.append(f"({entry.error or 'no reply'})")
        out.extend(f"tool call: {terminal_text(call, keep_newlines=True)}" for call in calls)
        if refusal:
            out.append(f"refusal: {terminal_text(refusal, keep_newlines=True)}")
    io.write_out("\n".join(out) + "\n")


def markdown(entries: list[Entry]) -> str:
    """A Markdown export: one section per conversation, a sub-section per turn."""
    out: list[str] = []
    current = None
    for entry in entries:
        if entry.conversation != current:
            current = entry.conversation
            out.append(f"# Conversation {current}\n")
        out.append(f"## {_time(entry.ts)} · {entry.provider or 'no provider'} · {entry.outcome}\n")
        if entry.system:
            out.append(f"**System:** {entry.system}\n")
        out.append(f"**You:**\n\n{entry.prompt}\n")
        reasoning, calls, refusal = entry.part_texts()
        if reasoning:
            out.append(f"**Reasoning:**\n\n{reasoning}\n")
        reply = entry.reply or ("" if calls or refusal else "_(no reply)_")
        out.append(f"**{entry.served_model or entry.requested_model or 'Reply'}:**\n\n{reply}\n")
        if calls:
            block = "".join(f"    {line}\n" for call in calls for line in call.splitlines())
            out.append(f"**Tool calls:**\n\n{block}")
        if refusal:
            out.append(f"**Refusal:** {refusal}\n")
    return "\n".join(out)


def entries_json(entries: list[Entry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries]
