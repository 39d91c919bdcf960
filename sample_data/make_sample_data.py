"""Build swapdeck's sample data from real footage of two people.

Identity ``a`` is the woman of ``talk_d6.mp4`` (exaggerated expressions, head tilts, with
sound) and identity ``b`` the man with glasses of ``talk_d13.mp4`` (talking, phone camera),
both from ``../shared/footage``: LivePortrait's example assets, MIT licensed.  The script
takes 64 stills of each, spread over their videos, and cuts a short clip of ``a`` with her
audio track from a stretch of ``talk_d6.mp4`` that none of her stills come from, so the demo
converts frames the model has never trained on.

Nothing is random and every encoder runs single-threaded, so reruns write the same files::

    python sample_data/make_sample_data.py [--footage DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import dlib
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
FOOTAGE = HERE.parent.parent / "shared" / "footage"  # beside the checkout
LICENSE = "LICENSE-LivePortrait.txt"

N_STILLS = 64  # per identity
JPEG_QUALITY = 90
MIN_HIT_RATE = 0.95  # HOG must find exactly one face in at least this share


@dataclass(frozen=True)
class Person:
    """Where one identity comes from and how its frames are cut and scaled."""

    name: str
    video: str
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in source pixels: head and shoulders
    size: tuple[int, int]  # width, height after scaling the crop


# talk_d6: 480x480, 30 fps, 1008 frames; the face box is 215-258 px wide, 172-206 px here.
A = Person("a", "talk_d6.mp4", (0, 0, 480, 480), (384, 384))
# talk_d13: 720x1280 portrait; a 3:4 head-and-shoulders crop, face 372-446 -> 186-223 px.
B = Person("b", "talk_d13.mp4", (0, 180, 720, 1140), (360, 480))

# The clip of a: frames [CLIP_START, CLIP_START + CLIP_FRAMES) of talk_d6, 6 s at 30 fps,
# the last stretch of the video, where she talks and tilts her head furthest.
CLIP_START = 828
CLIP_FRAMES = 180
CLIP_FPS = 30
# a's stills stay this many frames (1 s) clear of the clip, so none is a near-copy of a
# frame the demo converts.
CLIP_MARGIN = 30
AUDIO_RATE = 44_100
# Where a frame shows a spurious second face, the nearest of these neighbours stands in.
NEIGHBOURS = [0] + [s * d for d in range(1, 16) for s in (1, -1)]  # up to 0.5 s away
AAC_FRAME = 1024  # samples per AAC frame


# --------------------------------------------------------------------------- footage


def footage_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise SystemExit(
            f"{path} is missing: this script builds sample_data/ from the real footage in "
            f"../shared/footage beside the checkout (LivePortrait's example assets); "
            f"pass --footage DIR if it lies elsewhere"
        )
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def cut(person: Person, rgb: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = person.crop
    return cv2.resize(rgb[y0:y1, x0:x1], person.size, interpolation=cv2.INTER_AREA)


def jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def as_saved(rgb: np.ndarray) -> np.ndarray:
    """The image as it reads back from its JPEG file."""
    return np.asarray(Image.open(io.BytesIO(jpeg(rgb))).convert("RGB"))


def spread(candidates: list[int], count: int) -> list[int]:
    """Positions in `candidates` of `count` frames evenly spread over them."""
    if len(candidates) < count:
        raise SystemExit(f"only {len(candidates)} frames to take {count} stills from")
    return [int(i) for i in np.linspace(0, len(candidates) - 1, count).round()]


def still_frames(person: Person, frames: list[np.ndarray], detector) -> list[int]:
    """Frames spread over the video (for a, outside the clip), each with exactly one face.

    Where HOG also boxes something else in a frame (a grimace can look like a second face),
    the nearest neighbouring frame with one face stands in for it: a still with a spurious
    face would put a garbage crop into every faceset made from sample_data.
    """
    candidates = list(range(len(frames)))
    if person is A:
        lo, hi = CLIP_START - CLIP_MARGIN, CLIP_START + CLIP_FRAMES + CLIP_MARGIN
        candidates = [i for i in candidates if not lo <= i < hi]
    chosen = []
    for pos in spread(candidates, N_STILLS):
        for step in NEIGHBOURS:
            index = candidates[min(max(pos + step, 0), len(candidates) - 1)]
            if len(face_widths(detector, as_saved(cut(person, frames[index])))) == 1:
                break
        else:
            index = candidates[pos]  # check_stills reports it
        if index != candidates[pos]:
            print(f"  {person.name}: not one face in frame {candidates[pos]}; took {index}")
        chosen.append(index)
    return chosen


# --------------------------------------------------------------------------- dlib


def models_dir() -> Path:
    # Importing face_recognition_models pulls in pkg_resources; locating it is enough.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise SystemExit("face_recognition_models is not installed")
    return Path(spec.origin).parent / "models"


def face_widths(detector: dlib.fhog_object_detector, rgb: np.ndarray) -> list[int]:
    return [r.width() for r in detector(np.ascontiguousarray(rgb), 0)]


def report_faces(what: str, widths: list[list[int]]) -> float:
    """Print how often HOG (upsample 0) finds exactly one face; return that share."""
    n = len(widths)
    exact = sum(len(w) == 1 for w in widths)
    found = [x for w in widths for x in w]
    span = f", face box {min(found)}-{max(found)} px wide" if found else ""
    print(f"  {what}: exactly one face in {exact}/{n} ({100 * exact / n:.0f}%){span}")
    return exact / n


# --------------------------------------------------------------------------- stills


def write_stills(person: Person, frames: list[np.ndarray], detector) -> list[Path]:
    folder = HERE / person.name
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("*.jpg"):
        stale.unlink()
    written = []
    for i, index in enumerate(still_frames(person, frames, detector)):
        path = folder / f"{person.name}_{i:03d}.jpg"
        path.write_bytes(jpeg(cut(person, frames[index])))
        written.append(path)
    return written


def check_stills(person: Person, written: list[Path], detector) -> float:
    widths = [face_widths(detector, np.asarray(Image.open(p).convert("RGB"))) for p in written]
    return report_faces(f"stills {person.name}", widths)


# --------------------------------------------------------------------------- clip


def read_audio(path: Path, first: int, count: int) -> np.ndarray:
    """Samples [first, first + count) of the video's audio, planar float stereo at 44.1 kHz."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(c.to_ndarray() for c in resampler.resample(frame))
    chunks.extend(c.to_ndarray() for c in resampler.resample(None))
    samples = np.concatenate(chunks, axis=1)[:, first : first + count]
    if samples.shape[1] != count:
        raise SystemExit(f"the source audio ends early: {samples.shape[1]} of {count} samples")
    return np.ascontiguousarray(samples)


