"""`exobridge usage [--since 7d|2026-11-01] [--by provider|model|day] [--json] [--refresh-prices]`.

Requests, tokens and cost per group from the history database, a bar per day on a terminal, what running
locally saved (docs/history.md), and each budget with what is left today and this month. When what running
locally saved needs a price list that is missing or older than a day, it is read first (at most once a day,
within a few seconds; a failure is one notice, never an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from exobridge.core.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams

BY = ("provider", "model", "day")


@dataclass
class UsageOptions:
    since: str = "30d"
    by: str = "provider"
    json: bool = False
    refresh_prices: bool = False


def usage_run(opts: UsageOptions, io: IOStreams) -> int:
    from exobridge.core import budget, history, spend, usage_report
    from exobridge.core import config as config_mod
    from exobridge.core.sanitize import terminal_text

    if opts.by not in BY:
        raise UsageError(f"--by: one of {', '.join(BY)}")
    try:
        since = history.parse_when(opts.since)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = config_mod.load()
    if opts.refresh_prices:
        for name, outcome in spend.refresh_prices(config).items():
            io.notice(terminal_text(f"exobridge: prices: {name}: {outcome}"))
    rows: list[tuple] = []
    standings: list[budget.Standing] = []
    store = history.Store(create=False)
    if store.exists():
        try:
            with store:
                rows = store.usage_groups(history.Filters(since=since))
                standings = budget.standings(budget.from_config(config), store.spent_since)
        except history.HistoryUnavailable as exc:
            from exobridge.cli.history import HistoryError

            raise HistoryError(str(exc).replace("history unavailable: ", "")) from None
    else:
        standings = budget.standings(budget.from_config(config), lambda since, provider: 0.0)
    summary = usage_report.summarize(rows, opts.by, config)
    stale = [] if opts.refresh_prices else spend.stale_price_lists(config, summary)
    if stale:  # saved by running locally needs a price list that is missing or a day old: one bounded read
        for name, outcome in spend.refresh_stale_prices(stale).items():
            if not outcome.endswith(" prices"):
                io.notice(
                    terminal_text(
                        f"exobridge: could not read {name}'s price list ({outcome}); what running locally saved "
                        "stays unknown (tried again tomorrow, or now with exobridge usage --refresh-prices)"
                    )
                )
        summary = usage_report.summarize(rows, opts.by, config)
    if opts.json:
        data = summary.to_json()
        data["since"] = history._iso(since)
        data["budgets"] = [s.to_json() for s in standings]
        io.write_json(data)
        return ExitCode.OK
    from exobridge.render import usage as view

    view.show(summary, io, f"since {history._iso(since)}")
    io.write_out(view.budget_lines(standings))
    return ExitCode.OK


def usage(
    since: Annotated[str, typer.Option("--since", help="From: 7d, 12h, or a date (2026-11-01).")] = "30d",
    by: Annotated[str, typer.Option("--by", help="Group by provider, model or day.")] = "provider",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    refresh_prices: Annotated[
        bool, typer.Option("--refresh-prices", help="Read the providers' price lists first (network).")
    ] = False,
) -> int:
    """Requests, tokens and cost; what running locally saved; budgets left."""
    from exobridge.render import io as iostreams

    return usage_run(UsageOptions(since, by, json_out, refresh_prices), iostreams.current())


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)
