"""DistributedDataParallel on CPU: two processes under torchrun with gloo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.workspace import Workspace

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")


def _copy(sample_workspace: Workspace, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, root)
    return root


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *args,
    ]


def test_two_ranks_end_with_identical_weights(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    env_run = subprocess.run(
        _torchrun(str(WORKER), str(ws), str(out)),
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert env_run.returncode == 0, _tails(env_run.stderr)
    ranks = [(out / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"  # both saw a world of two
    assert ranks[0][1] == ranks[1][1]  # and hold the same weights
    model = Path(ws) / "models" / "ddp"
    assert (model / "checkpoint.safetensors").is_file()
    # Only rank 0 writes: one metrics line per logged step, not two.
    steps = [
        json.loads(line)["step"] for line in (model / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [2, 4, 6]


def test_cli_gpus_flag_runs_torchrun_and_python_m_engine_train(sample_workspace, tmp_path):
    ws = _copy(sample_workspace, tmp_path)
    cmd = [str(Path(sys.executable).with_name("swapdeck"))]
    result = subprocess.run(
        [
            *cmd,
            "train",
            "-w",
            ws,
            "-m",
            "multi",
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
            "--save-every",
            "2",
            "--device",
            "cpu",
            "--gpus",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert result.returncode == 0, _tails(result.stderr)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["type"] == "finished"]
    assert len(finished) == 1  # rank 0 alone reports
    assert finished[0]["result"]["steps"] == 4
    started = next(e for e in events if e["type"] == "started")
    assert started["detail"]["world_size"] == 2


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # two ranks on two cores
    env.pop("WORLD_SIZE", None)
    return env


def _tails(stderr: str) -> str:
    """Both ends of torchrun's stderr: a failing rank's traceback comes first, the
    launcher's summary last."""
    return stderr if len(stderr) <= 6000 else f"{stderr[:3000]}\n...\n{stderr[-3000:]}"
