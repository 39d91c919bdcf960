"""The Reenact screen with the real engine: a random-weight fomm-small model at 64 px,
a real portrait and 0.3 s of a real talking clip (../shared/footage).

What the model draws is noise; these tests judge the screen: the form reaches the
engine, the preview is shown, the job is started, dropped and re-attached to, and
its output, verify result and score figures are shown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import pytest
from footage import footage
from reenactutil import fomm_model, talking
from textual.pilot import Pilot
from textual.widgets import DirectoryTree, Select, Static

from engine import jobs
from engine.provenance import verify
from engine.workspace import Workspace
from tui.app import SwapdeckApp
from tui.screens.reenact import ReenactScreen
from tui.widgets.error_dialog import ErrorDialog
from tui.widgets.path_field import PathField
from tui.widgets.preview_image import PreviewImage


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(portrait, driving clip): a real portrait and 0.3 s (9 frames) of talk_d3."""
    folder = tmp_path_factory.mktemp("inputs")
    portrait = folder / "portrait.jpg"
    shutil.copy(footage("portrait_s0.jpg"), portrait)
    return portrait, talking(folder / "talk.mp4", 0.3)


def _other_model(ws: Workspace) -> None:
    """A trained model of another family: never offered for reenacting."""
    folder = ws.model_dir("swapper")
    folder.mkdir(parents=True)
    (folder / "model.toml").write_text('family = "autoencoder"\npreset = "tiny"\n')
    (folder / "checkpoint.safetensors").write_bytes(b"")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the fomm model and another family's, built once, copied per test."""
    ws = Workspace(tmp_path_factory.mktemp("template") / "ws").ensure()
    fomm_model(ws)
    _other_model(ws)
    return ws.root


@pytest.fixture
def fomm_ws(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "ws"))


@pytest.fixture
def stop_leftovers(fomm_ws: Path):
    """Whatever a failing test leaves running is stopped, never left to eat the CPU."""
    yield
    for job in jobs.list_jobs(Workspace(fomm_ws)):
        if job.running:
            with contextlib.suppress(Exception):
                os.kill(int(job.pid or 0), signal.SIGCONT)  # held by the test, maybe
                jobs.stop_job(Workspace(fomm_ws), job.id, timeout=60, force=True)


