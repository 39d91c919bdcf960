"""The authors' published FOMM checkpoints (vox-cpk.pth.tar, ...) as swapdeck models.

Their file is a torch pickle: a dict with the `generator` and `kp_detector` state
dicts, optionally `discriminator`, the optimizers' states and `epoch`. It is read
with torch's weights-only unpickler and nothing else, so a file that would need
anything but tensors and plain containers (a planted function call) is refused
before any of it runs. Every expected weight is checked by name and shape before
the model folder appears; it appears whole (written aside, then renamed) or not at all.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from engine.errors import BadInputError, CorruptError, NotFoundError, WorkspaceError
from engine.events import Finished, Sink, Started, null_sink
from engine.locks import model_lock
from engine.results import ImportResult
from engine.train.checkpoint import save_checkpoint
from engine.train.families.fomm.networks import FommNetworks, build_networks
from engine.train.registry import ModelSettingsBase, get_family, implementation
from engine.train.store import ModelPaths, create_model, new_settings
from engine.workspace import DIR_MODE, Workspace

FAMILY = "fomm"
PARTS = ("kp_detector", "generator")
# Weights batch norm counts in, missing from files saved before torch 0.4.1 kept them.
_COUNTER = "num_batches_tracked"
# How torch's weights-only unpickler names the callable a file wanted (posix.system, ...).
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_HINT = "give the authors' FOMM checkpoint (vox-cpk.pth.tar or vox-adv-cpk.pth.tar)"


def import_fomm(
    path: Path | str,
    workspace: Workspace,
    name: str,
    sink: Sink = null_sink,
    *,
    preset: str = "vox-256",
) -> ImportResult:
    """Write the authors' FOMM checkpoint at `path` as a new model `name` of `preset`."""
    path = Path(path).expanduser()
    paths = ModelPaths(workspace.model_dir(name))  # refuses a name that is not plain
    settings = _settings(preset)
    if not path.is_file():
        if path.exists():
            raise BadInputError(f"{path} is a folder, not a checkpoint file", "give the .pth.tar")
        raise NotFoundError(f"no checkpoint file {path}", "give the path of vox-cpk.pth.tar")
    _refuse_existing(paths, name)
    sink(Started(stage="import", detail={"source": str(path), "model": name, "preset": preset}))
    data = _read(path)
    skipped = sorted(str(k) for k in data if k not in (*PARTS, "epoch"))
    networks = _networks(settings, data, path)
    epoch = data.get("epoch")
    epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
    info = {
        "step": 0,
        "epoch": epoch,
        "imported_from": str(path.absolute()),
        "model": settings.model_dump(mode="json"),
        "reason": "imported",
    }
    workspace.ensure()
    with model_lock(workspace, name):
        _refuse_existing(paths, name)  # made while we read the file?
        _write(workspace, paths, settings, networks, info)
    tensors = len(networks.state_dict())
    result = ImportResult(
        model=name,
        family=FAMILY,
        preset=preset,
        source=str(path),
        tensors=tensors,
        skipped=skipped,
        epoch=epoch,
        checkpoint=str(paths.checkpoint),
    )
    sink(Finished(stage="import", result=result.model_dump(mode="json")))
    return result


def _settings(preset: str) -> ModelSettingsBase:
    presets = [p.name for p in get_family(FAMILY).presets]
    if preset not in presets:
        raise BadInputError(
            f"{preset} is not a fomm preset", f"import into one of: {', '.join(presets)}"
        )
    return new_settings({"preset": preset})


def _refuse_existing(paths: ModelPaths, name: str) -> None:
    # Never over an existing model: its weights would be lost to a mistyped -m.
    if paths.folder.exists():
        raise BadInputError(
            f"model {name} already exists in {paths.folder.parent}",
            "import under a new -m name, or remove that model first",
        )


