"""`exobridge providers add|remove|enable|disable|move`: edits of the config file."""

from __future__ import annotations

import typer


def register(group: typer.Typer) -> None:
    """Add the editing commands to the `providers` group."""
