"""Occlusion masks on real footage: what convert paints over a hand and a microphone.

    .venv/bin/python bench/occlusion.py [--workspace DIR] [--frames 60]
        [--swap-budget 120] [--occ-budget 300] [--tune-budget 90]

Real footage has no hand in front of a face in these clips, so one is composited, with
its exact pixel mask: ../shared/footage/talk_d6.mp4 (a woman pulling faces), from
frame 300, gets a skin-toned hand sliding over her mouth and cheek in the first half
and a microphone held under her mouth in the second. Then, in one run:

  1. extract facesets d6 (A), d3 (B), d9 and d13 (more people) with dlib;
  2. train `tiny` A to B for --swap-budget seconds, a generic `occlusion-small` model
     on every faceset for --occ-budget s, and fine-tune it on d6 for --tune-budget s;
  3. convert the frames (as PNGs: compared exactly) with --mask hull, with the
     generic occlusion model and with the fine-tuned one, and print, per mask: the
     share of the occluder's pixels that the hull convert painted and this mask left
     untouched (bit-exact), the share of the face's own visible pixels it still swapped,
     and convert frames/s of the same frames as an H.264 video.

Rerunning reuses the workspace (extraction finds nothing new; models at their budget
are not trained again unless --retrain).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchutil import cpu_description  # noqa: E402
from clips import read_frames, write_clip  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "footage"
SWAPDECK = [sys.executable, "-m", "engine.cli"]
SKIN = np.array([205, 150, 120], np.float32)  # RGB
MIC_DARK = np.array([38, 38, 42], np.float32)


def run(*args: str, quiet: bool = False) -> list[dict]:
    """Run swapdeck with --json; its event lines, parsed."""
    done = subprocess.run(
        [*SWAPDECK, *args, "--json"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"swapdeck {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if not quiet:
        print(f"  swapdeck {args[0]} {args[1] if len(args) > 1 else ''}: done", flush=True)
    return events


def finished(events: list[dict]) -> dict:
    return next(e for e in reversed(events) if e.get("type") == "finished")["result"]


# ---- the occluded clip -------------------------------------------------------------------


def _shade(mask: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour layer: base colour, lit from the upper left, with a little texture."""
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.25 * ((xx / w) + (yy / h))
    noise = cv2.GaussianBlur(rng.normal(0, 8, (h, w)).astype(np.float32), (0, 0), 1.5)
    return np.clip(base[None, None] * light[..., None] + noise[..., None], 0, 255)


def _hand(shape: tuple[int, int], face: np.ndarray, t: float) -> np.ndarray:
    """The hand's mask (uint8 0/255): palm below the cheek, fingers over the mouth."""
    mask = np.zeros(shape, np.uint8)
    size = float(np.ptp(face[:, 0]))
    mouth = face[48:68].mean(axis=0)
    # In from the right over the first third, resting, out over the last third.
    x = mouth[0] + size * (0.2 + 1.3 * (1 - t))
    palm = (round(x), round(mouth[1] + 0.25 * size))
    cv2.ellipse(mask, palm, (round(0.32 * size), round(0.26 * size)), -20, 0, 360, 255, -1)
    for k in range(4):
        y0 = round(mouth[1] + (-0.12 + 0.11 * k) * size)
        tip = (round(palm[0] - (0.62 - 0.05 * abs(k - 1.5)) * size), y0 - round(0.06 * size))
        cv2.line(mask, (palm[0], y0), tip, 255, max(3, round(0.085 * size)), cv2.LINE_AA)
    return mask


