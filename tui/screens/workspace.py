"""Screen 1: open or create a workspace, and see its facesets, models and running jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

# How often the jobs list is read again: jobs start and end while the screen is open.
# (Facesets and models are read on open, on refresh and on coming back to this screen.)
JOBS_REFRESH_S = 5.0


@dataclass
class Listing:
    """What a workspace holds, read from disk without loading any model."""

    root: Path
    exists: bool
    facesets: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)


def _list_jobs(root: Path) -> list[dict[str, Any]]:
    from engine import jobs
    from engine.workspace import Workspace

    return [
        {"id": j.id, "kind": j.kind, "model": j.model, "state": j.state}
        for j in jobs.list_jobs(Workspace(root))
    ]


def read_listing(path: Path, create: bool = False) -> Listing:
    """List a workspace; `create` makes it (and proves it writable) first."""
    from engine.facesets import list_facesets
    from engine.model_index import list_models
    from engine.workspace import Workspace

    ws = Workspace(path)
    if create or (ws.root.exists() and not ws.root.is_dir()):
        ws.ensure()  # creates it, or says why it cannot (a file, not writable)
    if not ws.root.is_dir():
        return Listing(root=path, exists=False)
    return Listing(
        root=path,
        exists=True,
        facesets=list_facesets(ws),
        models=list_models(ws),
        jobs=_list_jobs(ws.root),
    )


class Listed(Message):
    def __init__(self, listing: Listing) -> None:
        super().__init__()
        self.listing = listing


class JobsListed(Message):
    def __init__(self, root: Path, jobs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.root = root
        self.jobs = jobs


class WorkspaceScreen(Screen):
    """Open or create a workspace; list its facesets, models and jobs."""

    AUTO_FOCUS = "#ws-facesets"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open", "Open/create"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self._listing: Listing | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="ws-open"):
            yield Input(str(self.workspace), placeholder="workspace folder", id="ws-path")
            yield Button("Open", id="ws-open-button")
        yield Static("", id="ws-status")
        with VerticalScroll(id="ws-lists"):
            yield Label("Facesets", classes="section")
            yield DataTable(id="ws-facesets", cursor_type="row", zebra_stripes=True)
            yield Label("Models", classes="section")
            yield DataTable(id="ws-models", cursor_type="row", zebra_stripes=True)
            yield Label("Jobs", classes="section")
            yield DataTable(id="ws-jobs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ws-facesets", DataTable).add_columns(
            "name", "faces", "size", "tracked", "sources"
        )
        self.query_one("#ws-models", DataTable).add_columns(
            "name", "preset", "size", "A", "B", "step"
        )
        self.query_one("#ws-jobs", DataTable).add_columns("id", "kind", "model", "state")
        # After the first paint: the listing's imports (numpy, pydantic) would hold the GIL
        # while the screen is being drawn for the first time.
        self.call_after_refresh(self.load, self.workspace)
        self.set_interval(JOBS_REFRESH_S, self._poll_jobs)

    def on_screen_resume(self) -> None:
        # Coming back from the Faces or Train screen: there may be new facesets and models.
        if self.is_mounted:
            self.action_refresh()

    # ---- actions -----------------------------------------------------------------------

    def action_open(self) -> None:
        text = self.query_one("#ws-path", Input).value.strip()
        if text:
            self.load(Path(text).expanduser(), create=True)

    def action_refresh(self) -> None:
        self.load(self.workspace)

    @on(Input.Submitted, "#ws-path")
    @on(Button.Pressed, "#ws-open-button")
    def _open_requested(self) -> None:
        self.action_open()

    # ---- work --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="listing")
    def load(self, path: Path, create: bool = False) -> None:
        self.post_message(Listed(read_listing(path, create)))

    @work(thread=True, exclusive=True, group="jobs")
    def _poll_jobs(self) -> None:
        root = self.workspace
        if root.is_dir():
            self.post_message(JobsListed(root, _list_jobs(root)))

    def on_jobs_listed(self, message: JobsListed) -> None:
        if message.root == self.workspace and self._listing is not None:
            self._listing.jobs = message.jobs
            self._fill_jobs(self._listing)

    async def on_listed(self, message: Listed) -> None:
        listing = message.listing
        if listing.root != self.workspace:
            self.workspace = listing.root
            await self.app.set_workspace(listing.root)  # type: ignore[attr-defined]
        self._fill(listing)

    def _fill(self, listing: Listing) -> None:
        self._listing = listing
        facesets = self.query_one("#ws-facesets", DataTable)
        facesets.clear()
        for f in listing.facesets:
            facesets.add_row(f["name"], f["faces"], f["size"], f["tracked"], f["sources"])
        models = self.query_one("#ws-models", DataTable)
        models.clear()
        for m in listing.models:
            step = "-" if m["step"] is None else m["step"]
            models.add_row(m["name"], m["preset"], m["size"], m["faceset_a"], m["faceset_b"], step)
        self._fill_jobs(listing)

    def _fill_jobs(self, listing: Listing) -> None:
        jobs = self.query_one("#ws-jobs", DataTable)
        jobs.clear()
        running = 0
        for j in listing.jobs:
            jobs.add_row(j["id"], j["kind"], j["model"], j["state"])
            running += j["state"] == "running"
        self.query_one("#ws-status", Static).update(self._status(listing, running))

    @staticmethod
    def _status(listing: Listing, running: int) -> str:
        if not listing.exists:
            return "not created yet: Open (o) creates it"
        return (
            f"{len(listing.facesets)} faceset(s), {len(listing.models)} model(s), "
            f"{running} running job(s)"
        )
