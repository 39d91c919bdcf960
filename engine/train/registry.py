"""Model families: what each declares once (presets, options, help), without torch.

A family is one package under engine/train/families/. Its `__init__.py` holds a
`FAMILY = FamilyInfo(...)` declaration (no torch), and names the class that trains
it by "module:Class", imported only when a model of that family is built. From the
declarations come config validation (`settings_model`), model.toml checks,
`swapdeck train --help` and the wizard's Train form, so a preset or an option is
written in exactly one place.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from engine.config import StageConfig
from engine.errors import BadInputError
from engine.workspace import check_name

# Packages whose FAMILY ships with swapdeck; more can be added with `register`, or
# named (comma-separated modules with a FAMILY) in this variable of the caller's
# environment, so that detached jobs and torchrun workers know them too.
BUILTIN = (
    "engine.train.families.autoencoder",
    "engine.train.families.fomm",
    "engine.train.families.fast_swap",
    "engine.train.families.occlusion",
)
PLUGINS_ENV = "SWAPDECK_FAMILIES"

OptionKind = Literal["int", "float", "str", "bool", "faceset", "facesets"]
_PYTHON_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Option:
    """One setting of a family's models, frozen into model.toml when a model is created."""

    name: str
    kind: OptionKind
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    # Shown as its own flag by `swapdeck train` (the others are set with --set KEY=VALUE).
    flag: bool = False
    # Frozen into model.toml at creation; an unfrozen one (where the training data
    # lies, say) may be given anew whenever an existing model trains on.
    frozen: bool = True
    # A faceset option a model may do without (its default None then means "none").
    optional: bool = False

    @property
    def required(self) -> bool:
        return self.default is None and self.kind == "faceset" and not self.optional


@dataclass(frozen=True)
class Preset:
    """A named starting point: the family's defaults with these values instead."""

    name: str
    help: str
    values: dict[str, Any] = field(default_factory=dict)
    # Per option, the values this preset accepts (e.g. the sizes it is built for).
    allowed: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # Options of `allowed` that the wizard's Train form offers a choice of.
    choose: tuple[str, ...] = ()


@dataclass(frozen=True)
class FamilyInfo:
    """What a family is, said once."""

    name: str
    help: str
    presets: tuple[Preset, ...]
    options: tuple[Option, ...]
    # "module:Class" of its engine.train.family.Family subclass (imported when needed).
    implementation: str
    # The facesets a model needs, by option name ("faceset_a", ...), in the order shown.
    facesets: tuple[str, ...] = ()
    # Whether convert can use its models to swap faces in footage.
    converts: bool = False
    # Whether its models swap both ways (a-to-b and b-to-a), and can rebuild each
    # side's own faces (score's reconstruction SSIM). A per-target network does neither.
    both_ways: bool = True
    # Names of its headline losses (metrics' loss_<name>, the charts), said here so that
    # the wizard can name them without importing torch.
    loss_names: tuple[str, ...] = ("a", "b")

    def preset(self, name: str) -> Preset:
        for preset in self.presets:
            if preset.name == name:
                return preset
        raise KeyError(name)

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    def options_unfrozen(self) -> frozenset[str]:
        """Options an existing model may be given anew (not frozen at creation)."""
        return frozenset(o.name for o in self.options if not o.frozen)

    def defaults(self, preset: str) -> dict[str, Any]:
        """Every option's value for a new model of `preset`."""
        values = {o.name: o.default for o in self.options}
        values.update(self.preset(preset).values)
        return values


class CropGeometry(BaseModel):
    """How the faces a model learned from were cut: convert cuts faces the same way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    coverage: float = Field(ge=0.3, le=1.0, description="share of the crop the face spans")
    crop_size: int = Field(ge=16, le=4096, description="the faceset's aligned crop size, px")
    alignment: str = Field("umeyama-68", description="how landmarks were fitted to the crop")


class ModelSettingsBase(StageConfig):
    """What every model records in model.toml: its family, preset, seed and crop geometry.

    Each family's settings class adds its options to this (see `settings_model`).
    """

    family: str
    preset: str
    seed: int = 0
    # Per faceset side ("a", "b", ...): how its faces were cut. Empty in models made
    # before model.toml recorded it; filled in from the facesets when they still exist.
    geometry: dict[str, CropGeometry] = Field(default_factory=dict)


def _faceset_name(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_name(value, "faceset name")
    except BadInputError as exc:
        raise ValueError(exc.one_line()) from None


def _faceset_names(value: Any) -> Any:
    """A list of faceset names; one comma-separated string (--set inputs=x,y) is split."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _field(option: Option) -> tuple[Any, Any]:
    if option.kind == "facesets":
        name = Annotated[str, AfterValidator(_faceset_name)]
        kind: Any = Annotated[tuple[name, ...], BeforeValidator(_faceset_names)]  # type: ignore[valid-type]
    elif option.kind == "faceset":
        kind = Annotated[str, AfterValidator(_faceset_name)]
        if not option.required:
            kind = kind | None
    elif option.choices:
        kind = Literal[option.choices]
    else:
        kind = _PYTHON_TYPES[option.kind]
    limits = {k: getattr(option, k) for k in ("ge", "le", "gt") if getattr(option, k) is not None}
    default = ... if option.required else option.default
    return kind, Field(default, description=option.help, **limits)


