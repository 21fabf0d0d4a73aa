"""`exobridge doctor`: checks with a one-line fix for every problem."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add the `doctor` command."""
