"""`swapdeck score`: how good a swap (or a reenactment) is, in numbers.

The model says which: an autoencoder's output is scored as a swap (ORIGINAL
SWAPPED pairs); a fomm model's as a reenactment (DRIVING OUTPUT with --source,
the paper's AKD, AED and L1). Flags of the other kind are refused, not ignored.
"""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from engine.cli.common import (
    JsonOpt,
    Reporter,
    WorkspaceOpt,
    cancel_on_interrupt,
    guarded,
    out_console,
)

if TYPE_CHECKING:
    from engine.results import PairScores, ReenactScoreResult, ScoreGroups, ScoreResult
    from engine.workspace import Workspace

Backend = Literal["auto", "fan", "dlib", "mediapipe"]
Direction = Literal["a-to-b", "b-to-a"]

# (figure, label, format) for each row of the table; the figure as an attribute path.
_ROWS = [
    ("identity.retrieval", "identity: closer to target", "{:.0%}"),
    ("identity.dist_target", "identity: distance to target", "{:.3f}"),
    ("identity.dist_source", "identity: distance to source", "{:.3f}"),
    ("expression.nme", "landmark error (NME)", "{:.4f}"),
    ("expression.yaw", "yaw change (deg)", "{:.2f}"),
    ("expression.pitch", "pitch change (deg)", "{:.2f}"),
    ("expression.roll", "roll change (deg)", "{:.2f}"),
    ("stability.original", "jitter original (NME)", "{:.4f}"),
    ("stability.swapped", "jitter swapped (NME)", "{:.4f}"),
    ("stability.ratio", "jitter ratio swapped/original", "{:.2f}"),
]


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _table(result: ScoreResult) -> Table:
    videos = result.videos
    columns: list[tuple[str, PairScores | ScoreGroups]] = [
        (Path(v.swapped).name, v) for v in videos
    ]
    if len(videos) > 1:
        columns.append(("average", result.average))
    table = Table(
        "",
        *(name for name, _ in columns),
        title=f"model {result.model} (step {result.step}), "
        f"{result.source or 'any face'} → {result.target}",
    )
    for key in ("frames", "faces", "skipped"):
        counts = (str(getattr(v, key)) for v in videos)
        table.add_row(key, *counts, *([""] if len(videos) > 1 else []))
    for figure, label, fmt in _ROWS:
        table.add_row(label, *(_cell(attrgetter(figure)(data), fmt) for _, data in columns))
    return table


def _reenact_table(result: ReenactScoreResult) -> Table:
    table = Table(
        "",
        Path(result.output).name,
        title=f"model {result.model} (step {result.step}), reenactment at {result.size} px",
    )
    rows = [
        ("driving frames", str(result.frames)),
        ("output frames", str(result.output_frames)),
        ("compared", str(result.frames_compared)),
        ("face on both sides", str(result.frames_scored)),
        ("AKD: keypoint distance (px)", _cell(result.akd_px, "{:.3f}")),
        ("AKD over eye distance (NME)", _cell(result.akd_nme, "{:.4f}")),
        ("AED: identity distance to source", _cell(result.aed, "{:.3f}")),
        (
            "L1 (reconstruction)",
            _cell(result.l1, "{:.4f}") if result.reconstruction else "- (source not from driving)",
        ),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def _score_reenactment(
    ws: Workspace,
    model: str,
    paths: list[Path],
    source: Path | None,
    direction: str | None,
    backend: str,
    min_face: int | None,
    start: float | None,
    end: float | None,
    as_json: bool,
) -> None:
    from engine.errors import BadInputError
    from engine.reenact.score import score_reenactment

    if source is None:
        raise BadInputError(
            f"model {model} reenacts: scoring it needs --source PORTRAIT",
            "give the portrait the output was made from (or the driving video, for its first "
            "frame)",
        )
    if len(paths) != 2:
        raise BadInputError(
            f"a reenactment is scored as DRIVING OUTPUT, got {len(paths)} path(s)",
            "give the driving video, then the video reenact made from it",
        )
    if direction is not None:
        raise BadInputError(f"--direction is for swaps; model {model} reenacts", "drop --direction")
    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            kwargs = {} if min_face is None else {"min_face": min_face}
            result = score_reenactment(
                ws,
                model,
                paths[0],
                paths[1],
                source,
                backend=backend,
                start=start,
                end=end,
                sink=reporter,
                cancel=cancel,
                **kwargs,
            )
    finally:
        reporter.close()
    if not as_json:
        out_console.print(_reenact_table(result))


@guarded
def score_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="ORIGINAL SWAPPED pairs: footage (video or image folder), then its swapped "
            "output; several pairs may follow each other. For a fomm model: DRIVING OUTPUT.",
            metavar="ORIGINAL SWAPPED",
        ),
    ],
    workspace: WorkspaceOpt,
    model: Annotated[str, typer.Option("--model", "-m", help="The model that made the output.")],
    source: Annotated[
        Path | None,
        typer.Option(
            help="Reenactment (fomm models) only, and needed there: the portrait OUTPUT was made "
            "from; the DRIVING video itself means its first frame (then L1 is measured too).",
        ),
    ] = None,
    direction: Annotated[
        Direction | None,
        typer.Option(help="Swaps only. a-to-b (default): the target identity is faceset B."),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option(help="Face finder: auto picks fan on a GPU with its weights, else dlib."),
    ] = "auto",
    min_face: Annotated[
        int | None,
        typer.Option(
            help="Skip faces smaller than this, in pixels (default 80; for a reenactment, "
            "what reenact uses)."
        ),
    ] = None,
    start: Annotated[
        float | None,
        typer.Option(help="Reenactment only: the --start reenact was given (seconds)."),
    ] = None,
    end: Annotated[
        float | None,
        typer.Option(help="Reenactment only: the --end reenact was given (seconds)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a swap (identity, expression and pose kept, jitter, reconstruction) or a
    reenactment (AKD, AED, L1)."""
    from engine.errors import BadInputError
    from engine.reenact.score import FAMILY, model_family
    from engine.score import pairs_from_paths, score
    from engine.workspace import Workspace

    ws = Workspace(workspace)
    family = model_family(ws, model)
    if family == FAMILY:
        _score_reenactment(
            ws, model, paths, source, direction, backend, min_face, start, end, as_json
        )
        return
    flags = (("--source", source), ("--start", start), ("--end", end))
    given = [flag for flag, value in flags if value is not None]
    if family is not None and given:
        raise BadInputError(
            f"{', '.join(given)}: only for a reenactment (fomm models); model {model} swaps "
            f"faces (family {family})",
            "score a swap as ORIGINAL SWAPPED pairs, without them",
        )
    pairs = pairs_from_paths(paths)
    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            result = score(
                ws,
                model,
                pairs,
                direction or "a-to-b",
                backend,
                80 if min_face is None else min_face,
                reporter,
                cancel,
            )
    finally:
        reporter.close()
    if as_json:
        return
    out_console.print(_table(result))
    rec = result.reconstruction
    if rec.ssim_a is None and rec.ssim_b is None:
        out_console.print("reconstruction SSIM: none measured (a one-way model rebuilds no faces)")
        return
    out_console.print(
        f"reconstruction SSIM on held-out faces: A→A {_cell(rec.ssim_a, '{:.3f}')} "
        f"({rec.faces_a} faces), B→B {_cell(rec.ssim_b, '{:.3f}')} ({rec.faces_b} faces)"
    )
