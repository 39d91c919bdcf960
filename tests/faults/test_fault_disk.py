"""Disk full in the middle of train, extract and convert: one clear error, nothing lost.

The disk is filled with RLIMIT_FSIZE in the child process: past the limit every
write fails with EFBIG, as on a full disk with ENOSPC (SIGXFSZ is ignored so the
write fails instead of killing the process). Each time the command must end with
one `error:` line and exit code 5, and what was there before (checkpoint,
metrics, preview, faceset, the previous output) must still load, unchanged;
a later run with room must carry on from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import pytest
from clips import info, short_clip
from cliutil import SAMPLE, assert_process_fails, swapdeck, swapdeck_process
from faultutil import copy_workspace, small_disk, temp_files

from engine.errors import ExitCode
from engine.train.checkpoint import read_info

pytestmark = pytest.mark.report("disk-full runs with nothing lost")


@pytest.fixture
def ws(sample_workspace, tiny_model, tmp_path) -> Path:
    return copy_workspace(sample_workspace.root, tmp_path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _steps(metrics: Path) -> list[int]:
    return [json.loads(line)["step"] for line in metrics.read_text().splitlines()]


def _pad(metrics: Path) -> None:
    """Make the history long (a key readers ignore), as after weeks of training."""
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.write_text("".join(json.dumps({**r, "note": "x" * 8000}) + "\n" for r in lines))


@pytest.mark.slow
def test_train_on_a_full_disk_keeps_checkpoint_metrics_and_preview(ws, record_property):
    model = ws / "models" / "tiny"
    checkpoint, preview = model / "checkpoint.safetensors", model / "previews" / "latest.png"
    metrics = model / "metrics.jsonl"
    step, logged = read_info(checkpoint)["step"], _steps(metrics)
    train = ["train", "-w", ws, "-m", "tiny", "--steps", str(step + 100), "--log-every", "1"]
    # The disk fills while a preview is written; in the next run while a checkpoint is;
    # in the last while the metrics history is cut back to the checkpoint at start-up.
    trials = [
        ("cannot write a preview", preview, ["--preview-every", "1", "--save-every", "1000"]),
        ("cannot write checkpoint", checkpoint, ["--preview-every", "1000", "--save-every", "2"]),
        ("metrics.jsonl", metrics, ["--preview-every", "1000", "--save-every", "1000"]),
    ]
    record_property("tried", len(trials))
    record_property("ok", 0)
    for ok, (needle, victim, flags) in enumerate(trials, 1):
        if victim == metrics:
            _pad(metrics)  # longer than the limit below, which sqlite's 32 KB files fit
        kept = {p: _sha(p) for p in (checkpoint, preview, metrics)}
        limit = victim.stat().st_size // 2
        done = swapdeck_process(*train, *flags, preexec_fn=small_disk(limit))
        assert_process_fails(done, ExitCode.WORKSPACE, needle, "free disk space")
        assert read_info(checkpoint)["step"] == step
        changed = [p.name for p in kept if _sha(p) != kept[p]]
        assert changed == (["metrics.jsonl"] if victim != metrics else []), changed
        assert cv2.imread(str(preview)) is not None
        assert not temp_files(model), "a half-written file was left behind"
        record_property("ok", ok)

    # With room again, training goes on from the checkpoint; the steps logged after it
    # by the failed runs are not counted twice.
    done = swapdeck_process(*train[:5], "--steps", str(step + 3), "--log-every", "1", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    started = json.loads(done.stdout.splitlines()[0])
    assert started["type"] == "started" and started["detail"]["start_step"] == step
    assert _steps(metrics) == [*logged, step + 1, step + 2, step + 3]
    assert read_info(checkpoint)["step"] == step + 3
    assert _sha(preview) != kept[preview] and cv2.imread(str(preview)) is not None


def _faces(ws: Path) -> dict[str, str]:
    """`faceset show --json` works, and every row has its file: PNG name -> hash."""
    shown = swapdeck("faceset", "show", "a", "-w", ws, "--json")
    assert shown.exit_code == 0, shown.output
    files = {p.name: _sha(p) for p in (ws / "facesets" / "a" / "faces").glob("*.png")}
    assert json.loads(shown.stdout)["faces"] == len(files)
    return files


@pytest.mark.slow
def test_extract_on_a_full_disk_keeps_the_faceset(ws):
    before = _faces(ws)
    extract = ["extract", SAMPLE / "clip_a.mp4", "-w", ws, "-f", "a", "--backend", "dlib"]
    extract += ["--every", "10"]
    # Room for a few faces (about 100 KB each), not for the manifest's growth.
    done = swapdeck_process(*extract, preexec_fn=small_disk(200_000))
    assert_process_fails(done, ExitCode.WORKSPACE, "cannot write", "free disk space")
    after = _faces(ws)
    assert after.items() >= before.items(), "faces that were there before were lost"
    assert not temp_files(ws / "facesets")

    done = swapdeck_process(*extract)
    assert done.returncode == 0, done.stderr[-2000:]
    final = _faces(ws)
    assert final.items() >= after.items() and len(final) > len(after)


@pytest.mark.slow
def test_convert_on_a_full_disk_keeps_the_previous_output(ws, tmp_path):
    clip = short_clip(tmp_path / "clip.mp4", 1.0)
    out = tmp_path / "out" / "swapped.mp4"
    out.parent.mkdir()
    convert = ["convert", clip, "-w", ws, "-m", "tiny", "-o", out, "--backend", "dlib"]
    first = swapdeck(*convert)
    assert first.exit_code == 0, first.output
    before, frames = _sha(out), info(out)["frames"]

    done = swapdeck_process(
        *convert, "--overwrite", "--color", "none", preexec_fn=small_disk(out.stat().st_size // 2)
    )
    assert_process_fails(done, ExitCode.WORKSPACE, "disk full", "free disk space")
    assert _sha(out) == before  # the previous output, byte for byte
    assert info(out)["frames"] == frames == info(clip)["frames"]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left
