"""`swapdeck train --family fast-swap`: -b alone makes a model, --inputs picks whose faces
it learns from, a missing VGG-19 is one line before anything is written, and a detached
job (and the torchrun workers' command line) keeps --inputs and --vgg-weights.

The workspace holds the sample facesets `a` and `b` and `c`, a copy of `a` under another
name: three facesets, so that choosing some of them as inputs means something.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch.hub
from cliutil import assert_fails, plain, swapdeck
from vggfile import write_random_vgg

from engine import jobs
from engine.cli.train import _rebuild_args
from engine.config import RunSettings, build, read_toml
from engine.errors import ExitCode
from engine.jobs import train_command
from engine.workspace import Workspace

# The smallest run that still trains: a few steps of the 64 px preset, few style photos.
SMALL = (
    "--preset", "fast-swap-small", "--batch-size", "2", "--set", "light-steps=2",
    "--set", "style-photos=6", "--set", "n-best=2", "--log-every", "1",
    "--preview-every", "1000", "--snapshot-every", "0",
)  # fmt: skip


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random VGG-19 under torchvision's name, in a folder that is no torch hub."""
    return write_random_vgg(tmp_path_factory.mktemp("vgg"))


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME without VGG-19 (for jobs too: they inherit it); returns the folder
    its file belongs in."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def ws(facesets_ws: Path) -> Path:
    shutil.copytree(facesets_ws / "facesets" / "a", facesets_ws / "facesets" / "c")
    return facesets_ws


def test_a_new_model_needs_b_only_and_vgg_before_anything_is_written(
    ws: Path, empty_torch_home: Path, tmp_path: Path
) -> None:
    line = assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fast-swap", "-a", "a"),
        ExitCode.BAD_INPUT,
        "model f does not exist yet, so it needs -b FACESET",
    )
    assert "-a" not in line.split("needs", 1)[1]  # A is optional: not asked for
    line = assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "--family", "fast-swap", "-b", "b"),
        ExitCode.UNAVAILABLE,
        "vgg19-dcbb9e9d.pth",
        str(empty_torch_home),
        "--vgg-weights PATH",
    )
    assert "VGG-19" in line
    assert_fails(
        swapdeck(
            "train", "-w", ws, "-m", "f", "--family", "fast-swap", "-b", "b",
            "--inputs", "a", "--vgg-weights", tmp_path / "nowhere.pth",
        ),
        ExitCode.UNAVAILABLE,
        f"VGG-19 weights not found at {tmp_path / 'nowhere.pth'}",
    )  # fmt: skip
    assert not (ws / "models" / "f").exists()


def test_inputs_and_flags_are_refused_in_one_line(
    ws: Path, vgg_file: Path, empty_torch_home: Path
) -> None:
    def fast(*args: str | Path) -> list[str | Path]:
        return ["train", "-w", ws, "-m", "f", "--family", "fast-swap", "-b", "b", *args]

    vgg = ("--vgg-weights", vgg_file)
    assert_fails(
        swapdeck(*fast("--inputs", "b", *vgg)),
        ExitCode.BAD_INPUT,
        "faceset b is person B's: it cannot also be an input",
    )
    assert_fails(swapdeck(*fast("--inputs", "nosuch", *vgg)), ExitCode.NOT_FOUND, "nosuch")
    assert_fails(
        swapdeck(*fast("--inputs", "../a")), ExitCode.BAD_INPUT, "invalid inputs", "'../a'"
    )
    assert_fails(
        swapdeck(*fast("--layout", "liae")),
        ExitCode.BAD_INPUT,
        "fast-swap models have no option layout",
    )
    assert_fails(
        swapdeck(*fast("--size", "64")),
        ExitCode.BAD_INPUT,
        "fast-swap models take size exactly 128, not 64",
    )
    assert_fails(
        swapdeck(*fast("--preset", "tiny")),
        ExitCode.BAD_INPUT,
        "preset tiny belongs to autoencoder, not fast-swap",
    )
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "s", "-a", "a", "-b", "b", "--inputs", "c"),
        ExitCode.BAD_INPUT,
        "autoencoder models have no option inputs",
    )
    assert not (ws / "models" / "f").exists()


