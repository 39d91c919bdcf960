"""models/<name>/: the frozen model.toml and where a model's files live.

model.toml names the model's family and preset and holds every option of that
family (its settings class comes from the registry), plus the crop geometry of
the faces it learned from, so convert never needs the training facesets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from engine.config import build, load_toml, read_toml, save_toml
from engine.errors import BadInputError, CorruptError
from engine.train.registry import (
    CropGeometry,
    FamilyInfo,
    ModelSettingsBase,
    default_preset,
    family_of_preset,
    get_family,
    implementation,
    settings_model,
)
from engine.workspace import DIR_MODE, Workspace

# Models made before model families name none: they are all autoencoders.
LEGACY_FAMILY = "autoencoder"


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


def load_settings(path: Path) -> ModelSettingsBase:
    """A model.toml, read with its family's settings class; a bad one is one CorruptError."""
    data = read_toml(path)
    family = data.get("family", LEGACY_FAMILY)
    try:
        cls = settings_model(family) if isinstance(family, str) else None
    except BadInputError:
        cls = None
    if cls is None:
        raise CorruptError(
            f"{path}: family: unknown model family {family!r}",
            "fix the value or remove the model, or use the swapdeck version that made it",
        )
    return load_toml(cls, path)


def _allowed_text(values: tuple[Any, ...]) -> str:
    if len(values) == 1:
        return f"exactly {values[0]}"
    numbers = all(isinstance(v, int) for v in values)
    steps = {b - a for a, b in itertools.pairwise(values)} if numbers else set()
    if len(steps) == 1:
        return f"{values[0]}-{values[-1]} in steps of {steps.pop()}: {list(values)}"
    return " or ".join(map(str, values))


def _coerce(info: FamilyInfo, given: dict[str, Any]) -> dict[str, Any]:
    """Requested values (flags, --set KEY=VALUE strings) as the types model.toml holds."""
    cls = settings_model(info.name)
    known = set(cls.model_fields) - {"family", "geometry"}
    out = {}
    for key, value in given.items():
        if key not in known:
            raise BadInputError(
                f"{info.name} models have no option {key.replace('_', '-')}",
                f"their options: {', '.join(sorted(known - {'preset'}))}",
            )
        try:
            field = cls.model_fields[key]
            # With its validators (a comma-separated list splits) and limits.
            kind = (
                Annotated[(field.annotation, *field.metadata)]
                if field.metadata
                else field.annotation
            )
            out[key] = TypeAdapter(kind).validate_python(value)
        except ValidationError as exc:
            raise BadInputError(
                f"invalid {key}: {exc.errors()[0]['msg']}", "see 'swapdeck train --help'"
            ) from None
    return out


def new_settings(requested: dict[str, Any]) -> ModelSettingsBase:
    """A new model's settings from `requested` (None = not given), checked as train checks them."""
    preset_name = requested.get("preset") or default_preset()
    info = family_of_preset(preset_name)
    preset = info.preset(preset_name)
    given = _coerce(info, {k: v for k, v in requested.items() if v is not None})
    values = {**info.defaults(preset_name), **given}
    for key, allowed in preset.allowed.items():
        if values.get(key) not in allowed:
            raise BadInputError(
                f"{preset_name} models take {key} {_allowed_text(allowed)}, not {values[key]}",
                "see 'swapdeck train --help' for the presets",
            )
    settings = build(settings_model(info.name), **{**values, "preset": preset_name})
    try:
        implementation(info.name).check(settings)
    except ValueError as exc:
        raise BadInputError(str(exc), "see 'swapdeck train --help' for the presets") from None
    return settings


def open_model(
    workspace: Workspace, name: str, requested: dict[str, Any]
) -> tuple[ModelSettingsBase, ModelPaths, bool]:
    """Load model.toml, or work out a new model's settings from `requested` (None = not given).

    An existing model keeps its frozen settings: a flag that contradicts them is
    refused rather than silently ignored.
    """
    paths = ModelPaths(workspace.model_dir(name))
    if paths.toml.exists():
        settings = load_settings(paths.toml)
        info = get_family(settings.family)
        given = {k: v for k, v in requested.items() if v is not None}
        if given.get("preset") not in (None, settings.preset):
            raise BadInputError(
                f"model {name} was created with preset {settings.preset}, not {given['preset']}",
                "drop that flag to go on training it, or use a new -m name",
            )
        changes: dict[str, Any] = {}
        for key, value in _coerce(info, given).items():
            have = getattr(settings, key)
            if key in info.options_unfrozen():
                changes[key] = value
            elif have != value:
                raise BadInputError(
                    f"model {name} was created with {key.replace('_', '-')} {have}, not {value}",
                    "drop that flag to go on training it, or use a new -m name",
                )
        # The trainer writes model.toml anew once the data has loaded (see loop.py).
        return settings.model_copy(update=changes), paths, False
    facesets = family_of_preset(requested.get("preset") or default_preset()).facesets
    for side in facesets:
        if not requested.get(side):
            flags = " and ".join(f"-{f[-1]}" for f in facesets)
            raise BadInputError(
                f"model {name} does not exist yet, so it needs -{side[-1]} FACESET",
                f"give both {flags} to create it" if "and" in flags else f"give {flags}",
            )
    return new_settings(requested), paths, True


def create_model(settings: ModelSettingsBase, paths: ModelPaths) -> None:
    """Freeze a new model's settings; called once its data proved usable."""
    paths.folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    save_toml(settings, paths.toml)


def with_geometry(
    settings: ModelSettingsBase, geometry: dict[str, CropGeometry]
) -> ModelSettingsBase:
    """`settings` with crop geometry for the sides it lacks (models made before it was kept)."""
    missing = {k: v for k, v in geometry.items() if k not in settings.geometry}
    if not missing:
        return settings
    return settings.model_copy(update={"geometry": {**settings.geometry, **missing}})
