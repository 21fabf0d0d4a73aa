"""How `exobridge usage` shows spending: a table per group, a bar per day on a terminal, the savings line."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from exobridge.core.sanitize import terminal_text

if TYPE_CHECKING:
    from exobridge.core.usage_report import Group, Usage
    from exobridge.render.io import IOStreams

BAR_WIDTH = 30


def money(value: float) -> str:
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _cost(group: Group) -> str:
    text = money(group.cost)
    return f"{text} + {group.unknown} unknown" if group.unknown else text


def show(usage: Usage, io: IOStreams, since_text: str) -> None:
    head = (usage.by.upper(), "REQUESTS", "TOKENS IN", "TOKENS OUT", "COST")
    rows = [
        (terminal_text(g.key), str(g.requests), str(g.prompt_tokens), str(g.completion_tokens), _cost(g))
        for g in [*usage.groups, usage.total]
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    out = [f"usage {since_text}", "", line(head), *(line(r) for r in rows[:-1])]
    out.append(line(rows[-1]))
    if io.is_stdout_tty and usage.days:
        out += ["", "per day (cost; requests where nothing was spent):"]
        top_cost = max(d.cost for d in usage.days)
        top_requests = max(d.requests for d in usage.days)
        for day in usage.days:
            share = day.cost / top_cost if top_cost > 0 else day.requests / top_requests
            bar = "█" * max(1, round(share * BAR_WIDTH)) if (day.cost or day.requests) else ""
            out.append(f"{day.key}  {bar.ljust(BAR_WIDTH)}  {money(day.cost)}  {day.requests} req")
    out += ["", savings_line(usage)]
    io.write_out("\n".join(out) + "\n")


def savings_line(usage: Usage) -> str:
    saved = usage.saved
    if not saved.requests:
        return "saved by running locally: nothing yet (no request was answered locally)"
    if not saved.priced:
        why = (
            "no cached OpenRouter prices (exobridge usage --refresh-prices)"
            if saved.reference
            else "no OpenRouter provider configured"
        )
        return f"saved by running locally: unknown for {saved.requests} local requests ({why})"
    date = datetime.fromtimestamp(saved.price_date).date().isoformat() if saved.price_date else "unknown date"
    unpriced = saved.requests - saved.priced
    extra = f"; {unpriced} more without a cloud price" if unpriced else ""
    return (
        f"saved by running locally: {money(saved.usd)} over {saved.priced} requests "
        f"(at {saved.reference} prices of {date}{extra})"
    )


def budget_lines(standings: list) -> str:
    """One line per budget: "daily budget: $0.50 of $2.00 ($1.50 left)"."""
    out = []
    for standing in standings:
        scope = "" if standing.scope == "overall" else f" for {terminal_text(standing.scope)}"
        out.append(
            f"{standing.period} budget{scope}: {money(standing.spent)} of {money(standing.limit)} "
            f"({money(standing.left)} left)\n"
        )
    return "".join(out)
