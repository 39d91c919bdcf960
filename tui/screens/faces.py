"""Screen 2: choose sources for A and B, extract their faces, look at what came out
(and, with m, their masks: the hull and what an occlusion model or a label says covers
the face)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, ListItem, ListView, ProgressBar, Static
from textual.worker import Worker

from engine.events import CancelToken
from engine.results import ExtractResult, MaskSheetResult
from tui.messages import EngineEvent, TaskDone, poster, worker_ended
from tui.widgets.face_strip import FaceStrip
from tui.widgets.path_field import PathField
from tui.widgets.preview_image import PreviewImage

SIDES = ("a", "b")
_ADD = Binding.Group("Add")
_REFERENCE = Binding.Group("Ref")


def progress_line(side: str, event: Any) -> str:
    """The counts of an extract Progress event, as one line."""
    counts = event.counts
    total = "?" if event.total is None else event.total
    return (
        f"{side.upper()}: frames {event.done}/{total} faces {counts.get('faces', 0):g} "
        f"tracked {counts.get('tracked', 0):g} skipped {counts.get('skipped', 0):g}"
    )


def stats_text(summary: dict[str, Any]) -> str:
    """A faceset's describe_faceset summary, in two short lines."""
    blur = summary.get("blur") or {}
    yaw = summary.get("yaw") or {}
    text = (
        f"{summary['name']}: {summary['faces']} faces ({summary['tracked']} tracked), "
        f"{len(summary['sources'])} source(s), {summary['frames_done']} frames, "
        f"{summary['size']} px"
    )
    if blur:
        text += f"\nsharpness median {blur['median']:g}, yaw {yaw['min']:g}..{yaw['max']:g}"
    return text


