"""Training benchmark: examples/s and model FLOP utilisation, measured in one run.

    python bench/train.py [--steps 6] [--skip-hd]

For each preset it times the real training step of engine.train.loop (device
augmentation, shared encoder over A and B, the full masked SSIM + pixel +
eye/mouth (+ mask) loss, backward, clipping, Adam) on synthetic faces, in the
precision the trainer picks on this machine. For `original` at batch 16 per
side it also counts the step's FLOPs with torch.utils.flop_counter and
divides FLOP/s by the FLOP/s of a large dense matmul in the same precision,
measured in the same run. Last line: `MFU <ratio>` for `original`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.train.allocator import keep_freed_memory  # noqa: E402
from engine.train.augment import Augmenter, AugmentSpec  # noqa: E402
from engine.train.loop import _precision, make_optimizer  # noqa: E402
from engine.train.losses import LossSpec, SwapLoss  # noqa: E402
from engine.train.models import build_model  # noqa: E402
from engine.train.models.base import ArchSpec  # noqa: E402


class Step:
    """One training step exactly as the trainer runs it, on synthetic uint8 faces."""

    def __init__(self, arch: ArchSpec, batch: int, dtype: torch.dtype | None) -> None:
        torch.manual_seed(0)
        self.model = build_model(arch)
        self.opt = make_optimizer(self.model, 5e-5)
        self.aug = Augmenter(AugmentSpec(), arch.size)
        self.loss = SwapLoss(LossSpec())
        self.gen = torch.Generator().manual_seed(0)
        self.batch, self.dtype, s = batch, dtype, arch.size
        self.faces = torch.randint(0, 256, (64, 3, s, s), dtype=torch.uint8)
        self.masks = torch.randint(0, 256, (64, 2, s, s), dtype=torch.uint8)

    def __call__(self) -> None:
        idx = torch.randint(64, (self.batch,), generator=self.gen)
        in_a, tgt_a, m_a = self.aug(self.faces[idx], self.masks[idx], self.gen)
        in_b, tgt_b, m_b = self.aug(self.faces[idx], self.masks[idx], self.gen)
        with torch.autocast("cpu", dtype=self.dtype or torch.float32, enabled=bool(self.dtype)):
            ya, ma, yb, mb = self.model.forward_pair(in_a, in_b)
            total = self.loss(ya, tgt_a, m_a, ma)[0] + self.loss(yb, tgt_b, m_b, mb)[0]
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()


def examples_per_s(step: Step, steps: int) -> float:
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 2 * step.batch * steps / (time.perf_counter() - start)


def step_flops(step: Step) -> int:
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
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--skip-hd", action="store_true")
    args = parser.parse_args()
    dtype = _precision("auto", torch.device("cpu"))
    name = str(dtype).replace("torch.", "") if dtype else "fp32"
    # The trainer does this on CPU: reuse freed memory instead of page-faulting it back in.
    reuse = keep_freed_memory()
    print(
        f"device cpu, {torch.get_num_threads()} threads, precision {name}, "
        f"allocator reuses freed memory: {reuse}"
    )

    matmul = matmul_flops_per_s(dtype)
    print(f"dense 4096x4096 matmul ({name}): {matmul / 1e9:.1f} GFLOP/s")
    original = ArchSpec.for_preset("original")
    rows = [
        ("tiny", ArchSpec.for_preset("tiny"), 16),
        ("original", original, 16),
        ("original", original, 64),
    ]
    if not args.skip_hd:
        rows.append(("hd-128 df", ArchSpec.for_preset("hd", 128), 8))
    mfu = 0.0
    for label, arch, batch in rows:
        step = Step(arch, batch, dtype)
        rate = examples_per_s(step, args.steps)
        line = f"{label:10s} batch {batch:3d}/side: {rate:7.2f} examples/s"
        if label == "original" and batch == 16:
            flops = step_flops(step)
            achieved = flops * rate / (2 * batch)
            mfu = achieved / matmul
            line += f"  ({flops / 1e9:.1f} GFLOP/step, {achieved / 1e9:.1f} GFLOP/s)"
            target = 2 * 6.3
            line += f"  vs faceswap 6.3: {rate / 6.3:.2f}x (target >= 2x = {target:.1f})"
        elif label == "original":
            line += f"  vs faceswap 8.2: {rate / 8.2:.2f}x (target >= 2x = 16.4)"
        print(line)
    print(f"MFU {mfu:.2f}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
