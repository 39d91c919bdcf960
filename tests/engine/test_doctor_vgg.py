"""doctor's VGG-19 line: where the weights fomm training needs are, or which file goes where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.hub
from cliutil import swapdeck

from engine import doctor
from engine.train.vgg import WEIGHTS_FILE


@pytest.fixture
def hub_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; returns the folder the weights belong in."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() would hide TORCH_HOME
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_missing_weights_say_which_file_goes_where(hub_checkpoints: Path) -> None:
    check = doctor.check_vgg19()
    assert not check.ok and not check.required
    assert f"{WEIGHTS_FILE} not in {hub_checkpoints}" in check.detail
    assert "fomm" in check.detail
    assert WEIGHTS_FILE in check.hint and str(hub_checkpoints) in check.hint
    assert "--vgg-weights" in check.hint
    assert not hub_checkpoints.exists()  # looking created nothing
    report = doctor.run_doctor()
    assert report.check("vgg19") == check
    # Only fomm training needs it: the machine is still fine without.
    assert report.ok == all(c.ok for c in report.checks if c.required)


def test_present_weights_are_reported_where_found(hub_checkpoints: Path) -> None:
    hub_checkpoints.mkdir(parents=True)
    (hub_checkpoints / WEIGHTS_FILE).write_bytes(b"\0" * 2**21)  # only presence is checked
    check = doctor.check_vgg19()
    assert check.ok, check.detail
    assert str(hub_checkpoints / WEIGHTS_FILE) in check.detail
    assert "2 MB" in check.detail


def test_doctor_json_has_the_line(hub_checkpoints: Path) -> None:
    result = swapdeck("doctor", "--json")
    names = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert not names["vgg19"]["ok"]
    assert str(hub_checkpoints) in names["vgg19"]["detail"]
