"""Command-line layer: parse, call the core, hand results to the renderer."""

from __future__ import annotations

import sys


def main() -> None:
    """The console script. `--version` answers before Typer and the command groups are imported."""
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
        from exobridge.cli.app import main as run
    except KeyboardInterrupt:  # Ctrl-C while Typer and the commands load: no traceback either
        from exobridge.core.errors import ExitCode

        if sys.stderr is not None:
            sys.stderr.write("exobridge: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    run()
