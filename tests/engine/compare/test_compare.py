"""`swapdeck compare` end to end on real faces: two tiny models trained to the same
budget, the same clip converted and scored by each, the report, and resuming."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clips import short_clip
from cliutil import plain, swapdeck

from engine.compare.report import columns
from engine.compare.run import compare
from engine.config import CompareConfig, build
from engine.errors import CancelledError, SwapdeckError
from engine.events import CancelToken
from engine.results import CompareResult
from engine.score import score
from engine.workspace import Workspace

pytestmark = pytest.mark.slow

MODELS = ["tiny", "tiny:size=48"]
BUDGET = "64"  # examples: 2 steps of 16 faces per side


def _workspace(sample_workspace: Workspace, root: Path) -> Workspace:
    shutil.copytree(sample_workspace.facesets_dir, root / "facesets")
    return Workspace(root)


def _config(ws: Workspace, clip: Path, report: str, **over) -> CompareConfig:
    values = dict(
        faceset_a="a",
        faceset_b="b",
        models=MODELS,
        clip=clip,
        budget=BUDGET,
        report=ws.root / "compares" / report,
        backend="dlib",
        device="cpu",
        sheet_frames=2,
    )
    return build(CompareConfig, **{**values, **over})


class Recorder:
    def __init__(self, cancel_after_first_train: CancelToken | None = None) -> None:
        self.events: list = []
        self.cancel = cancel_after_first_train

    def __call__(self, event) -> None:
        self.events.append(event)
        if self.cancel is not None and event.type == "finished" and event.stage == "train":
            self.cancel.cancel()

    def stages(self, kind: str) -> list[str]:
        return [e.stage for e in self.events if e.type == kind]


@pytest.fixture(scope="module")
def compared(sample_compare):
    ws, config, result, events = sample_compare
    recorder = Recorder()
    recorder.events = events
    return ws, config, result, recorder


def test_both_models_train_to_the_same_budget_and_are_scored(compared):
    _, _, result, events = compared
    assert [m.spec for m in result.models] == MODELS
    assert events.stages("finished").count("train") == 2
    for model in result.models:
        assert model.trained_here
        assert (model.steps, model.examples) == (2, 64)  # 64 examples, 32 a step
        assert model.losses.keys() == {"a", "b"}
        assert model.convert is not None and model.convert.faces_swapped > 0
        assert Path(model.output).is_file()
        assert model.structure.preset == "tiny"
    small, big = result.models[1].structure, result.models[0].structure
    assert (small.size, big.size) == (48, 64)
    assert small.flops_per_example < big.flops_per_example
    assert small.parameters < big.parameters


def test_the_report_holds_both_tables_the_chart_and_the_sheet(compared):
    _, config, result, _ = compared
    text = (config.report / "report.md").read_text()
    structure = text[text.index("## Structure") : text.index("## Results")]
    results = text[text.index("## Results") : text.index("## Loss curves")]
    for spec in MODELS:
        assert f"| {spec} | autoencoder | tiny |" in structure
        assert f"| {spec} | 2 | 64 |" in results
    assert "--budget 64" in text and "swapdeck compare" in text
    assert "![loss curves](losses.png)" in text and "![contact sheet](sheet.png)" in text
    from PIL import Image

    assert Image.open(result.chart).size[0] > 600
    assert Image.open(result.sheet).size[0] > 3 * 100  # original and two models side by side
    assert len(result.sheet_frames) == 2
    assert result.versions["torch"] and result.seed == 0
    assert result.command[:2] == ["swapdeck", "compare"] and "tiny,tiny:size=48" in result.command


def test_report_json_says_what_score_says_for_each_model(compared):
    ws, config, result, _ = compared
    saved = CompareResult.model_validate_json((config.report / "report.json").read_text())
    assert saved == result
    for model in saved.models:
        again = score(ws, model.model, [(config.clip, Path(model.output))], backend="dlib")
        assert _same(again.model_dump(mode="json"), model.score.model_dump(mode="json"))


def _same(a, b) -> bool:
    """Equal, numbers to 1e-6 relative."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert len(a) == len(b)
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6)
        return True
    assert a == b
    return True


def test_the_best_of_each_column_is_the_best_value(compared):
    _, _, result, _ = compared
    for col in columns(result.models):
        if col.better is None or col.key not in result.best:
            continue
        values = {m.spec: col.value(m) for m in result.models}
        chosen = [values[spec] for spec in result.best[col.key]]
        if col.better == "high":
            assert min(chosen) >= max(v for v in values.values() if v is not None)
        elif col.better == "low":
            assert max(chosen) <= min(v for v in values.values() if v is not None)
        else:
            assert all(abs(c - 1) <= abs(v - 1) for c in chosen for v in values.values())
    assert "examples_per_s" in result.best and "loss_a" in result.best


