"""`exobridge keys …`: store, list and remove API keys (never printed unmasked, except by `keys get`)."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Add the `keys` group."""
