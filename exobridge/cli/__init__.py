"""Command-line layer: parse, call the core, hand results to the renderer."""

from __future__ import annotations

import os
import sys


def without_parse(args: list[str]) -> bool:
    """`exobridge chat` alone: nothing to parse, so it runs without Typer (cli/chat_run.py run_without_arguments).
    Asked here, before the command tree is imported, and by cli/runner.py `run`."""
    return args == ["chat"]


def main() -> None:
    """The console script. `--version` answers before Typer and the command groups are imported, and so does
    `exobridge chat` alone (`without_parse`)."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from exobridge import __version__

        try:
            sys.stdout.write(f"exobridge {__version__}\n")
            sys.stdout.flush()
        except (AttributeError, OSError, ValueError):  # stdout closed or full: say so, never a traceback
            if sys.stderr is not None:
                sys.stderr.write("exobridge: error: cannot write to stdout\n")
            sys.exit(1)
        return
    try:
        if without_parse(sys.argv[1:]) and not os.environ.get("_EXOBRIDGE_COMPLETE"):
            from exobridge.cli.runner import main as run  # neither Typer nor the command tree
        else:
            from exobridge.cli.app import main as run
    except KeyboardInterrupt:  # Ctrl-C while Typer and the commands load: no traceback either
        from exobridge.core.errors import ExitCode

        if sys.stderr is not None:
            sys.stderr.write("exobridge: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    run()