def test_a_rerun_trains_and_converts_nothing_again(compared):
    ws, config, first, _ = compared
    checkpoints = {
        m.model: (ws.model_dir(m.model) / "checkpoint.safetensors").stat().st_mtime_ns
        for m in first.models
    }
    videos = {m.model: Path(m.output).stat().st_mtime_ns for m in first.models}
    events = Recorder()
    again = compare(config, ws, events)
    assert "train" not in events.stages("started")
    assert "convert" not in events.stages("started") and "score" not in events.stages("started")
    for m in again.models:
        assert (ws.model_dir(m.model) / "checkpoint.safetensors").stat().st_mtime_ns == (
            checkpoints[m.model]
        )
        assert Path(m.output).stat().st_mtime_ns == videos[m.model]
    assert [m.score for m in again.models] == [m.score for m in first.models]
    assert again.runs == first.runs + 1


def test_an_existing_model_is_compared_as_it_is(compared, tmp_path):
    """`model:NAME` names a model already trained: converted and scored, never trained.
    (Its report goes outside the shared workspace, whose newest report the wizard shows.)"""
    ws, config, first, _ = compared
    trained = first.models[0]
    checkpoint = ws.model_dir(trained.model) / "checkpoint.safetensors"
    stamp = checkpoint.stat().st_mtime_ns
    events = Recorder()
    other = config.model_copy(
        update={"models": [f"model:{trained.model}"], "report": tmp_path / "existing"}
    )
    result = compare(other, ws, events)
    (model,) = result.models
    assert "train" not in events.stages("started") and checkpoint.stat().st_mtime_ns == stamp
    assert (model.model, model.trained_here, model.steps) == (trained.model, False, 2)
    assert model.train_seconds is None and model.examples == trained.examples
    assert model.losses == pytest.approx(trained.losses, rel=1e-4)  # its metrics' last line
    assert model.score is not None and model.score.model == trained.model
    text = (other.report / "report.md").read_text()
    assert f"compared as they are (not trained here): model:{trained.model}" in text


def test_a_stopped_compare_resumes_where_it_stopped(sample_workspace, tmp_path):
    ws = _workspace(sample_workspace, tmp_path / "ws")
    clip = short_clip(tmp_path / "clip.mp4", 0.6)
    config = _config(ws, clip, "stopped", models=["tiny:size=32", "tiny:size=48"])
    cancel = CancelToken()
    with pytest.raises(CancelledError):
        compare(config, ws, Recorder(cancel_after_first_train=cancel), cancel)
    first = ws.model_dir("stopped-tiny-size-32") / "checkpoint.safetensors"
    stamp = first.stat().st_mtime_ns
    assert not ws.model_dir("stopped-tiny-size-48").exists()  # stopped before it began
    events = Recorder()
    result = compare(config, ws, events)
    # Only the second model trains; the first goes on to its convert and score.
    assert events.stages("finished").count("train") == 1
    assert first.stat().st_mtime_ns == stamp
    assert [m.steps for m in result.models] == [2, 2]
    assert result.runs == 2


def test_a_time_budget_trains_for_that_long_and_then_is_spent(sample_workspace, tmp_path):
    ws = _workspace(sample_workspace, tmp_path / "ws")
    clip = short_clip(tmp_path / "clip.mp4", 0.4)
    config = _config(ws, clip, "timed", models=["tiny:size=32"], budget="4s")
    result = compare(config, ws)
    model = result.models[0]
    assert model.train_seconds is not None and 4.0 <= model.train_seconds < 60
    assert model.steps >= 1 and model.examples == model.steps * 32
    state = json.loads((config.report / "state.json").read_text())
    assert state["models"]["tiny-size-32"]["trained"] is True
    events = Recorder()
    compare(config, ws, events)
    assert "train" not in events.stages("started")


# ---- refused before anything trains --------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "budget", "words"),
    [
        (["tiny", "nosuch"], "64", "unknown model 'nosuch'"),
        (["hd:pixelart"], "64", "no option of hd takes 'pixelart'"),
        (["tiny:size=50"], "64", "tiny models take size 32-128 in steps of 16"),
        (["model:absent"], "64", "no model 'absent'"),
        (["tiny"], "soon", "cannot read the budget"),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_written(
    sample_workspace, tmp_path, models, budget, words
):
    ws = _workspace(sample_workspace, tmp_path / "ws")
    config = _config(ws, tmp_path / "clip.mp4", "bad", models=models, budget=budget)
    shutil.copy(Path(__file__).parents[3] / "sample_data" / "clip_a.mp4", config.clip)
    with pytest.raises(SwapdeckError) as caught:
        compare(config, ws)
    assert words in caught.value.one_line()
    assert not ws.models_dir.exists() or not any(ws.models_dir.iterdir())
    assert not config.report.exists()


def test_the_cli_refuses_a_bad_spec_in_one_line(sample_workspace, tmp_path):
    ws = _workspace(sample_workspace, tmp_path / "ws")
    result = swapdeck(
        "compare", "-w", ws.root, "-a", "a", "-b", "b", "--models", "tiny,hd:pixelart",
        "--clip", Path(__file__).parents[3] / "sample_data" / "clip_a.mp4",
        "--budget", "20m", "-o", tmp_path / "report",
    )  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in plain(result.output).splitlines() if line.strip()]
    assert any("no option of hd takes 'pixelart'" in line for line in lines)
    assert "Traceback" not in result.output
    assert not (tmp_path / "report").exists()