class FacesScreen(Screen):
    """Sources and faceset names for A and B, extraction with progress, then the faces."""

    AUTO_FOCUS = "MediaTree"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add('a')", "Add to A", group=_ADD),
        Binding("b", "add('b')", "Add to B", group=_ADD),
        Binding("A", "add_reference('a')", "Reference for A", group=_REFERENCE),
        Binding("B", "add_reference('b')", "Reference for B", group=_REFERENCE),
        Binding("delete", "remove", "Drop", key_display="del"),
        Binding("x", "extract", "Extract"),
        Binding("m", "masks", "Masks"),
        Binding("s", "stop", "Stop"),
    ]

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self.sources: dict[str, list[Path]] = {side: [] for side in SIDES}
        self.references: dict[str, list[Path]] = {side: [] for side in SIDES}
        self.cancel: CancelToken | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="faces-body"):
            with Horizontal(id="faces-top"):
                yield PathField(id="faces-path")
                with Vertical(id="faces-sides"):
                    for side in SIDES:
                        with Vertical(classes="side", id=f"side-{side}"):
                            with Horizontal(classes="side-name"):
                                yield Label(f"{side.upper()} faceset ")
                                yield Input(side, id=f"name-{side}", compact=True)
                            yield ListView(id=f"list-{side}", classes="sources")
            yield Static("choose sources, then x to extract", id="faces-status")
            with Horizontal(id="faces-meter"):
                yield ProgressBar(total=1, id="faces-progress", show_eta=False)  # no idle pulse
                yield Static("", id="faces-counts")
            with Horizontal(id="faces-results"):
                for side in SIDES:
                    with Vertical(classes="result"):
                        yield FaceStrip(id=f"strip-{side}")
                        yield Static("", id=f"stats-{side}", classes="stats")
                        yield PreviewImage(id=f"masks-{side}", classes="masks")
        yield Footer()

    # ---- choosing ----------------------------------------------------------------------

    def _picked(self) -> Path | None:
        path = self.query_one(PathField).value
        if path is None:
            self.notify("pick or type a path first", severity="warning")
        return path

    def action_add(self, side: str) -> None:
        path = self._picked()
        if path is not None and path not in self.sources[side]:
            self.sources[side].append(path)
            self._show_list(side)

    def action_add_reference(self, side: str) -> None:
        path = self._picked()
        if path is not None and path not in self.references[side]:
            self.references[side].append(path)
            self._show_list(side)

    def action_remove(self) -> None:
        focused = self.focused
        if not isinstance(focused, ListView) or focused.index is None:
            return
        side = focused.id.removeprefix("list-") if focused.id else ""
        if side not in SIDES:
            return
        entries = self._entries(side)
        kind, path = entries[focused.index]
        (self.sources if kind == "source" else self.references)[side].remove(path)
        self._show_list(side)

    def _entries(self, side: str) -> list[tuple[str, Path]]:
        return [("source", p) for p in self.sources[side]] + [
            ("reference", p) for p in self.references[side]
        ]

    def _show_list(self, side: str) -> None:
        view = self.query_one(f"#list-{side}", ListView)
        view.clear()
        for kind, path in self._entries(side):
            prefix = "ref " if kind == "reference" else ""
            view.append(ListItem(Label(f"{prefix}{path}", markup=False)))

    # ---- extracting --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        busy = self.cancel is not None
        if action in ("extract", "masks"):
            return not busy
        if action == "stop":
            return busy
        return True

    def action_extract(self) -> None:
        plan = []
        for side in SIDES:
            if self.sources[side]:
                name = self.query_one(f"#name-{side}", Input).value.strip() or side
                plan.append((side, name, list(self.sources[side]), list(self.references[side])))
        if not plan:
            self.query_one("#faces-status", Static).update("add sources to A or B first (a / b)")
            return
        self.cancel = CancelToken()
        self.refresh_bindings()
        self.query_one("#faces-status", Static).update("starting extraction…")
        self._extract(plan, self.cancel)

    def action_stop(self) -> None:
        if self.cancel is not None:
            self.cancel.cancel()
            self.query_one("#faces-status", Static).update("stopping after the current frame…")

    # ---- masks -------------------------------------------------------------------------

    def action_masks(self) -> None:
        """Write each side's mask contact sheet (engine.mask_sheet) and show it."""
        from engine.workspace import Workspace

        have = set(Workspace(self.workspace).faceset_names())
        plan = []
        for side in SIDES:
            name = self.query_one(f"#name-{side}", Input).value.strip() or side
            if name in have:
                plan.append((side, name))
        if not plan:
            self.query_one("#faces-status", Static).update("no faceset to show masks of yet (x)")
            return
        self.query_one("#faces-status", Static).update("drawing masks…")
        self._masks(plan)

    @work(thread=True, group="masks", exclusive=True)
    def _masks(self, plan: list[tuple[str, str]]) -> None:
        from engine.mask_sheet import mask_sheet
        from engine.workspace import Workspace

        ws = Workspace(self.workspace)
        for side, name in plan:
            # A small sheet (6 faces, 3 a row) reads at the width of one side's column.
            result = mask_sheet(ws, name, count=6, columns=3)
            self.post_message(TaskDone(f"masks-{side}", result))

    def _show_masks(self, side: str, result: MaskSheetResult) -> None:
        view = self.query_one(f"#masks-{side}", PreviewImage)
        view.display = True
        view.load(Path(result.output))
        drawn = f"occlusion model {result.mask_model}" if result.mask_model else "hull only"
        labels = f", {result.labelled} labelled" if result.labelled else ""
        self.query_one("#faces-status", Static).update(
            f"{side.upper()} masks ({drawn}{labels}): {result.output}"
        )

    # ---- extracting (worker) -------------------------------------------------------------

    @work(thread=True, group="extract")
    def _extract(
        self, plan: list[tuple[str, str, list[Path], list[Path]]], cancel: CancelToken
    ) -> None:
        from engine.config import ExtractConfig, build
        from engine.extract import extract
        from engine.facesets import describe_faceset
        from engine.workspace import Workspace

        ws = Workspace(self.workspace)
        for side, name, sources, references in plan:
            config = build(ExtractConfig, sources=sources, faceset=name, references=references)
            result = extract(config, ws, poster(self, side), cancel)
            summary = describe_faceset(ws, name)
            self.post_message(TaskDone(side, {"result": result, "summary": summary}))

    def on_engine_event(self, message: EngineEvent) -> None:
        event, side = message.event, message.task
        status = self.query_one("#faces-status", Static)
        if event.type == "started":
            status.update(f"{side.upper()}: extracting with {event.detail.get('backend', '?')}")
        elif event.type == "progress":
            self.query_one("#faces-progress", ProgressBar).update(
                total=event.total, progress=event.done
            )
            self.query_one("#faces-counts", Static).update(progress_line(side, event))
        elif event.type in ("warning", "info"):
            self.notify(
                event.message, severity="warning" if event.type == "warning" else "information"
            )

    async def on_task_done(self, message: TaskDone) -> None:
        if message.task.startswith("masks-"):
            self._show_masks(message.task.removeprefix("masks-"), message.result)
            return
        side, summary = message.task, message.result["summary"]
        faces_dir = Path(summary["path"]) / "faces"
        await self.query_one(f"#strip-{side}", FaceStrip).show(
            [faces_dir / item["file"] for item in summary["items"]]
        )
        self.query_one(f"#stats-{side}", Static).update(stats_text(summary))
        result: ExtractResult = message.result["result"]
        self.query_one("#faces-status", Static).update(
            f"{side.upper()}: done, {result.faces} new faces in {result.frames} frames"
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if worker_ended(event, "extract"):
            self.cancel = None
            self.refresh_bindings()

    def on_unmount(self) -> None:
        if self.cancel is not None:
            self.cancel.cancel()
