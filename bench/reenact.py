"""Reenact benchmark: frames/s against decode + encode alone, and memory against length.

    .venv/bin/python bench/reenact.py [--seconds 0.5] [--loops 5] [--batch 8]
        [--device auto] [--json PATH]

Writes a vox-256 model (the authors' 256-px network, 59.8 M parameters) with random
weights into a throw-away workspace (nothing is downloaded: the time a network takes
does not depend on its weights), cuts the first SECONDS of ../shared/footage/talk_d3.mp4
(with its sound) and measures, in this one run:
  1. decode + encode alone: the clip through the reader and writer reenact uses (frames
     at the model's 256 px, the same H.264 settings, audio copied), frames/s;
  2. reenact of portrait_s0.jpg by the clip, in a fresh process: frames/s end to end
     (model loading, planning the shots, cutting, keypoints, animating, watermarking,
     encoding) and of the animate pass alone, each against (1);
  3. peak resident memory (VmHWM) of that process and of reenact by the clip LOOPS times
     over (concatenated with PyAV), each in a fresh process: their ratio shows whether
     memory grows with the video's length (flat: about 1).
The CPU (model name, torch's threads, its bf16 instructions), the device and the
precision reenact runs in are printed first. On two CPU cores the defaults take a few
minutes (vox-256 animates about a frame a second there); --seconds 2 for a longer clip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))

from benchutil import cpu_description, looped, peak_rss_kb  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "footage"


def precision(device: str) -> str:
    # What engine.train.families.fomm.inference does: autocast on CUDA only.
    if device.startswith("cuda"):
        return "fp16 autocast (keypoints and warps kept fp32)"
    return "fp32 (reenact autocasts on CUDA only: bf16 is not used on a CPU)"


def make_model(ws_root: Path) -> tuple[str, float]:
    """A vox-256 model with random weights, saved as training saves one."""
    from engine.train.checkpoint import save_checkpoint
    from engine.train.families.fomm.networks import build_networks
    from engine.train.store import ModelPaths, create_model, new_settings
    from engine.workspace import Workspace

    ws = Workspace(ws_root)
    ws.ensure()
    settings = new_settings({"preset": "vox-256"})
    paths = ModelPaths(ws.model_dir("vox"))
    create_model(settings, paths)
    networks = build_networks(settings)
    save_checkpoint(paths.checkpoint, networks, {}, {}, {"step": 0})
    return "vox", sum(p.numel() for p in networks.parameters()) / 1e6


def decode_encode(clip: Path, size: int, out: Path) -> dict[str, float]:
    """The clip decoded, each frame brought to size x size, encoded as reenact's writer does."""
    import dataclasses

    import cv2

    from engine.convert.video_io import VideoOutput, decode, open_input

    start = time.perf_counter()
    video = open_input(clip, None, None)
    output = VideoOutput(out, "mp4", dataclasses.replace(video, width=size, height=size))
    frames = 0
    for frame in decode(video):
        small = cv2.resize(frame.rgb, (size, size), interpolation=cv2.INTER_AREA)
        output.write(small, frame.pts)
        frames += 1
    output.close()
    return {"frames": frames, "seconds": time.perf_counter() - start}


def child(ws: Path, model: str, driving: Path, portrait: Path, out: Path, opts: str) -> None:
    """One reenact in this (fresh) process: its timings and peak memory as a JSON line."""
    from engine.config import ReenactConfig, build
    from engine.events import Finished, Progress, Started
    from engine.reenact.run import reenact
    from engine.workspace import Workspace

    options = json.loads(opts)
    marks: dict[str, float] = {}

    def sink(event: Any) -> None:
        now = time.perf_counter()
        if isinstance(event, Started):
            marks["started"] = now
            marks["device"] = event.detail.get("device")  # type: ignore[assignment]
        elif isinstance(event, Progress) and event.stage == "plan":
            marks["planned"] = now
        elif isinstance(event, Finished):
            marks["finished"] = now

    config = build(
        ReenactConfig,
        source=portrait,
        driving=driving,
        output=out,
        model=model,
        overwrite=True,
        backend="dlib",
        **options,
    )
    start = time.perf_counter()
    result = reenact(config, Workspace(ws), sink)
    seconds = time.perf_counter() - start
    peak = peak_rss_kb()
    print(
        json.dumps(
            {
                "frames": result.frames,
                "seconds": seconds,
                "load_s": marks["started"] - start,
                "plan_s": marks["planned"] - marks["started"],
                "animate_s": marks["finished"] - marks["planned"],
                "device": marks["device"],
                "peak_kb": peak,
            }
        )
    )


