"""`swapdeck verify`: does a file carry swapdeck's AI-generated watermark?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import guarded, out_console, print_json

if TYPE_CHECKING:
    from engine.results import VerifyResult

DEFAULT_MAX_FRAMES = 100  # engine.provenance.DEFAULT_MAX_FRAMES; not imported so --help stays fast


def _summary(result: VerifyResult) -> str:
    verdict = "marked" if result.marked else "not marked"
    if result.kind == "image":
        found = "watermark found" if result.frames_marked else "no watermark"
    else:
        found = (
            f"watermark found in {result.frames_marked} of {result.frames_checked} "
            f"frames checked ({result.fraction:.0%})"
        )
    label = "present" if result.metadata else "absent"
    return f"{result.path}: {verdict} as AI-generated: {found}, metadata label {label}"


@guarded
def verify_command(
    file: Annotated[Path, typer.Argument(help="An image or a video to check.")],
    max_frames: Annotated[
        int,
        typer.Option("--max-frames", min=1, help="Check at most this many evenly spaced frames."),
    ] = DEFAULT_MAX_FRAMES,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")
    ] = False,
) -> None:
    """Check whether FILE carries swapdeck's invisible AI-generated watermark.

    The watermark decides; the metadata label is reported too, but re-encoding usually
    strips it. Exit status, like grep: 0 marked, 1 not marked, 2 not an image or video,
    3 not found.
    """
    from engine.provenance import verify

    result = verify(file, max_frames)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        out_console.print(_summary(result), markup=False, highlight=False, soft_wrap=True)
    if not result.marked:
        raise typer.Exit(1)
