"""`exobridge models`: what each provider offers, and the logical model table."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add the `models` command."""
