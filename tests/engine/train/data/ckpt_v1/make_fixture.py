"""How checkpoint.safetensors here was made, by the trainer before model families (987bba7).

Run from the repository root with that commit checked out:
    python tests/engine/train/data/ckpt_v1/make_fixture.py /tmp/fixture_ws
It trains a small tiny model 4 steps in fp32, keeps its model.toml and checkpoint, then
resumes it to step 8 and records the losses that resume reached in expected.json.
"""

import json
import shutil
import sys
from pathlib import Path

from engine.config import ExtractConfig, RunSettings, build
from engine.extract import extract
from engine.train.loop import train
from engine.workspace import Workspace

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[3] / "sample_data"
REQUESTED = {
    "preset": "tiny",
    "faceset_a": "a",
    "faceset_b": "b",
    "seed": 3,
    "size": 32,
    "enc_dims": 8,
    "dec_dims": 8,
    "bottleneck": 16,
}


def run_to(step: int) -> RunSettings:
    return build(
        RunSettings,
        steps=step,
        save_every=step,
        preview_every=1000,
        snapshot_every=0,
        log_every=1,
        precision="fp32",
    )


def main() -> None:
    ws = Workspace(Path(sys.argv[1]))
    for name in ("a", "b"):
        config = build(ExtractConfig, sources=[SAMPLE / name], faceset=name, backend="dlib")
        extract(config, ws)
    train(ws, "old", REQUESTED, run_to(4))
    for f in ("model.toml", "checkpoint.safetensors"):
        shutil.copy(ws.model_dir("old") / f, HERE / f)
    result = train(ws, "old", {}, run_to(8))
    expected = {"resumed_to": 8, "loss_a": result["loss_a"], "loss_b": result["loss_b"]}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
