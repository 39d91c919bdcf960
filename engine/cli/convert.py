"""`swapdeck convert`: swap faces in a video or images with a trained model."""

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


@guarded
def convert_command(
    input: Annotated[Path, typer.Argument(help="A video, an image, or a folder of images.")],
    workspace: WorkspaceOpt,
    model: Annotated[str, typer.Option("--model", "-m", help="Trained model to swap with.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Video file, image, or folder to write.")
    ],
    direction: Annotated[
        Literal["a-to-b", "b-to-a"], typer.Option(help="Whose face goes onto whom.")
    ] = "a-to-b",
    faceset: Annotated[
        str | None,
        typer.Option(
            "--faceset",
            "-f",
            help="Take the video's faces from this faceset (default: the model's, if it "
            "covers the video; else they are found on the fly).",
        ),
    ] = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(help="Photo of the person to swap; others stay. Repeat for several."),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Identity distance under which a face matches --reference.")
    ] = 0.6,
    mask: Annotated[
        Literal["auto", "hull", "learned", "occlusion"],
        typer.Option(
            help="Landmark hull; the model's learned mask; or occlusion: the hull less what "
            "an occlusion model sees covering the face (hands, microphones). auto: occlusion "
            "when the model or its faceset has an occlusion model, else learned if any, else hull."
        ),
    ] = "auto",
    mask_model: Annotated[
        str | None,
        typer.Option(
            "--mask-model",
            help="Occlusion model for --mask occlusion (default: the model's own, else the "
            "one trained on the faceset being replaced).",
        ),
    ] = None,
    erode: Annotated[int, typer.Option(help="Shrink the mask by PX (negative grows it).")] = 0,
    blur: Annotated[
        int | None, typer.Option(help="Feather the mask edge by PX (default: 6% of face size).")
    ] = None,
    color: Annotated[
        Literal["rct", "hist", "avg", "none"],
        typer.Option(help="Colour transfer: rct (Reinhard LAB), hist, avg, none."),
    ] = "rct",
    seamless: Annotated[bool, typer.Option(help="Poisson-blend the face edge.")] = False,
    smooth: Annotated[
        float, typer.Option(help="Landmark smoothing over time, sigma in frames (0: off).")
    ] = 1.0,
    start: Annotated[float | None, typer.Option(help="Convert from this second.")] = None,
    end: Annotated[float | None, typer.Option(help="Convert up to this second.")] = None,
    preview_frames: Annotated[
        int, typer.Option(help="Only render N before/after frames into OUTPUT (.png).")
    ] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT if it exists.")] = False,
    backend: Annotated[
        Literal["auto", "fan", "dlib", "mediapipe"], typer.Option(help="Face finder for footage.")
    ] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Put B's face onto A in INPUT (audio kept) and write OUTPUT, marked as AI-generated."""
    from engine.config import ConvertConfig, build
    from engine.convert import convert
    from engine.workspace import Workspace

    config = build(
        ConvertConfig,
        input=input,
        output=output,
        model=model,
        direction=direction,
        faceset=faceset,
        references=reference or [],
        threshold=threshold,
        mask=mask,
        mask_model=mask_model,
        erode=erode,
        blur=blur,
        color=color,
        seamless=seamless,
        smooth=smooth,
        start=start,
        end=end,
        preview_frames=preview_frames,
        overwrite=overwrite,
        backend=backend,
    )
    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            result = convert(config, Workspace(workspace), reporter, cancel)
    finally:
        reporter.close()
    if not as_json:
        out_console.print(
            f"[bold green]{result.output}[/]: {result.faces_swapped} faces swapped in "
            f"{result.frames} frames ({result.frames_without_face} without a face); "
            f"mask {result.mask}"
            + (f" (occlusion model {result.mask_model})" if result.mask_model else "")
        )
