"""The `exobridge` command tree, built for one command line.

`build_app(args)` registers only the command group that `args` starts with (`chat`, `providers` …), so
`exobridge chat …` neither imports nor builds the other groups; `--help`, a typo or an option first gets the
whole tree. Each command module keeps its heavy imports (httpx, Rich, sqlite) inside its functions, so
`exobridge --help` pays only for Typer. Running a command line, and turning its failures into messages and
exit codes, is exobridge/cli/runner.py.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from exobridge import __version__
from exobridge.cli import completion_hooks

# Command name -> module with `register(app)`, in the order `--help` lists them.
COMMAND_MODULES: dict[str, str] = {
    "chat": "exobridge.cli.chat",
    "setup": "exobridge.cli.setup",
    "providers": "exobridge.cli.providers",
    "models": "exobridge.cli.models",
    "config": "exobridge.cli.config",
    "keys": "exobridge.cli.keys",
    "doctor": "exobridge.cli.doctor",
    "completions": "exobridge.cli.completions",
    "serve": "exobridge.cli.serve",
    "history": "exobridge.cli.history",
    "usage": "exobridge.cli.usage",
}


def _version(value: bool) -> None:
    if value:
        from exobridge.render import io as iostreams

        iostreams.current().write_out(f"exobridge {__version__}\n")
        raise typer.Exit(0)


def new_app() -> typer.Typer:
    """The root `exobridge` app with no commands registered yet."""
    app = typer.Typer(
        name="exobridge",
        help="Chat with your own Exo cluster first; fail over to OpenRouter, then Hugging Face, only when it "
        "cannot answer. Always says who answered, how fast, and what it cost.",
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=False,  # exobridge's own --show/--install-completion (cli/completion_hooks.py)
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", "-V", help="Show the version and exit.", callback=_version, is_eager=True
        ),
        show_completion: completion_hooks.ShowCompletionOption = False,
        install_completion: completion_hooks.InstallCompletionOption = False,
    ) -> None:
        """exobridge: local first, cloud when needed."""

    return app


def build_app(args: list[str] | None = None) -> typer.Typer:
    """The app for `args`: just the group they start with, or every group when they start with none."""
    first = args[0] if args else None
    names = [first] if first in COMMAND_MODULES else list(COMMAND_MODULES)
    app = new_app()
    for name in names:
        importlib.import_module(COMMAND_MODULES[name]).register(app)
    return app


def __getattr__(name: str) -> Any:
    """`from exobridge.cli.app import app`: the whole tree, built on first use."""
    if name == "app":
        built = build_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)


def main() -> None:
    """The console script's entry: completion requests first, then one command line through the runner."""
    import os

    if os.environ.get("_EXOBRIDGE_COMPLETE"):
        from exobridge.cli import completions

        if completions.respond(build_app):
            return
    from exobridge.cli.runner import main as run_main

    run_main()
