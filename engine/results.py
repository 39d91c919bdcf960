"""Typed results: what each stage returns, and what its Finished event carries as JSON.

A stage function returns one of these models; the CLI and the wizard read its
attributes. The Finished event carries `result.model_dump(mode="json")`, a plain
dict, so events.jsonl, `--json` and a job's replay keep the same keys, in the same
order. A result read back from such a dict is `Model.model_validate(data)`.

Fields that a stage leaves out when they do not apply (a video's audio streams when
converting images, a video's frame count when verifying an image) are left out of
the dict too, instead of turning into nulls.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    # forbid: a key a stage adds without declaring it here fails loudly, not silently lost
    model_config = ConfigDict(frozen=True, extra="forbid")


def _absent_if_none(value: Any) -> bool:
    return value is None


# ---- extract ---------------------------------------------------------------------------------


class ExtractResult(_Frozen):
    """What `extract` added to a faceset."""

    faceset: str
    frames: int = Field(description="frames looked at in this run")
    faces: int = Field(description="faces saved in this run")
    tracked: int = Field(description="of those, faces followed from the frame before")
    skipped: int
    bad_files: int
    total_faces: int = Field(description="faces in the faceset after this run")
    backend: str
    backend_reason: str
    seconds: float
    frames_per_s: float


class LabelsResult(_Frozen):
    """Label masks imported into, or cleared from, a faceset."""

    faceset: str
    folder: str | None = Field(None, exclude_if=_absent_if_none)  # None: --clear alone
    matched: int = Field(description="labels stored from PNGs named like a face")
    resized: int = Field(description="of those, PNGs not of the crops' size, resized")
    unmatched: list[str] = Field(description="PNGs of the folder named like no face")
    cleared: int = Field(description="labels removed in this run")
    labelled: int = Field(description="faces with a label after this run")
    unlabelled: int = Field(description="faces without a label after this run")


class MaskSheetResult(_Frozen):
    """`faceset masks`: a contact sheet of a faceset's faces with their masks drawn over."""

    faceset: str
    output: str
    mask: Literal["occlusion", "hull"] = Field(description="hull: no occlusion model drew it")
    mask_model: str | None = Field(description="the occlusion model that drew the cover")
    faces: list[int] = Field(description="face ids, tile by tile (imported-label faces first)")
    labelled: int = Field(description="tiles whose cover is the face's imported label")
    columns: int
    tile_px: int
    covered_share: float = Field(description="share of the tiles' hull pixels drawn as covered")


# ---- convert ---------------------------------------------------------------------------------


class ConvertResult(_Frozen):
    """A whole video, image or image folder converted."""

    frames: int
    faces_swapped: int
    faces_not_chosen: int = Field(description="faces found that did not match --reference")
    frames_without_face: int
    undecodable_frames: int
    output: str
    seconds: float
    frames_per_s: float
    audio_streams: int | None = Field(None, exclude_if=_absent_if_none)  # video only
    mask: str = Field("hull", description="the mask blended with: hull, learned or occlusion")
    mask_model: str | None = Field(None, exclude_if=_absent_if_none)  # the occlusion model


class ConvertPreviewResult(_Frozen):
    """`--preview-frames N`: a few before/after frames rendered into one image."""

    frames: int
    faces_swapped: int
    frames_without_face: int
    output: str
    preview: Literal[True] = True
    mask: str = Field("hull", description="the mask blended with: hull, learned or occlusion")
    mask_model: str | None = Field(None, exclude_if=_absent_if_none)  # the occlusion model


class ReenactResult(_Frozen):
    """A portrait (or each portrait of a folder) moved by a driving video."""

    outputs: list[str] = Field(description="one video per source portrait")
    frames: int = Field(description="driving frames animated (per output)")
    shots: int = Field(description="shots of the driving video, each cropped with its own box")
    frames_without_face: int = Field(description="driving frames of shots where no face was found")
    start_frame: int = Field(description="driving frame the motion was measured from")
    seconds: float
    frames_per_s: float
    audio_streams: int
    preview: str | None = Field(None, exclude_if=_absent_if_none)


