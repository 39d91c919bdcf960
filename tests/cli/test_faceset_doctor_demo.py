"""`swapdeck faceset`, `doctor` and `demo` on good input, through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clips import short_clip
from typer.testing import CliRunner

from engine.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
runner = CliRunner()


def run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout


PHOTOS = 28  # enough to train on (25), few enough to extract in seconds


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory) -> Path:
    """sample_data cut down (28 photos per identity, a 1.2 s clip) so the demo takes seconds."""
    root = tmp_path_factory.mktemp("small_sample")
    for name in ("a", "b"):
        (root / name).mkdir()
        for p in sorted((SAMPLE / name).glob("*.jpg"))[:PHOTOS]:
            shutil.copy(p, root / name / p.name)
    short_clip(root / "clip_a.mp4", 1.2)
    return root


def demo(ws: Path, small_sample: Path) -> dict:
    code, out = run(
        "demo", "-w", ws, "--sample-data", small_sample, "--train-minutes", "0.15", "--json"
    )
    assert code == 0, out
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "finished" and events[-1]["stage"] == "demo"
    return events[-1]["result"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, small_sample) -> tuple[Path, dict]:
    ws = tmp_path_factory.mktemp("demo") / "ws"
    return ws, demo(ws, small_sample)


@pytest.fixture(scope="module")
def demo_ws(demo_run) -> Path:
    return demo_run[0]


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(demo_run):
    ws, result = demo_run
    assert result["a"]["total_faces"] >= 25 and result["b"]["total_faces"] >= 25
    # Trained (for 9 s: a busy machine gets through few steps, a quiet one about 100).
    assert result["train"]["steps"] >= 2
    assert (ws / "models" / "demo" / "checkpoint.safetensors").is_file()
    assert result["convert"]["frames"] == 36  # 1.2 s of the sample clip's 30 fps
    assert result["convert"]["faces_swapped"] >= 25
    assert Path(result["output"]).is_file() and result["verify"]["marked"]
    video = result["score"]["videos"][0]
    assert video["faces"] >= 25
    assert video["expression"]["nme"] is not None
    assert json.loads(Path(result["scores"]).read_text()) == result["score"]


@pytest.mark.slow
def test_demo_writes_both_facesets_and_remembers_them(demo_ws):
    assert (demo_ws / "facesets" / "a" / "faceset.sqlite").is_file()
    assert (demo_ws / "facesets" / "b" / "faceset.sqlite").is_file()
    toml = (demo_ws / "swapdeck.toml").read_text()
    assert "[facesets.a]" in toml and "[facesets.b]" in toml


@pytest.mark.slow
def test_demo_rerun_resumes_and_adds_nothing(demo_run, small_sample, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(demo_run[0], ws)
    result = demo(ws, small_sample)
    assert result["a"]["faces"] == 0 and result["a"]["frames"] == 0
    assert result["a"]["total_faces"] >= 25
    assert result["train"]["steps"] > demo_run[1]["train"]["steps"]  # training went on


@pytest.mark.slow
def test_faceset_list_and_show(demo_ws):
    code, out = run("faceset", "list", "-w", demo_ws, "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["faces"] >= 25 and rows["a"]["size"] == 256

    code, out = run("faceset", "show", "a", "-w", demo_ws, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["faces"] == len(info["items"]) == rows["a"]["faces"]
    assert len(info["sources"]) == PHOTOS
    assert info["blur"]["min"] <= info["blur"]["median"] <= info["blur"]["max"]

    code, out = run("faceset", "show", "a", "-w", demo_ws)
    assert code == 0 and "faces" in out and "blur" in out


@pytest.mark.slow
def test_prune_by_id_and_by_blur_removes_rows_and_files(tmp_path, demo_ws, small_sample):
    ws = tmp_path / "ws"
    shutil.copytree(demo_ws, ws)
    faces_dir = ws / "facesets" / "b" / "faces"
    info = json.loads(run("faceset", "show", "b", "-w", ws, "--json")[1])
    first = info["items"][0]
    code, out = run("faceset", "prune", "b", "-w", ws, "--id", first["id"], "--json")
    assert code == 0 and json.loads(out)["removed"] == 1
    assert not (faces_dir / first["file"]).exists()

    blurs = sorted(item["blur"] for item in info["items"][1:])
    cut = (blurs[0] + blurs[1]) / 2  # removes exactly the least sharp one left
    code, out = run("faceset", "prune", "b", "-w", ws, "--blur-below", cut, "--json")
    assert code == 0 and json.loads(out)["removed"] == 1
    after = json.loads(run("faceset", "show", "b", "-w", ws, "--json")[1])
    assert after["faces"] == info["faces"] - 2
    assert {p.name for p in faces_dir.glob("*.png")} == {i["file"] for i in after["items"]}
    # Re-extracting the same sources does not bring pruned faces back: their frames are done.
    code, _ = run("extract", small_sample / "b", "-w", ws, "-f", "b", "--backend", "dlib")
    assert code == 0
    assert json.loads(run("faceset", "show", "b", "-w", ws, "--json")[1])["faces"] == after["faces"]


def test_doctor_reports_this_machine(tmp_path):
    code, out = run("doctor", "-w", tmp_path / "new", "--json")
    report = json.loads(out)
    names = {c["name"]: c for c in report["checks"]}
    assert {"python", "torch", "dlib", "fan", "pyav", "workspace"} <= set(names)
    assert names["dlib"]["ok"] and names["pyav"]["ok"]
    assert code == (0 if report["ok"] else 1)

    code, out = run("doctor", "-w", tmp_path)
    assert "dlib" in out and "pyav" in out
