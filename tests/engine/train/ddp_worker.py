"""Run under torchrun by test_ddp.py: train a few steps, then write this rank's weights."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from engine.config import RunSettings, build
from engine.train.loop import Trainer
from engine.workspace import Workspace


def main() -> None:
    ws, out = Workspace(sys.argv[1]), Path(sys.argv[2])
    requested = {"faceset_a": "a", "faceset_b": "b", "preset": "tiny", "batch_size": 4}
    run = build(RunSettings, steps=6, save_every=3, preview_every=100, log_every=2, device="cpu")
    trainer = Trainer(ws, "ddp", requested, run)
    trainer.fit()
    digest = hashlib.sha256()
    for name, tensor in sorted(trainer.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    rank = os.environ["RANK"]
    (out / f"rank{rank}.txt").write_text(f"{trainer.info.world_size} {digest.hexdigest()}\n")
    torch.set_num_threads(1)


if __name__ == "__main__":
    main()
