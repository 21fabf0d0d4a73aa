"""`exobridge config …`: see and edit the config file without losing what the user wrote."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add the `config` group."""
