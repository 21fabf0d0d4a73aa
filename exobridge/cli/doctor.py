"""`exobridge doctor`: checks with a one-line fix for every problem (options, then `doctor_run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams


@dataclass(frozen=True)
class DoctorOptions:
    json: bool = False
    strict: bool = False


def doctor_run(opts: DoctorOptions, io: IOStreams) -> int:
    """Run every check and show the report; the exit code: 0, 1 (a check failed; a warning with --strict), or
    4 when the config, the keys file or a proxy variable cannot be used (the report still says which line,
    and stderr gets the one error line every command prints for it)."""
    from exobridge.core.doctor import diagnose
    from exobridge.render.doctor import DoctorView

    report = diagnose(strict=opts.strict)
    DoctorView(io, json_mode=opts.json).show(report)
    if report.error_line is not None:  # worded as every other command words it, after the report
        io.write_err(f"exobridge: error: {report.error_line}\n")
    return report.exit_code


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object: checks and a summary.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as failures (exit 1).")] = False,
) -> int:
    """Check the environment, config, every provider and the network; say how to fix what is wrong.

    Exit 0 when nothing failed, 1 when a check failed (or warned, with --strict), 4 when the config, the keys
    file or a proxy variable cannot be used. Never spends money; ends within its deadline (docs/doctor.md).
    """
    from exobridge.render import io as iostreams

    code = doctor_run(DoctorOptions(json=json_out, strict=strict), iostreams.current())
    raise typer.Exit(code)


def register(root: typer.Typer) -> None:
    """Add the `doctor` command."""
    root.command("doctor")(doctor)
