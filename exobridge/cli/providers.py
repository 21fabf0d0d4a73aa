"""`exobridge providers …`: see and change the configured providers."""

from __future__ import annotations

import typer

app = typer.Typer(help="List, probe and change providers.", no_args_is_help=True, rich_markup_mode=None)


def register(root: typer.Typer) -> None:
    from exobridge.cli import providers_edit

    providers_edit.register(app)
    root.add_typer(app, name="providers")
