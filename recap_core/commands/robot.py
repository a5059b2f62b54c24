"""`recap` commands for the robot area."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this area's commands to the main app and its benchmark to `recap bench`."""
