"""Convert benchmark: swap speed against decode+encode alone, and memory against length.

    python bench/convert.py [--train-steps 150]

Sets up a throw-away workspace (extract the sample identities, train `tiny`
briefly), then on the sample clip prints, measured in this run:
  1. decode + encode alone (no faces, no watermark): frames/s through the
     same PyAV reader and writer convert uses, audio copied;
  2. the full convert with `tiny` (find faces, smooth, swap, blend,
     watermark, encode): frames/s, and its ratio to (1);
  3. the same with fast-swap's 128 px network (`--fast-swap-preset`), its
     weights random: only its speed is measured, and one forward pass per face
     costs the same whatever the weights;
  4. peak resident memory of a convert of the clip and of the clip looped
     5 times (each in a fresh process), and their ratio (target <= 1.1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchutil import looped  # noqa: E402

CLIP = ROOT / "sample_data" / "clip_a.mp4"


def prepare(ws_root: Path, steps: int) -> None:
    from engine.config import ExtractConfig, RunSettings, build
    from engine.extract import extract
    from engine.train.loop import train
    from engine.workspace import Workspace

    ws = Workspace(ws_root)
    for name in ("a", "b"):
        extract(
            build(
                ExtractConfig, sources=[ROOT / "sample_data" / name], faceset=name, backend="dlib"
            ),
            ws,
        )
    run = build(RunSettings, steps=steps, save_every=steps, preview_every=10**6, snapshot_every=0)
    train(ws, "bench", {"preset": "tiny", "faceset_a": "a", "faceset_b": "b"}, run)


def untrained_fast_swap(ws_root: Path, name: str, preset: str) -> None:
    """A fast-swap model of random weights, as convert loads it (model.toml with the
    facesets' crop geometry, a checkpoint): training it would need VGG-19's weights and
    minutes, and speed does not depend on what the weights are."""
    from engine.train.checkpoint import save_checkpoint
    from engine.train.families.autoencoder.family import facesets_geometry
    from engine.train.registry import implementation
    from engine.train.store import ModelPaths, create_model, new_settings, with_geometry
    from engine.workspace import Workspace

    ws = Workspace(ws_root)
    settings = new_settings({"preset": preset, "faceset_a": "a", "faceset_b": "b"})
    settings = with_geometry(settings, facesets_geometry(ws, settings))
    module = implementation(settings.family).inference_module(settings)
    paths = ModelPaths(ws.model_dir(name))
    create_model(settings, paths)
    save_checkpoint(paths.checkpoint, module, {}, {}, {"step": 0})


def decode_encode(clip: Path, out: Path) -> tuple[int, float]:
    from engine.convert.video_io import VideoOutput, decode, open_input

    start = time.perf_counter()
    video = open_input(clip, None, None)
    output = VideoOutput(out, "mp4", video)
    frames = 0
    for frame in decode(video):
        output.write(frame.rgb, frame.pts)
        frames += 1
    output.close()
    return frames, time.perf_counter() - start


_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from engine.config import ConvertConfig, build
from engine.convert import convert
from engine.workspace import Workspace
start = time.perf_counter()
result = convert(build(ConvertConfig, input=Path({src!r}), output=Path({out!r}), model={model!r},
                       backend="dlib", overwrite=True), Workspace({ws!r}))
seconds = time.perf_counter() - start
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({{"frames": result.frames, "seconds": seconds, "peak_kb": peak}}))
"""


def convert_in_child(ws: Path, src: Path, out: Path, model: str = "bench") -> dict:
    code = _CHILD.format(root=str(ROOT), src=str(src), out=str(out), ws=str(ws), model=model)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--fast-swap-preset", default="fast-swap", help="'' to leave it out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ws = tmp / "ws"
        prepare(ws, args.train_steps)
        if args.fast_swap_preset:
            untrained_fast_swap(ws, "bench-fast-swap", args.fast_swap_preset)
        frames, seconds = decode_encode(CLIP, tmp / "plain.mp4")
        plain = frames / seconds
        print(f"decode+encode alone: {frames} frames, {plain:.1f} frames/s")
        one = convert_in_child(ws, CLIP, tmp / "one.mp4")
        rate = one["frames"] / one["seconds"]
        print(
            f"convert (tiny):      {one['frames']} frames, {rate:.1f} frames/s, "
            f"ratio to decode+encode {rate / plain:.2f}"
        )
        if args.fast_swap_preset:
            fast = convert_in_child(ws, CLIP, tmp / "fast.mp4", "bench-fast-swap")
            fast_rate = fast["frames"] / fast["seconds"]
            print(
                f"convert ({args.fast_swap_preset}, random weights): {fast['frames']} frames, "
                f"{fast_rate:.1f} frames/s, ratio to decode+encode {fast_rate / plain:.2f}"
            )
        long_clip = looped(CLIP, args.loops, tmp / "looped.mp4")
        many = convert_in_child(ws, long_clip, tmp / "many.mp4")
        print(
            f"peak memory, clip x1: {one['peak_kb'] / 1024:.0f} MiB; "
            f"x{args.loops} ({many['frames']} frames): {many['peak_kb'] / 1024:.0f} MiB"
        )
        print(
            f"memory ratio x{args.loops}/x1 {many['peak_kb'] / one['peak_kb']:.2f} (target <= 1.1)"
        )


if __name__ == "__main__":
    main()
