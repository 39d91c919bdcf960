"""`swapdeck extract`: faces out of photos and videos, into a faceset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from engine.cli.common import (
    JsonOpt,
    Reporter,
    WorkspaceOpt,
    cancel_on_interrupt,
    guarded,
    out_console,
)

Backend = Literal["auto", "fan", "dlib", "mediapipe"]
Detector = Literal["hog", "cnn"]


@guarded
def extract_command(
    sources: Annotated[
        list[Path], typer.Argument(help="Images, folders of images, or videos (any mix).")
    ],
    workspace: WorkspaceOpt,
    faceset: Annotated[str, typer.Option("--faceset", "-f", help="Faceset name to add faces to.")],
    backend: Annotated[
        Backend,
        typer.Option(help="Face finder: auto picks fan on a GPU with its weights, else dlib."),
    ] = "auto",
    detector: Annotated[
        Detector, typer.Option(help="dlib detector: hog (fast) or cnn (turned heads).")
    ] = "hog",
    every: Annotated[int, typer.Option(help="Read every Nth video frame.")] = 1,
    size: Annotated[int, typer.Option(help="Aligned face size in pixels.")] = 256,
    coverage: Annotated[
        float, typer.Option(help="Share of the crop the face spans (0.3-1).")
    ] = 0.75,
    min_face: Annotated[int, typer.Option(help="Skip faces smaller than this, in pixels.")] = 80,
    max_faces: Annotated[
        int, typer.Option(help="Keep only the N largest faces per frame (0: all).")
    ] = 0,
    reference: Annotated[
        list[Path] | None, typer.Option(help="Photo of the person to keep; repeat for several.")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Identity distance under which a face matches --reference.")
    ] = 0.6,
    as_json: JsonOpt = False,
) -> None:
    """Find, align and store faces from SOURCES into a faceset."""
    from engine.config import ExtractConfig, build
    from engine.extract import extract
    from engine.workspace import Workspace

    config = build(
        ExtractConfig,
        sources=sources,
        faceset=faceset,
        backend=backend,
        detector=detector,
        every=every,
        size=size,
        coverage=coverage,
        min_face=min_face,
        max_faces=max_faces,
        references=reference or [],
        threshold=threshold,
    )
    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            result = extract(config, Workspace(workspace), reporter, cancel)
    finally:
        reporter.close()
    if not as_json:
        out_console.print(
            f"[bold green]{result.faces}[/] new faces in faceset [bold]{result.faceset}[/] "
            f"({result.total_faces} in all) from {result.frames} frames: "
            f"{result.tracked} tracked, {result.skipped} skipped, "
            f"{result.frames_per_s:.1f} frames/s, backend {result.backend}"
        )