def _microphone(shape: tuple[int, int], face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The microphone's mask and its mesh (darker dots on its head)."""
    mask = np.zeros(shape, np.uint8)
    size = float(np.ptp(face[:, 0]))
    chin = face[8]
    head = (round(chin[0] - 0.1 * size), round(chin[1] - 0.08 * size))
    radius = round(0.2 * size)
    cv2.line(mask, head, (head[0] + round(0.25 * size), shape[0]), 255, round(0.14 * size))
    cv2.circle(mask, head, radius, 255, -1, cv2.LINE_AA)
    mesh = np.zeros(shape, np.uint8)
    step = max(2, radius // 5)
    for dy in range(-radius, radius + 1, step):
        cv2.line(mesh, (head[0] - radius, head[1] + dy), (head[0] + radius, head[1] + dy), 255, 1)
    return mask, cv2.bitwise_and(mesh, mask)


def occluded_frames(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of talk_d6 with a hand, then a microphone, in front of the face; and each
    frame's occluder mask (bool)."""
    from engine.faces.finder import FaceFinder

    frames = read_frames(FOOTAGE / "talk_d6.mp4", 300 + count)[300:]
    finder = FaceFinder("dlib", device="cpu")
    rng = np.random.default_rng(0)
    out, masks = [], []
    landmarks = None
    for i, frame in enumerate(frames):
        faces = finder.find(frame, video=True)
        landmarks = faces[0].landmarks if faces else landmarks
        if landmarks is None:
            raise SystemExit(f"no face in frame {300 + i} of talk_d6")
        half = count // 2
        if i < half:
            t = min(i / (half / 3), 1.0, max(0.0, (half - 1 - i) / (half / 3)))
            mask = _hand(frame.shape[:2], landmarks, t)
            layer = _shade(mask, SKIN, rng)
        else:
            mask, mesh = _microphone(frame.shape[:2], landmarks)
            layer = _shade(mask, MIC_DARK, rng)
            layer[mesh > 0] *= 0.5
        soft = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] / 255
        mixed = frame.astype(np.float32) * (1 - soft) + layer * soft
        out.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
        masks.append(mask > 127)
    return out, masks


# ---- measuring ---------------------------------------------------------------------------


# Every output carries the invisible watermark: a pixel counts as painted when it differs
# from the watermarked input by more than the mark's own few levels (its 8 px blocks
# change with their content, so blocks cut by the mask's edge differ a little too).
_PAINTED = 6


def _changed(marked_input: np.ndarray, after: np.ndarray) -> np.ndarray:
    diff = np.abs(marked_input.astype(np.int16) - after.astype(np.int16))
    return diff.max(axis=2) > _PAINTED


def measure(
    inputs: list[np.ndarray], occluders: list[np.ndarray], hull: Path, other: Path
) -> tuple[float, float]:
    """(share of the occluder pixels the hull convert painted that `other` left untouched,
    share of the face pixels the hull convert painted, occluder aside, that `other` swapped)."""
    from engine.provenance import mark_frame

    kept = painted = face = swapped = 0
    for i, (frame, occ) in enumerate(zip(inputs, occluders, strict=True)):
        name = f"{i:04d}.png"
        frame = mark_frame(frame)
        by_hull = _changed(frame, _read(hull / name))
        by_other = _changed(frame, _read(other / name))
        painted += int((by_hull & occ).sum())
        kept += int((by_hull & occ & ~by_other).sum())
        face += int((by_hull & ~occ).sum())
        swapped += int((by_hull & ~occ & by_other).sum())
    return kept / max(painted, 1), swapped / max(face, 1)


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"convert wrote no {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ---- the run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "occlusion")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--swap-budget", type=float, default=120)
    parser.add_argument("--occ-budget", type=float, default=300)
    parser.add_argument("--tune-budget", type=float, default=90)
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    ws = args.workspace.absolute()
    ws.mkdir(parents=True, exist_ok=True)
    w = ["-w", str(ws)]
    print(f"CPU: {cpu_description()}; convert runs fp32 on the CPU", flush=True)
    for name, every in (("d6", 3), ("d3", 2), ("d9", 4), ("d13", 4)):
        run("extract", str(FOOTAGE / f"talk_{name}.mp4"), *w, "-f", name, "--every", str(every),
            "--backend", "dlib")  # fmt: skip
    trainings = (
        ("swap", args.swap_budget, ["--preset", "tiny", "-a", "d6", "-b", "d3"]),
        ("occ-all", args.occ_budget, ["--preset", "occlusion-small"]),
        ("occ-d6", args.tune_budget,
         ["--preset", "occlusion-small", "--inputs", "d6", "--set", "start_from=occ-all"]),
    )  # fmt: skip
    for name, budget, extra in trainings:
        if args.retrain or not (ws / "models" / name / "checkpoint.safetensors").exists():
            result = finished(run("train", *w, "-m", name, *extra, "--steps", "1000000",
                                  "--time-limit", str(budget), "--no-resume"))  # fmt: skip
            losses = {k: round(v, 4) for k, v in result.items() if k.startswith("loss_") and v}
            print(f"    {name}: {result['steps']} steps in {result['seconds']:.0f} s, {losses}")

    frames, occluders = occluded_frames(args.frames)
    clip_dir = ws / "occluded"
    shutil.rmtree(clip_dir, ignore_errors=True)
    clip_dir.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(clip_dir / f"{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    video = ws / "occluded.mp4"
    write_clip(video, frames, rate=25)
    share = float(np.mean([m.mean() for m in occluders]))
    print(f"  clip: {len(frames)} frames of talk_d6 (from frame 300), occluder {share:.1%} of "
          f"each frame; hand in frames 0-{args.frames // 2 - 1}, microphone after")  # fmt: skip

    occlusion = ["--mask", "occlusion", "--mask-model"]
    masks = (
        ("hull", ["--mask", "hull"]),
        ("occlusion (generic)", [*occlusion, "occ-all"]),
        ("occlusion (fine-tuned)", [*occlusion, "occ-d6"]),
    )
    outputs, fps = {}, {}
    for label, flags in masks:
        out = ws / "converted" / label.split()[-1].strip("()")
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(exist_ok=True)
        run("convert", str(clip_dir), "-o", str(out), *w, "-m", "swap", *flags, "--backend", "dlib",
            quiet=True)  # fmt: skip
        outputs[label] = out
        clip_out = ws / "converted" / f"{out.name}.mp4"
        result = finished(run("convert", str(video), "-o", str(clip_out), *w, "-m", "swap", *flags,
                              "--backend", "dlib", "--overwrite", quiet=True))  # fmt: skip
        fps[label] = result["frames_per_s"]

    print(
        "\n| mask | occluder pixels hull painted, left untouched | visible face pixels "
        "hull painted, still swapped | convert frames/s (video) |"
    )
    print("|---|---|---|---|")
    for label, _ in masks:
        kept, swapped = measure(frames, occluders, outputs["hull"], outputs[label])
        print(f"| {label} | {kept:.1%} | {swapped:.1%} | {fps[label]:.2f} |")
    sheet = contact_sheet(frames, occluders, [outputs[label] for label, _ in masks])
    cv2.imwrite(str(ws / "occlusion_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"\nsheet (input, then each mask's output; a hand frame and a microphone frame): "
          f"{ws / 'occlusion_sheet.png'}")  # fmt: skip


def contact_sheet(
    frames: list[np.ndarray], occluders: list[np.ndarray], outputs: list[Path]
) -> np.ndarray:
    """Rows: a frame with the hand at rest and one with the microphone; columns: the
    input, then each mask's output, cut around the occluder and the face."""
    rows = []
    for i in (len(frames) // 4, 3 * len(frames) // 4):
        ys, xs = np.nonzero(occluders[i])
        cx, cy = int(xs.mean()), int(ys.mean())
        half = max(int(np.ptp(xs)), int(np.ptp(ys)), 80)
        box = (slice(max(0, cy - half), cy + half), slice(max(0, cx - half), cx + half))
        tiles = [frames[i][box]] + [_read(out / f"{i:04d}.png")[box] for out in outputs]
        rows.append(np.concatenate([cv2.resize(t, (256, 256)) for t in tiles], axis=1))
    return np.concatenate(rows, axis=0)


if __name__ == "__main__":
    main()