def _text(screen: ReenactScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def _open(pilot: Pilot, ui) -> ReenactScreen:
    await pilot.press("e")
    await ui.until(pilot, lambda: isinstance(pilot.app.screen, ReenactScreen), 10)
    return pilot.app.screen


async def _fill(pilot: Pilot, ui, portrait: Path, driving: Path) -> None:
    await ui.type_into(pilot, "#source Input", str(portrait))
    await ui.type_into(pilot, "#driving Input", str(driving))
    await pilot.press("escape")


def test_preview_run_drop_reattach_then_output_verify_and_score(
    fomm_ws: Path, inputs: tuple[Path, Path], ui, stop_leftovers, monkeypatch
) -> None:
    portrait, driving = inputs
    # -w ws, as people type it: the job runs in the workspace, so every path it gets is absolute.
    monkeypatch.chdir(fomm_ws.parent)
    ws = Workspace(fomm_ws)
    output = fomm_ws / "outputs" / "portrait_talk_fomm.mp4"
    started: list[jobs.Job] = []

    async def preview_then_start(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        assert screen.query_one("#model", Select).value == "fomm"
        await _fill(pilot, ui, portrait, driving)
        await pilot.click("#adapt_scale")
        await pilot.press("p")
        await ui.until(pilot, lambda: screen.query_one(PreviewImage).loaded_path is not None, 120)
        png = fomm_ws / "outputs" / "portrait_talk_fomm_preview.png"
        assert screen.query_one(PreviewImage).loaded_path == png and png.is_file()
        assert _text(screen, "#stage") == f"preview: {png}"
        await ui.until(pilot, lambda: screen.check_action("start", ()), 10)
        await pilot.press("s")
        await ui.until(pilot, lambda: screen.following, 60)
        assert screen.job is not None and screen.job.kind == "reenact"
        started.append(screen.job)
        # Held until the wizard is back, so it cannot finish unseen however fast the machine.
        os.kill(int(screen.job.pid or 0), signal.SIGSTOP)
        # Quitting the wizard here is a dropped connection: the job runs on.

    ui.drive(SwapdeckApp(Path(fomm_ws.name)), preview_then_start)
    job = jobs.get_job(ws, started[0].id)
    assert job.spec["adapt_scale"] is True and job.spec["output"] == str(output)

    async def reattach(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        await ui.until(pilot, lambda: screen.job is not None, 30)
        assert screen.job.id == started[0].id and screen.following
        os.kill(int(screen.job.pid or 0), signal.SIGCONT)
        # The form shows what the job does (it may have been started elsewhere).
        assert screen.query_one("#source Input").value == str(portrait)
        assert screen.query_one("#adapt_scale").value is True
        assert screen.query_one("#output").value == ""  # the default, not its path
        await ui.until(pilot, lambda: "score" in screen.lines, 240)
        lines = _text(screen, "#result").splitlines()
        assert lines[0].startswith(f"output: {output} (9 frames, ")
        assert lines[1].startswith("verify: marked=true")
        assert lines[2].startswith("score: AKD ") and " AED " in lines[2]
        assert f"job {started[0].id}: finished" == _text(screen, "#job")
        assert _text(screen, "#stage") == "done"

    ui.drive(SwapdeckApp(Path(fomm_ws.name)), reattach)
    assert jobs.get_job(ws, started[0].id).state == "finished"
    assert verify(output).marked


def test_no_fomm_model_or_no_portrait_is_one_dialog_and_no_job(
    fomm_ws: Path, inputs: tuple[Path, Path], ui
) -> None:
    portrait, driving = inputs
    ws = Workspace(fomm_ws)
    fomm = fomm_ws.parent / "fomm"
    shutil.move(ws.model_dir("fomm"), fomm)  # only the autoencoder is left

    async def steps(pilot: Pilot) -> None:
        screen = await _open(pilot, ui)
        assert screen.query_one("#model", Select).value is Select.NULL  # not the autoencoder
        # Set, not typed: typing is the other test's (a key a frame, seconds on busy cores).
        screen.query_one("#source", PathField).value = portrait
        screen.query_one("#driving", PathField).value = driving
        for key in ("s", "p"):
            await pilot.press(key)
            await ui.until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog), 30)
            assert pilot.app.screen.message == "no fomm model chosen"
            await pilot.press("escape")
            await ui.until(pilot, lambda: pilot.app.screen is screen and not screen.busy, 10)
        # A fomm model arrives (imported meanwhile): m offers it; now the portrait is missing.
        shutil.move(fomm, ws.model_dir("fomm"))
        await pilot.press("m")
        assert screen.query_one("#model", Select).value == "fomm"
        screen.query_one("#source", PathField).value = None
        await pilot.press("s")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog), 30)
        assert pilot.app.screen.message == "no portrait chosen"
        await pilot.press("escape")
        await ui.until(pilot, lambda: pilot.app.screen is screen and not screen.busy, 10)
        assert "not started" in _text(screen, "#stage")

    ui.drive(SwapdeckApp(ws.root), steps)
    assert jobs.list_jobs(ws) == []
    assert not any(ws.outputs_dir.iterdir())


def test_reenact_screen_snapshot(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snap_compare, ui
) -> None:
    """The idle screen at 80x24, in a fixed folder holding only `ws` (its fomm model
    offered, the autoencoder not), given the relative path "ws"."""
    pytest.importorskip("pytest_textual_snapshot")
    folder = tmp_path / "snap"
    shutil.copytree(template, folder / "ws")
    monkeypatch.chdir(folder)

    async def run_before(pilot: Pilot) -> None:
        await pilot.press("e")
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, ReenactScreen), 10)
        trees = pilot.app.screen.query(DirectoryTree)
        await ui.until(pilot, lambda: all(t.root.children for t in trees))
        await pilot.pause()

    assert snap_compare(SwapdeckApp(Path("ws")), terminal_size=(80, 24), run_before=run_before)
