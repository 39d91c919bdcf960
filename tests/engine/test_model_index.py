"""Listing models from disk without loading them: what the wizard shows."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.model_index import last_step, list_models, read_metrics
from engine.workspace import Workspace


def test_lists_a_trained_model_and_skips_a_broken_one(sample_workspace, tiny_model, tmp_path):
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.models_dir, ws.models_dir)
    broken = ws.models_dir / "broken"
    broken.mkdir()
    (broken / "model.toml").write_text("preset = [not toml")
    (model,) = list_models(ws)
    assert model["name"] == tiny_model and model["preset"] == "tiny"
    assert model["faceset_a"] == "a" and model["faceset_b"] == "b"
    assert model["trained"] is True
    metrics = ws.model_dir(tiny_model) / "metrics.jsonl"
    assert model["step"] == last_step(metrics) == read_metrics(metrics)[-1]["step"] == 120


def test_metrics_reader_skips_bad_lines(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss_a": 0.5}\nnot json\n[1, 2]\n{"step": 2}\n{"step": 3')
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    assert last_step(path) == 2
    assert read_metrics(tmp_path / "missing.jsonl") == [] and last_step(path.parent) is None
