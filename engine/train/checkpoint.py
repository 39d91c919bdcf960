"""Checkpoints: one safetensors file holding weights, optimizer tensors and RNG
states, with the step, optimizer settings and config as JSON in its metadata.

One file, written to a temporary name and renamed, so a kill at any moment
(even mid-save) leaves the previous checkpoint whole. Nothing is unpickled.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.errors import CorruptError, WorkspaceError
from engine.workspace import atomic_path

FORMAT = "swapdeck-checkpoint-1"


Optimizers = dict[str, torch.optim.Optimizer]


def _prefix(position: int, name: str) -> str:
    """The main (first) optimizer keeps the key prefix of one-optimizer checkpoints."""
    return "optim" if position == 0 else f"optim_{name}"


def _optimizer_tensors(
    optimizer: torch.optim.Optimizer, prefix: str = "optim"
) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": plain}


def _restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                # Moments have their parameter's shape; only counters are scalars.
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                    raise ValueError(
                        f"optimizer {key} has shape {list(value.shape)}, "
                        f"its weight {list(param.shape)}"
                    )
    # Saved state is contiguous; a channels-last parameter (CUDA) needs its moments in the
    # same layout, or the fused Adam kernel refuses the step.
    for group in optimizer.param_groups:
        for param in group["params"]:
            slots = optimizer.state.get(param, {})
            for key, value in slots.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _as_dict(optimizers: torch.optim.Optimizer | Optimizers | None) -> Optimizers:
    if optimizers is None:
        return {}
    if isinstance(optimizers, torch.optim.Optimizer):
        return {"main": optimizers}
    for name in optimizers:
        if not name.replace("_", "").isalnum() or name != name.lower():
            raise ValueError(f"optimizer name {name!r}: use [a-z0-9_]")
    return optimizers


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizers: torch.optim.Optimizer | Optimizers,
    rng: dict[str, torch.Tensor],
    info: dict[str, Any],
) -> None:
    """Write the whole training state to `path` atomically.

    The first optimizer is stored as one-optimizer checkpoints always stored theirs
    (`optim.*`, metadata `optimizer`); any others under `optim_<name>.*`, their
    metadata in `optimizers`.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "info": json.dumps(info)}
    others: dict[str, Any] = {}
    for position, (name, optimizer) in enumerate(_as_dict(optimizers).items()):
        optim_tensors, optim_meta = _optimizer_tensors(optimizer, _prefix(position, name))
        tensors.update(optim_tensors)
        if position == 0:
            meta["optimizer"] = json.dumps(optim_meta)
        else:
            others[name] = optim_meta
    if others:
        meta["optimizers"] = json.dumps(others)
    tensors.update({f"rng.{k}": v.cpu().contiguous() for k, v in rng.items()})
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    except (OSError, SafetensorError) as exc:
        why = getattr(exc, "strerror", None) or str(exc).split(": ")[-1]
        raise WorkspaceError(
            f"cannot write checkpoint {path} ({why})",
            "free disk space; the previous checkpoint is still there and loads",
        ) from None


def snapshots(folder: Path) -> list[Path]:
    return sorted((folder / "snapshots").glob("step_*.safetensors"))


def _corrupt(path: Path, why: str) -> CorruptError:
    why = " ".join(why.split())[:200]  # torch's messages span lines; the error is one line
    kept = snapshots(path.parent)
    hint = (
        f"copy a snapshot over it, e.g. cp {kept[-1]} {path}"
        if kept
        else "no snapshots to fall back on; start again with --no-resume"
    )
    return CorruptError(f"checkpoint {path} is unusable ({why})", hint)


def read_info(path: Path) -> dict[str, Any]:
    """The JSON part of a checkpoint (step, config, ...), without loading tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _corrupt(path, str(exc).splitlines()[0][:120]) from None
    if meta.get("format") != FORMAT:
        raise _corrupt(path, "not a swapdeck checkpoint")
    try:
        info = json.loads(meta["info"])
    except (KeyError, ValueError):
        raise _corrupt(path, "its step and settings are missing or unreadable") from None
    step = info.get("step") if isinstance(info, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _corrupt(path, "it records no valid step")
    return info


def _check_fits(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Every weight the model has, in its shape, and nothing else: said in one line."""
    want = model.state_dict()
    missing = sorted(want.keys() - tensors.keys())
    extra = sorted(tensors.keys() - want.keys())
    if missing:
        raise ValueError(f"{len(missing)} weights missing, e.g. model.{missing[0]}")
    if extra:
        raise ValueError(f"{len(extra)} unknown weights, e.g. model.{extra[0]}")
    for key, value in want.items():
        if tensors[key].shape != value.shape:
            raise ValueError(
                f"model.{key} has shape {list(tensors[key].shape)}, "
                f"this model needs {list(value.shape)}"
            )


# Generator states: a CPU generator's (Mersenne Twister) or a CUDA one's (seed + offset).
_RNG_SIZES = (torch.Generator().get_state().numel(), 16)


def _check_rng(rng: dict[str, torch.Tensor]) -> None:
    for key, value in rng.items():
        if value.dtype != torch.uint8 or value.ndim != 1 or value.numel() not in _RNG_SIZES:
            raise ValueError(f"rng.{key} is not a random generator state")


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizers: torch.optim.Optimizer | Optimizers | None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights (and optimizers' states) in place; returns (info, rng states)."""
    info = read_info(path)
    wanted = _as_dict(optimizers)
    prefixes = {_prefix(i, name): name for i, name in enumerate(wanted)}
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "rng": {}}
    groups.update({prefix: {} for prefix in prefixes})
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                head, rest = key.split(".", 1)
                if head in groups:
                    groups[head][key if head in prefixes else rest] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise _corrupt(path, str(exc).splitlines()[0][:120]) from None
    try:
        _check_fits(model, groups["model"])
        _check_rng(groups["rng"])
        model.load_state_dict(groups["model"], strict=True)
        others = json.loads(meta.get("optimizers", "{}"))
        for position, (name, optimizer) in enumerate(wanted.items()):
            prefix = _prefix(position, name)
            saved = json.loads(meta["optimizer"]) if position == 0 else others[name]
            _restore_optimizer(optimizer, groups[prefix], saved)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _corrupt(path, f"its tensors do not fit this model: {str(exc)[:120]}") from None
    return info, groups["rng"]


def keep_snapshot(path: Path, step: int) -> Path:
    """Copy the current checkpoint into snapshots/ (atomically)."""
    target = path.parent / "snapshots" / f"step_{step:08d}.safetensors"
    target.parent.mkdir(exist_ok=True, mode=0o700)
    try:
        with atomic_path(target) as tmp:
            shutil.copyfile(path, tmp)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot write snapshot {target} ({exc.strerror})", "free disk space"
        ) from None
    return target
