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
    train_minutes: Annotated[
        float, typer.Option(help="How long to train the demo model, in minutes.")
    ] = 6.0,
    as_json: JsonOpt = False,
) -> None:
    """Extract, train, convert, verify and score on the sample data; print where it all is."""
    from engine.demo import run_demo
    from engine.workspace import Workspace

    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            results = run_demo(Workspace(workspace), sample_data, reporter, cancel, train_minutes)
    finally:
        reporter.close()
    if as_json:
        return
    for name, r in (("a", results.a), ("b", results.b)):
        out_console.print(
            f"faceset [bold]{name}[/]: {r.total_faces} faces "
            f"({r.faces} new from {r.frames} images, {r.skipped} skipped), "
            f"backend {r.backend}"
        )
    t = results.train
    out_console.print(
        f"model [bold]demo[/]: step {t.steps}, loss A {_num(t.loss_a, '.4f')}, "
        f"loss B {_num(t.loss_b, '.4f')}, {t.examples_per_s:.0f} examples/s"
    )
    c, v = results.convert, results.verify
    out_console.print(
        f"converted: {c.faces_swapped} faces in {c.frames} frames; watermark read in "
        f"{v.fraction:.0%} of frames ({'marked' if v.marked else 'NOT marked'})"
    )
    average = results.score.average
    out_console.print(
        f"score: identity retrieval {_num(average.identity.retrieval)}, "
        f"landmark NME {_num(average.expression.nme)}"
    )
    out_console.print(f"video:   [bold]{results.output}[/]")
    out_console.print(f"scores:  {results.scores}")
    out_console.print(f"preview: {results.preview}")
    out_console.print(f"done in {results.seconds:.0f} s; workspace {results.workspace}")


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(value, fmt)
