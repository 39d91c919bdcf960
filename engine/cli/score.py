"""`swapdeck score`: how good a swap is, in numbers."""

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
    from engine.results import PairScores, ScoreGroups, ScoreResult

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
        title=f"model {result.model} (step {result.step}), {result.source} → {result.target}",
    )
    for key in ("frames", "faces", "skipped"):
        counts = (str(getattr(v, key)) for v in videos)
        table.add_row(key, *counts, *([""] if len(videos) > 1 else []))
    for figure, label, fmt in _ROWS:
        table.add_row(label, *(_cell(attrgetter(figure)(data), fmt) for _, data in columns))
    return table


@guarded
def score_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="ORIGINAL SWAPPED pairs: footage (video or image folder), then its swapped "
            "output; several pairs may follow each other.",
            metavar="ORIGINAL SWAPPED",
        ),
    ],
    workspace: WorkspaceOpt,
    model: Annotated[str, typer.Option("--model", "-m", help="The model that made the swap.")],
    direction: Annotated[
        Direction, typer.Option(help="a-to-b: the target identity is faceset B.")
    ] = "a-to-b",
    backend: Annotated[
        Backend,
        typer.Option(help="Face finder: auto picks fan on a GPU with its weights, else dlib."),
    ] = "auto",
    min_face: Annotated[int, typer.Option(help="Skip faces smaller than this, in pixels.")] = 80,
    as_json: JsonOpt = False,
) -> None:
    """Score swapped footage: identity, expression and pose kept, jitter, reconstruction."""
    from engine.score import pairs_from_paths, score
    from engine.workspace import Workspace

    pairs = pairs_from_paths(paths)
    reporter = Reporter(as_json)
    try:
        with cancel_on_interrupt() as cancel:
            result = score(
                Workspace(workspace), model, pairs, direction, backend, min_face, reporter, cancel
            )
    finally:
        reporter.close()
    if as_json:
        return
    out_console.print(_table(result))
    rec = result.reconstruction
    out_console.print(
        f"reconstruction SSIM on held-out faces: A→A {rec.ssim_a:.3f} ({rec.faces_a} faces), "
        f"B→B {rec.ssim_b:.3f} ({rec.faces_b} faces)"
    )
