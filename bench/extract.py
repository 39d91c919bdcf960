"""Extract benchmark: the full pipeline against the detector alone, in one run.

    python bench/extract.py [--clip sample_data/clip_a.mp4] [--repeat 1]

Prints frames/s of (1) the detector alone on already-decoded frames, in one
thread, as the pipeline runs it, and (2) the full extract (decode, detect,
landmarks, tracking, align, embed, write PNGs, commit) into a fresh workspace:
end to end, model loading included, and in steady state (between the first
and the last progress event, where a long video spends its time). Then their
ratio (target >= 0.8) and how busy the cores were during the full run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from engine.results import ExtractResult


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def detector_alone(clip: Path) -> tuple[int, float]:
    from engine.faces.backends.dlib_backend import DlibBackend
    from engine.media.video import VideoReader

    backend = DlibBackend(min_face=80)
    frames = [rgb for _, rgb in VideoReader(clip)]
    start = time.perf_counter()
    for rgb in frames:
        backend.detect(rgb)
    return len(frames), time.perf_counter() - start


def full_extract(clip: Path) -> tuple[ExtractResult, float, float, float]:
    from engine.config import ExtractConfig, build
    from engine.events import Progress
    from engine.extract import extract
    from engine.workspace import Workspace

    marks: list[tuple[float, int]] = []

    def sink(event: object) -> None:
        if isinstance(event, Progress):
            marks.append((time.perf_counter(), event.done))

    with tempfile.TemporaryDirectory() as tmp:
        config = build(ExtractConfig, sources=[clip], faceset="bench", backend="dlib")
        cpu0, start = _cpu_seconds(), time.perf_counter()
        result = extract(config, Workspace(tmp), sink)
        wall = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu0
    (t0, n0), (t1, n1) = marks[1], marks[-1]
    steady = (n1 - n0) / (t1 - t0)
    return result, wall, cpu, steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "sample_data" / "clip_a.mp4")
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    frames, det_s = detector_alone(args.clip)
    det_fps = frames / det_s
    result, wall, cpu, steady = full_extract(args.clip)
    full_fps = result.frames / wall
    print(f"clip: {args.clip.name}, {frames} frames, {cores} cores")
    print(f"detector alone (dlib HOG, 1 thread): {det_fps:.2f} frames/s")
    print(
        f"full extract, end to end: {full_fps:.2f} frames/s "
        f"({result.faces} faces, {result.tracked} tracked, {wall:.1f} s with model loading)"
    )
    print(f"full extract, steady state: {steady:.2f} frames/s")
    print(f"cores busy during full extract: {cpu / wall:.2f} of {cores}")
    print(f"ratio end to end / detector: {full_fps / det_fps:.2f}")
    print(f"ratio steady state / detector: {steady / det_fps:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
