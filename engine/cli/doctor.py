"""`swapdeck doctor`: what this machine can run, and what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engine.cli.common import JsonOpt, guarded, out_console, print_json


@guarded
def doctor_command(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Also check this workspace is writable."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check Python, torch, GPU, face backends, video codecs, VGG-19 and the workspace."""
    from engine.doctor import run_doctor

    report = run_doctor(workspace)
    if as_json:
        print_json(report.model_dump(mode="json"))  # its checks, then ok
    else:
        table = Table("check", "", "found", "to fix")
        for check in report.checks:
            mark = "[green]ok[/]" if check.ok else "[red]no[/]"
            table.add_row(check.name, mark, check.detail, "" if check.ok else check.hint)
        out_console.print(table)
    if not report.ok:
        raise typer.Exit(1)
