"""`exobridge doctor`: checks with a one-line fix for every problem."""

from __future__ import annotations

from typing import Annotated

import typer


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object: checks and a summary.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as failures (exit 1).")] = False,
) -> None:
    """Check the environment, config, every provider and the network; say how to fix what is wrong.

    Exit 0 when nothing failed, 1 when a check failed (or warned, with --strict). Never spends money.
    """
    from exobridge.core.doctor import diagnose
    from exobridge.render.doctor import DoctorView

    report = diagnose(strict=strict)
    DoctorView(json_mode=json_out).show(report)
    raise typer.Exit(report.exit_code)


def register(root: typer.Typer) -> None:
    """Add the `doctor` command."""
    root.command("doctor")(doctor)
