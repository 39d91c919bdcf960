"""`swapdeck faceset list|show|prune|labels|masks`: look at and tidy facesets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from engine.cli.common import JsonOpt, Reporter, WorkspaceOpt, guarded, out_console, print_json

if TYPE_CHECKING:
    from engine.results import LabelsResult

app = typer.Typer(help="List, inspect and prune facesets.", no_args_is_help=True)


def _spread(s: dict[str, float]) -> str:
    return f"{s['min']:g} / {s['median']:g} / {s['max']:g}" if s else "-"


@app.command("list")
@guarded
def list_command(workspace: WorkspaceOpt, as_json: JsonOpt = False) -> None:
    """Every faceset in the workspace, with counts."""
    from engine.facesets import list_facesets
    from engine.workspace import Workspace

    rows = list_facesets(Workspace(workspace))
    if as_json:
        print_json(rows)
        return
    table = Table(
        "faceset", "faces", "tracked", "sources", "frames done", "size", "blur min/med/max"
    )
    for r in rows:
        table.add_row(
            r["name"],
            str(r["faces"]),
            str(r["tracked"]),
            str(r["sources"]),
            str(r["frames_done"]),
            f"{r['size']} px",
            _spread(r["blur"]),
        )
    out_console.print(table if rows else "no facesets yet: make one with 'swapdeck extract'")


def _show(info: dict[str, Any]) -> None:
    out_console.print(
        f"[bold]{info['name']}[/]: {info['faces']} faces ({info['tracked']} tracked, "
        f"{info['labelled']} with a label mask), "
        f"{info['size']} px at coverage {info['coverage']:g}, {info['frames_done']} frames done"
    )
    table = Table("measure", "min", "p10", "median", "p90", "max")
    for key in ("blur", "yaw", "pitch", "roll"):
        s = info[key]
        if s:
            table.add_row(key, *(f"{s[k]:g}" for k in ("min", "p10", "median", "p90", "max")))
    out_console.print(table)
    sources = Table("id", "kind", "frames", "done", "faces", "path")
    for s in info["sources"]:
        sources.add_row(
            str(s["id"]),
            s["kind"],
            str(s["frames"]),
            str(s["frames_done"]),
            str(s["faces"]),
            s["path"],
        )
    out_console.print(sources)


@app.command("show")
@guarded
def show_command(
    name: Annotated[str, typer.Argument(help="Faceset name.")],
    workspace: WorkspaceOpt,
    as_json: JsonOpt = False,
) -> None:
    """Counts, sources, and the spread of sharpness and pose (ids with --json)."""
    from engine.facesets import describe_faceset
    from engine.workspace import Workspace

    info = describe_faceset(Workspace(workspace), name)
    print_json(info) if as_json else _show(info)


@app.command("prune")
@guarded
def prune_command(
    name: Annotated[str, typer.Argument(help="Faceset name.")],
    workspace: WorkspaceOpt,
    blur_below: Annotated[
        float | None, typer.Option(help="Remove faces less sharp than this score.")
    ] = None,
    face_id: Annotated[
        list[int] | None, typer.Option("--id", help="Remove the face with this id; repeatable.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove faces and their files together."""
    from engine.facesets import prune_faceset
    from engine.workspace import Workspace

    result = prune_faceset(Workspace(workspace), name, blur_below, face_id or [])
    if as_json:
        print_json({k: v for k, v in result.items() if k != "files"})
    else:
        out_console.print(f"removed {result['removed']} faces; {result['faces']} left in {name}")


@app.command("labels")
@guarded
def labels_command(
    name: Annotated[str, typer.Argument(help="Faceset name.")],
    workspace: WorkspaceOpt,
    folder: Annotated[
        Path | None,
        typer.Argument(help="Folder of label PNGs, each named like its face's file."),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the labels (with FOLDER: all but its own).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import label masks drawn by hand: white = the face itself, black = covered or not face.

    Each PNG in FOLDER named like a face of the faceset (as in its faces/ folder)
    becomes that face's label: grayscale, RGB, or a cut-out's alpha; binarised at half
    grey and resized to the crops. Training then takes it over the synthesised mask.
    """
    from engine.errors import BadInputError
    from engine.labels import clear_labels, import_labels
    from engine.workspace import Workspace

    if folder is None and not clear:
        raise BadInputError(
            "give FOLDER (label PNGs named like the faces) or --clear",
            f"e.g. swapdeck faceset labels {name} my_labels/ -w WS",
        )
    reporter = Reporter(as_json)
    try:
        ws = Workspace(workspace)
        if folder is None:
            result = clear_labels(ws, name, reporter)
        else:
            result = import_labels(ws, name, folder, reporter, replace=clear)
    finally:
        reporter.close()
    if not as_json:
        out_console.print(_labels_summary(result), markup=False, highlight=False, soft_wrap=True)


def _labels_summary(result: LabelsResult) -> str:
    parts = []
    if result.folder is not None:
        resized = f" ({result.resized} resized)" if result.resized else ""
        parts.append(f"{result.matched} labels imported{resized}")
    if result.cleared or result.folder is None:
        parts.append(f"{result.cleared} cleared")
    if result.unmatched:
        parts.append(f"{len(result.unmatched)} PNGs named like no face")
    return (
        f"faceset {result.faceset}: {', '.join(parts)}; {result.labelled} faces have a label, "
        f"{result.unlabelled} have none"
    )


@app.command("masks")
@guarded
def masks_command(
    name: Annotated[str, typer.Argument(help="Faceset name.")],
    workspace: WorkspaceOpt,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="PNG to write (default: the faceset's masks.png)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Occlusion model to draw with (default: the one that covers it)."
        ),
    ] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Faces on the sheet, at most.")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Write a contact sheet of faces with their masks over them, to check by eye.

    Green: the landmark hull. Red: what the occlusion model says covers the face.
    Blue, on tiles marked "label": what the face's imported label says covers it.
    """
    from engine.cli.common import Reporter
    from engine.mask_sheet import mask_sheet
    from engine.workspace import Workspace

    reporter = Reporter(as_json)
    try:
        result = mask_sheet(Workspace(workspace), name, output, model, count, reporter)
    finally:
        reporter.close()
    if not as_json:
        drawn = (
            f"occlusion model {result.mask_model}"
            if result.mask_model
            else "no occlusion model: hulls"
        )
        labels = f", {result.labelled} with an imported label" if result.labelled else ""
        out_console.print(
            f"{result.output}: {len(result.faces)} faces of {result.faceset}{labels}; "
            f"{drawn}; {result.covered_share:.0%} of the hulls covered",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
