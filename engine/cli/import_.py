"""`swapdeck import`: published checkpoints written as swapdeck models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import JsonOpt, Reporter, WorkspaceOpt, guarded, out_console

if TYPE_CHECKING:
    from engine.results import ImportResult

app = typer.Typer(help="Write a published checkpoint as a swapdeck model.", no_args_is_help=True)


@app.command("fomm")
@guarded
def fomm_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="The authors' checkpoint, e.g. vox-cpk.pth.tar.")
    ],
    workspace: WorkspaceOpt,
    model: Annotated[str, typer.Option("--model", "-m", help="Name of the new model.")],
    preset: Annotated[
        str, typer.Option(help="The network the checkpoint was trained as.")
    ] = "vox-256",
    as_json: JsonOpt = False,
) -> None:
    """Import the authors' First Order Motion Model checkpoint as a new fomm model.

    CHECKPOINT: their vox-cpk.pth.tar or vox-adv-cpk.pth.tar; the model then moves
    portraits with 'swapdeck reenact'. The file is read with torch's weights-only
    loader: one that would run code on loading is refused and nothing in it is run.
    swapdeck never downloads it.
    """
    from engine.train.families.fomm.importer import import_fomm
    from engine.workspace import Workspace

    reporter = Reporter(as_json)
    try:
        result = import_fomm(checkpoint, Workspace(workspace), model, reporter, preset=preset)
    finally:
        reporter.close()
    if not as_json:
        out_console.print(_summary(result), markup=False, highlight=False, soft_wrap=True)


def _summary(result: ImportResult) -> str:
    epoch = f", epoch {result.epoch}" if result.epoch is not None else ""
    skipped = f"; not needed: {', '.join(result.skipped)}" if result.skipped else ""
    return (
        f"model {result.model}: {result.family} {result.preset} from {result.source} "
        f"({result.tensors} tensors{epoch}){skipped}"
    )