class ImportResult(_Frozen):
    """A published checkpoint written as a swapdeck model."""

    model: str
    family: str
    preset: str
    source: str
    tensors: int = Field(description="tensors written to the model's checkpoint")
    skipped: list[str] = Field(description="parts of the file not needed (optimizers, ...)")
    epoch: int | None = None
    checkpoint: str


# ---- train -----------------------------------------------------------------------------------


class TrainResult(_Frozen):
    """Where a training run ended. Losses are null in JSON when no step was trained.

    Families with other losses than A and B add them as extra `loss_*` fields.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, float | None]

    model: str
    steps: int
    # The autoencoder's; another family's losses are its own `loss_*` fields instead.
    loss_a: float | None = None
    loss_b: float | None = None
    examples_per_s: float
    examples_per_s_steady: float
    checkpoint: str
    preview: str
    stopped: bool
    seconds: float

    @model_validator(mode="after")
    def _only_extra_losses(self) -> TrainResult:
        others = [k for k in self.__pydantic_extra__ or {} if not k.startswith("loss_")]
        if others:
            raise ValueError(f"unknown train result field(s): {', '.join(others)}")
        return self

    @property
    def losses(self) -> dict[str, float | None]:
        """Every loss by its name without `loss_` ("a", "b", and a family's own)."""
        return {
            key.removeprefix("loss_"): value
            for key, value in self.model_dump(exclude_unset=True).items()
            if key.startswith("loss_")
        }


# ---- score -----------------------------------------------------------------------------------


class IdentityScores(_Frozen):
    retrieval: float | None = Field(description="share of faces closer to the target")
    dist_target: float | None
    dist_source: float | None


class ExpressionScores(_Frozen):
    nme: float | None = Field(description="landmark error, normalised by eye distance")
    yaw: float | None
    pitch: float | None
    roll: float | None


class StabilityScores(_Frozen):
    original: float | None = Field(description="jitter of the original, normalised")
    swapped: float | None
    ratio: float | None = Field(description="swapped jitter over original jitter")
    original_px: float | None
    swapped_px: float | None


class ScoreGroups(_Frozen):
    """The three groups of figures, over one pair or averaged over all."""

    identity: IdentityScores
    expression: ExpressionScores
    stability: StabilityScores


class PairScores(_Frozen):
    """One ORIGINAL / SWAPPED pair (not a ScoreGroups subclass: the JSON puts the counts first)."""

    original: str
    swapped: str
    frames: int
    faces: int
    skipped: int
    identity: IdentityScores
    expression: ExpressionScores
    stability: StabilityScores


class Reconstruction(_Frozen):
    """Masked SSIM of each side's held-out faces rebuilt by its own decoder (None, 0 faces:
    a model that swaps one way only rebuilds none)."""

    ssim_a: float | None
    faces_a: int
    ssim_b: float | None
    faces_b: int


class ScoreResult(_Frozen):
    """Every figure a plain number, or None where there was nothing to measure."""

    model: str
    step: int
    direction: str
    source: str | None = Field(description="the faceset replaced; None: the model names none")
    target: str
    backend: str
    videos: list[PairScores]
    average: ScoreGroups
    reconstruction: Reconstruction


class ReenactScoreResult(_Frozen):
    """A reenactment scored as the FOMM paper scores one: AKD, AED and (reconstruction) L1.

    Frames are matched by index (reenact keeps one output frame per driving frame);
    every figure a plain number, or None where there was nothing to measure.
    """

    model: str
    step: int
    size: int = Field(description="the model's frame size: AKD is in pixels at this size")
    source: str
    driving: str
    output: str
    reconstruction: bool = Field(description="SOURCE is DRIVING's first frame: L1 applies")
    paste_back: bool = Field(description="OUTPUT is the whole portrait: its face cut out")
    frames: int = Field(description="driving frames (in the range scored)")
    output_frames: int
    frames_compared: int = Field(description="frames of both videos, matched by index")
    frames_without_face: int = Field(description="compared frames in driving shots with no face")
    frames_scored: int = Field(description="compared frames with a face on both sides (AKD)")
    driving_missed: int = Field(description="driving crops in which no face was found")
    output_missed: int = Field(description="output frames in which no face was found")
    akd_px: float | None = Field(description="mean landmark distance, px at the model's size")
    akd_nme: float | None = Field(description="the same over the driving face's eye distance")
    aed: float | None = Field(description="mean identity distance output to source (dlib)")
    aed_frames: int = Field(description="output faces AED was measured on")
    l1: float | None = Field(description="mean |output - driving crop|, pixels in [0, 1]")
    backend: str


# ---- verify ----------------------------------------------------------------------------------


class VerifyResult(_Frozen):
    """Whether a file carries swapdeck's marks."""

    path: str
    marked: bool = Field(description="the watermark is in at least `threshold` of the frames")
    fraction: float
    threshold: float
    kind: Literal["image", "video"]
    frames_checked: int
    frames_marked: int
    frames_total: int | None = Field(None, exclude_if=_absent_if_none)  # video only
    metadata: bool = Field(description="a tag carries swapdeck's AI-generated label")


# ---- demo ------------------------------------------------------------------------------------


class DemoResult(_Frozen):
    """What each stage of the demo reported, and where its files are."""

    workspace: str
    a: ExtractResult
    b: ExtractResult
    train: TrainResult
    convert: ConvertResult
    verify: VerifyResult
    score: ScoreResult
    output: str
    scores: str
    preview: str
    seconds: float


# ---- compare ---------------------------------------------------------------------------------


class StructureFigures(_Frozen):
    """One row of compare's structure table: what a model is and costs to train."""

    family: str
    preset: str
    layout: str | None = Field(description="the model's layout, where its family has one")
    size: int | None = Field(description="input size in px, where its family has one")
    batch_size: int | None = Field(description="batch size from model.toml, where it has one")
    parameters: int = Field(description="parameters of every network the family builds")
    flops_per_example: float = Field(
        description="a training step's FLOPs per example: forward and backward as torch's "
        "flop counter counts them, over the examples the step trains on (examples_per_step)"
    )
    memory_mb: float = Field(
        description="MiB of tensors a training step at batch_size holds in fp32: weights, "
        "gradients, optimizer state and the activations kept for backward at their peak "
        "(not the training data, nor allocator overhead)"
    )
    memory_parts: dict[str, float] = Field(
        description="MiB of each part: weights (parameters and buffers), gradients, "
        "optimizer (the state of all the family's optimizers after the step), activations"
    )
    measured: str = Field(description="how the figures were taken")


class CompareModelResult(_Frozen):
    """One compared model: what it is, how its training went, how its swap scored."""

    spec: str
    model: str
    trained_here: bool = Field(description="trained by this compare (not an existing model)")
    structure: StructureFigures
    steps: int
    examples: int = Field(description="training examples seen")
    train_seconds: float | None
    examples_per_s: float | None
    losses: dict[str, float | None]
    device: str | None
    precision: str | None
    # None for a family whose models do not swap faces in footage: trained and measured only.
    convert: ConvertResult | None
    score: ScoreResult | None
    output: str | None


class CompareResult(_Frozen):
    """A compare's report: every model, the best of each column, where the files are."""

    name: str
    report: str = Field(description="report.md")
    report_json: str
    chart: str
    sheet: str | None = Field(description="None when no model converts footage")
    sheet_frames: list[int]
    faceset_a: str
    faceset_b: str
    clip: str
    budget: str
    budget_kind: Literal["seconds", "examples"]
    budget_amount: float
    seed: int
    devices: list[str] = Field(description="several: models trained side by side, one each")
    command: list[str]
    versions: dict[str, str]
    models: list[CompareModelResult]
    best: dict[str, list[str]] = Field(description="per results column, the best SPEC(s)")
    seconds: float = Field(description="time all runs of this compare took, resumes included")
    runs: int = Field(description="runs it took: every rerun counts (after a stop, or not)")