def reenact_in_child(
    ws: Path, model: str, driving: Path, portrait: Path, out: Path, options: dict[str, Any]
) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", str(ws), model, str(driving), str(portrait)]
    done = subprocess.run(
        [*args, str(out), json.dumps(options)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"reenact failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]),
              Path(sys.argv[6]), sys.argv[7])  # fmt: skip
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="of talk_d3 (30 fps)")
    parser.add_argument("--loops", type=int, default=5, help="the long clip: the clip N times")
    parser.add_argument("--batch", type=int, default=8, help="frames animated per batch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--driving", type=Path, default=FOOTAGE / "talk_d3.mp4")
    parser.add_argument("--portrait", type=Path, default=FOOTAGE / "portrait_s0.jpg")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from clips import short_clip  # the tests' cutter: video re-encoded, audio kept

    options = {"batch_size": args.batch, "device": args.device}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, millions = make_model(tmp / "ws")
        clip = short_clip(tmp / "clip.mp4", args.seconds, args.driving)
        plain = decode_encode(clip, 256, tmp / "plain.mp4")
        one = reenact_in_child(tmp / "ws", model, clip, args.portrait, tmp / "one.mp4", options)
        long_clip = looped(clip, args.loops, tmp / "looped.mp4", crf="18")
        many = reenact_in_child(
            tmp / "ws", model, long_clip, args.portrait, tmp / "many.mp4", options
        )
    base = plain["frames"] / plain["seconds"]
    end_to_end = one["frames"] / one["seconds"]
    animate = one["frames"] / one["animate_s"]
    figures = {
        "cpu": cpu_description(),
        "device": one["device"],
        "precision": precision(one["device"]),
        "model": f"vox-256, {millions:.1f} M parameters, random weights",
        "clip": f"{args.driving.name}, first {args.seconds:g} s ({one['frames']} frames)",
        "portrait": args.portrait.name,
        "batch": args.batch,
        "decode_encode_fps": base,
        "reenact_fps": end_to_end,
        "reenact_animate_fps": animate,
        "one": one,
        "many": many,
        "loops": args.loops,
        "memory_ratio": many["peak_kb"] / one["peak_kb"],
    }
    print(f"cpu: {figures['cpu']}")
    print(f"device: {one['device']}; precision: {figures['precision']}")
    print(f"model: {figures['model']}; batch {args.batch}")
    print(f"clip: {figures['clip']}, portrait {args.portrait.name}")
    print(f"{'case':34s} {'frames':>6s} {'seconds':>8s} {'frames/s':>9s} {'vs dec+enc':>10s}")
    rows = [
        ("decode + encode alone (256 px)", plain["frames"], plain["seconds"]),
        ("reenact, end to end", one["frames"], one["seconds"]),
        ("  of which model load + portrait", None, one["load_s"]),
        ("  of which planning the shots", None, one["plan_s"]),
        ("  of which the animate pass", one["frames"], one["animate_s"]),
    ]
    for label, frames, seconds in rows:
        if frames is None:
            print(f"{label:34s} {'':>6s} {seconds:8.2f}")
            continue
        rate = frames / seconds
        print(f"{label:34s} {frames:6d} {seconds:8.2f} {rate:9.2f} {rate / base:10.3f}")
    print(
        f"peak RSS: clip x1 ({one['frames']} frames) {one['peak_kb'] / 1024:.0f} MiB; "
        f"x{args.loops} ({many['frames']} frames) {many['peak_kb'] / 1024:.0f} MiB; "
        f"ratio {figures['memory_ratio']:.2f} (flat: about 1)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