# ---- a family that lands later, as a detached job --------------------------------------------

TRAIN_TESTS = Path(__file__).resolve().parents[1] / "train"


@pytest.fixture
def throwaway(monkeypatch):
    """The throwaway plug-in family of the training-seam tests, known here and, through
    the environment, to the jobs and training processes compare starts."""
    monkeypatch.setenv("PYTHONPATH", str(TRAIN_TESTS))
    monkeypatch.setenv("SWAPDECK_FAMILIES", "throwaway_family")
    monkeypatch.syspath_prepend(str(TRAIN_TESTS))
    from throwaway_family import INFO, Throwaway

    from engine.train import registry

    registry.register(INFO, Throwaway)
    yield INFO
    registry.unregister(INFO.name)


def test_a_new_family_joins_through_the_registry_in_a_detached_job(
    sample_workspace, tmp_path, throwaway
):
    """The throwaway family of the training-seam tests (a plug-in: compare has no code for
    it) is trained to the budget, measured and reported; its models do not convert footage,
    so it has no video, scores or contact sheet."""
    from engine import jobs

    ws = _workspace(sample_workspace, tmp_path / "ws")
    clip = short_clip(tmp_path / "clip.mp4", 0.4)
    report = tmp_path / "report"
    args = [
        "compare", "-w", ws.root, "-a", "a", "-b", "b", "--models", "throwaway:width=2",
        "--clip", clip, "--budget", "40", "-o", report, "--device", "cpu",
    ]  # fmt: skip
    started = swapdeck(*args, "--detach", "--json")
    assert started.exit_code == 0, started.output
    job_id = json.loads(started.output)["id"]
    events = list(jobs.follow(ws, job_id))
    job = jobs.get_job(ws, job_id)
    assert job.state == "finished", jobs.read_log(ws, job_id)
    assert job.kind == "compare" and job.model == "report"
    assert events[-1].type == "finished" and events[-1].stage == "compare"
    result = CompareResult.model_validate(events[-1].result)
    (model,) = result.models
    assert model.structure.family == "throwaway" and model.structure.parameters > 0
    assert (model.steps, model.examples) == (10, 40)  # 4 faces a step
    assert model.losses.keys() == {"recon"}
    assert model.convert is None and model.score is None and result.sheet is None
    text = (report / "report.md").read_text()
    assert "| throwaway:width=2 | throwaway | throwaway |" in text
    assert "Not converted" in text and "Contact sheet" not in text
    # The same command in the foreground resumes: nothing left to train.
    again = swapdeck(*args, "--json")
    assert again.exit_code == 0, again.output
    assert '"stage":"train"' not in again.output.replace(" ", "")


def test_several_devices_train_side_by_side(sample_workspace, tmp_path, throwaway):
    """`--device cpu,cpu` stands in for two GPUs: one training process per device, both
    started before either ends. (Throwaway models: they train fast and convert nothing.)"""
    ws = _workspace(sample_workspace, tmp_path / "ws")
    clip = short_clip(tmp_path / "clip.mp4", 0.4)
    models = ["throwaway:width=2", "throwaway:width=3"]
    config = _config(ws, clip, "pair", models=models, budget="40", device="cpu,cpu")
    events = Recorder()
    result = compare(config, ws, events)
    said = [
        (getattr(e, "message", ""), getattr(e, "stage", ""))
        for e in events.events
        if e.type in ("info", "finished")
    ]
    starts = [i for i, (message, _) in enumerate(said) if "side by side" in message]
    first_end = next(i for i, (_, stage) in enumerate(said) if stage == "train")
    assert len(starts) == 2 and max(starts) < first_end
    assert [m.steps for m in result.models] == [10, 10]
    assert [m.structure.parameters > 0 for m in result.models] == [True, True]
    assert all(m.device == "cpu" for m in result.models)
    assert result.devices == ["cpu", "cpu"]
    assert "side by side on cpu, cpu" in (config.report / "report.md").read_text()
    for slug in ("throwaway-width-2", "throwaway-width-3"):
        assert (config.report / "logs" / f"{slug}.log").exists()
