"""The `exobridge` command. Sub-command modules are imported when registered, so each keeps its heavy
imports (httpx, Rich, sqlite) inside its functions: `exobridge --help` pays only for Typer.
"""

from __future__ import annotations

import os
import sys

import typer

from exobridge import __version__
from exobridge.cli import exits

app = typer.Typer(
    name="exobridge",
    help="Chat with your own Exo cluster first; fail over to OpenRouter, then Hugging Face, only when it "
    "cannot answer. Always says who answered, how fast, and what it cost.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"exobridge {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """exobridge: local first, cloud when needed."""


def _register() -> None:
    from exobridge.cli import chat, completions, config, doctor, keys, models, providers, serve

    for module in (chat, providers, models, config, keys, doctor, completions, serve):
        module.register(app)


_register()


def only_the_subcommand(app: typer.Typer, args: list[str]) -> typer.Typer:
    """The app with just the command or group that `args` starts with, when it starts with one.

    Typer builds its whole command tree (every parameter of some thirty commands) before running any of
    them; below the first word the others cannot matter, and building them cost more than all of
    exobridge's own start-up. Anything else (`--help`, a typo, an option first) gets the whole app.
    """
    if not args or args[0].startswith("-"):
        return app
    import copy

    from typer.main import get_command_name

    first = args[0]
    commands = [
        info
        for info in app.registered_commands
        if (info.name or (info.callback and get_command_name(info.callback.__name__))) == first
    ]
    groups = [info for info in app.registered_groups if info.name == first]
    if not commands and not groups:
        return app
    pruned = copy.copy(app)
    pruned.registered_commands = commands
    pruned.registered_groups = groups
    return pruned


def _usage_error(exc: Exception) -> int:
    """Typer/click's usage errors as one line, with where to get help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    sys.stderr.write(f"exobridge: error: {exc.format_message()}{hint}\n")  # type: ignore[attr-defined]
    return int(exc.exit_code)  # type: ignore[attr-defined]


def main() -> None:
    if os.environ.get("_EXOBRIDGE_COMPLETE"):
        from exobridge.cli import completions

        if completions.respond(app):
            return
    try:
        args = sys.argv[1:]
        code = only_the_subcommand(app, args)(args=args, prog_name="exobridge", standalone_mode=False)
    except BrokenPipeError:
        exits.silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.stderr.write("exobridge: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "exit_code") and hasattr(exc, "format_message"):
            sys.exit(_usage_error(exc))
        if type(exc).__name__ == "Abort":
            sys.stderr.write("exobridge: aborted\n")
            sys.exit(1)
        if os.environ.get("EXOBRIDGE_DEBUG"):
            raise
        sys.stderr.write(
            f"exobridge: internal error: {type(exc).__name__}: {exc} (set EXOBRIDGE_DEBUG=1 for the traceback)\n"
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
