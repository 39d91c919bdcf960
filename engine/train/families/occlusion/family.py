"""Training the occlusion mask: which pixels of an aligned face are the face itself.

Per step: draw faces from every input faceset (the Trainer's seeded generator),
mirror some, draw occluders over most of them (synth.py, seeded from the same
generator, so a resumed run draws the same ones), jitter the colours, and score
the network's mask against the target: the face's imported label where it has
one (a quarter of each batch comes from such faces when there are any), else its
landmark hull, minus the occluder. Loss: binary cross-entropy plus
soft Dice, in fp32. A few faces per faceset are held out for the preview and for
measuring the mask's IoU on occlusions it never trained on.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import BadInputError, CorruptError, SwapdeckError
from engine.faces.align import transform_points
from engine.faceset import FaceRecord, Faceset
from engine.train.checkpoint import load_checkpoint
from engine.train.data import MIN_FACES, faceset_geometry
from engine.train.families.occlusion import FAMILY, synth
from engine.train.families.occlusion.inference import trained_occlusion
from engine.train.families.occlusion.network import MaskNet, check_size
from engine.train.family import Family, StepContext, StepResult, make_optimizer
from engine.train.preview import save_png
from engine.train.registry import CropGeometry, ModelSettingsBase
from engine.workspace import Workspace

HELD_OUT = 8  # faces per faceset kept out of training, at most
_PREVIEW_ROWS = 4
_PREVIEW_SEED = 20_16  # the same occluders in every preview of a run


@dataclass
class MaskData:
    """Faces at the model's size with what training needs of each (numpy, on the CPU:
    the occluders are drawn there)."""

    faces: np.ndarray  # (N, S, S, 3) uint8 RGB
    targets: np.ndarray  # (N, S, S) uint8: the imported label, else the hull (255 = face)
    anchors: np.ndarray  # (N, 5, 2) float32: eyes, nose tip, mouth, chin (synth.EYE_L...)
    labelled: np.ndarray  # (N,) bool: the target is an imported label

    def __len__(self) -> int:
        return len(self.faces)

    def take(self, index: np.ndarray) -> MaskData:
        return MaskData(
            self.faces[index], self.targets[index], self.anchors[index], self.labelled[index]
        )

    @staticmethod
    def join(parts: list[MaskData]) -> MaskData:
        fields = [_fields(part) for part in parts]
        return MaskData(*(np.concatenate(arrays) for arrays in zip(*fields, strict=True)))


def _fields(data: MaskData) -> tuple[np.ndarray, ...]:
    return data.faces, data.targets, data.anchors, data.labelled


def _decode_gray(blob: bytes, size: int) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    if image.shape != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image


def _load_one(
    faceset: Faceset, record: FaceRecord, stored: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    path = faceset.faces_dir / record.file
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CorruptError(f"face image {path} cannot be read", "prune it or extract again")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[0] != size:
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    # An imported label is the target instead of the hull.
    target = _decode_gray(record.label, size) if record.label else None
    labelled = target is not None
    if target is None:
        target = _decode_gray(record.mask, size) if record.mask else None
    if target is None:
        target = np.full((size, size), 255, np.uint8)
    points = transform_points(record.landmarks.astype(np.float64), record.matrix)
    anchors = synth.anchors_from_landmarks(points * (size / stored))
    return rgb, target, anchors, labelled


def load_faceset(workspace: Workspace, name: str, size: int) -> MaskData:
    """Faceset `name`'s faces at `size` px; refuses one missing, too small or too low-res."""
    folder = workspace.existing_faceset_dir(name)
    with Faceset.open(folder) as faceset:
        stored = faceset.size
        if stored < size:
            raise BadInputError(
                f"faceset {name} was extracted at {stored} px, smaller than the mask's {size} px",
                f"extract again with --size {size} or more, or choose a smaller mask size",
            )
        records = list(faceset.faces())
        if len(records) < MIN_FACES:
            raise BadInputError(
                f"faceset {name} has {len(records)} faces; an occlusion mask needs at least "
                f"{MIN_FACES}",
                "extract more photos or video into it, or leave it out of --inputs",
            )
        with ThreadPoolExecutor(max_workers=4) as pool:
            loaded = list(pool.map(lambda r: _load_one(faceset, r, stored, size), records))
    return MaskData(
        np.stack([f for f, _, _, _ in loaded]),
        np.stack([t for _, t, _, _ in loaded]),
        np.stack([a for _, _, a, _ in loaded]).astype(np.float32),
        np.array([lab for _, _, _, lab in loaded], bool),
    )


