"""Reenact: a portrait moved the way a driving video moves, with a fomm model.

Choose the portrait (an image or a folder of them), the driving video, a fomm model
of the workspace and the motion options; `p` renders a few before/after frames here
(the engine's preview), `s` starts the reenactment as a detached job (engine.jobs,
kind "reenact"), which outlives this screen and the wizard, and follows it as the
Compare screen follows a compare. Opening the screen while a reenact job runs
re-attaches to it. When the job finishes, the screen verifies the output's marks and
scores it (keypoint distance to the driving video, identity distance to the portrait).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
)
from textual.worker import Worker, WorkerState

from engine.events import CancelToken, Failed, Finished, Info, Progress, Started
from engine.events import Warning as EngineWarning
from engine.jobs import Job
from engine.results import ReenactResult, ReenactScoreResult
from engine.workspace import Workspace
from tui.following import FollowsJob, JobStarted
from tui.messages import EngineEvent, TaskDone, poster
from tui.widgets.path_field import PathField
from tui.widgets.preview_image import PreviewImage

FAMILY = "fomm"  # the family whose models reenact
PREVIEW_FRAMES = 4
MOTIONS = ("relative", "absolute")
FLAGS = ("adapt_scale", "best_frame", "paste_back")  # ReenactConfig's switches, as checkboxes
NO_MODEL_HINT = (
    "train one (swapdeck train --family fomm) or import the authors' checkpoint "
    "(swapdeck import fomm CHECKPOINT -m NAME)"
)


def fomm_models(ws: Workspace) -> list[str]:
    """The workspace's trained models of the fomm family (the registry says whose a preset is)."""
    from engine.errors import SwapdeckError
    from engine.model_index import list_models
    from engine.train.registry import family_of_preset

    names = []
    for model in list_models(ws):
        with contextlib.suppress(SwapdeckError):  # a preset this swapdeck does not know
            if model["trained"] and family_of_preset(str(model["preset"])).name == FAMILY:
                names.append(model["name"])
    return names


def default_output(ws: Workspace, source: Path, driving: Path, model: str, preview: bool) -> Path:
    """outputs/<portrait>_<driving>_<model>.mp4 (a folder for a folder of portraits)."""
    stem = f"{source.stem if source.is_file() else source.name}_{driving.stem}_{model}"
    outputs = ws.outputs_dir  # absolute (Workspace makes it so): the job runs elsewhere
    if preview:
        return outputs / f"{stem}_preview.png"
    return outputs / (stem if source.is_dir() else f"{stem}.mp4")


