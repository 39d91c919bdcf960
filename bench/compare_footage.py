"""`swapdeck compare` on real footage: the recipe, in code, of the comparison in the notes.

    .venv/bin/python bench/compare_footage.py [--budget 5m] [--models tiny,original,hd:liae]
        [--workspace DIR] [--device auto]

Extracts faceset `d6` (every 3rd frame of ../shared/footage/talk_d6.mp4, a woman pulling
faces) and `d3` (every 2nd frame of talk_d3.mp4, another woman talking), cuts the first
6 s of talk_d6 (with its sound) as the clip, and compares the models on it with the
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

import av

ROOT = Path(__file__).resolve().parent.parent
FOOTAGE = ROOT.parent / "shared" / "footage"
SWAPDECK = [sys.executable, "-m", "engine.cli"]


def first_seconds(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` of `src`: video re-encoded (H.264), audio packets copied."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
        vout.pix_fmt = "yuv420p"
        aout = out.add_stream_from_template(ain)
        for packet in inp.demux(vin, ain):
            if packet.pts is None:
                continue
            if packet.stream is ain:
                if float(packet.pts * packet.time_base) < seconds:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if frame.time is not None and frame.time < seconds:
                    frame.pict_type = av.video.frame.PictureType.NONE
                    for p in vout.encode(frame):
                        out.mux(p)
        for p in vout.encode():
            out.mux(p)
    return dst


def run(*args: str) -> None:
    subprocess.run([*SWAPDECK, *args], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--models", default="tiny,original,hd:liae")
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "footage")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    ws = args.workspace.absolute()
    ws.mkdir(parents=True, exist_ok=True)
    for name, every in (("d6", 3), ("d3", 2)):
        source = FOOTAGE / f"talk_{name}.mp4"
        run("extract", str(source), "-w", str(ws), "-f", name, "--every", str(every),
            "--backend", "dlib")  # fmt: skip
    clip = ws / "talk_d6_6s.mp4"
    if not clip.exists():
        first_seconds(FOOTAGE / "talk_d6.mp4", clip, 6.0)
    report = ws / "compares" / "footage"
    run("compare", "-w", str(ws), "-a", "d6", "-b", "d3", "--models", args.models,
        "--clip", str(clip), "--budget", args.budget, "-o", str(report),
        "--backend", "dlib", "--device", args.device)  # fmt: skip


if __name__ == "__main__":
    main()
