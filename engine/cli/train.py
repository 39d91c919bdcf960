"""`swapdeck train`: learn a model (a swap model from facesets, or FOMM from videos)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from engine.cli.common import (
    JsonOpt,
    Reporter,
    WorkspaceOpt,
    cancel_on_interrupt,
    err_console,
    guarded,
    out_console,
    report_started_job,
)
from engine.errors import BadInputError
from engine.train import registry

Layout = Literal["df", "liae"]
Precision = Literal["auto", "bf16", "fp16", "fp32"]
Loss = Literal["l1", "mse"]

_PRESETS = ", ".join(preset.name for _, preset in registry.presets())
_FAMILIES = ", ".join(info.name for info in registry.families())


def epilog() -> str:
    """The families, presets and options `--help` lists, from the registry."""
    return "\n\n".join(registry.describe().splitlines())


def _options(pairs: list[str] | None) -> dict[str, str]:
    """--set KEY=VALUE pairs (keys as in model.toml, dashes allowed)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInputError(f"--set {pair!r} is not KEY=VALUE", "e.g. --set enc-dims=64")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def _preset_for_family(
    family: str | None, preset: str | None, workspace: Path, model: str
) -> str | None:
    """The preset --family stands for: the family's first (its default) for a new model.

    A given --preset must be of that family; an existing model must be of it (its
    preset stays its own, so nothing else about it is contradicted).
    """
    if family is None:
        return preset
    from engine.train.store import ModelPaths, load_settings
    from engine.workspace import Workspace

    info = registry.get_family(family)
    if preset is not None:
        of = registry.family_of_preset(preset)
        if of.name != info.name:
            raise BadInputError(
                f"preset {preset} belongs to {of.name}, not {info.name}",
                f"{info.name} presets: {', '.join(p.name for p in info.presets)}",
            )
        return preset
    toml = ModelPaths(Workspace(workspace).model_dir(model)).toml
    if toml.exists():
        have = load_settings(toml).family
        if have != info.name:
            raise BadInputError(
                f"model {model} is of family {have}, not {info.name}",
                "drop --family to go on training it, or use a new -m name",
            )
        return None
    return info.presets[0].name


def _absolute(path: Path | None) -> str | None:
    """A path as model.toml keeps it: absolute, so a detached job finds it from anywhere."""
    return None if path is None else os.path.abspath(path.expanduser())


