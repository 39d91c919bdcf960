"""Compare: several models trained on the same facesets for the same budget, each
converting the same clip, scored side by side (`swapdeck compare` in the wizard).

The compare runs as a detached job (engine.jobs, kind "compare"), so it outlives
this screen and the wizard. The screen follows the job's events as the Train screen
follows training: a thread worker tails its events file and posts each event; the
handlers own the widgets. Opening the screen while a compare runs re-attaches to it;
when none runs, a report already in the chosen folder is shown without running
anything. A stopped compare resumes when started again (the engine keeps its state).
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
)
from textual.worker import Worker, WorkerState

from engine.compare.report import load_report
from engine.errors import SwapdeckError
from engine.events import Failed, Finished, Info, Metrics, Progress, Started
from engine.events import Warning as EngineWarning
from engine.jobs import Job
from engine.results import CompareResult
from engine.train import registry
from engine.workspace import Workspace
from tui.following import FollowsJob, JobStarted
from tui.messages import EngineEvent
from tui.widgets.path_field import PathField
from tui.widgets.preview_image import PreviewImage

DEFAULT_BUDGET = "20m"
DEFAULT_NAME = "compare"
REPORT_FILE = "report.json"
BEST = "★"
INFO_LINES = 3  # the latest info and warning lines of the job, under its progress


def spec_hint() -> str:
    """The presets a SPEC can name, with examples of their choices (from the registry)."""
    parts = []
    for _, preset in registry.presets():
        examples = []
        for option in preset.choose:
            allowed = preset.allowed.get(option, ())
            words = [v for v in allowed if isinstance(v, str)]
            if words:
                examples += [f"{preset.name}:{v}" for v in words[:3]]
            elif allowed:  # a number: one example, as KEY=VALUE
                examples.append(f"{preset.name}:{option}={allowed[min(1, len(allowed) - 1)]}")
        parts.append(preset.name + (f" ({', '.join(examples)})" if examples else ""))
    return f"presets: {', '.join(parts)}; model:NAME: a trained model"


def default_models() -> str:
    """Each preset once: the comparison DESIGN.md speaks of."""
    return ",".join(preset.name for _, preset in registry.presets())


def default_report(ws: Workspace) -> Path:
    """The most recent compare's folder (so reopening shows its report), or a fresh one."""
    folder = ws.compares_dir
    found = (
        [p for p in folder.iterdir() if (p / REPORT_FILE).is_file() or (p / "state.json").is_file()]
        if folder.is_dir()
        else []
    )
    if found:
        return max(found, key=_mtime)
    return folder / DEFAULT_NAME


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile
        return 0.0


def _losses(losses: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in losses.items())


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


# ---- messages from workers ----------------------------------------------------------------


@dataclass
class ReportLoaded(Message):
    folder: Path
    result: CompareResult | None  # None: the folder holds no readable report
    why: str = ""


# ---- the screen ---------------------------------------------------------------------------


