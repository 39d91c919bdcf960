"""Real-footage benchmark: extract, convert and score on a stage-like clip built from footage.

    python bench/realworld.py [--backend auto] [--train-seconds 90] [--keep DIR]

Builds one 640x360 clip in code (tests/footage.py does the cutting) whose
shots are what users bring and sample_data/ never shows:

  A alone          woman (talk_d3), frontal, talking
  two people       A on the left, a man with glasses (talk_d9) on the right
  head turn        the man turning his head left and right (talk_d9)
  microphone       a woman (talk_d6) with a dark bar rising over mouth and chin
  small pair       A and talk_d6 shrunk into the middle of the frame (faces ~75 px)

with hard cuts between the shots and the video stream starting 0.85 s after
the audio. Then it runs, in one process:

  1. extract without --reference: per shot, the share of (frame, person) slots
     with a face (recall), faces outside any person (extra), and blink-offs
     (frames inside a shot where a person found before and after has no face);
  2. extract --reference (a photo of A from another part of her clip): how
     many kept faces are A (precision) and how many of A's slots were kept;
  3. the detector extract used, alone (one thread) on the same decoded
     frames, against extract's frames/s (and dlib's HOG alone beside it);
  4. a `tiny` model trained briefly (A from other frames of talk_d3, B from
     talk_d9), convert --reference A: per shot, frames where A was swapped and
     where A blinks back to the original, and frames where someone else changed;
     the audio duration and the video's offset from the audio in and out;
  5. score of that conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))

import cv2  # noqa: E402
import footage as F  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

W, H = 640, 360
LEAD = 0.85  # seconds of audio before the first video frame
SHOT = 30  # frames per shot (the microphone has two)
SMALL = 0.46  # the small pair's scale: face boxes about 90 px, just above --min-face 80
# A pixel differs between input and output when some channel moved this much;
# x264 at CRF 18 stays well below it, a swapped face well above it.
_DIFF_LEVEL = 40
_SWAPPED_SHARE = 0.03  # share of a person's region that must differ for "swapped"


@dataclass
class Person:
    who: str  # "A" is the one the reference photo shows
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 in output pixels


@dataclass
class Shot:
    name: str
    first: int
    frames: int
    people: list[Person]


def _small_pair_regions(scale: float) -> list[Person]:
    # small_in_frame puts the W x H pair, scaled, at x W/5, centred vertically.
    w, h = round(W * scale), round(H * scale)
    x0, y0 = W // 5, (H - h) // 2
    return [
        Person("A", (x0, y0, x0 + w // 2, y0 + h)),
        Person("d6", (x0 + w // 2, y0, x0 + w, y0 + h)),
    ]


def _letterbox(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Square frames shown whole in the middle of a W x H frame."""
    out = []
    for frame in frames:
        canvas = np.zeros((H, W, 3), np.uint8)
        canvas[:, (W - H) // 2 : (W + H) // 2] = cv2.resize(
            frame, (H, H), interpolation=cv2.INTER_AREA
        )
        out.append(canvas)
    return out


def _audience(count: int) -> list[np.ndarray]:
    """Eight small faces in two rows (about 40 px): people far away, never to be kept."""
    rows = [F.read_frames(name, 300, count) for name in ("talk_d6.mp4", "talk_d9.mp4")]
    out = []
    for i in range(count):
        canvas = np.full((H, W, 3), 70, np.uint8)
        for r, clip in enumerate(rows):
            tile = cv2.resize(clip[i], (120, 120), interpolation=cv2.INTER_AREA)
            for c in range(4):
                y, x = 40 + r * 150, 20 + c * 155
                canvas[y : y + 120, x : x + 120] = tile
        out.append(canvas)
    return out


