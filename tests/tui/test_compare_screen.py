"""The Compare screen with the real engine: the form's checks, a report shown, a job followed.

Compares here are real and tiny: two tiny models ("tiny" and "tiny:size=48") trained on
the sample facesets for a few steps, each converting 0.6 s of the sample clip.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from clips import short_clip
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer, Header, Static

from engine import jobs
from engine.compare.run import plan
from engine.config import CompareConfig, build
from engine.errors import SwapdeckError
from engine.results import CompareResult
from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.compare import BEST, CompareScreen
from tui.widgets.error_dialog import ErrorDialog
from tui.widgets.preview_image import PreviewImage

MODELS = "tiny,tiny:size=48"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.6 s of the sample clip: convert and score stay quick."""
    return short_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 0.6)


@pytest.fixture(scope="module")
def compared(sample_compare) -> tuple[Path, CompareResult]:
    """A workspace holding one finished compare (tests/conftest.py runs it once)."""
    ws, _, result, _ = sample_compare
    return ws.root, result


@pytest.fixture
def stop_leftovers(facesets_ws: Path):
    """Whatever a failing test leaves running is stopped, never left to eat the CPU."""
    yield
    for job in jobs.list_jobs(Workspace(facesets_ws)):
        if job.running:
            with contextlib.suppress(Exception):
                jobs.stop_job(Workspace(facesets_ws), job.id, timeout=60, force=True)


def _text(pilot: Pilot, selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


async def _open(pilot: Pilot, ui) -> CompareScreen:
    await pilot.press("v")
    await ui.until(pilot, lambda: isinstance(pilot.app.screen, CompareScreen), 10)
    screen = pilot.app.screen
    await ui.until(pilot, lambda: screen.query_one("#faceset-b").value == "b", 10)
    return screen


async def _fill(pilot: Pilot, ui, clip: Path, models: str, budget: str) -> None:
    await ui.type_into(pilot, "#models", models)
    await ui.type_into(pilot, "#budget", budget)
    await ui.type_into(pilot, "#clip Input", str(clip))
    await pilot.press("escape")


def _expected_cells(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Some cells per SPEC, written from report.json's numbers (★ where it says best)."""
    out = {}
    for model in report["models"]:
        average = model["score"]["average"]
        cells = {
            "steps": f"{model['steps']:,}",
            "examples": f"{model['examples']:,}",
            "loss_a": f"{model['losses']['a']:.4f}",
            "loss_b": f"{model['losses']['b']:.4f}",
            "retrieval": f"{average['identity']['retrieval']:.3f}",
            "nme": f"{average['expression']['nme']:.3f}",
            "jitter_ratio": f"{average['stability']['ratio']:.3f}",
        }
        for key in cells:
            if model["spec"] in report["best"].get(key, []):
                cells[key] = BEST + cells[key]
        out[model["spec"]] = cells
    return out


def _check_table(screen: CompareScreen, report_json: Path) -> None:
    report = json.loads(report_json.read_text(encoding="utf-8"))
    table = screen.query_one("#results", DataTable)
    specs = [m["spec"] for m in report["models"]]
    assert table.row_count == len(specs) == 2
    assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == specs
    for spec, cells in _expected_cells(report).items():
        for key, text in cells.items():
            assert str(table.get_cell(spec, key)) == text, (spec, key)
    # Every best of report.json is starred and bold, and nothing else is starred.
    marked = 0
    for column in list(table.columns)[1:]:
        for spec in specs:
            shown = table.get_cell(spec, column)
            assert isinstance(shown, Text)
            best = spec in report["best"].get(column.value, [])
            assert shown.plain.startswith(BEST) == best, (spec, column.value)
            assert ("bold" in str(shown.style)) == best
            marked += best
    assert marked >= len(report["best"]) >= 1
    assert screen.query_one(PreviewImage).loaded_path == Path(report["sheet"])
    assert report["report"] in str(screen.query_one("#report-line", Static).render())


def test_v_opens_it_and_a_bad_spec_or_budget_is_one_dialog_and_no_job(
    facesets_ws: Path, ui, sample_data: Path
) -> None:
    clip = sample_data / "clip_a.mp4"
    ws = Workspace(facesets_ws)

    def engine_says(models: str, budget: str) -> str:
        config = build(
            CompareConfig,
            faceset_a="a",
            faceset_b="b",
            models=[models],
            clip=clip,
            budget=budget,
            report=facesets_ws / "compares" / "compare",
        )
        with pytest.raises(SwapdeckError) as refused:
            plan(ws, config)
        return refused.value.one_line()

    async def steps(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        assert screen.query_one(Header).region.y == 0
        assert screen.query_one(Footer).region.y == 23  # it fits 80x24
        for models, budget in (("tiny,nosuchpreset", "64"), ("tiny", "lots")):
            await _fill(pilot, ui, clip, models, budget)
            await pilot.press("s")
            await ui.until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog), 30)
            dialog = pilot.app.screen
            assert f"{dialog.message}. {dialog.hint}" == engine_says(models, budget)
            await pilot.press("escape")
            await ui.until(pilot, lambda: pilot.app.screen is screen and not screen.starting, 10)
            assert screen.job is None and not screen.following
            assert screen.check_action("start", ()) is True  # the form is free again
            assert "not started" in _text(pilot, "#stage")

    ui.drive(SwapdeckApp(facesets_ws), steps)
    assert not ws.jobs_dir.exists() or not any(ws.jobs_dir.iterdir())  # no job started
    assert not (facesets_ws / "compares").exists()


def test_a_finished_report_shows_as_a_table_and_its_contact_sheet(compared, ui) -> None:
    root, result = compared
    assert isinstance(result, CompareResult)

    async def steps(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        # No compare runs: the folder's report.json is shown without running anything.
        await ui.until(pilot, lambda: screen.result is not None, 30)
        assert screen.query_one("#report").value == str(root / "compares" / "pair")
        _check_table(screen, Path(result.report_json))
        await pilot.press("l")  # the loss chart instead of the sheet, and back
        assert screen.query_one(PreviewImage).loaded_path == Path(result.chart)
        await pilot.press("l")
        assert screen.query_one(PreviewImage).loaded_path == Path(result.sheet)
        # A folder with no report: "Load report" says so in the one dialog.
        await ui.type_into(pilot, "#report", str(root / "compares" / "none"))
        await pilot.press("escape", "r")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog), 10)
        assert pilot.app.screen.message == f"no report.json in {root / 'compares' / 'none'}"

    ui.drive(SwapdeckApp(root), steps)
    assert jobs.list_jobs(Workspace(root)) == []  # shown, not run


