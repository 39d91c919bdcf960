"""`swapdeck compare`: models trained, converted and scored side by side, in a report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.common import (
    JsonOpt,
    Reporter,
    WorkspaceOpt,
    cancel_on_interrupt,
    guarded,
    out_console,
    report_started_job,
)

if TYPE_CHECKING:
    from engine.config import CompareConfig
    from engine.results import CompareResult
    from engine.workspace import Workspace

Backend = Literal["auto", "fan", "dlib", "mediapipe"]

EPILOG = (
    "SPEC: a preset or a family (original, tiny, hd), with :CHOICE or :KEY=VALUE "
    "(hd:liae, hd:size=160), or model:NAME for an existing model compared as it is. "
    "BUDGET: wall-clock training per model (90s, 20m, 1.5h) or examples seen (200k, 5000). "
    "Rerunning the same command resumes: models trained to their budget are not trained "
    "again."
)


@guarded
def compare_command(
    workspace: WorkspaceOpt,
    faceset_a: Annotated[str, typer.Option("--faceset-a", "-a", help="Faceset of person A.")],
    faceset_b: Annotated[str, typer.Option("--faceset-b", "-b", help="Faceset of person B.")],
    models: Annotated[
        list[str], typer.Option("--models", help="SPEC,SPEC,... (see below); repeatable.")
    ],
    clip: Annotated[Path, typer.Option(help="Video of person A that every model converts.")],
    budget: Annotated[str, typer.Option(help="Each new model's training: 20m or 200k.")],
    report: Annotated[
        Path, typer.Option("--output", "-o", help="Report folder (created if missing).")
    ],
    name: Annotated[
        str | None,
        typer.Option(help="Prefix of the models it trains (default: the report folder's name)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every model.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    backend: Annotated[Backend, typer.Option(help="Face finding for convert and score.")] = "auto",
    sheet_frames: Annotated[int, typer.Option(help="Frames of the clip on the contact sheet.")] = 4,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Run as a background job that outlives this terminal."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train several models on the same facesets for the same budget, convert the same
    clip with each, score them, and write report.md with tables, chart and contact sheet."""
    from engine.compare.run import compare, compare_name, plan
    from engine.config import CompareConfig, build
    from engine.workspace import Workspace

    config = build(
        CompareConfig,
        faceset_a=faceset_a,
        faceset_b=faceset_b,
        models=models,
        clip=clip.absolute(),
        budget=budget,
        report=report.absolute(),
        name=name,
        seed=seed,
        device=device,
        backend=backend,
        sheet_frames=sheet_frames,
    )
    ws = Workspace(workspace)
    if detach:
        plan(ws, config)  # a bad SPEC is refused here, in one line, not in the job's log
        _start_job(ws, compare_name(config), config, as_json)
        return
    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            result = compare(config, ws, reporter, cancel)
    finally:
        reporter.close()
    if not as_json:
        show(result)


def show(result: CompareResult) -> None:
    """The results, one row per figure and one column per model (a terminal is narrow),
    the best of each row in bold, and where the report is."""
    from engine.compare.report import columns

    table = Table("", *(escape(m.spec) for m in result.models), title=f"compare {result.name}")
    for col in columns(result.models):
        cells = []
        for model in result.models:
            text = col.format(col.value(model))
            best = model.spec in result.best.get(col.key, [])
            cells.append(f"[bold green]{text}[/]" if best else text)
        table.add_row(col.header, *cells)
    out_console.print(table)
    out_console.print(f"report: [bold]{result.report}[/]")
    out_console.print(f"chart:  {result.chart}")
    out_console.print(f"sheet:  {result.sheet}")


def _start_job(ws: Workspace, name: str, config: CompareConfig, as_json: bool) -> None:
    from engine.jobs import start_job

    job = start_job(ws, "compare", name, config.model_dump(mode="json"))
    report_started_job(job, "comparing", ws.root, as_json)
