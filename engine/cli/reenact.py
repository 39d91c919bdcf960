"""`swapdeck reenact`: a portrait moved by a driving video (a fomm model)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

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
    from engine.config import ReenactConfig
    from engine.workspace import Workspace


@guarded
def reenact_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A portrait image, a folder of them, or a video (its first frame; DRIVING "
            "itself: the reconstruction score measures)."
        ),
    ],
    driving: Annotated[Path, typer.Argument(help="The video whose motion the portrait follows.")],
    workspace: WorkspaceOpt,
    model: Annotated[
        str, typer.Option("--model", "-m", help="A fomm model (trained or imported).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Video to write (a folder of videos when SOURCE is a folder)."
        ),
    ],
    absolute: Annotated[
        bool,
        typer.Option(
            "--absolute",
            help="Copy the driving keypoints as they are, not their motion from the reference "
            "frame (copies the driving face's shape too).",
        ),
    ] = False,
    adapt_scale: Annotated[
        bool,
        typer.Option(
            "--adapt-scale", help="Scale the motion by the ratio of the keypoint hulls' areas."
        ),
    ] = False,
    best_frame: Annotated[
        bool,
        typer.Option(
            "--best-frame",
            help="Measure motion from the driving frame whose face is posed most like the "
            "portrait's (per shot), instead of the first.",
        ),
    ] = False,
    paste_back: Annotated[
        bool,
        typer.Option(
            "--paste-back", help="Paste the moving face back into the whole portrait (its size)."
        ),
    ] = False,
    start: Annotated[float | None, typer.Option(help="Start at this second of DRIVING.")] = None,
    end: Annotated[float | None, typer.Option(help="Stop at this second of DRIVING.")] = None,
    preview_frames: Annotated[
        int, typer.Option(help="Only render N driving frames and their results into OUTPUT (.png).")
    ] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    backend: Annotated[
        Literal["auto", "fan", "dlib", "mediapipe"], typer.Option(help="Face finder.")
    ] = "auto",
    batch_size: Annotated[int, typer.Option(help="Driving frames per model batch.")] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    detach: Annotated[
        bool,
        typer.Option("--detach", help="Run as a background job that outlives this terminal."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move the portrait SOURCE the way the person in DRIVING moves (FOMM) and write OUTPUT
    with DRIVING's audio, marked as AI-generated."""
    from engine.config import ReenactConfig, build
    from engine.workspace import Workspace

    config = build(
        ReenactConfig,
        source=source,
        driving=driving,
        output=output,
        model=model,
        relative=not absolute,
        adapt_scale=adapt_scale,
        best_frame=best_frame,
        paste_back=paste_back,
        start=start,
        end=end,
        preview_frames=preview_frames,
        overwrite=overwrite,
        backend=backend,
        batch_size=batch_size,
        device=device,
    )
    ws = Workspace(workspace)
    if detach:
        _start_job(ws, config, as_json)
        return
    from engine.reenact.run import reenact

    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            result = reenact(config, ws, reporter, cancel)
    finally:
        reporter.close()
    if not as_json:
        what = "preview" if result.preview else f"{result.frames} frames"
        out_console.print(
            f"[bold green]{', '.join(result.outputs)}[/]: {what} from {result.shots} shot(s) "
            f"({result.frames_without_face} without a face), {result.frames_per_s:g} frames/s",
            highlight=False,
            soft_wrap=True,  # a long path stays on one line, to copy
        )


def _start_job(ws: Workspace, config: ReenactConfig, as_json: bool) -> None:
    from engine.jobs import start_job
    from engine.reenact.checks import check

    # The job runs in the workspace folder: its paths must not depend on where we are.
    config = config.model_copy(
        update={k: getattr(config, k).absolute() for k in ("source", "driving", "output")}
    )
    check(config, ws)  # a typo fails here, in one line, not in the job's log
    job = start_job(ws, "reenact", config.model, config.model_dump(mode="json"))
    report_started_job(job, "reenacting", ws.root, as_json)
