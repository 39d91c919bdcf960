"""`swapdeck demo`: the whole pipeline on the bundled sample data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import JsonOpt, Reporter, cancel_on_interrupt, guarded, out_console


@guarded
def demo_command(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Workspace folder for the demo.")
    ] = Path("workspace"),
    sample_data: Annotated[
        Path | None,
        typer.Option(help="Folder with a/ and b/ (default: the checkout's sample_data)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Extract faces of both sample identities and print a summary."""
    from engine.demo import run_demo
    from engine.workspace import Workspace

    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            results = run_demo(Workspace(workspace), sample_data, reporter, cancel)
    finally:
        reporter.close()
    if as_json:
        return
    for name in ("a", "b"):
        r = results[name]
        out_console.print(
            f"faceset [bold]{name}[/]: {r['total_faces']} faces "
            f"({r['faces']} new from {r['frames']} images, {r['skipped']} skipped), "
            f"backend {r['backend']}"
        )
    out_console.print(f"workspace: {results['workspace']}")
    out_console.print("look at them: swapdeck faceset show a -w " + str(workspace))
