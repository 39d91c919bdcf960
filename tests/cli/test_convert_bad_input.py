"""`swapdeck convert` given bad input: one clear line, its exit code, nothing damaged."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from clips import info, read_frames, short_clip, write_clip
from cliutil import SWAPDECK, assert_fails, swapdeck
from typer.testing import Result

from engine.errors import ExitCode


@pytest.fixture(scope="module")
def ws(sample_workspace, tiny_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("convert_bad") / "ws"
    shutil.copytree(sample_workspace.root, root)
    return root


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 1.0)


def convert(ws: Path, src: Path, out: Path, *args: str | Path, model: str = "tiny") -> Result:
    return swapdeck("convert", src, "-w", ws, "-m", model, "-o", out, "--backend", "dlib", *args)


def test_no_such_model(ws: Path, clip: Path, tmp_path: Path) -> None:
    assert_fails(convert(ws, clip, tmp_path / "o.mp4", model="nope"), ExitCode.NOT_FOUND, "nope")
    assert not (tmp_path / "o.mp4").exists()


def test_untrained_model(ws: Path, clip: Path, tmp_path: Path) -> None:
    folder = ws / "models" / "untrained"
    folder.mkdir(exist_ok=True)
    shutil.copy(ws / "models" / "tiny" / "model.toml", folder / "model.toml")
    assert_fails(
        convert(ws, clip, tmp_path / "o.mp4", model="untrained"),
        ExitCode.BAD_INPUT,
        "not been trained",
    )


def test_model_whose_size_does_not_match_its_weights(ws: Path, clip: Path, tmp_path: Path) -> None:
    folder = ws / "models" / "resized"
    shutil.copytree(ws / "models" / "tiny", folder, dirs_exist_ok=True)
    toml = (folder / "model.toml").read_text()
    (folder / "model.toml").write_text(re.sub(r"size = 64", "size = 96", toml))
    checkpoint = (folder / "checkpoint.safetensors").read_bytes()
    assert_fails(
        convert(ws, clip, tmp_path / "o.mp4", model="resized"), ExitCode.CORRUPT, "do not fit"
    )
    assert (folder / "checkpoint.safetensors").read_bytes() == checkpoint


def test_input_without_video_stream(ws: Path, tmp_path: Path) -> None:
    audio_only = tmp_path / "voice.m4a"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    assert_fails(convert(ws, audio_only, tmp_path / "o.mp4"), ExitCode.BAD_INPUT, "no video")


def test_missing_input(ws: Path, tmp_path: Path) -> None:
    assert_fails(
        convert(ws, tmp_path / "gone.mp4", tmp_path / "o.mp4"), ExitCode.NOT_FOUND, "gone.mp4"
    )


def test_output_exists_is_refused_without_overwrite(ws: Path, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"precious")
    assert_fails(convert(ws, clip, out), ExitCode.BAD_INPUT, "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"


def test_output_folder_missing(ws: Path, clip: Path, tmp_path: Path) -> None:
    assert_fails(
        convert(ws, clip, tmp_path / "no" / "such" / "o.mp4"), ExitCode.BAD_INPUT, "does not exist"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_output_folder_unwritable(ws: Path, clip: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_fails(convert(ws, clip, locked / "o.mp4"), ExitCode.WORKSPACE, "cannot write")
    finally:
        locked.chmod(0o700)


def test_unknown_output_format(ws: Path, clip: Path, tmp_path: Path) -> None:
    assert_fails(convert(ws, clip, tmp_path / "o.xyz"), ExitCode.BAD_INPUT, "o.xyz")


def test_video_without_faces_is_written_marked_but_is_no_success(ws: Path, tmp_path: Path) -> None:
    ramp = np.linspace(0, 255, 160, dtype=np.uint8)
    frames = [np.dstack([np.tile(ramp, (96, 1))] * 3).copy() for _ in range(10)]
    src = write_clip(tmp_path / "empty.mp4", frames)
    out = tmp_path / "out.mp4"
    result = convert(ws, src, out, "--json")
    assert_fails(result, ExitCode.NO_FACES, "no face was swapped in 10 frames", "10 without a face")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert not any(e["type"] == "finished" for e in events)
    assert events[-1]["type"] == "failed" and events[-1]["exit_code"] == ExitCode.NO_FACES
    assert info(out)["frames"] == 10  # written all the same, marked
    diff = np.abs(np.stack(read_frames(src)).astype(int) - np.stack(read_frames(out))).mean()
    assert diff < 3.0


@pytest.mark.slow
def test_kill_mid_convert_leaves_nothing_at_output(ws: Path, tmp_path: Path) -> None:
    src = short_clip(tmp_path / "long.mp4", 8.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "swapped.mp4"
    proc = subprocess.Popen(
        [
            SWAPDECK,
            "convert",
            str(src),
            "-w",
            str(ws),
            "-m",
            "tiny",
            "-o",
            str(out),
            "--backend",
            "dlib",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until frames are being written
            event = json.loads(line)
            if event["type"] == "progress" and event["done"] >= 24:
                break
        time.sleep(0.2)
        assert any(out_dir.iterdir()), "the temporary output should exist by now"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert all(p.name.startswith(".") for p in out_dir.iterdir())
