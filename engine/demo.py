"""The main job on the bundled sample data: the whole pipeline, start to end.

Extract identity a and identity b from sample_data/ into facesets `a` and
`b`, train the `tiny` model for a bounded time, convert the sample clip of A
into B, check the output carries its watermark, and score the swap. A rerun
resumes: extraction finds nothing new, training goes on from its checkpoint
for another stint, and the clip is converted again with the better model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.config import ConvertConfig, ExtractConfig, RunSettings, build
from engine.convert import convert
from engine.errors import NotFoundError
from engine.events import CancelToken, Finished, Info, Sink, null_sink
from engine.extract import extract
from engine.provenance import verify
from engine.results import ConvertResult, DemoResult, ExtractResult
from engine.score import score
from engine.train.loop import train
from engine.workspace import DIR_MODE, Workspace, atomic_write_text

MODEL = "demo"
CLIP = "clip_a.mp4"
# Training time on any machine: on 2 CPU cores the whole demo stays under 10 minutes;
# a GPU spends the same time training many more steps.
TRAIN_MINUTES = 6.0
_STEP_CAP = 1_000_000  # time, not steps, ends the demo's training


def default_sample_data() -> Path:
    return Path(__file__).resolve().parent.parent / "sample_data"


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise NotFoundError(
            f"sample data {what} {path} is missing",
            "run from a swapdeck checkout, or pass --sample-data",
        )
    return path


def run_demo(
    workspace: Workspace,
    sample_data: Path | None = None,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
    train_minutes: float = TRAIN_MINUTES,
) -> DemoResult:
    """Run extract, train, convert, verify and score; returns what each stage reported."""
    started = time.monotonic()
    cancel = cancel or CancelToken()
    sample_data = sample_data or default_sample_data()
    clip = _need(sample_data / CLIP, "clip")
    extracted: dict[str, ExtractResult] = {}
    for name in ("a", "b"):
        folder = _need(sample_data / name, "folder")
        config = build(ExtractConfig, sources=[folder], faceset=name, backend="dlib")
        extracted[name] = extract(config, workspace, sink, cancel)

    sink(Info(message=f"training model {MODEL} (tiny) for {train_minutes:g} minutes"))
    run = build(
        RunSettings,
        steps=_STEP_CAP,
        time_limit=train_minutes * 60,
        save_every=500,
        preview_every=250,
        snapshot_every=0,
    )
    requested = {"preset": "tiny", "faceset_a": "a", "faceset_b": "b"}
    if workspace.model_dir(MODEL).exists():
        requested = {}  # go on training the demo model as it was created
    trained = train(workspace, MODEL, requested, run, sink, cancel)

    outputs = workspace.outputs_dir
    outputs.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    swapped = outputs / "demo_swapped.mp4"
    config = build(
        ConvertConfig,
        input=clip,
        output=swapped,
        model=MODEL,
        overwrite=True,
        backend="dlib",
    )
    converted = convert(config, workspace, sink, cancel)
    assert isinstance(converted, ConvertResult)  # no preview_frames: a whole conversion
    checked = verify(swapped)
    scored = score(workspace, MODEL, [(clip, swapped)], backend="dlib", sink=sink, cancel=cancel)
    scores = outputs / "demo_scores.json"
    atomic_write_text(scores, json.dumps(scored.model_dump(mode="json"), indent=2) + "\n")
    result = DemoResult(
        workspace=str(workspace.root),
        a=extracted["a"],
        b=extracted["b"],
        train=trained,
        convert=converted,
        verify=checked,
        score=scored,
        output=str(swapped),
        scores=str(scores),
        preview=str(workspace.model_dir(MODEL) / "previews" / "latest.png"),
        seconds=round(time.monotonic() - started, 1),
    )
    sink(Finished(stage="demo", result=result.model_dump(mode="json")))
    return result
