"""`swapdeck wizard`: the full-screen Textual app over the same engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import guarded


@guarded
def wizard_command(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Workspace folder (created if missing).")
    ] = Path("workspace"),
) -> None:
    """Walk through extract, train and convert in a terminal UI."""
    from engine.workspace import Workspace

    # A file or an unwritable folder is one line and an exit code, before the screen opens.
    Workspace(workspace).ensure()
    # Lazy: the other commands should not pay for importing Textual.
    from tui.app import run

    run(workspace)
