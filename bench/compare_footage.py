"""`swapdeck compare` on real footage: the recipe, in code, of the comparison in the notes.

    .venv/bin/python bench/compare_footage.py [--budget 5m] [--models tiny,original,hd:liae]
        [--workspace DIR] [--device auto] [--others d9,d13]

Extracts faceset `d6` (every 3rd frame of ../shared/footage/talk_d6.mp4, a woman pulling
faces) and `d3` (every 2nd frame of talk_d3.mp4, another woman talking), and the
`--others` (every 2nd frame of talk_<name>.mp4: more people, which fast-swap models
take as inputs beside A; the autoencoders use A and B only), cuts the first 6 s of
talk_d6 (with its sound) as the clip, and compares the models on it with the
same budget each: report.md, losses.png and sheet.png in WORKSPACE/compares/footage.
Rerunning resumes (extraction finds nothing new; models at their budget are not
trained again). compare prints the results table and where the report is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from clips import short_clip  # noqa: E402  (the tests' clip cutter: video re-encoded, audio kept)

FOOTAGE = ROOT.parent / "shared" / "footage"
SWAPDECK = [sys.executable, "-m", "engine.cli"]


def run(*args: str) -> None:
    subprocess.run([*SWAPDECK, *args], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--models", default="tiny,original,hd:liae")
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "footage")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--others", default="d9,d13", help="more people, for fast-swap's inputs")
    args = parser.parse_args()
    ws = args.workspace.absolute()
    ws.mkdir(parents=True, exist_ok=True)
    others = [(name, 2) for name in args.others.split(",") if name]
    for name, every in (("d6", 3), ("d3", 2), *others):
        source = FOOTAGE / f"talk_{name}.mp4"
        run("extract", str(source), "-w", str(ws), "-f", name, "--every", str(every),
            "--backend", "dlib")  # fmt: skip
    clip = ws / "talk_d6_6s.mp4"
    if not clip.exists():
        short_clip(clip, 6.0, FOOTAGE / "talk_d6.mp4")
    report = ws / "compares" / "footage"
    run("compare", "-w", str(ws), "-a", "d6", "-b", "d3", "--models", args.models,
        "--clip", str(clip), "--budget", args.budget, "-o", str(report),
        "--backend", "dlib", "--device", args.device)  # fmt: skip


if __name__ == "__main__":
    main()
