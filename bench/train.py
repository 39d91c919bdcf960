"""Training benchmark: each preset's full step against the same network's plain step.

    python bench/train.py [--steps 6] [--skip-hd] [--batch-64] [--skip-fast-swap]

Per preset it times two steps of the same network, built from the same seed, on the
same synthetic faces and batch, in one run:

- full: the real training step the trainer runs, the autoencoder family's
  (device augmentation, shared encoder over A and B, the full masked SSIM +
  pixel + eye/mouth (+ mask) loss, backward, clipping, Adam), in the precision
  the trainer picks here (bf16 on CPUs with bf16 instructions, else fp32);
- plain: fp32, no augmentation, an L1 loss only, the same Adam, backward, step.

It prints both in examples/s and full/plain (the full step's examples/s over the
plain step's): both sides measured on this machine in this run, never a figure
carried over from another one. The two steps take turns, one step each, and the
median step time counts, so other work on a shared machine slows both alike and a
stall does not count. The CPU (model, threads torch uses, whether it has avx2,
avx512f, avx512_bf16, amx_bf16) and the precision are printed first.

fast-swap (the paper's network at 128 px, batch 8 input faces: its full step adds
VGG-19 to relu4_2 over input and output, the pose-matched patch style loss against
16 cached B photos, the light and TV losses) is timed against its transformation
network trained plainly the same way. VGG-19 has random weights here: speed only.

`original` runs at batch 16 per side, and also at 64 with --batch-64 (left out by
default: it takes longer than the rest together). At batch 16 it also counts the
full step's FLOPs with torch.utils.flop_counter and divides its FLOP/s by a dense
matmul's in the same precision, measured in the same run: the model FLOP
utilisation. Last line: `MFU <ratio>` for `original`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchutil import cpu_description  # noqa: E402

from engine.train.allocator import keep_freed_memory  # noqa: E402
from engine.train.data import FaceData  # noqa: E402
from engine.train.families.autoencoder import FAMILY  # noqa: E402
from engine.train.families.autoencoder.family import AutoencoderFamily  # noqa: E402
from engine.train.family import StepContext  # noqa: E402
from engine.train.loop import _precision, make_optimizer  # noqa: E402
from engine.train.models import build_model  # noqa: E402
from engine.train.models.base import ArchSpec  # noqa: E402
from engine.train.registry import settings_model  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

POOL = 64  # synthetic faces each step draws its batches from
WARMUP = 2  # untimed steps of each kind first (oneDNN primitives, allocator)
PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class TimedStep(Protocol):
    """One training step of `examples` faces (`batch` per side for the autoencoder)."""

    batch: int
    examples: int

    def __call__(self) -> None: ...


def cpu_context(family: Any, model: torch.nn.Module, dtype: torch.dtype | None) -> StepContext:
    """The StepContext the trainer hands a family's step on this CPU: seeded, no scaler."""
    return StepContext(
        step=0,
        device=torch.device("cpu"),
        dtype=dtype,
        generator=torch.Generator().manual_seed(0),
        forward=family.forward_module(model),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        grad_clip=1.0,
    )


class TrainerStep:
    """One training step exactly as the trainer runs it: the autoencoder family's own
    step (the one engine.train.loop calls), on synthetic uint8 faces."""

    def __init__(self, arch: ArchSpec, batch: int, dtype: torch.dtype | None) -> None:
        values = {**FAMILY.defaults(arch.preset), **arch.to_dict()}
        values.update(faceset_a="a", faceset_b="b", batch_size=batch, lr=5e-5)
        settings = settings_model(FAMILY.name)(**values)
        self.family = AutoencoderFamily(settings, Workspace(Path(tempfile.gettempdir())))
        s = arch.size
        faces = torch.randint(0, 256, (POOL, 3, s, s), dtype=torch.uint8)
        masks = torch.randint(0, 256, (POOL, 2, s, s), dtype=torch.uint8)
        poses = torch.zeros(POOL, 3)
        data = FaceData("synthetic", faces, masks, faces[:4], masks[:4], poses, poses[:4])
        self.family.data_a = self.family.data_b = data
        torch.manual_seed(0)
        self.model = self.family.build()
        self.family.attach(self.model, self.family.optimizers(self.model))
        self.batch = batch
        self.examples = 2 * batch
        self.ctx = cpu_context(self.family, self.model, dtype)

    def __call__(self) -> None:
        self.family.train_step(self.ctx)
        self.ctx.scaler.update()


class PlainStep:
    """The same network trained plainly: fp32, no augmentation, L1 only, the same Adam."""

    def __init__(self, arch: ArchSpec, batch: int) -> None:
        torch.manual_seed(0)
        self.model = build_model(arch)
        self.opt = make_optimizer(self.model, 5e-5)
        self.gen = torch.Generator().manual_seed(0)
        self.batch, s = batch, arch.size
        self.examples = 2 * batch
        self.faces = torch.randint(0, 256, (POOL, 3, s, s), dtype=torch.uint8).float() / 255

    def _side(self) -> torch.Tensor:
        return self.faces[torch.randint(POOL, (self.batch,), generator=self.gen)]

    def __call__(self) -> None:
        xa, xb = self._side(), self._side()
        ya, _, yb, _ = self.model.forward_pair(xa, xb)
        total = F.l1_loss(ya, xa) + F.l1_loss(yb, xb)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()


