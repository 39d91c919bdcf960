"""Typed configs, one per stage. TOML in, TOML out.

A config is validated when built; a bad value becomes one BadInputError line
instead of a pydantic traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import BadInputError, CorruptError
from engine.media.paths import printable
from engine.workspace import atomic_write_text, check_name

C = TypeVar("C", bound=BaseModel)


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractConfig(StageConfig):
    """What `swapdeck extract` was asked to do."""

    sources: list[Path] = Field(min_length=1)
    faceset: str
    backend: Literal["auto", "fan", "dlib", "mediapipe"] = "auto"
    detector: Literal["hog", "cnn"] = "hog"
    every: int = Field(1, ge=1, description="process every Nth video frame")
    size: int = Field(256, ge=64, le=1024, description="aligned crop size in pixels")
    coverage: float = Field(0.75, ge=0.3, le=1.0, description="share of the crop the face spans")
    min_face: int = Field(80, ge=16, description="smallest face kept, in pixels")
    max_faces: int = Field(0, ge=0, description="largest N faces per frame; 0 keeps all")
    references: list[Path] = Field(default_factory=list)
    threshold: float = Field(0.6, gt=0.0, le=2.0, description="identity distance to keep a face")
    device: str = "auto"

    @field_validator("faceset")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        try:
            return check_name(value, "faceset name")
        except BadInputError as exc:
            raise ValueError(exc.one_line()) from None


def _name_validator(what: str):
    def check(cls: type, value: str) -> str:
        try:
            return check_name(value, what)
        except BadInputError as exc:
            raise ValueError(exc.one_line()) from None

    return check


# A model's own settings (model.toml) are declared per family: engine/train/registry.py.


class RunSettings(StageConfig):
    """How this particular run goes; may differ every time a model is resumed."""

    steps: int = Field(1000, ge=1, description="train until this step")
    save_every: int = Field(250, ge=1)
    preview_every: int = Field(100, ge=1)
    snapshot_every: int = Field(1000, ge=0, description="keep a snapshot every N steps; 0: none")
    log_every: int = Field(10, ge=1)
    time_limit: float | None = Field(None, gt=0, description="stop after this many seconds")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    compile: bool = False
    device: str = "auto"
    grad_clip: float = Field(1.0, gt=0)
    resume: bool = True


class ConvertConfig(StageConfig):
    """What `swapdeck convert` was asked to do."""

    input: Path
    output: Path
    model: str
    direction: Literal["a-to-b", "b-to-a"] = "a-to-b"
    faceset: str | None = Field(None, description="take the video's faces from this faceset")
    references: list[Path] = Field(default_factory=list)
    threshold: float = Field(0.6, gt=0.0, le=2.0, description="identity distance to swap a face")
    mask: Literal["auto", "hull", "learned", "occlusion"] = "auto"
    mask_model: str | None = Field(None, description="occlusion model for --mask occlusion")
    erode: int = Field(0, ge=-100, le=100, description="shrink (+) or grow (-) the mask, px")
    blur: int | None = Field(None, ge=0, le=200, description="mask feather, px; None: by size")
    color: Literal["rct", "hist", "avg", "none"] = "rct"
    seamless: bool = False
    smooth: float = Field(1.0, ge=0.0, le=10.0, description="landmark smoothing sigma, frames")
    start: float | None = Field(None, ge=0.0, description="first second to convert")
    end: float | None = Field(None, gt=0.0, description="second to stop at")
    preview_frames: int = Field(0, ge=0, le=32)
    overwrite: bool = False
    backend: Literal["auto", "fan", "dlib", "mediapipe"] = "auto"
    batch_size: int = Field(16, ge=1, le=256)
    device: str = "auto"

    _m = field_validator("model")(classmethod(_name_validator("model name")))

    @field_validator("faceset")
    @classmethod
    def _faceset_name(cls, value: str | None) -> str | None:
        return None if value is None else _name_validator("faceset name")(cls, value)

    @field_validator("mask_model")
    @classmethod
    def _mask_model_name(cls, value: str | None) -> str | None:
        return None if value is None else _name_validator("mask model name")(cls, value)


class ReenactConfig(StageConfig):
    """What `swapdeck reenact` was asked to do: SOURCE portrait(s) moved by a DRIVING video."""

    source: Path = Field(description="a portrait image, or a folder of them (one output each)")
    driving: Path = Field(description="the video whose motion the portrait follows")
    output: Path = Field(description="the video written (a folder when SOURCE is a folder)")
    model: str
    relative: bool = Field(True, description="motion relative to the driving video's first frame")
    adapt_scale: bool = Field(False, description="scale motion by the keypoint hulls' areas")
    best_frame: bool = Field(False, description="start from the driving frame nearest the source")
    paste_back: bool = Field(False, description="paste the face back into the whole portrait")
    start: float | None = Field(None, ge=0.0, description="first second of the driving video")
    end: float | None = Field(None, gt=0.0, description="second of the driving video to stop at")
    preview_frames: int = Field(0, ge=0, le=32, description="only render N before/after frames")
    overwrite: bool = False
    backend: Literal["auto", "fan", "dlib", "mediapipe"] = "auto"
    batch_size: int = Field(8, ge=1, le=256, description="frames animated per model batch")
    device: str = "auto"

    _m = field_validator("model")(classmethod(_name_validator("model name")))


class CompareConfig(StageConfig):
    """What `swapdeck compare` was asked to do (engine.compare reads its SPECs and budget)."""

    faceset_a: str
    faceset_b: str
    models: list[str] = Field(min_length=1, description="SPECs: preset[:choice...] or model:NAME")
    clip: Path = Field(description="footage of person A that every model converts")
    budget: str = Field(description="each new model's training: 20m, 90s, 1.5h, 200k examples")
    report: Path = Field(description="folder of report.md, report.json, charts and videos")
    name: str | None = Field(None, description="prefix of the models it trains; default: report's")
    seed: int = 0
    device: str = "auto"
    backend: Literal["auto", "fan", "dlib", "mediapipe"] = "auto"
    sheet_frames: int = Field(4, ge=1, le=12, description="frames on the contact sheet")

    _a = field_validator("faceset_a")(classmethod(_name_validator("faceset name")))
    _b = field_validator("faceset_b")(classmethod(_name_validator("faceset name")))

    @field_validator("name")
    @classmethod
    def _compare_name(cls, value: str | None) -> str | None:
        return None if value is None else _name_validator("compare name")(cls, value)


def build(cls: type[C], **values: Any) -> C:
    """Build a config, turning validation errors into one clear line."""
    try:
        return cls(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        # A key is whatever the caller gave (a TOML key may hold a newline): one line.
        where = (where if where.isprintable() else repr(where)) or cls.__name__
        raise BadInputError(
            f"invalid {where}: {first['msg']}", "see --help for the allowed values"
        ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return printable(value)  # TOML is UTF-8; a name may not be
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_toml(config: BaseModel) -> str:
    return tomli_w.dumps(_plain(config.model_dump()))


def save_toml(config: BaseModel, path: Path) -> None:
    atomic_write_text(path, to_toml(config))


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; an unreadable one is one CorruptError line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptError(f"{path} is not valid TOML ({exc})", "fix or remove the file") from None
    except OSError as exc:
        raise CorruptError(
            f"cannot read {path} ({exc.strerror or exc})", "make it a readable file, or remove it"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CorruptError(f"{path} is not valid TOML ({exc})", "fix or remove the file") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise CorruptError(
            f"{path} is not valid TOML (nested too deeply)", "fix or remove the file"
        ) from None


def load_toml(cls: type[C], path: Path) -> C:
    data = read_toml(path)
    try:
        return cls(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CorruptError(
            f"{path}: {where}: {first['msg']}", "fix the value or remove the file"
        ) from None


def record_in_workspace(path: Path, table: str, name: str, config: BaseModel) -> None:
    """Remember what the user chose in swapdeck.toml, under [table.name]."""
    data = read_toml(path) if path.exists() else {}
    section = data.setdefault(table, {})
    values = _plain(config.model_dump())
    values.pop(table.rstrip("s"), None)  # the name is the key already
    section[name] = values
    atomic_write_text(path, tomli_w.dumps(data))