@pytest.mark.slow
def test_a_compare_started_here_stops_resumes_and_is_reattached_to_its_results(
    facesets_ws: Path, clip: Path, ui, stop_leftovers
) -> None:
    ws = Workspace(facesets_ws)
    report = facesets_ws / "compares" / "compare"  # the form's default for a new workspace
    started: list[jobs.Job] = []

    async def start_stop_restart(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        assert screen.query_one("#report").value == str(report)
        # 640 examples: 20 steps of each model, long enough to be stopped while training.
        await _fill(pilot, ui, clip, MODELS, "640")
        await pilot.press("s")
        await ui.until(pilot, lambda: "train: step" in _text(pilot, "#stage"), 240)
        assert screen.following and screen.job is not None and screen.job.kind == "compare"
        assert _text(pilot, "#model-line") == "model 1/2: tiny"
        assert f"job {screen.job.id}: running, following" == _text(pilot, "#job")
        started.append(screen.job)

        await pilot.click("#stop")
        await ui.until(pilot, lambda: not screen.following and not screen.stopping, 180)
        assert jobs.get_job(ws, started[0].id).state == "stopped"
        assert "stopped" in _text(pilot, "#stage") and "stopped" in _text(pilot, "#job")

        await pilot.press("s")  # the same form again: the engine resumes
        await ui.until(pilot, lambda: screen.following and screen.job.id != started[0].id, 60)
        started.append(screen.job)
        # Quitting the wizard leaves the compare running.

    ui.drive(SwapdeckApp(facesets_ws), start_stop_restart)
    assert jobs.get_job(ws, started[1].id).running

    async def reattach(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        await ui.until(pilot, lambda: screen.following, 30)
        assert screen.job is not None and screen.job.id == started[1].id
        assert screen.query_one("#models").value == MODELS  # the job's own settings
        assert screen.query_one("#budget").value == "640"
        await ui.until(pilot, lambda: screen.result is not None, 400)
        _check_table(screen, report / "report.json")
        assert _text(pilot, "#model-line") == "2 models compared"
        await ui.until(pilot, lambda: not screen.following, 60)
        assert f"job {started[1].id}: finished" == _text(pilot, "#job")

    ui.drive(SwapdeckApp(facesets_ws), reattach)
    assert jobs.get_job(ws, started[1].id).state == "finished"
    written = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert written["runs"] == 2  # stopped once, then resumed
    for model in written["models"]:  # each trained to the budget, not twice over
        per_step = model["examples"] // model["steps"]
        assert model["steps"] == math.ceil(640 / per_step)
