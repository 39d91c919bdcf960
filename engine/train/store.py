"""models/<name>/: the frozen model.toml and where a model's files live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import ModelSettings, build, load_toml, save_toml
from engine.errors import BadInputError
from engine.train.models.base import ArchSpec
from engine.workspace import DIR_MODE, Workspace

# Per preset: what a new model gets unless the user says otherwise.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {"batch_size": 16, "lr": 3e-4},
    "original": {"batch_size": 16, "lr": 5e-5},
    "hd": {"batch_size": 8, "lr": 5e-5},
}
_ARCH_KEYS = ("preset", "size", "layout", "enc_dims", "dec_dims", "bottleneck", "learn_mask")


@dataclass(frozen=True)
class ModelPaths:
    folder: Path

    @property
    def toml(self) -> Path:
        return self.folder / "model.toml"

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.safetensors"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.jsonl"

    @property
    def previews(self) -> Path:
        return self.folder / "previews"

    @property
    def snapshots(self) -> Path:
        return self.folder / "snapshots"


def arch_of(settings: ModelSettings) -> ArchSpec:
    return ArchSpec.from_dict({k: getattr(settings, k) for k in _ARCH_KEYS})


def _new_settings(requested: dict[str, Any]) -> ModelSettings:
    preset = requested.get("preset") or "tiny"
    try:
        arch = ArchSpec.for_preset(
            preset,
            requested.get("size"),
            **({"layout": requested["layout"]} if requested.get("layout") else {}),
        )
    except ValueError as exc:
        raise BadInputError(str(exc), "see 'swapdeck train --help' for the presets") from None
    values = {**_DEFAULTS[preset], **arch.to_dict()}
    values.update({k: v for k, v in requested.items() if v is not None})
    return build(ModelSettings, **values)


def open_model(
    workspace: Workspace, name: str, requested: dict[str, Any]
) -> tuple[ModelSettings, ModelPaths, bool]:
    """Load model.toml, or work out a new model's settings from `requested` (None = not given).

    An existing model keeps its frozen settings: a flag that contradicts them is
    refused rather than silently ignored.
    """
    paths = ModelPaths(workspace.model_dir(name))
    if paths.toml.exists():
        settings = load_toml(ModelSettings, paths.toml)
        for key, value in requested.items():
            if value is None:
                continue
            have = getattr(settings, key)
            if have != value:
                raise BadInputError(
                    f"model {name} was created with {key.replace('_', '-')} {have}, not {value}",
                    "drop that flag to go on training it, or use a new -m name",
                )
        return settings, paths, False
    for side in ("faceset_a", "faceset_b"):
        if not requested.get(side):
            raise BadInputError(
                f"model {name} does not exist yet, so it needs -{side[-1]} FACESET",
                "give both -a and -b to create it",
            )
    return _new_settings(requested), paths, True


def create_model(settings: ModelSettings, paths: ModelPaths) -> None:
    """Freeze a new model's settings; called once its facesets proved usable."""
    paths.folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    save_toml(settings, paths.toml)