def _figure(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


# ---- the screen ---------------------------------------------------------------------------


class ReenactScreen(FollowsJob, Screen):
    DEFAULT_CSS = """
    ReenactScreen #body { height: 1fr; }
    ReenactScreen #inputs { width: 2fr; }
    ReenactScreen #inputs > Label { height: 1; padding: 0 1; }
    ReenactScreen #inputs > PathField { height: 1fr; min-height: 4; }
    ReenactScreen #side { width: 3fr; padding: 0 1; border-left: solid $panel-lighten-2; }
    ReenactScreen .row { height: 1; }
    ReenactScreen .row > Label { width: 8; }
    ReenactScreen .row > Input, ReenactScreen .row > Select { width: 1fr; }
    ReenactScreen .row > Checkbox { width: 1fr; }
    ReenactScreen #buttons { height: 1; margin-top: 1; }
    ReenactScreen #buttons > Button { width: 1fr; min-width: 8; margin-right: 1; }
    ReenactScreen #job { height: 1; text-style: bold; }
    ReenactScreen #progress { width: 100%; height: 1; }
    ReenactScreen #stage { height: auto; max-height: 2; }
    ReenactScreen #result { height: auto; }
    ReenactScreen #frames { height: 1fr; min-height: 3; }
    """

    # Not a text field: while one has focus its letters are typed, and the Footer hides them.
    AUTO_FOCUS = "#start"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "preview", "Preview"),
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("m", "reload_models", "Models"),
    ]

    job_kind = "reenact"

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self.ws = Workspace(workspace)
        self.starting = False
        self.stopping = False
        self.check_cancel: CancelToken | None = None  # verify and score run after the job
        self.preview_cancel: CancelToken | None = None  # a preview renders here
        self.result: ReenactResult | None = None  # the followed job's
        self.lines: dict[str, str] = {}

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="inputs"):
                yield Label("portrait: an image or a folder")
                yield PathField(placeholder="the portrait to move", id="source")
                yield Label("driving video")
                yield PathField(placeholder="the video whose motion it follows", id="driving")
            with Vertical(id="side"):
                yield self._row(
                    "model", Select([], compact=True, prompt="no fomm model", id="model")
                )
                yield self._row(
                    "motion",
                    Select(
                        [(m, m) for m in MOTIONS],
                        value=MOTIONS[0],
                        allow_blank=False,
                        compact=True,
                        id="motion",
                    ),
                )
                yield Horizontal(
                    Checkbox("adapt scale", id="adapt_scale", compact=True),
                    Checkbox("best frame", id="best_frame", compact=True),
                    classes="row",
                )
                yield Horizontal(
                    Checkbox("paste back", id="paste_back", compact=True),
                    Checkbox("overwrite", id="overwrite", compact=True),
                    classes="row",
                )
                yield self._row(
                    "output", Input(placeholder="default: outputs/…", compact=True, id="output")
                )
                with Horizontal(id="buttons"):
                    yield Button("Preview", id="preview", compact=True)
                    yield Button("Start", id="start", compact=True, variant="primary")
                    yield Button("Stop", id="stop", compact=True, variant="error")
                yield Static("no reenact running", id="job")
                yield ProgressBar(total=1, show_eta=False, id="progress")
                yield Static("", id="stage")
                yield Static("", id="result")
                yield PreviewImage(id="frames")
        yield Footer()

    @staticmethod
    def _row(label: str, control: Input | Select) -> Horizontal:
        return Horizontal(Label(label), control, classes="row")

    def on_mount(self) -> None:
        self.query_one(PreviewImage).show_note("p: a few before/after frames")
        self.query_one("#progress", ProgressBar).display = False
        self.action_reload_models()
        self._refresh_state()

    def on_screen_resume(self) -> None:
        # A model trained or imported meanwhile should be offered here. (Textual then calls
        # FollowsJob's handler too, which re-attaches: handlers run for each class.)
        self.action_reload_models()

    def action_reload_models(self) -> None:
        select = self.query_one("#model", Select)
        current = select.value
        names = fomm_models(self.ws)
        select.set_options([(n, n) for n in names])
        if current in names:
            select.value = current
        elif names:
            select.value = names[0]

    # ---- the form -------------------------------------------------------------------------

    def _values(self, preview: bool) -> dict[str, Any]:
        """What the form says, as ReenactConfig fields (checked by the engine)."""
        model = self.query_one("#model", Select).value
        source = self.query_one("#source", PathField).value
        driving = self.query_one("#driving", PathField).value
        values: dict[str, Any] = {
            # The job runs in the workspace, not here: paths must not be relative.
            "source": source.absolute() if source else None,
            "driving": driving.absolute() if driving else None,
            "model": model if isinstance(model, str) else "",
            "relative": self.query_one("#motion", Select).value == "relative",
            **{name: self.query_one(f"#{name}", Checkbox).value for name in FLAGS},
        }
        typed = self.query_one("#output", Input).value.strip()
        if preview:
            values["preview_frames"] = PREVIEW_FRAMES
            values["overwrite"] = True  # a preview replaces the last one
            typed = ""
        else:
            values["overwrite"] = self.query_one("#overwrite", Checkbox).value
        if typed:
            values["output"] = Path(typed).expanduser().absolute()
        elif source and driving and values["model"]:
            values["output"] = default_output(
                self.ws, values["source"], values["driving"], values["model"], preview
            )
        return values

    def _fill_from(self, spec: dict[str, Any]) -> None:
        """Show what the followed job does (it may have been started elsewhere)."""
        for key in ("source", "driving"):
            if spec.get(key):
                self.query_one(f"#{key}", PathField).value = Path(str(spec[key]))
        with contextlib.suppress(Exception):  # a model the options lack: leave it
            self.query_one("#model", Select).value = spec.get("model")
        self.query_one("#motion", Select).value = MOTIONS[0 if spec.get("relative", True) else 1]
        for name in (*FLAGS, "overwrite"):
            self.query_one(f"#{name}", Checkbox).value = bool(spec.get(name, False))
        output, model = spec.get("output"), spec.get("model")
        if output and spec.get("source") and spec.get("driving") and isinstance(model, str):
            source, driving = Path(str(spec["source"])), Path(str(spec["driving"]))
            default = default_output(self.ws, source, driving, model, preview=False)
            # A default stays "default": another portrait then gets its own name.
            self.query_one("#output", Input).value = "" if Path(output) == default else output

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#preview")
    def _preview_pressed(self) -> None:
        self.action_preview()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    # ---- state ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A job is started or followed, or a preview or the checks run here."""
        here = (self.preview_cancel, self.check_cancel)
        return self.following or self.starting or any(c is not None for c in here)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only the keys that apply now are shown: the Footer at 80 columns has little room.
        if action in ("preview", "start"):
            return not self.busy
        if action == "stop":
            if self.preview_cancel is not None or self.check_cancel is not None:
                return True
            running = self.job is not None and self.job.running
            return self.following and running and not self.stopping
        return True

    def _refresh_state(self) -> None:
        self.refresh_bindings()
        self.query_one("#job", Static).update(Text(self._job_line()))
        busy = self.busy
        for selector in ("#model", "#motion", "#output", "#preview", "#start", *_flag_ids()):
            self.query_one(selector).disabled = busy
        for field in self.query(PathField):
            field.disabled = busy
        self.query_one("#stop", Button).disabled = not self.check_action("stop", ())

    def _job_line(self) -> str:
        if self.preview_cancel is not None:
            return "rendering a preview"
        if self.job is None:
            return "starting…" if self.starting else "no reenact running"
        if self.stopping:
            how = "stopping"
        elif self.job.running:
            how = "running, following" if self.following else "running"
        else:
            how = self.job.state
        return f"job {self.job.id}: {how}"

    def _stage(self, text: str | Text) -> None:
        # Text, not markup: engine messages may hold paths with brackets.
        self.query_one("#stage", Static).update(text if isinstance(text, Text) else Text(text))

    def _show_lines(self) -> None:
        self.query_one("#result", Static).update(Text("\n".join(self.lines.values())))

    def _clear(self) -> None:
        self.result = None
        self.lines = {}
        self._show_lines()
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=1, progress=0)
        bar.display = False  # shown by the first progress event: an idle bar says nothing
        self._stage("")

    # ---- preview: rendered here, in a thread worker ----------------------------------------

    def action_preview(self) -> None:
        if self.busy:
            return
        self._clear()
        self.preview_cancel = CancelToken()
        self._stage("rendering a few before/after frames…")
        self._refresh_state()
        self._preview_worker(self._values(preview=True), self.preview_cancel)

    @work(thread=True, group="reenact-preview")
    def _preview_worker(self, values: dict[str, Any], cancel: CancelToken) -> None:
        config = _config(values)  # refused before the engine's heavy imports
        from engine.reenact.run import reenact

        with _stopped_quietly(cancel):
            result = reenact(config, self.ws.ensure(), poster(self, "preview"), cancel)
            self.post_message(TaskDone("preview", result))

    # ---- the job: started, followed (tui.following), stopped --------------------------------

    def action_start(self) -> None:
        if self.busy:
            return
        self.starting = True
        self.job = None
        self._clear()
        self._stage("checking the portrait, video and model…")
        self._refresh_state()
        self._start_worker(self._values(preview=False))

    @work(thread=True, group="start")
    def _start_worker(self, values: dict[str, Any]) -> None:
        """Everything checked by the engine first: bad input is one dialog, and no job."""
        config = _config(values)  # refused before the engine's heavy imports
        from engine.jobs import start_job
        from engine.reenact.run import check

        check(config, self.ws.ensure())  # outputs/ is where results go by default
        job = start_job(self.ws, "reenact", config.model, config.model_dump(mode="json"))
        self.post_message(JobStarted(job))

    def _job_started(self, job: Job) -> None:
        self._stage(f"started job {job.id}")

    def _event_message(self, generation: int, event: Any) -> EngineEvent:
        # The task tells an older follower's events apart, so they are dropped.
        return EngineEvent(event, f"job{generation}")

    def _attached(self, job: Job, history: list[Any]) -> None:
        self._fill_from(job.spec)
        self._clear()
        self._stage("waiting for the job's first word…")  # its process starts (torch loads)

    def _job_ended(self, job: Job) -> None:
        if job.state == "failed" and job.reason:
            self._stage(Text(f"failed: {job.reason}", style="red"))
        elif job.state == "stopped":
            self._stage("stopped: s starts it again")

    def action_stop(self) -> None:
        """x stops the preview or the checks running here, else asks the job to stop."""
        for work_here in (self.preview_cancel, self.check_cancel):
            if work_here is not None:
                work_here.cancel()
                self._stage("stopping…")
                return
        super().action_stop()

    def _stop_asked(self) -> None:
        self._stage("stopping…")

    # ---- events of the job, or of the preview -------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        mine = message.task == f"job{self._generation}" and self.following
        if not mine and message.task != "preview":
            return
        event = message.event
        if isinstance(event, Started):
            self._stage(f"{event.stage}…")
        elif isinstance(event, Progress):
            bar = self.query_one("#progress", ProgressBar)
            bar.update(total=event.total, progress=event.done)
            bar.display = True
            total = "?" if event.total is None else f"{event.total:,}"
            self._stage(f"{event.stage}: {event.done:,}/{total} {event.unit}")
        elif isinstance(event, Info):
            self._stage(event.message)
        elif isinstance(event, EngineWarning):
            hint = f" ({event.hint})" if event.hint else ""
            self.notify(f"{event.message}{hint}", severity="warning", markup=False)
        elif isinstance(event, Finished) and mine and event.stage == self.job_kind:
            self._finished(event)
        elif isinstance(event, Failed):
            self._stage(Text(f"failed: {event.message}\n{event.hint}".strip(), style="red"))

    def _finished(self, event: Finished) -> None:
        if event.result.get("stopped"):
            return  # _job_ended says so
        try:
            result = ReenactResult.model_validate(event.result)
        except ValidationError:
            self._stage(Text("the reenact finished, but its result is unreadable", style="red"))
            return
        self.result = result
        outputs = ", ".join(result.outputs)
        self.lines["output"] = (
            f"output: {outputs} ({result.frames} frames, {result.frames_per_s:.1f} frames/s)"
        )
        self._show_lines()
        self._stage("checking the watermark and scoring…")
        self.check_cancel = CancelToken()
        self._refresh_state()
        self._check_worker(self.job.spec if self.job else {}, result, self.check_cancel)

    @work(thread=True, group="reenact-check")
    def _check_worker(
        self, spec: dict[str, Any], result: ReenactResult, cancel: CancelToken
    ) -> None:
        """verify the marks, then score the output against the driving video and portrait."""
        from engine.provenance import verify
        from engine.reenact.score import score_reenactment

        config = _config(spec)
        output = Path(result.outputs[0])
        self.post_message(TaskDone("verify", verify(output)))
        with _stopped_quietly(cancel):
            scored = score_reenactment(
                self.ws,
                config.model,
                config.driving,
                output,
                _first_portrait(config.source),
                backend=config.backend,
                start=config.start,
                end=config.end,
                sink=poster(self, "score"),
                cancel=cancel,
            )
            self.post_message(TaskDone("score", scored))

    def on_task_done(self, message: TaskDone) -> None:
        result = message.result
        if message.task == "preview":
            picture = result.preview or (result.outputs[0] if result.outputs else None)
            if picture:
                self.query_one(PreviewImage).load(Path(picture))
            self._stage(Text(f"preview: {picture}"))
            return
        if message.task == "verify":
            marked = "true" if result.marked else "false"
            self.lines["verify"] = f"verify: marked={marked} ({result.fraction:.0%} of frames)"
        elif message.task == "score":
            self.lines["score"] = score_line(result)
            self._stage("done")
        self._show_lines()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app shows the error dialog for a failed worker; here the screen only unblocks.
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        group, failed = event.worker.group, event.state == WorkerState.ERROR
        if group == "reenact-preview":
            if failed:
                self._stage(Text("no preview", style="red"))
            elif _cancelled(self.preview_cancel):
                self._stage("preview stopped")
            self.preview_cancel = None
        elif group == "reenact-check":
            if _cancelled(self.check_cancel):
                self._stage("stopped before the score")
            self.check_cancel = None
        elif group == "start" and failed:
            self.starting = False
            self._stage(Text("not started", style="red"))
        # (FollowsJob's handler unblocks a failed stop or follower.)
        self._refresh_state()

    def on_unmount(self) -> None:
        for work_here in (self.preview_cancel, self.check_cancel):
            if work_here is not None:
                work_here.cancel()
        # FollowsJob's own on_unmount stops the follower (Textual calls each class's).