def test_help_lists_the_family_and_its_flags() -> None:
    result = swapdeck("train", "--help")
    assert result.exit_code == 0
    text = " ".join(plain(result.output).split()).replace("│ ", "")
    for needle in (
        "--inputs",
        "Family fast-swap",
        "fast-swap-small",
        "faceset_a, optional",
        "faceset_b, required",
        "inputs (faceset names: --inputs NAME, repeatable), default empty",
        "vgg_weights, default empty",
    ):
        assert needle in text, needle


def test_command_lines_repeat_inputs_and_keep_vgg_weights(tmp_path: Path) -> None:
    requested = {
        "preset": "fast-swap-small",
        "faceset_b": "b",
        "faceset_a": None,
        "inputs": ["a", "my faces"],  # as job.json gives it back: a list
        "vgg_weights": "/w/vgg19-dcbb9e9d.pth",
        "n_best": 4,
    }
    line = train_command(Workspace(tmp_path), "f", requested, build(RunSettings, steps=5))
    assert [line[i + 1] for i, x in enumerate(line) if x == "--inputs"] == ["a", "my faces"]
    assert line[line.index("--vgg-weights") + 1] == "/w/vgg19-dcbb9e9d.pth"
    assert line[line.index("--set") + 1] == "n_best=4"
    # Empty (every faceset but B's) has no repeated-flag form: --set says it.
    line = train_command(Workspace(tmp_path), "f", {**requested, "inputs": ()}, RunSettings())
    assert "--inputs" not in line and "inputs=" in line
    args = _rebuild_args(
        {
            "workspace": tmp_path,
            "model": "f",
            "family": "fast-swap",
            "faceset_b": "b",
            "inputs": ["a", "c"],
            "vgg_weights": Path("vgg.pth"),
            "steps": 10,
            "resume": True,
            "gpus": 2,
        }
    )
    assert [args[i + 1] for i, x in enumerate(args) if x == "--inputs"] == ["a", "c"]
    assert args[args.index("--vgg-weights") + 1] == "vgg.pth"
    assert args[args.index("--family") + 1] == "fast-swap"


def _finished(ws: Path, job_id: str, timeout: float = 240) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while (job := jobs.get_job(Workspace(ws), job_id)).running:
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.25)
    return job


def test_a_detached_job_trains_on_the_inputs_and_weights_given(
    ws: Path, vgg_file: Path, empty_torch_home: Path
) -> None:
    # The hub cache is empty: the job finds VGG-19 only if --vgg-weights reached it.
    result = swapdeck(
        "train", "-w", ws, "-m", "f", "--family", "fast-swap", "-b", "b", "-a", "a",
        "--inputs", "c", "--vgg-weights", vgg_file, "--steps", "2", *SMALL, "--detach", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    started = json.loads(result.stdout)
    command = started["command"]
    assert command[command.index("--inputs") + 1] == "c"
    assert command[command.index("--vgg-weights") + 1] == str(vgg_file)
    job = _finished(ws, started["id"])
    assert job.state == "finished", job.reason

    toml = read_toml(ws / "models" / "f" / "model.toml")
    assert toml["family"] == "fast-swap" and toml["faceset_b"] == "b"
    assert toml["faceset_a"] == "a" and toml["inputs"] == ["c"]
    assert toml["vgg_weights"] == str(vgg_file)
    events = [json.loads(x) for x in job.events_path.read_text().splitlines()]
    detail = next(e["detail"] for e in events if e["type"] == "started")
    assert detail["inputs"] == "a,c"  # A joins the inputs given, B is none of them
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2]
    assert list(metrics[-1]["losses"]) == ["content", "style", "light", "tv"]

    # Trained on, the unfrozen inputs may change; A (frozen) may not.
    assert_fails(
        swapdeck("train", "-w", ws, "-m", "f", "-a", "c", "--steps", "3"),
        ExitCode.BAD_INPUT,
        "model f was created with faceset-a a, not c",
    )
    result = swapdeck(
        "train", "-w", ws, "-m", "f", "--inputs", "a", "--steps", "3", "--log-every", "1"
    )
    assert result.exit_code == 0, result.output
    assert read_toml(ws / "models" / "f" / "model.toml")["inputs"] == ["a"]
    text = " ".join(plain(result.output).split())
    assert "finished at step 3" in text and "loss content" in text and "loss tv" in text
