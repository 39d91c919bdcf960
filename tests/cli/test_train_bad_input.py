"""`swapdeck train` given bad input: one clear line, its exit code, nothing damaged."""

from __future__ import annotations

import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cliutil import assert_fails, swapdeck
from typer.testing import CliRunner

from engine.cli import app
from engine.config import ExtractConfig, build
from engine.errors import ExitCode
from engine.extract import extract
from engine.train.checkpoint import read_info
from engine.workspace import Workspace

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
SWAPDECK = str(Path(sys.executable).with_name("swapdeck"))
runner = CliRunner()
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def ws(sample_workspace, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_bad") / "ws"
    shutil.copytree(sample_workspace.root, root)
    workspace = Workspace(root)
    few = sorted((SAMPLE / "a").glob("*.jpg"))[:5]
    extract(build(ExtractConfig, sources=few, faceset="few", backend="dlib"), workspace)
    extract(
        build(ExtractConfig, sources=[SAMPLE / "b"], faceset="small", backend="dlib", size=64),
        workspace,
    )
    # A trained model to damage and to contradict.
    result = runner.invoke(
        app,
        [
            "train",
            "-w",
            str(root),
            "-m",
            "good",
            "-a",
            "a",
            "-b",
            "b",
            "--preset",
            "tiny",
            "--batch-size",
            "4",
            "--steps",
            "4",
            "--snapshot-every",
            "2",
            "--save-every",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    return root


def fails(code: int, *args: str, needle: str) -> str:
    return assert_fails(swapdeck("train", *args), code, needle)


def test_missing_faceset(ws):
    fails(
        ExitCode.NOT_FOUND,
        "-w",
        str(ws),
        "-m",
        "x",
        "-a",
        "nosuch",
        "-b",
        "b",
        needle="no faceset 'nosuch'",
    )


def test_too_few_faces(ws):
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "x",
        "-a",
        "few",
        "-b",
        "b",
        needle="needs at least 25",
    )


def test_same_faceset_twice(ws):
    fails(ExitCode.BAD_INPUT, "-w", str(ws), "-m", "x", "-a", "a", "-b", "a", needle="same faceset")


def test_faceset_smaller_than_the_model(ws):
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "x",
        "-a",
        "a",
        "-b",
        "small",
        "--preset",
        "tiny",
        "--size",
        "128",
        needle="smaller than the model's 128 px",
    )


def test_batch_larger_than_faceset(ws):
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "x2",
        "-a",
        "a",
        "-b",
        "b",
        "--batch-size",
        "500",
        needle="larger than faceset",
    )


def test_new_model_needs_both_facesets(ws):
    fails(ExitCode.BAD_INPUT, "-w", str(ws), "-m", "fresh", "-a", "a", needle="needs -b")


def test_flag_contradicting_the_model_is_refused(ws):
    before = (ws / "models" / "good" / "model.toml").read_text()
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "good",
        "--batch-size",
        "8",
        needle="was created with batch-size 4",
    )
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "good",
        "--preset",
        "hd",
        needle="was created with preset tiny",
    )
    assert (ws / "models" / "good" / "model.toml").read_text() == before


def test_bad_model_name_and_bad_values(ws):
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "../up",
        "-a",
        "a",
        "-b",
        "b",
        needle="not a plain name",
    )
    fails(
        ExitCode.BAD_INPUT,
        "-w",
        str(ws),
        "-m",
        "x3",
        "-a",
        "a",
        "-b",
        "b",
        "--preset",
        "hd",
        "--size",
        "100",
        needle="hd models take size",
    )


def test_corrupt_checkpoint_is_refused_and_points_to_snapshots(ws, tmp_path):
    model = tmp_path / "ws"
    shutil.copytree(ws, model)
    ckpt = model / "models" / "good" / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    line = fails(
        ExitCode.CORRUPT, "-w", str(model), "-m", "good", "--steps", "6", needle="checkpoint"
    )
    assert "snapshots" in line and "step_00000004" in line
    assert ckpt.stat().st_size == 1000  # refused, not overwritten


@pytest.mark.slow
def test_full_disk_keeps_the_previous_checkpoint(ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(ws, root)
    ckpt = root / "models" / "good" / "checkpoint.safetensors"
    before = read_info(ckpt)["step"]
    limit = ckpt.stat().st_size // 2

    def small_disk() -> None:
        # Writes past the limit fail with EFBIG, as on a full disk (SIGXFSZ ignored).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [SWAPDECK, "train", "-w", str(root), "-m", "good", "--steps", str(before + 2)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_disk,
    )
    assert result.returncode == ExitCode.WORKSPACE, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write checkpoint" in _ANSI.sub("", result.stderr)
    assert read_info(ckpt)["step"] == before
    assert not list(ckpt.parent.glob(".*.tmp"))
