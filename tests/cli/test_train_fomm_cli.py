"""`swapdeck train --family fomm`: its flags, and its refusals in one line before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch.hub
from cliutil import SAMPLE, assert_fails, plain, swapdeck

from engine.cli.train import _rebuild_args
from engine.config import RunSettings, build
from engine.errors import ExitCode
from engine.jobs import train_command
from engine.train.store import ModelPaths, create_model, new_settings
from engine.workspace import Workspace

CLIP = SAMPLE / "clip_a.mp4"


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME without VGG-19; returns the folder its file belongs in."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _nothing_written(ws: Path, model: str) -> None:
    assert not (ws / "models" / model).exists()


def test_missing_vgg_weights_exit_7_naming_file_and_folder(tmp_path, empty_torch_home):
    ws = tmp_path / "ws"
    line = assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm", "--videos", CLIP),
        ExitCode.UNAVAILABLE,
        "vgg19-dcbb9e9d.pth",
        str(empty_torch_home),
        "--vgg-weights PATH",
    )
    assert "VGG-19" in line
    _nothing_written(ws, "f")
    assert_fails(
        swapdeck(
            "train", "-w", ws, "-m", "f", "--family", "fomm", "--videos", CLIP,
            "--vgg-weights", tmp_path / "nowhere.pth",
        ),
        ExitCode.UNAVAILABLE,
        f"VGG-19 weights not found at {tmp_path / 'nowhere.pth'}",
    )  # fmt: skip
    _nothing_written(ws, "f")


def test_no_videos_is_one_line(tmp_path, empty_torch_home):
    ws = tmp_path / "ws"
    # Said before the missing VGG-19 file: the first thing to fix.
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm"),
        ExitCode.BAD_INPUT,
        "fomm trains on videos: give --videos PATH",
    )
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    shutil.copy(next((SAMPLE / "a").glob("*.jpg")), pictures)
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--preset", "fomm-small", "--videos", pictures),
        ExitCode.BAD_INPUT,
        "holds no videos, only images",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm", "--videos", tmp_path / "x.mp4"),
        ExitCode.NOT_FOUND,
        "does not exist",
    )
    _nothing_written(ws, "f")


def test_flags_of_another_family_are_refused(tmp_path):
    ws = tmp_path / "ws"
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm", "-a", "a", "--videos", CLIP),
        ExitCode.BAD_INPUT,
        "fomm models have no option faceset-a",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm", "--layout", "liae"),
        ExitCode.BAD_INPUT,
        "fomm models have no option layout",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "s", "-a", "a", "-b", "b", "--videos", CLIP),
        ExitCode.BAD_INPUT,
        "autoencoder models have no option videos",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm", "--preset", "tiny"),
        ExitCode.BAD_INPUT,
        "preset tiny belongs to autoencoder, not fomm",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "nosuch"),
        ExitCode.BAD_INPUT,
        "unknown model family 'nosuch'",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fomm", "--size", "200"),
        ExitCode.BAD_INPUT,
        "vox-256 models take size exactly 256",
    )
    # Hourglass blocks that cannot halve the frame evenly are refused before any work.
    assert_fails(
        swapdeck(
            "train", "-w", ws, "-m", "f", "--preset", "fomm-small", "--videos", CLIP,
            "--set", "kp-num-blocks=6",
        ),
        ExitCode.BAD_INPUT,
        "size 64 at scale factor 0.5 gives 32 px, which 6 hourglass blocks cannot halve",
    )  # fmt: skip


def test_family_of_an_existing_model_must_match(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    settings = new_settings({"preset": "tiny", "faceset_a": "a", "faceset_b": "b"})
    create_model(settings, ModelPaths(workspace.model_dir("swap")))
    assert_fails(
        swapdeck("train", "-w", workspace.root, "-m", "swap", "--family", "fomm"),
        ExitCode.BAD_INPUT,
        "model swap is of family autoencoder, not fomm",
    )


def test_help_names_the_family_and_its_flags():
    result = swapdeck("train", "--help")
    assert result.exit_code == 0
    text = " ".join(plain(result.output).split())
    for needle in ("--family", "--videos", "--vgg-weights", "fomm", "Family fomm", "fomm-small"):
        assert needle in text, needle


def test_detached_and_torchrun_command_lines_keep_the_fomm_flags(tmp_path):
    requested = {
        "preset": "fomm-small",
        "videos": "/data/my videos",
        "vgg_weights": "/w/vgg19-dcbb9e9d.pth",
        "faceset_a": None,
        "size": 96,
    }
    line = train_command(Workspace(tmp_path), "f", requested, build(RunSettings, steps=50))
    assert line[line.index("--videos") + 1] == "/data/my videos"
    assert line[line.index("--vgg-weights") + 1] == "/w/vgg19-dcbb9e9d.pth"
    assert "--set" not in line
    args = _rebuild_args(
        {
            "workspace": tmp_path,
            "model": "f",
            "family": "fomm",
            "videos": Path("clips"),
            "vgg_weights": Path("vgg.pth"),
            "steps": 10,
            "resume": True,
            "as_json": True,
        }
    )
    for flag, value in (("--family", "fomm"), ("--videos", "clips"), ("--vgg-weights", "vgg.pth")):
        assert args[args.index(flag) + 1] == value