def _read(path: Path) -> dict[str, Any]:
    """The checkpoint's top-level dict, unpickled weights-only (tensors, plain containers)."""
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols are not the user's
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if found:
            raise CorruptError(
                f"{path} is refused: loading it would run {found.group(1)}, not just read weights",
                "nothing in it was run; use the authors' published file, not a copy of unknown "
                "origin",
            ) from None
        raise CorruptError(f"{path} is not a PyTorch checkpoint", _HINT) from None
    except OSError as exc:
        raise CorruptError(f"cannot read {path} ({exc.strerror or exc})", _HINT) from None
    except Exception:  # a broken or foreign file fails in any of torch's parsers, any way
        raise CorruptError(f"{path} is not a PyTorch checkpoint", _HINT) from None
    if not isinstance(data, Mapping):
        raise BadInputError(
            f"{path} holds a {type(data).__name__}, not the authors' checkpoint dict", _HINT
        )
    for part in PARTS:
        if not isinstance(data.get(part), Mapping):
            raise BadInputError(f"{path} has no {part!r} state dict", _HINT)
    return dict(data)


def _networks(settings: ModelSettingsBase, data: dict[str, Any], path: Path) -> FommNetworks:
    """The networks holding the checkpoint's weights, every one checked by name and shape."""
    with torch.device("meta"):  # names and shapes only: nothing allocated, nothing initialised
        networks = build_networks(settings)
    state = _checked(networks.state_dict(), data, path, settings.preset)
    # assign: the checked tensors become the weights (no second 59 M-parameter copy).
    networks.load_state_dict(state, strict=True, assign=True)
    return networks.eval()


def _checked(
    expected: dict[str, torch.Tensor], data: dict[str, Any], path: Path, preset: str
) -> dict[str, torch.Tensor]:
    """The checkpoint's weights under this model's names; the first misfit, in one line."""
    state: dict[str, torch.Tensor] = {}
    for part in PARTS:
        given = data[part]
        for key in given:
            if f"{part}.{key}" not in expected:
                raise BadInputError(
                    f"{path}: {part}.{key} is not a weight of the {preset} network",
                    f"{_HINT}; other FOMM configurations do not import",
                )
        for key, want in expected.items():
            head, _, inner = key.partition(".")
            if head != part:
                continue
            value = given.get(inner)
            if value is None and inner.endswith(_COUNTER):
                value = torch.zeros((), dtype=torch.long)
            if value is None:
                raise BadInputError(f"{path}: weight {key} is missing", _HINT)
            if not isinstance(value, torch.Tensor) or (
                want.is_floating_point() and not value.is_floating_point()
            ):
                what = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
                raise BadInputError(f"{path}: {key} is {what}, not weights", _HINT)
            if value.shape != want.shape:
                raise BadInputError(
                    f"{path}: {key} has shape {list(value.shape)}, the {preset} network "
                    f"needs {list(want.shape)}",
                    _HINT,
                )
            # As this model's dtype whatever the file held (a half-precision copy imports too).
            state[key] = value.to(want.dtype)
    return state


def _write(
    workspace: Workspace,
    paths: ModelPaths,
    settings: ModelSettingsBase,
    networks: FommNetworks,
    info: dict[str, Any],
) -> None:
    """model.toml and checkpoint.safetensors in a hidden folder, renamed into place."""
    folder = Path(tempfile.mkdtemp(prefix=f".{paths.folder.name}.", dir=workspace.models_dir))
    try:
        os.chmod(folder, DIR_MODE)
        aside = ModelPaths(folder)
        # Fresh optimizers, the family's own, with no state: fine-tuning resumes from here.
        family = implementation(FAMILY)(settings, workspace)
        save_checkpoint(aside.checkpoint, networks, family.optimizers(networks), {}, info)
        create_model(settings, aside)
        os.rename(folder, paths.folder)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise WorkspaceError(
            f"cannot write model {paths.folder} ({exc.strerror or exc})",
            "free disk space, check the workspace is writable",
        ) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