def _flag_ids() -> tuple[str, ...]:
    return (*(f"#{name}" for name in FLAGS), "#overwrite")


def _config(values: dict[str, Any]) -> Any:
    """ReenactConfig from the form (worker thread); what is missing is one BadInputError."""
    from engine.config import ReenactConfig, build
    from engine.errors import BadInputError

    if not values.get("model"):
        raise BadInputError("no fomm model chosen", NO_MODEL_HINT)
    if not values.get("source"):
        raise BadInputError("no portrait chosen", "pick an image or a folder of portraits")
    if not values.get("driving"):
        raise BadInputError("no driving video chosen", "pick the video whose motion it follows")
    return build(ReenactConfig, **values)


def _cancelled(token: CancelToken | None) -> bool:
    return token is not None and token.cancelled


@contextlib.contextmanager
def _stopped_quietly(cancel: CancelToken) -> Iterator[None]:
    """Stopped by the user (x, or leaving): no error dialog, the screen says so."""
    from engine.errors import CancelledError

    try:
        yield
    except CancelledError:
        if not cancel.cancelled:
            raise


def _first_portrait(source: Path) -> Path:
    """The portrait the first output was made from (score takes one at a time): a folder's
    images are read in the order reenact reads them."""
    if not source.is_dir():
        return source
    from engine.media.sources import expand_sources

    return next(item.path for item in expand_sources([source]) if item.kind == "image")


def score_line(result: ReenactScoreResult) -> str:
    """The paper's numbers: keypoint distance (AKD), identity distance (AED), L1."""
    line = (
        f"score: AKD {_figure(result.akd_px, '{:.2f}')} px "
        f"(nme {_figure(result.akd_nme, '{:.3f}')})  AED {_figure(result.aed, '{:.3f}')}"
    )
    if result.reconstruction:
        line += f"  L1 {_figure(result.l1, '{:.4f}')}"
    return f"{line}  ({result.frames_scored}/{result.frames_compared} frames)"