def _launch_torchrun(gpus: int, args: list[str]) -> int:
    """Re-run this command as `gpus` processes under torchrun (DDP)."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "engine.train",
        *args,
    ]
    return subprocess.call(command)


@guarded
def train_command(
    workspace: WorkspaceOpt,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (created if new).")],
    faceset_a: Annotated[
        str | None,
        typer.Option(
            "--faceset-a",
            "-a",
            help="Faceset of person A (the footage); fast-swap: optional, its faces join "
            "the inputs.",
        ),
    ] = None,
    faceset_b: Annotated[
        str | None, typer.Option("--faceset-b", "-b", help="Faceset of person B (the new face).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help=f"Model preset, new models: {_PRESETS} (see below).")
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(help=f"Model family ({_FAMILIES}); a new model gets its first preset."),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--inputs",
            help="fast-swap, occlusion: a faceset whose faces are training inputs; repeat "
            "for more (default: every faceset but B's; occlusion: every faceset).",
        ),
    ] = None,
    videos: Annotated[
        Path | None,
        typer.Option(help="fomm: training videos, a file or a folder (frames of a shot pair up)."),
    ] = None,
    vgg_weights: Annotated[
        Path | None,
        typer.Option(
            help="fomm, fast-swap: VGG-19 weights (vgg19-dcbb9e9d.pth); default: torch hub's cache."
        ),
    ] = None,
    size: Annotated[
        int | None, typer.Option(help="Model input size in px (hd: 128-256; fomm-small: 64-128).")
    ] = None,
    layout: Annotated[Layout | None, typer.Option(help="hd layout: df or liae.")] = None,
    steps: Annotated[int, typer.Option(help="Train until this step.")] = 1000,
    batch_size: Annotated[
        int | None, typer.Option(help="Faces per person per step (fomm: frame pairs).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (new models).")] = None,
    loss: Annotated[Loss | None, typer.Option(help="Pixel loss beside SSIM.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (new models).")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="KEY=VALUE: any option of the preset's family (new models; see below)."
        ),
    ] = None,
    save_every: Annotated[int, typer.Option(help="Save a checkpoint every N steps.")] = 250,
    preview_every: Annotated[
        int, typer.Option(help="Write previews/latest.png every N steps.")
    ] = 100,
    snapshot_every: Annotated[
        int, typer.Option(help="Keep a snapshot every N steps (0: none).")
    ] = 1000,
    log_every: Annotated[int, typer.Option(help="Log metrics every N steps.")] = 10,
    time_limit: Annotated[
        float | None, typer.Option(help="Stop (and save) after this many seconds.")
    ] = None,
    precision: Annotated[
        Precision, typer.Option(help="Mixed precision; auto picks per device.")
    ] = "auto",
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the step (CUDA only).")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Go on from the last checkpoint.")
    ] = True,
    gpus: Annotated[int, typer.Option(help="Processes to train with under torchrun (DDP).")] = 1,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", help="Run as a background job that outlives this terminal; print its id."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a face swap from facesets, or a FOMM reenactor (--family fomm) from videos.

    The preset (or --family) says which family: autoencoder swaps faces, from facesets
    -a and -b; fast-swap learns one network per target -b from the faces of the other
    facesets (--inputs), with VGG-19's ImageNet weights for its losses; fomm (the First
    Order Motion Model, for reenact) learns from --videos of talking faces, with VGG-19
    too; occlusion learns which pixels of a face are covered (hands, microphones), from
    occluders drawn over the faces of --inputs (default: every faceset).
    """
    from engine.config import RunSettings, build
    from engine.train.loop import train
    from engine.workspace import Workspace

    if detach and gpus > 1:
        raise BadInputError(
            "--detach runs one process; it cannot launch torchrun for --gpus",
            "for several GPUs run 'swapdeck train --gpus N' inside tmux or under nohup",
        )
    if gpus > 1 and "WORLD_SIZE" not in os.environ:
        args = _rebuild_args(locals())
        raise typer.Exit(_launch_torchrun(gpus, args))
    run = build(
        RunSettings,
        steps=steps,
        save_every=save_every,
        preview_every=preview_every,
        snapshot_every=snapshot_every,
        log_every=log_every,
        time_limit=time_limit,
        precision=precision,
        compile=compile_model,
        device=device,
        resume=resume,
    )
    requested: dict[str, object] = {
        **_options(option),
        "faceset_a": faceset_a,
        "faceset_b": faceset_b,
        "inputs": tuple(inputs) if inputs else None,
        "preset": _preset_for_family(family, preset, workspace, model),
        "videos": _absolute(videos),
        "vgg_weights": _absolute(vgg_weights),
        "size": size,
        "layout": layout,
        "batch_size": batch_size,
        "lr": lr,
        "loss": loss,
        "seed": seed,
    }
    if detach:
        _start_job(workspace, model, requested, run, as_json)
        return
    is_main = os.environ.get("RANK", "0") == "0"
    reporter = Reporter(as_json and is_main)
    try:
        with cancel_on_interrupt() as cancel:
            result = train(Workspace(workspace), model, requested, run, reporter, cancel)
    finally:
        reporter.close()
    if not as_json and is_main:
        how = "stopped" if result.stopped else "finished"
        losses = ", ".join(
            f"loss {name.upper() if len(name) == 1 else name} "
            + ("—" if value is None else f"{value:.4f}")
            for name, value in result.losses.items()
        )
        out_console.print(
            f"{how} at step [bold]{result.steps}[/]: {losses}, "
            f"{result.examples_per_s:.1f} examples/s "
            f"over the run ({result.examples_per_s_steady:.1f} once warmed up)"
        )
        out_console.print(f"checkpoint: {result.checkpoint}")
        out_console.print(f"preview: {result.preview}")


def _start_job(workspace: Path, model: str, requested: dict, run: object, as_json: bool) -> None:
    from engine.jobs import start_train
    from engine.workspace import Workspace

    job = start_train(Workspace(workspace), model, requested, run)  # type: ignore[arg-type]
    report_started_job(job, f"training {model}", workspace, as_json)


def _rebuild_args(values: dict[str, object]) -> list[str]:
    """The same command line minus --gpus, for the torchrun workers."""
    flags = {
        "workspace": "--workspace",
        "model": "--model",
        "faceset_a": "--faceset-a",
        "faceset_b": "--faceset-b",
        "preset": "--preset",
        "family": "--family",
        "videos": "--videos",
        "vgg_weights": "--vgg-weights",
        "size": "--size",
        "layout": "--layout",
        "steps": "--steps",
        "batch_size": "--batch-size",
        "lr": "--lr",
        "loss": "--loss",
        "seed": "--seed",
        "save_every": "--save-every",
        "preview_every": "--preview-every",
        "snapshot_every": "--snapshot-every",
        "log_every": "--log-every",
        "time_limit": "--time-limit",
        "precision": "--precision",
        "device": "--device",
    }
    args: list[str] = []
    for key, flag in flags.items():
        value = values.get(key)
        if value is not None:
            args += [flag, str(Path(value)) if key == "workspace" else str(value)]
    if values.get("compile_model"):
        args.append("--compile")
    for name in values.get("inputs") or []:  # type: ignore[union-attr]
        args += ["--inputs", str(name)]
    for pair in values.get("option") or []:  # type: ignore[union-attr]
        args += ["--set", str(pair)]
    args.append("--resume" if values.get("resume") else "--no-resume")
    if values.get("as_json"):
        args.append("--json")
    if not values.get("as_json"):
        err_console.print(f"launching {values['gpus']} processes under torchrun")
    return args
