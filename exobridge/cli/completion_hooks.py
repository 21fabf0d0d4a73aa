"""What every command declares for completion, kept light: the `autocompletion=` hooks of options that take a
provider, a model or a config key, and the root `--show-completion` / `--install-completion` flags.

Declaring them costs a command nothing it does not use: the engine that answers a TAB, the scripts and their
installation are cli/completions.py, imported only when a TAB is answered or one of those flags is given.
"""

from __future__ import annotations

from typing import Annotated

import typer

# --- autocompletion hooks (Typer `autocompletion=`) --------------------------------------------------------


def complete_provider(incomplete: str) -> list[tuple[str, str]]:
    """Configured provider names (for `-p/--provider`, `keys set|get|remove`)."""
    try:
        from exobridge.core.completion_values import provider_names

        return list(provider_names(incomplete))
    except Exception:
        return []


def complete_model(incomplete: str) -> list[tuple[str, str]]:
    """Model-table names, `provider:` prefixes and cached model ids (for `-m/--model`)."""
    try:
        from exobridge.core.completion_values import model_names

        return list(model_names(incomplete))
    except Exception:
        return []


def complete_config_key(incomplete: str) -> list[tuple[str, str]]:
    """Dotted config keys (for `config get|set|unset`)."""
    try:
        from exobridge.core.completion_values import config_keys

        return list(config_keys(incomplete))
    except Exception:
        return []


# --- the root flags ---------------------------------------------------------------------------------------------


def show_completion_callback(value: bool) -> None:
    if value:
        from exobridge.cli import completions

        completions.show_completion_callback(value)


def install_completion_callback(value: bool) -> None:
    if value:
        from exobridge.cli import completions

        completions.install_completion_callback(value)


# Root options (cli/app.py): flags, as Typer's own were; the shell is detected (`exobridge completions SHELL`
# names it instead).
ShowCompletionOption = Annotated[
    bool,
    typer.Option(
        "--show-completion",
        help="Print the completion script for your shell (bash, zsh or fish).",
        callback=show_completion_callback,
        is_eager=True,
        expose_value=False,
    ),
]
InstallCompletionOption = Annotated[
    bool,
    typer.Option(
        "--install-completion",
        help="Install completion for your shell (bash, zsh or fish).",
        callback=install_completion_callback,
        is_eager=True,
        expose_value=False,
    ),
]