def build_clip(path: Path) -> list[Shot]:
    """The stage clip; returns its shots with where each person is."""
    full = (0, 0, W, H)
    left, right = (0, 0, W // 2, H), (W // 2, 0, W, H)
    turning = F.closeup(F.read_frames("talk_d3.mp4", 250, 40))
    turning = [F.turn(f, 40 * i / (len(turning) - 1)) for i, f in enumerate(turning)]
    d3_hand = F.fit_all(F.read_frames("talk_d3.mp4", 120, SHOT))
    face = _face_of(d3_hand[0])
    parts = [
        ("A alone", F.fit_all(F.read_frames("talk_d3.mp4", 30, SHOT)), [Person("A", full)]),
        (
            "two people",
            F.side_by_side(
                F.read_frames("talk_d3.mp4", 90, SHOT), F.read_frames("talk_d9.mp4", 30, SHOT)
            ),
            [Person("A", left), Person("d9", right)],
        ),
        ("A turns away", _letterbox(turning), [Person("A", full)]),
        ("hand over A", F.hand(d3_hand, face), [Person("A", full)]),
        (
            "microphone",
            F.occlude(
                F.fit_all(F.read_frames("talk_d9.mp4", 290, 2 * SHOT)), (0.45, 0.62, 0.55, 1.0)
            ),
            [Person("d9", full)],
        ),
        (
            "small pair",
            F.small_in_frame(
                F.side_by_side(
                    F.read_frames("talk_d3.mp4", 150, SHOT),
                    F.read_frames("talk_d6.mp4", 150, SHOT),
                ),
                SMALL,
            ),
            _small_pair_regions(SMALL),
        ),
        ("audience", _audience(20), []),
    ]
    frames: list[np.ndarray] = []
    shots = []
    for name, shot_frames, people in parts:
        shots.append(Shot(name, len(frames), len(shot_frames), people))
        frames.extend(shot_frames)
    F.write_video(path, frames, audio_from="talk_d3.mp4", video_start=LEAD)
    return shots


def _face_of(frame: np.ndarray) -> tuple[float, float, float]:
    """(cx, cy, width) of the face dlib's detector finds, in 0..1 of the frame."""
    from engine.faces.backends.dlib_backend import DlibBackend

    box = DlibBackend().detect(frame)[0].box
    h, w = frame.shape[:2]
    return (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h, (box[2] - box[0]) / w


def _owner(shot: Shot, box: np.ndarray) -> Person | None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for person in shot.people:
        x0, y0, x1, y1 = person.region
        if x0 <= cx < x1 and y0 <= cy < y1:
            return person
    return None


def _shot_of(shots: list[Shot], frame: int) -> Shot:
    return next(s for s in shots if s.first <= frame < s.first + s.frames)


def _blinks(present: list[bool]) -> int:
    """Frames without the face between the first and the last frame with it."""
    idx = [i for i, p in enumerate(present) if p]
    return 0 if not idx else sum(1 for p in present[idx[0] : idx[-1] + 1] if not p)


def faces_per_frame(ws: Any, faceset: str) -> dict[int, list[np.ndarray]]:
    from engine.faceset import Faceset

    found: dict[int, list[np.ndarray]] = {}
    with Faceset.open(ws.faceset_dir(faceset)) as fs:
        for record in fs.faces():
            found.setdefault(record.frame, []).append(np.asarray(record.box))
    return found


def extract_table(shots: list[Shot], found: dict[int, list[np.ndarray]]) -> list[dict[str, Any]]:
    rows = []
    for shot in shots:
        slots = hits = extra = blinks = 0
        for person in shot.people:
            present = []
            for f in range(shot.first, shot.first + shot.frames):
                owners = [_owner(shot, b) for b in found.get(f, [])]
                present.append(any(o is person for o in owners))
            slots += len(present)
            hits += sum(present)
            blinks += _blinks(present)
        for f in range(shot.first, shot.first + shot.frames):
            extra += sum(1 for b in found.get(f, []) if _owner(shot, b) is None)
        recall = hits / slots if slots else "-"  # the audience: nobody to find
        rows.append({"shot": shot.name, "recall": recall, "extra": extra, "blinks": blinks})
    return rows


def reference_table(shots: list[Shot], kept: dict[int, list[np.ndarray]]) -> dict[str, Any]:
    right = wrong = a_slots = 0
    for shot in shots:
        a_slots += shot.frames * sum(p.who == "A" for p in shot.people)
        for f in range(shot.first, shot.first + shot.frames):
            for box in kept.get(f, []):
                owner = _owner(shot, box)
                if owner is not None and owner.who == "A":
                    right += 1
                else:
                    wrong += 1
    return {
        "kept": right + wrong,
        "precision": right / (right + wrong) if right + wrong else None,
        "recall_A": right / a_slots if a_slots else None,
    }


def swapped_table(shots: list[Shot], original: Path, converted: Path) -> list[dict[str, Any]]:
    from clips import read_frames

    before, after = read_frames(original), read_frames(converted)
    assert len(before) == len(after), (len(before), len(after))
    rows = []
    for shot in shots:
        a_present: list[bool] = []
        others = 0
        for f in range(shot.first, shot.first + shot.frames):
            diff = np.abs(before[f].astype(np.int16) - after[f].astype(np.int16)).max(axis=2)
            for person in shot.people:
                x0, y0, x1, y1 = person.region
                changed = float((diff[y0:y1, x0:x1] > _DIFF_LEVEL).mean()) > _SWAPPED_SHARE
                if person.who == "A":
                    a_present.append(changed)
                elif changed:
                    others += 1
        rows.append(
            {
                "shot": shot.name,
                "A_swapped": f"{sum(a_present)}/{len(a_present)}" if a_present else "-",
                "A_blinks": _blinks(a_present),
                "others_changed": others,
            }
        )
    return rows


def detector_alone(clip: Path, backend: str) -> float:
    """Frames/s of `backend`'s detector alone (one thread) on the decoded clip."""
    from engine.faces.backends import load_backend
    from engine.media.video import VideoReader

    detector = load_backend(backend)
    detector.set_min_face(80)
    frames = [rgb for _, rgb in VideoReader(clip)]
    start = time.perf_counter()
    for rgb in frames:
        detector.detect(rgb)
    return len(frames) / (time.perf_counter() - start)


def train_model(ws: Any, tmp: Path, seconds: float) -> None:
    from engine.config import ExtractConfig, RunSettings, build
    from engine.extract import extract
    from engine.train.loop import train

    sources = {
        # Frames of A the clip does not show (it shows 30-180 and 250-290).
        "a": F.fit_all(
            F.read_frames("talk_d3.mp4", 180, 70) + F.read_frames("talk_d3.mp4", 290, 64)
        ),
        "b": F.fit_all(F.read_frames("talk_d9.mp4", 400, 180)),
    }
    for name, frames in sources.items():
        clip = F.write_video(tmp / f"train_{name}.mp4", frames)
        extract(build(ExtractConfig, sources=[clip], faceset=name, backend="dlib", every=2), ws)
    run = build(
        RunSettings,
        steps=1_000_000,
        time_limit=seconds,
        save_every=10**6,
        preview_every=10**6,
        snapshot_every=0,
    )
    train(ws, "bench", {"preset": "tiny", "faceset_a": "a", "faceset_b": "b"}, run)


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    cells = [[f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--train-seconds", type=float, default=90.0)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()

    from engine.config import ConvertConfig, ExtractConfig, build
    from engine.convert import convert
    from engine.errors import SwapdeckError
    from engine.events import Progress
    from engine.extract import extract
    from engine.score import score
    from engine.workspace import Workspace

    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        clip = tmp / "stage.mp4"
        shots = build_clip(clip)
        reference = tmp / "a_reference.png"
        Image.fromarray(F.read_frames("talk_d3.mp4", 330, 1)[0]).save(reference)
        ws = Workspace(tmp / "ws")
        frames = sum(s.frames for s in shots)
        print(f"clip: {frames} frames {W}x{H}, {len(shots)} shots, video {LEAD} s after audio")
        print(f"machine: {os.cpu_count()} cores; backend asked: {args.backend}")

        config = build(ExtractConfig, sources=[clip], faceset="stage", backend=args.backend)
        marks: list[tuple[float, int]] = []

        def progress(event: object) -> None:
            if isinstance(event, Progress):
                marks.append((time.perf_counter(), event.done))

        start = time.perf_counter()
        result = extract(config, ws, progress)
        extract_fps = result.frames / (time.perf_counter() - start)
        (t0, n0), (t1, n1) = marks[1], marks[-1]
        steady_fps = (n1 - n0) / (t1 - t0)
        print(f"\nextract ({result.backend}: {result.backend_reason})")
        print(_table(extract_table(shots, faces_per_frame(ws, "stage"))))

        config = build(
            ExtractConfig,
            sources=[clip],
            faceset="stage_a",
            backend=args.backend,
            references=[reference],
        )
        try:
            extract(config, ws)
            ref = reference_table(shots, faces_per_frame(ws, "stage_a"))
        except SwapdeckError as exc:
            ref = {"error": exc.one_line()}
        print(f"\nextract --reference (photo of A): {ref}")

        used = result.backend
        det_fps = detector_alone(clip, used)
        hog_fps = det_fps if used == "dlib" else detector_alone(clip, "dlib")
        print(
            f"\nextract speed: {extract_fps:.2f} frames/s end to end (models loaded in it), "
            f"{steady_fps:.2f} in steady state; {used}'s detector alone (1 thread) "
            f"{det_fps:.2f} frames/s: ratio {steady_fps / det_fps:.2f} steady, "
            f"{extract_fps / det_fps:.2f} end to end; dlib HOG alone {hog_fps:.2f} frames/s"
        )

        train_model(ws, tmp, args.train_seconds)
        out = tmp / "stage_swapped.mp4"
        convert(
            build(
                ConvertConfig,
                input=clip,
                output=out,
                model="bench",
                references=[reference],
                backend=args.backend,
                overwrite=True,
            ),
            ws,
        )
        print("\nconvert --reference (photo of A), A -> B")
        print(_table(swapped_table(shots, clip, out)))
        starts_in, starts_out = F.stream_starts(clip), F.stream_starts(out)
        print(
            f"audio: {F.audio_seconds(clip):.3f} s in, {F.audio_seconds(out):.3f} s out; "
            f"video starts {starts_in.get('video', 0) - starts_in.get('audio', 0):.3f} s after "
            f"the audio in, {starts_out.get('video', 0) - starts_out.get('audio', 0):.3f} s out"
        )
        scored = score(ws, "bench", [(clip, out)], backend=args.backend)
        print(f"\nscore: {scored.average.model_dump()}")


if __name__ == "__main__":
    main()