@functools.cache
def settings_model(family: str) -> type[ModelSettingsBase]:
    """The pydantic class of `family`'s model.toml, built from its declared options."""
    info = get_family(family)
    fields: dict[str, Any] = {o.name: _field(o) for o in info.options}
    fields["family"] = (Literal[info.name], info.name)
    fields["preset"] = (Literal[tuple(p.name for p in info.presets)], info.presets[0].name)
    name = "".join(part.title() for part in family.replace("-", "_").split("_")) + "Settings"
    return create_model(name, __base__=ModelSettingsBase, **fields)


# ---- the registry -----------------------------------------------------------------------

_FAMILIES: dict[str, FamilyInfo] = {}
_CLASSES: dict[str, type] = {}
_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    plugins = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for module in (*BUILTIN, *plugins):
        try:
            register(importlib.import_module(module).FAMILY)
        except (ImportError, AttributeError) as exc:
            raise BadInputError(
                f"cannot load model family module {module!r} ({exc})",
                f"fix or unset {PLUGINS_ENV}",
            ) from None


def register(info: FamilyInfo, implementation: type | None = None) -> None:
    """Add a family; `implementation` gives its class directly (tests, plug-ins in-process).

    Preset names are unique across families: a preset alone says which family it is.
    """
    _load_builtin()
    for other in _FAMILIES.values():
        if other.name == info.name:
            continue
        clash = {p.name for p in other.presets} & {p.name for p in info.presets}
        if clash:
            raise ValueError(f"presets {sorted(clash)} of {info.name} exist in {other.name}")
    _FAMILIES[info.name] = info
    if implementation is not None:
        _CLASSES[info.name] = implementation
    settings_model.cache_clear()


def unregister(name: str) -> None:
    _FAMILIES.pop(name, None)
    _CLASSES.pop(name, None)
    settings_model.cache_clear()


def families() -> Iterator[FamilyInfo]:
    _load_builtin()
    yield from list(_FAMILIES.values())


def get_family(name: str) -> FamilyInfo:
    _load_builtin()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise BadInputError(
            f"unknown model family {name!r}", f"use one of: {', '.join(_FAMILIES)}"
        ) from None


def presets() -> list[tuple[FamilyInfo, Preset]]:
    """Every preset of every family, in declaration order."""
    return [(info, preset) for info in families() for preset in info.presets]


def family_of_preset(preset: str) -> FamilyInfo:
    for info, candidate in presets():
        if candidate.name == preset:
            return info
    names = ", ".join(p.name for _, p in presets())
    raise BadInputError(f"unknown model preset {preset!r}", f"use one of: {names}")


def default_preset() -> str:
    return presets()[0][1].name


def implementation(family: str) -> type:
    """The family's trainer class (engine.train.family.Family), importing it on first use."""
    info = get_family(family)
    if family not in _CLASSES:
        module, _, name = info.implementation.partition(":")
        _CLASSES[family] = getattr(importlib.import_module(module), name)
    return _CLASSES[family]


def describe() -> str:
    """Families, presets and options as plain text, for `swapdeck train --help`."""
    lines = []
    for info in families():
        lines.append(f"Family {info.name}: {info.help}")
        for preset in info.presets:
            lines.append(f"  preset {preset.name}: {preset.help}")
        for option in info.options:
            lines.append(
                f"  {option.name}{_kind_text(option)}, {_default_text(option)}: {option.help}"
            )
    return "\n".join(lines)


def _kind_text(option: Option) -> str:
    if option.choices:
        return f" ({' | '.join(map(str, option.choices))})"
    if option.kind == "facesets":
        # How a list is given: its flag once per name, or --set with commas.
        flag = option.name.replace("_", "-")
        how = f"--{flag} NAME, repeatable" if option.flag else f"--set {flag}=NAME,NAME"
        return f" (faceset names: {how})"
    return ""


def _default_text(option: Option) -> str:
    if option.required:
        return "required"
    if option.kind == "faceset" and option.default is None:
        return "optional"
    if option.default in ("", ()):
        return "default empty"
    return f"default {option.default}"