class CompareScreen(FollowsJob, Screen):
    DEFAULT_CSS = """
    CompareScreen #body { height: 1fr; }
    CompareScreen #form { width: 34; padding: 0 1; border-right: solid $panel-lighten-2; }
    CompareScreen .row { height: 1; }
    CompareScreen .row > Label { width: 8; }
    CompareScreen .row > Input, CompareScreen .row > Select { width: 1fr; }
    CompareScreen #hint { height: auto; color: $text-muted; }
    CompareScreen #clip-label { height: 1; }
    CompareScreen #clip { height: 1fr; min-height: 3; }
    CompareScreen #buttons { height: 1; }
    CompareScreen #buttons > Button { width: 1fr; min-width: 8; }
    CompareScreen #start { margin-right: 1; }
    CompareScreen #side { width: 1fr; padding: 0 1; }
    CompareScreen #job { height: auto; text-style: bold; }
    CompareScreen #progress-row { height: 1; }
    CompareScreen #model-line { width: 1fr; }
    CompareScreen #models-bar { width: 16; }
    CompareScreen #stage { height: auto; max-height: 4; }
    CompareScreen #info { height: auto; color: $text-muted; }
    CompareScreen #results { height: auto; max-height: 12; }
    CompareScreen #sheet { height: 1fr; }
    CompareScreen #report-line { height: auto; }
    """

    # Not a text field: while one has focus its letters are typed, and the Footer hides them.
    AUTO_FOCUS = "#start"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("r", "load_report", "Load report"),
        Binding("l", "toggle_image", "Losses/sheet"),
    ]

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self.ws = Workspace(workspace)
        self.starting = False
        self.stopping = False
        self.result: CompareResult | None = None  # the report shown
        self.showing = "sheet"  # or "chart": what the image shows of the report
        self._models: list[str] = []  # the followed compare's SPECs, in order
        self._info: collections.deque[str] = collections.deque(maxlen=INFO_LINES)

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        facesets = self.ws.faceset_names()
        options = [(name, name) for name in facesets]
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="form"):
                yield self._row(
                    "face A",
                    Select(
                        options,
                        value=facesets[0] if facesets else Select.NULL,
                        compact=True,
                        id="faceset-a",
                    ),
                )
                yield self._row(
                    "face B",
                    Select(
                        options,
                        value=facesets[1] if len(facesets) > 1 else Select.NULL,
                        compact=True,
                        id="faceset-b",
                    ),
                )
                yield self._row("models", Input(default_models(), compact=True, id="models"))
                yield Static(spec_hint(), id="hint", markup=False)
                yield self._row(
                    "budget",
                    Input(DEFAULT_BUDGET, placeholder="20m or 200k", compact=True, id="budget"),
                )
                yield self._row(
                    "report", Input(str(default_report(self.ws)), compact=True, id="report")
                )
                yield Label("clip: a video of person A", id="clip-label")
                yield PathField(placeholder="the clip every model converts", id="clip")
                with Horizontal(id="buttons"):
                    yield Button("Start", id="start", compact=True, variant="primary")
                    yield Button("Stop", id="stop", compact=True, variant="error")
            with Vertical(id="side"):
                yield Static("no compare running", id="job")
                with Horizontal(id="progress-row"):
                    yield Static("", id="model-line")
                    yield ProgressBar(total=1, show_eta=False, id="models-bar")
                yield Static("", id="stage")
                yield Static("", id="info")
                yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
                yield PreviewImage(id="sheet")
                yield Static("", id="report-line")
        yield Footer()

    @staticmethod
    def _row(label: str, control: Input | Select) -> Horizontal:
        return Horizontal(Label(label), control, classes="row")

    def on_mount(self) -> None:
        self.query_one("#progress-row").display = False
        self.query_one(PreviewImage).show_note("no report yet")
        if len(self.ws.faceset_names()) < 2:
            self._stage("needs two facesets: extract faces first (f)")

    # ---- following a job (tui.following finds it, replays and tails it) --------------------

    job_kind = "compare"

    def _event_message(self, generation: int, event: Any) -> EngineEvent:
        # The task tells an older follower's events apart, so they are dropped.
        return EngineEvent(event, f"job{generation}")

    def _attached(self, job: Job, history: list[Any]) -> None:
        self._fill_from(job.spec)
        self._clear_progress()

    def _nothing_to_follow(self) -> None:
        self._load_soon(quiet=True)  # a report already in the folder, if any

    def on_engine_event(self, message: EngineEvent) -> None:
        if message.task != f"job{self._generation}" or not self.following:
            return
        event = message.event
        if isinstance(event, Started):
            self._started(event)
        elif isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, Metrics):
            line = f"train: step {event.step:,}  {_losses(event.losses)}"
            if event.examples_per_s:
                line += f"  {event.examples_per_s:.0f} ex/s"
            eta = event.extra.get("eta_s")
            if eta is not None:
                line += f"  eta {_duration(eta)}"
            self._stage(line)
        elif isinstance(event, Info):
            self._add_info(event.message)
        elif isinstance(event, EngineWarning):
            self._add_info(f"warning: {event.message}" + (f" ({event.hint})" if event.hint else ""))
        elif isinstance(event, Finished):
            self._finished(event)
        elif isinstance(event, Failed):
            self._stage(Text(f"failed: {event.message}\n{event.hint}".strip(), style="red"))

    def _started(self, event: Started) -> None:
        if event.stage == "compare":
            self._models = [str(m) for m in event.detail.get("models", [])]
            budget = event.detail.get("budget")
            self._add_info(f"{len(self._models)} models, {budget}" if budget else "started")
            return
        where = event.detail.get("device")
        self._stage(f"{event.stage}…" + (f" on {where}" if where else ""))

    def _progress(self, event: Progress) -> None:
        if event.stage == "compare":
            total = event.total or len(self._models) or 1
            bar = self.query_one("#models-bar", ProgressBar)
            bar.update(total=total, progress=event.done)
            self.query_one("#progress-row").display = True
            if event.done < total:
                spec = self._models[event.done] if event.done < len(self._models) else ""
                line = f"model {event.done + 1}/{total}: {spec}"
            else:
                line = f"{total} models done: writing the report"
            self.query_one("#model-line", Static).update(Text(line))
            return
        total = "?" if event.total is None else f"{event.total:,}"
        self._stage(f"{event.stage}: {event.done:,}/{total} {event.unit}")

    def _finished(self, event: Finished) -> None:
        if event.stage != "compare":
            stopped = " (stopped)" if event.result.get("stopped") else ""
            self._stage(f"{event.stage}: done{stopped}")
            return
        try:
            result = CompareResult.model_validate(event.result)
        except ValidationError:
            self._stage(Text("the compare finished, but its result is unreadable", style="red"))
            return
        self.query_one("#model-line", Static).update(Text(f"{len(result.models)} models compared"))
        self._stage(f"finished in {_duration(result.seconds)}")
        self._show_result(result)

    def _job_ended(self, job: Job) -> None:
        if job.state == "failed" and job.reason:
            self._stage(Text(f"failed: {job.reason}", style="red"))
        elif job.state == "stopped":
            self._stage("stopped: s starts it again, and it goes on where it stopped")
        elif job.state == "finished" and self.result is None:
            self._load_soon(quiet=True)  # its Finished event was not read (a torn line)

    # ---- the form -------------------------------------------------------------------------

    def _fill_from(self, spec: dict[str, Any]) -> None:
        """Show what the followed job compares (it may have been started elsewhere)."""
        for selector, key in (("#faceset-a", "faceset_a"), ("#faceset-b", "faceset_b")):
            with contextlib.suppress(Exception):  # a faceset the options lack: leave it
                self.query_one(selector, Select).value = spec.get(key)
        models = spec.get("models")
        if isinstance(models, list):
            self.query_one("#models", Input).value = ",".join(map(str, models))
        for selector, key in (("#budget", "budget"), ("#report", "report")):
            if spec.get(key):
                self.query_one(selector, Input).value = str(spec[key])
        if spec.get("clip"):
            self.query_one(PathField).value = Path(str(spec["clip"]))

    def _values(self) -> dict[str, Any] | str:
        """What the form says, as CompareConfig fields (checked by the engine), or what is
        missing."""
        face_a = self.query_one("#faceset-a", Select).value
        face_b = self.query_one("#faceset-b", Select).value
        if face_a is Select.NULL or face_b is Select.NULL:
            return "choose faceset A and faceset B"
        clip = self.query_one(PathField).value
        if clip is None:
            return "choose the clip every model converts"
        report = self.query_one("#report", Input).value.strip()
        if not report:
            return "give the report folder"
        texts = self.query_one("#models", Input).value.split(",")
        return {
            "faceset_a": face_a,
            "faceset_b": face_b,
            "models": [t.strip() for t in texts if t.strip()],
            "clip": clip.absolute(),  # the job runs in the workspace, not here
            "budget": self.query_one("#budget", Input).value.strip(),
            "report": Path(report).expanduser().absolute(),
        }

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    @on(Input.Changed, "#report")
    def _report_changed(self) -> None:
        if not self.following and not self.starting:
            self._load_soon(quiet=True)

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    # ---- reports ----------------------------------------------------------------------------

    def _report_folder(self) -> Path | None:
        text = self.query_one("#report", Input).value.strip()
        return Path(text).expanduser().absolute() if text else None

    def _load_soon(self, quiet: bool) -> None:
        folder = self._report_folder()
        if folder is None:
            if not quiet:
                self._stage(Text("give the report folder", style="red"))
            return
        if quiet and not (folder / REPORT_FILE).is_file():
            if self.result is not None and Path(self.result.report_json).parent != folder:
                self._clear_result()  # another folder: its report is not this one
            return
        self._load_worker(folder, quiet)

    @work(thread=True, exclusive=True, group="report")
    def _load_worker(self, folder: Path, quiet: bool) -> None:
        try:
            result = load_report(folder)
        except SwapdeckError as exc:
            if not quiet:
                raise  # the app's one error dialog
            self.post_message(ReportLoaded(folder, None, exc.one_line()))
            return
        self.post_message(ReportLoaded(folder, result))

    def on_report_loaded(self, message: ReportLoaded) -> None:
        if self.following or self.starting or message.folder != self._report_folder():
            return  # the form moved on meanwhile
        if message.result is None:
            self._clear_result()
            self._stage(Text(message.why, style="yellow"))
            return
        self._show_result(message.result)
        self._stage(f"report of {message.result.name} ({len(message.result.models)} models)")

    def _show_result(self, result: CompareResult) -> None:
        """The results table (the best of each column starred, in bold), the contact sheet,
        and where the report is."""
        from engine.compare.report import columns

        self.result = result
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        cols = columns(result.models)
        table.add_column("model", key="model")
        for col in cols:
            table.add_column(col.header, key=col.key)
        for model in result.models:
            cells: list[Text] = []
            for col in cols:
                text = col.format(col.value(model))
                if model.spec in result.best.get(col.key, []):
                    cells.append(Text(f"{BEST}{text}", style="bold", justify="right"))
                else:
                    cells.append(Text(text, justify="right"))
            table.add_row(Text(model.spec), *cells, key=model.spec)
        self.query_one("#report-line", Static).update(Text(f"report: {result.report}"))
        self._show_image()
        self.refresh_bindings()

    def _show_image(self) -> None:
        if self.result is None:
            return
        path = self.result.chart if self.showing == "chart" else self.result.sheet
        if path is None:
            self.query_one(PreviewImage).show_note("no contact sheet: no model converts footage")
        else:
            self.query_one(PreviewImage).load(Path(path))

    def _clear_result(self) -> None:
        self.result = None
        self.query_one("#results", DataTable).clear(columns=True)
        self.query_one(PreviewImage).show_note("no report yet")
        self.query_one("#report-line", Static).update("")
        self.refresh_bindings()

    def _clear_progress(self) -> None:
        self._models = []
        self._info.clear()
        self.query_one("#info", Static).update("")
        self.query_one("#progress-row").display = False
        self.query_one("#models-bar", ProgressBar).update(total=1, progress=0)
        self.query_one("#model-line", Static).update("")
        self._stage("")

    # ---- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only the keys that apply now are shown: the Footer at 80 columns has little room.
        busy = self.following or self.starting
        if action in ("start", "load_report"):
            return not busy
        if action == "stop":
            running = self.job is not None and self.job.running
            return self.following and running and not self.stopping
        if action == "toggle_image":
            return self.result is not None
        return True

    def _refresh_state(self) -> None:
        self.refresh_bindings()
        self.query_one("#job", Static).update(Text(self._job_line()))
        busy = self.following or self.starting
        for selector in ("#faceset-a", "#faceset-b", "#models", "#budget", "#report", "#start"):
            self.query_one(selector).disabled = busy
        self.query_one(PathField).disabled = busy
        self.query_one("#stop", Button).disabled = not self.check_action("stop", ())

    def _job_line(self) -> str:
        if self.job is None:
            return "starting…" if self.starting else "no compare running"
        if self.stopping:
            how = "stopping"
        elif self.job.running:
            how = "running, following" if self.following else "running"
        else:
            how = self.job.state
        return f"job {self.job.id}: {how}"

    def _stage(self, text: str | Text) -> None:
        # Text, not markup: engine messages may hold brackets.
        self.query_one("#stage", Static).update(text if isinstance(text, Text) else Text(text))

    def _add_info(self, line: str) -> None:
        self._info.append(line)
        self.query_one("#info", Static).update(Text("\n".join(self._info)))

    def action_start(self) -> None:
        if self.following or self.starting:
            return
        values = self._values()
        if isinstance(values, str):
            self._stage(Text(values, style="red"))
            return
        self.starting = True
        self.job = None
        self._clear_result()
        self._clear_progress()
        self._stage("checking the models, budget, facesets and clip…")
        self._refresh_state()
        self._start_worker(values)

    @work(thread=True, group="start")
    def _start_worker(self, values: dict[str, Any]) -> None:
        """Everything checked by the engine first: a bad SPEC is one dialog, and no job."""
        from engine.compare.run import compare_name, plan
        from engine.config import CompareConfig, build
        from engine.jobs import start_job

        config = build(CompareConfig, **values)
        plan(self.ws, config)
        job = start_job(self.ws, "compare", compare_name(config), config.model_dump(mode="json"))
        self.post_message(JobStarted(job))

    def _job_started(self, job: Job) -> None:
        self._stage(f"started job {job.id}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app shows the error dialog (the event bubbles on); here the screen only unblocks.
        # (FollowsJob's handler unblocks a failed stop or follower.)
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "start":
            self.starting = False
            self._stage(Text("not started", style="red"))
        self._refresh_state()

    # x: FollowsJob.action_stop asks the job to stop.
    def _stop_asked(self) -> None:
        self._stage("stopping: the stage under way saves first…")

    def action_load_report(self) -> None:
        if not (self.following or self.starting):
            self._load_soon(quiet=False)

    def action_toggle_image(self) -> None:
        self.showing = "sheet" if self.showing == "chart" else "chart"
        self._show_image()
