"""A new kind of model is one new family: a throwaway one (throwaway_family.py, a few
lines beside this test) trains, saves, resumes and previews through the normal CLI, and
as a detached job, without any change to the loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cliutil import swapdeck
from safetensors import safe_open
from throwaway_family import INFO, Throwaway

from engine.train import registry
from engine.workspace import Workspace


@pytest.fixture
def throwaway_family():
    registry.register(INFO, Throwaway)
    yield INFO
    registry.unregister(INFO.name)


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _train(ws: Path, model: str, steps: int, *extra: str) -> list[dict[str, Any]]:
    result = swapdeck(
        "train", "-w", ws, "-m", model, "--steps", steps, "--save-every", 3,
        "--preview-every", 3, "--log-every", 1, "--precision", "fp32", "--json", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return _events(result.output)


def test_a_throwaway_family_trains_saves_resumes_and_previews(
    throwaway_family: registry.FamilyInfo, facesets_ws: Path
) -> None:
    first = _train(facesets_ws, "t", 6, "--preset", "throwaway", "-a", "a", "--set", "width=3")
    started = next(e for e in first if e["type"] == "started")
    assert started["detail"]["family"] == "throwaway"
    assert started["detail"]["faces"] > 0
    folder = Workspace(facesets_ws).model_dir("t")
    toml = (folder / "model.toml").read_text()
    assert 'family = "throwaway"' in toml and "width = 3" in toml
    assert (folder / "previews" / "latest.png").is_file()
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all("loss_recon" in r for r in records)
    with safe_open(str(folder / "checkpoint.safetensors"), "pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    assert any(k.startswith("optim.") for k in keys)  # the main optimizer
    assert any(k.startswith("optim_head.") for k in keys)  # and the second one
    assert "head" in json.loads(meta["optimizers"])

    # Resumed: from step 6, to the same weights as one uninterrupted run of 9 steps.
    again = _train(facesets_ws, "t", 9)
    assert next(e for e in again if e["type"] == "started")["detail"]["start_step"] == 6
    resumed = next(e for e in again if e["type"] == "finished")["result"]
    straight = _train(facesets_ws, "u", 9, "--preset", "throwaway", "-a", "a", "--set", "width=3")
    whole = next(e for e in straight if e["type"] == "finished")["result"]
    assert resumed["steps"] == whole["steps"] == 9
    assert resumed["loss_recon"] == whole["loss_recon"]


def test_a_family_option_it_lacks_is_refused_in_one_line(
    throwaway_family: registry.FamilyInfo, facesets_ws: Path
) -> None:
    result = swapdeck(
        "train", "-w", facesets_ws, "-m", "t", "--preset", "throwaway", "-a", "a",
        "--set", "bottleneck=3", "--steps", 1,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "throwaway models have no option bottleneck" in result.output
    assert "Traceback" not in result.output
    assert not Workspace(facesets_ws).model_dir("t").exists()


def test_a_throwaway_familys_model_trains_as_a_detached_job(
    facesets_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import jobs

    # The job's own process learns of the family the way a plug-in's users would say it.
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", str(here))
    monkeypatch.setenv("SWAPDECK_FAMILIES", "throwaway_family")
    result = swapdeck(
        "train", "-w", facesets_ws, "-m", "j", "--preset", "throwaway", "-a", "a",
        "--set", "width=2", "--steps", 4, "--detach", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.output)["id"]
    ws = Workspace(facesets_ws)
    events = list(jobs.follow(ws, job_id))
    assert jobs.get_job(ws, job_id).state == "finished", jobs.read_log(ws, job_id)
    assert events[-1].type == "finished"
    assert events[-1].result["steps"] == 4 and "loss_recon" in events[-1].result
    assert 'family = "throwaway"' in (ws.model_dir("j") / "model.toml").read_text()