class FastSwapStep:
    """fast-swap's own training step (the one engine.train.loop calls) on synthetic faces,
    its lighting network marked trained so that step 1 is an ordinary step."""

    def __init__(self, batch: int, dtype: torch.dtype | None) -> None:
        from engine.train.families.fast_swap import FAMILY as FAST_SWAP
        from engine.train.families.fast_swap.family import VGG_TAPS, FastSwapFamily
        from engine.train.vgg import Vgg19

        values = {**FAST_SWAP.defaults("fast-swap"), "faceset_b": "b", "batch_size": batch}
        settings = settings_model(FAST_SWAP.name)(**values)
        self.family = FastSwapFamily(settings, Workspace(Path(tempfile.gettempdir())))
        s = settings.size
        faces = torch.randint(0, 256, (POOL, 3, s, s), dtype=torch.uint8)
        masks = torch.randint(0, 256, (POOL, 2, s, s), dtype=torch.uint8)
        poses = torch.rand(POOL, 3) * 60 - 30
        data = FaceData("synthetic", faces, masks, faces[:4], masks[:4], poses, poses[:4])
        torch.manual_seed(0)
        device = torch.device("cpu")
        self.family.prepare([data], data, Vgg19(VGG_TAPS), device)
        self.model = self.family.build()
        self.model.light_ready.fill_(1)
        self.family.attach(self.model, self.family.optimizers(self.model))
        self.batch = self.examples = batch
        self.ctx = cpu_context(self.family, self.model, dtype)

    def __call__(self) -> None:
        self.family.train_step(self.ctx)
        self.ctx.scaler.update()


class FastSwapPlainStep:
    """fast-swap's transformation network trained plainly: fp32, L1 to its input, Adam."""

    def __init__(self, batch: int) -> None:
        from engine.train.families.fast_swap.network import TransformNet

        torch.manual_seed(0)
        self.model = TransformNet(128, 5, 32)
        self.opt = make_optimizer(self.model, 1e-3)
        self.gen = torch.Generator().manual_seed(0)
        self.batch = self.examples = batch
        self.faces = torch.rand(POOL, 3, 128, 128)

    def __call__(self) -> None:
        x = self.faces[torch.randint(POOL, (self.batch,), generator=self.gen)]
        total = F.l1_loss(self.model(x), x)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()


def full_step(arch: ArchSpec, batch: int, dtype: torch.dtype | None) -> TimedStep:
    """The step under test; the one place that says which step swapdeck trains with."""
    return TrainerStep(arch, batch, dtype)


def examples_per_s(steps: Sequence[TimedStep], timed: int) -> list[float]:
    """examples/s of each step, taking turns one step at a time, from the median step time."""
    for step in steps:
        for _ in range(WARMUP):
            step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(timed):
        for step, spent in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            spent.append(time.perf_counter() - start)
    return [s.examples / statistics.median(t) for s, t in zip(steps, times, strict=True)]


def step_flops(step: TimedStep) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def matmul_flops_per_s(dtype: torch.dtype | None, n: int = 4096, reps: int = 10) -> float:
    a = torch.randn(n, n, dtype=dtype or torch.float32)
    b = torch.randn(n, n, dtype=dtype or torch.float32)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each kind")
    parser.add_argument("--skip-hd", action="store_true", help="leave out hd-128")
    parser.add_argument(
        "--batch-64", action="store_true", help="also original at batch 64 per side (slow)"
    )
    parser.add_argument("--skip-fast-swap", action="store_true", help="leave out fast-swap")
    args = parser.parse_args()
    dtype = _precision("auto", torch.device("cpu"))
    name = PRECISION_NAMES[dtype]
    # The trainer does this on CPU: reuse freed memory instead of page-faulting it back in.
    reuse = keep_freed_memory()
    print(f"cpu: {cpu_description()}")
    print(
        f"precision: full step {name} (the trainer's pick on this CPU), plain step fp32; "
        f"allocator reuses freed memory: {reuse}"
    )
    print(
        f"timing: median of {args.steps} steps of each kind after {WARMUP} untimed, "
        "full and plain taking turns"
    )

    matmul = matmul_flops_per_s(dtype)
    print(f"dense 4096x4096 matmul ({name}): {matmul / 1e9:.1f} GFLOP/s")
    original = ArchSpec.for_preset("original")
    rows = [("tiny", ArchSpec.for_preset("tiny"), 16), ("original", original, 16)]
    if args.batch_64:
        rows.append(("original", original, 64))
    if not args.skip_hd:
        rows.append(("hd-128 df", ArchSpec.for_preset("hd", 128), 8))
    heads = ("batch/side", f"full {name} ex/s", "plain fp32 ex/s", "full/plain")
    print(f"{'preset':10s} {heads[0]:>10s} {heads[1]:>15s} {heads[2]:>15s} {heads[3]:>10s}")
    mfu = 0.0
    for label, arch, batch in rows:
        full = full_step(arch, batch, dtype)
        full_rate, plain_rate = examples_per_s([full, PlainStep(arch, batch)], args.steps)
        line = (
            f"{label:10s} {batch:10d} {full_rate:15.2f} {plain_rate:15.2f} "
            f"{full_rate / plain_rate:9.2f}x"
        )
        if label == "original" and batch == 16:
            flops = step_flops(full)
            achieved = flops * full_rate / (2 * batch)
            mfu = achieved / matmul
            # Not spelt "MFU" here: the last line is the one a reader of the output parses.
            line += f"  utilisation {mfu:.2f} ({flops / 1e9:.1f} GFLOP/step, "
            line += f"{achieved / 1e9:.1f} GFLOP/s {name})"
        print(line)
    if not args.skip_fast_swap:
        # Its batch is input faces, not faces per side: examples/s counts each face once.
        pair = [FastSwapStep(8, dtype), FastSwapPlainStep(8)]
        full_rate, plain_rate = examples_per_s(pair, args.steps)
        print(
            f"{'fast-swap':10s} {8:10d} {full_rate:15.2f} {plain_rate:15.2f} "
            f"{full_rate / plain_rate:9.2f}x  (128 px; batch = input faces)"
        )
    print(f"MFU {mfu:.2f}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