def write_clip(path: Path, person: Person, frames: list[np.ndarray], source: Path) -> None:
    """The clip's frames re-encoded (H.264) with the same stretch of the source's audio (AAC)."""
    per_frame = AUDIO_RATE / CLIP_FPS
    audio = read_audio(source, round(CLIP_START * per_frame), round(CLIP_FRAMES * per_frame))
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=CLIP_FPS)
        video.width, video.height = person.size
        video.pix_fmt = "yuv420p"
        # One thread: x264's output then depends on nothing but its input and settings.
        video.options = {"crf": "23", "preset": "medium", "threads": "1"}
        voice = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        voice.bit_rate = 128_000
        sent = 0

        def send_audio(until: int) -> None:
            # Interleave: encode the audio up to the current video time, 1024 samples a frame.
            nonlocal sent
            while sent < min(until, audio.shape[1]):
                chunk = np.ascontiguousarray(audio[:, sent : sent + AAC_FRAME])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = AUDIO_RATE
                frame.pts = sent
                frame.time_base = Fraction(1, AUDIO_RATE)
                container.mux(voice.encode(frame))
                sent += chunk.shape[1]

        for i, rgb in enumerate(frames[CLIP_START : CLIP_START + CLIP_FRAMES]):
            frame = av.VideoFrame.from_ndarray(cut(person, rgb), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, CLIP_FPS)
            container.mux(video.encode(frame))
            send_audio(round((i + 1) * per_frame))
        send_audio(audio.shape[1])
        container.mux(video.encode(None))  # flush both encoders before the trailer
        container.mux(voice.encode(None))


def check_clip(path: Path, detector) -> float:
    """Reopen the clip, check its streams and return the share of frames with one face."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = list(container.streams.audio)
        duration = container.duration / av.time_base if container.duration else float("nan")
        fps = video.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        loudness = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)])
    seconds = CLIP_FRAMES / CLIP_FPS
    h, w = frames[0].shape[:2]
    a = audio[0] if audio else None
    print(
        f"  clip: {len(frames)} frames, {fps} fps, {w}x{h}, duration {duration:.3f} s,"
        f" {len(audio)} audio stream"
        + (f" ({a.codec_context.name}, {a.layout.name}, {a.rate} Hz)" if a else "")
        + f", audio RMS {float(np.sqrt((loudness**2).mean())):.3f}"
    )
    ok = len(frames) == CLIP_FRAMES and fps == CLIP_FPS and len(audio) == 1
    if not ok or abs(duration - seconds) > 0.1 or loudness.std() < 0.01:
        raise SystemExit("clip check failed: wrong frame count, rate, duration or streams")
    return report_faces("clip", [face_widths(detector, f) for f in frames])


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--footage", type=Path, default=FOOTAGE, help="the real footage folder")
    folder = parser.parse_args().footage
    start = time.perf_counter()

    def stage(text: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f} s] {text}")

    licence = footage_file(folder, LICENSE)
    sources = {p.name: footage_file(folder, p.video) for p in (A, B)}
    for p in (A, B):
        stage(f"{p.name} from {p.video} (sha256 {sha256(sources[p.name])[:16]}...)")
    shutil.copyfile(licence, HERE / LICENSE)

    detector = dlib.get_frontal_face_detector()
    failures = []
    clip = HERE / "clip_a.mp4"
    for person in (A, B):
        frames = read_frames(sources[person.name])
        written = write_stills(person, frames, detector)
        stage(f"stills {person.name}: {len(written)} of {len(frames)} frames -> {person.name}/")
        if check_stills(person, written, detector) < MIN_HIT_RATE:
            failures.append(f"stills {person.name}")
        if person is A:
            write_clip(clip, person, frames, sources[person.name])
            stage(f"clip: {clip.name} written, {clip.stat().st_size / 1e6:.2f} MB")
            if check_clip(clip, detector) < MIN_HIT_RATE:
                failures.append("clip")
    outputs = [*HERE.glob("[ab]/*.jpg"), clip]
    total = sum(p.stat().st_size for p in outputs)
    stage(f"done: {len(outputs)} files, {total / 1e6:.2f} MB")
    if failures:
        raise SystemExit(f"one face in under {MIN_HIT_RATE:.0%} of: {', '.join(failures)}")


if __name__ == "__main__":
    main()
