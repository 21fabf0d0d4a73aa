"""`exobridge completions bash|zsh|fish`: shell completion scripts."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add the `completions` command."""