def split_held_out(data: MaskData) -> tuple[MaskData, MaskData]:
    """(training, held out): evenly spaced faces kept out, so they are never trained on."""
    n = len(data)
    held = max(1, min(HELD_OUT, n // 8))
    held_idx = np.unique(np.round(np.linspace(0, n - 1, held)).astype(int))
    keep = np.ones(n, bool)
    keep[held_idx] = False
    return data.take(np.flatnonzero(keep)), data.take(held_idx)


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE + soft Dice of the face class, batch IoU), in fp32 whatever the step's precision."""
    logits, target = logits.float(), target.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean(), mask_iou(logits.detach(), target)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of the face class (logit > 0 against target > 0.5), pooled."""
    pred, truth = logits > 0, target > 0.5
    union = (pred | truth).sum()
    return (pred & truth).sum() / union.clamp(min=1)


def _mirror(data: MaskData, flip: np.ndarray) -> MaskData:
    faces, targets, anchors = data.faces.copy(), data.targets.copy(), data.anchors.copy()
    size = faces.shape[1]
    faces[flip] = faces[flip][:, :, ::-1]
    targets[flip] = targets[flip][:, :, ::-1]
    anchors[flip] = synth.flip_anchors(anchors[flip], size)
    return MaskData(faces, targets, anchors, data.labelled)


def occluded_batch(
    data: MaskData, rng: np.random.Generator, bank: synth.TextureBank, share: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Faces with occluders drawn over a `share` of them: inputs (N, 3, S, S) uint8,
    targets (N, 1, S, S) float32 (1 = face: its label or hull, minus the occluder) and
    where an occluder covers the face (N, 1, S, S) bool."""
    images, covered = synth.occlude(data.faces, data.anchors, rng, bank, share)
    face = data.targets >= 128
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    target = torch.from_numpy(face & ~covered)[:, None].float()
    return x, target, torch.from_numpy(face & covered)[:, None]


def _jitter(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Light colour jitter of (N, 3, S, S) in [0, 1]: brightness, contrast, saturation
    from `u` (N, 3) uniform draws (the occluder and the face under the same light)."""
    bright = (0.8 + 0.4 * u[:, 0]).view(-1, 1, 1, 1)
    contrast = (0.8 + 0.4 * u[:, 1]).view(-1, 1, 1, 1)
    saturation = (0.7 + 0.6 * u[:, 2]).view(-1, 1, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * bright
    grey = x.mean(1, keepdim=True)
    return (grey + (x - grey) * saturation).clamp(0, 1)


class OcclusionFamily(Family):
    info: ClassVar = FAMILY

    def __init__(self, settings: ModelSettingsBase, workspace: Workspace) -> None:
        super().__init__(settings, workspace)
        s: Any = settings
        self.size: int = s.size
        self.batch_size: int = s.batch_size
        self.start_path: Path | None = None

    @classmethod
    def check(cls, settings: ModelSettingsBase) -> None:
        check_size(int(settings.size))  # type: ignore[attr-defined]

    # ---- data ---------------------------------------------------------------------------

    def _input_names(self) -> tuple[list[str], bool]:
        s: Any = self.settings
        if s.inputs:
            return list(dict.fromkeys(s.inputs)), True
        names = self.workspace.faceset_names()
        if not names:
            raise BadInputError(
                f"workspace {self.workspace.root} has no facesets to learn occlusion masks from",
                "extract faces first: swapdeck extract VIDEO -f NAME",
            )
        return names, False

    def _load_inputs(self) -> tuple[list[str], list[MaskData], list[MaskData], list[str]]:
        names, given = self._input_names()
        used: list[str] = []
        train: list[MaskData] = []
        held: list[MaskData] = []
        skipped: list[str] = []
        self.geometries: dict[str, CropGeometry] = {}
        first: CropGeometry | None = None
        for name in names:
            geometry = faceset_geometry(self.workspace, name) if self._exists(name) else None
            if first and geometry and abs(geometry.coverage - first.coverage) > 1e-6:
                if given:
                    raise BadInputError(
                        f"faceset {name} was cut at coverage {geometry.coverage}, "
                        f"{used[0]} at {first.coverage}: one mask learns one crop geometry",
                        "give facesets extracted with the same --coverage",
                    )
                skipped.append(f"{name} (coverage {geometry.coverage})")
                continue
            try:
                data = load_faceset(self.workspace, name, self.size)
            except SwapdeckError as exc:
                if given:
                    raise
                skipped.append(f"{name} ({exc.message})")
                continue
            first = first or geometry
            if geometry is not None:
                self.geometries[name] = geometry
            kept, out = split_held_out(data)
            used.append(name)
            train.append(kept)
            held.append(out)
        if not train:
            raise BadInputError(
                "no faceset of this workspace can train an occlusion mask: " + "; ".join(skipped),
                f"extract {MIN_FACES} or more faces at {self.size} px or more into one",
            )
        return used, train, held, skipped

    def _exists(self, name: str) -> bool:
        return (self.workspace.faceset_dir(name) / "faceset.sqlite").is_file()

    def load_data(self, device: torch.device) -> dict[str, Any]:
        s: Any = self.settings
        # A new model (no geometry recorded yet) must start from a usable model; a
        # resumed one loads its own checkpoint, so the model it started from may be gone.
        fresh = not s.geometry
        try:
            self.start_path = self._start_from()
        except SwapdeckError:
            if fresh:
                raise
        used, train, held, skipped = self._load_inputs()
        self.data = MaskData.join(train)
        if self.batch_size > len(self.data):
            raise BadInputError(
                f"batch size {self.batch_size} is larger than the {len(self.data)} training faces",
                f"use --batch-size {len(self.data)} or less, or add faces",
            )
        self.held = MaskData.join(held)
        # Preview rows: held-out faces of each faceset in turn.
        per = max(1, _PREVIEW_ROWS // len(held))
        starts = np.cumsum([0] + [len(h) for h in held[:-1]])
        rows = [
            start + k
            for start, h in zip(starts, held, strict=True)
            for k in range(min(per, len(h)))
        ]
        self.preview_rows = np.array(rows[:_PREVIEW_ROWS])
        self.input_names = used
        self.bank = synth.texture_bank(
            self.data.faces,
            self.data.targets,  # a label, where there is one, says where skin is better still
            self.data.anchors,
            np.random.default_rng(s.seed),
        )
        return {
            "facesets": ",".join(used),
            "faces": len(self.data),
            "held_out": len(self.held),
            "labelled": int(self.data.labelled.sum()),
            "textures": len(self.bank.scenes),
            "skin_patches": len(self.bank.skin),
            **({"start_from": s.start_from} if self.start_path else {}),
            **({"skipped": "; ".join(skipped)} if skipped else {}),
        }

    def _start_from(self) -> Path | None:
        """The checkpoint of the model named by `start_from`, checked to fit this one."""
        s: Any = self.settings
        if not s.start_from:
            return None
        name = s.start_from
        other: Any
        other, paths = trained_occlusion(self.workspace, name, " to start from")
        if (other.size, other.width) != (s.size, s.width):
            raise BadInputError(
                f"occlusion model {name} is {other.size} px, width {other.width}; this one "
                f"is {s.size} px, width {s.width}: its weights do not fit",
                f"create this model with preset {other.preset}, --size {other.size} "
                f"and width {other.width}",
            )
        return paths.checkpoint

    def geometry(self) -> dict[str, CropGeometry]:
        # Keyed by faceset name: occlusion_for finds the masks that cover a faceset.
        return dict(self.geometries)

    @property
    def examples_per_step(self) -> int:
        return self.batch_size

    # ---- networks -----------------------------------------------------------------------

    def build(self) -> nn.Module:
        s: Any = self.settings
        net = MaskNet(s.size, s.width)
        if self.start_path is not None:  # fine-tuning; a resumed run loads over it
            load_checkpoint(self.start_path, net, None)
        return net

    def optimizers(self, networks: nn.Module) -> dict[str, torch.optim.Optimizer]:
        s: Any = self.settings
        # Segmentation trains well with plain Adam betas, not the autoencoder's 0.5.
        return {"main": make_optimizer(networks, s.lr, betas=(0.9, 0.999))}

    # ---- one step -----------------------------------------------------------------------

    def _indices(self, generator: torch.Generator, device: torch.device) -> np.ndarray:
        """Rows of a batch. When faces hold imported labels, a quarter of every batch is
        drawn from those: a user's few labelled faces are worth more than their share."""
        n = self.batch_size
        idx = torch.randint(len(self.data), (n,), generator=generator, device=device)
        idx = idx.cpu().numpy()
        labelled = np.flatnonzero(self.data.labelled)
        if len(labelled):
            k = max(1, n // 4)
            pick = torch.randint(len(labelled), (k,), generator=generator, device=device)
            idx[:k] = labelled[pick.cpu().numpy()]
        return idx

    def _draw(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch on the device: inputs (B, 3, S, S) in [0, 1], targets (B, 1, S, S)."""
        s: Any = self.settings
        g, dev, n = ctx.generator, ctx.device, self.batch_size
        idx = self._indices(g, dev)
        flip = (torch.rand(n, generator=g, device=dev) < 0.5).cpu().numpy()
        colour = torch.rand(n, 3, generator=g, device=dev)
        # The occluders' randomness comes from the Trainer's generator too (exact resume).
        seed = int(torch.randint(0, 2**62, (1,), generator=g, device=dev).item())
        batch = _mirror(self.data.take(idx), flip)
        rng = np.random.default_rng(seed)
        x, target, _ = occluded_batch(batch, rng, self.bank, s.occluded_share)
        x = _jitter(x.to(dev).float().div_(255), colour)
        return x, target.to(dev)

    def train_step(self, ctx: StepContext) -> StepResult:
        x, target = self._draw(ctx)
        if ctx.hook is not None:
            batch = {"inputs": x, "targets": target}
            ctx.hook(ctx.step, batch)
            x = batch["inputs"]
        if ctx.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with ctx.autocast():
            logits = ctx.forward(x)
        loss, iou = mask_loss(logits, target)
        ctx.optimize(loss, self.optims["main"], self.networks.parameters())
        value = float(loss.detach())
        return StepResult(value, {"loss_mask": value, "iou": float(iou)})

    # ---- held-out faces -----------------------------------------------------------------

    def held_out_batch(self, seed: int, rows: np.ndarray | None = None):
        """Held-out faces, every one occluded by occluders drawn from `seed`: inputs
        (N, 3, S, S) uint8 and targets (N, 1, S, S) float32, on the CPU."""
        data = self.held if rows is None else self.held.take(rows)
        x, target, _ = occluded_batch(data, np.random.default_rng(seed), self.bank, 1.0)
        return x, target

    @torch.no_grad()
    def held_out_iou(self, networks: nn.Module | None, seed: int = 0, repeats: int = 2) -> float:
        """The mask's IoU on the held-out faces under occluders it never saw (`repeats`
        draws of them). With `networks` None: the IoU of the faces' own targets (hull or
        label) taken as the mask, i.e. of a mask blind to occluders, for comparison."""
        logits, targets = [], []
        for k in range(repeats):
            x, target = self.held_out_batch(seed * 1000 + k)
            targets.append(target)
            if networks is None:  # logits of +-1 where the uncovered target says face
                blind = torch.from_numpy(self.held.targets >= 128)[:, None].float()
                logits.append(blind * 2 - 1)
                continue
            device = next(networks.parameters()).device
            was_training = networks.training
            networks.eval()
            try:
                logits.append(networks(x.to(device).float().div_(255)).float().cpu())
            finally:
                networks.train(was_training)
        return float(mask_iou(torch.cat(logits), torch.cat(targets)))

    # ---- preview ------------------------------------------------------------------------

    @torch.no_grad()
    def preview(self, networks: nn.Module, path: Path) -> Path:
        """Rows: held-out faces under a fixed synthetic occluder. Columns: input | the
        predicted mask over it (what it takes for not-face tinted red) | the target."""
        device = next(networks.parameters()).device
        x, target = self.held_out_batch(_PREVIEW_SEED, self.preview_rows)
        x = x.to(device).float().div_(255)
        was_training = networks.training
        networks.eval()
        try:
            prob = torch.sigmoid(networks(x).float())
        finally:
            networks.train(was_training)
        red = torch.tensor([1.0, 0.1, 0.1], device=device).view(1, 3, 1, 1)
        overlay = x * prob + (0.35 * x + 0.65 * red) * (1 - prob)
        shown = target.to(device).expand_as(x)
        rows = [torch.cat([x[i], overlay[i], shown[i]], dim=2) for i in range(len(x))]
        grid = torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy()
        rgb = (grid * 255 + 0.5).astype(np.uint8)
        if x.shape[-1] < 128:  # small faces shown twice as large
            rgb = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        return save_png(rgb, path)
