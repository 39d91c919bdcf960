"""The wizard's shell: screen keys, resizing, the one error dialog, `swapdeck wizard`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Footer, Header, Static
from typer.testing import CliRunner

from engine.errors import ExitCode
from tui.app import SwapdeckApp
from tui.cli import app as cli
from tui.screens.compare import CompareScreen
from tui.screens.convert import ConvertScreen
from tui.screens.faces import FacesScreen
from tui.screens.reenact import ReenactScreen
from tui.screens.train import TrainScreen
from tui.screens.workspace import WorkspaceScreen
from tui.widgets.error_dialog import ErrorDialog

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "w": WorkspaceScreen,
    "f": FacesScreen,
    "t": TrainScreen,
    "c": ConvertScreen,
    "v": CompareScreen,
    "e": ReenactScreen,
}


def _laid_out(pilot: Pilot, width: int, height: int) -> None:
    screen = pilot.app.screen
    assert screen.size == (width, height)
    header, footer = screen.query_one(Header), screen.query_one(Footer)
    assert header.region.y == 0
    assert footer.region.y == height - 1 and footer.region.width == width


def test_keys_switch_screens_which_fit_80x24_and_resize(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        assert isinstance(pilot.app.screen, WorkspaceScreen)
        for key, screen_type in [*KEYS.items(), ("w", WorkspaceScreen)]:
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(pilot.app.screen, screen_type), key
            assert pilot.app.screen.workspace == tmp_path / "ws"
            _laid_out(pilot, 80, 24)
            await pilot.resize_terminal(120, 40)
            await pilot.pause()
            _laid_out(pilot, 120, 40)
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            _laid_out(pilot, 80, 24)
        await ui.settle(pilot)

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)


def test_footer_shows_every_screen_key_and_quit(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        for key in KEYS:
            await pilot.press(key)
            await pilot.pause()
            shown = {
                b.key for (_, b, enabled, _) in pilot.app.screen.active_bindings.values() if b.show
            }
            assert {"w", "f", "t", "c", "q"} <= shown, key
        await pilot.press("q")
        await pilot.pause()
        assert not pilot.app.is_running

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)


def test_escape_leaves_a_text_field_so_screen_keys_work(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        pilot.app.screen.query_one("#ws-path").focus()
        await pilot.press("f")  # typed into the field, not a screen switch
        assert isinstance(pilot.app.screen, WorkspaceScreen)
        await pilot.press("escape", "f")
        await pilot.pause()
        assert isinstance(pilot.app.screen, FacesScreen)

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)


def test_engine_error_shows_one_dialog_with_message_and_hint(tmp_path: Path, ui) -> None:
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")

    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        field = pilot.app.screen.query_one("#ws-path")
        field.value = str(a_file)
        field.focus()
        await pilot.press("enter")
        await ui.settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, ErrorDialog)
        assert dialog.message == f"workspace {a_file} is a file, not a folder"
        assert dialog.hint == "choose a folder for -w"
        assert "choose a folder" in str(dialog.query_one("#error-hint", Static).render())
        # A second failure while it is open updates the same dialog, not a stack of them.
        pilot.app.screen_stack[0].query_one("#ws-path").value = str(a_file / "deeper")
        pilot.app.screen_stack[0].action_open()
        await ui.settle(pilot)
        assert sum(isinstance(s, ErrorDialog) for s in pilot.app.screen_stack) == 1
        assert pilot.app.screen.message.startswith("workspace ")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(pilot.app.screen, WorkspaceScreen)
        assert pilot.app.is_running

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)


def test_a_bug_in_a_worker_is_an_internal_error_with_its_log(
    tmp_path: Path, ui, wizard_log: Path
) -> None:
    def broken() -> None:
        raise KeyError("nope")

    async def steps(pilot: Pilot) -> None:
        await ui.settle(pilot)
        pilot.app.run_worker(broken, thread=True)
        await ui.until(pilot, lambda: isinstance(pilot.app.screen, ErrorDialog))
        dialog = pilot.app.screen
        assert dialog.message == "internal error: KeyError: 'nope'"
        assert str(wizard_log) in dialog.hint
        assert "Traceback" in wizard_log.read_text()
        assert pilot.app.is_running

    ui.drive(SwapdeckApp(tmp_path / "ws"), steps)


def test_opening_another_workspace_rebuilds_the_other_screens(tmp_path: Path, ui) -> None:
    async def steps(pilot: Pilot) -> None:
        await pilot.press("f")
        await pilot.pause()
        assert pilot.app.screen.workspace == tmp_path / "one"
        await pilot.press("w")
        await ui.settle(pilot)
        field = pilot.app.screen.query_one("#ws-path")
        field.value = str(tmp_path / "two")
        pilot.app.screen.action_open()
        await ui.settle(pilot)
        assert (tmp_path / "two" / "facesets").is_dir()  # created
        assert pilot.app.workspace == tmp_path / "two"
        for key in "ftc":
            await pilot.press(key)
            await pilot.pause()
            assert pilot.app.screen.workspace == tmp_path / "two", key

    ui.drive(SwapdeckApp(tmp_path / "one"), steps)


def test_wizard_command_refuses_a_bad_workspace_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = CliRunner().invoke(cli, ["wizard", "-w", str(a_file)])
    assert result.exit_code == ExitCode.WORKSPACE
    assert "is a file, not a folder" in result.output
    assert "Traceback" not in result.output
    # Not writable (/proc takes no new folders, even for root).
    result = CliRunner().invoke(cli, ["wizard", "-w", "/proc/swapdeck-wizard-test"])
    assert result.exit_code == ExitCode.WORKSPACE
    assert "is not writable" in result.output


def test_wizard_imports_neither_torch_nor_textual_where_it_should_not() -> None:
    code = "import sys, tui.app; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    code = "import sys, engine.cli; assert 'textual' not in sys.modules, 'textual'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
