"""The `swapdeck` program: the engine's commands plus `swapdeck wizard`.

The engine stays headless (it never imports textual or tui), so the wizard's
command is added here, on the front-end side, to the engine's typer app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli import app
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


app.command("wizard")(wizard_command)


def main() -> None:
    app()
