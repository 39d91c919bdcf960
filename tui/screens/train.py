"""Train: pick a preset and facesets, start a detached training job, and watch it live.

The job runs in its own process (engine.jobs), so it outlives this screen and the
wizard: leaving, quitting or detaching only stops following it. Opening the screen
while a job runs re-attaches to it, replaying its events so the chart shows the
whole run. Following is a thread worker that reads the job's events file a few
times a second and posts them as messages; the handlers own the widgets.

The form follows the chosen preset's family: its faceset rows (fast-swap's A is
optional, "none"; its training inputs are a multi-select of the other facesets) and
the loss names the chart and the stats show (whatever names the run logs).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, SelectionList, Static
from textual.worker import Worker, WorkerState

from engine.config import RunSettings, build, read_toml
from engine.errors import SwapdeckError
from engine.events import Failed, Finished, Info, Metrics, Preview, Saved, Started
from engine.events import Warning as EngineWarning
from engine.jobs import Job
from engine.model_index import read_metrics
from engine.train import registry
from engine.workspace import Workspace, check_name
from tui.following import FollowsJob, JobStarted
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.loss_chart import LossChart, Point
from tui.widgets.preview_image import PreviewImage
from tui.widgets.train_stats import StatsView, TrainStats

# The presets and what each lets one choose come from the families' declarations.
PRESETS = tuple(preset.name for _, preset in registry.presets())
CHOICES = ("size", "layout")  # the form's rows for a preset's `choose`
ARCH_FIELDS = ("#preset", "#faceset-a", "#faceset-b", "#batch", "#size", "#layout")
# The faceset options the form has a Select for (by its id), and the list option
# (kind "facesets") its multi-select sets: a family shows those it has.
FACESET_ROWS = {"faceset_a": "faceset-a", "faceset_b": "faceset-b"}
INPUTS = "inputs"
NONE = "none"  # the blank choice of an optional faceset

# Loss names by family, looked up (off the UI thread: the family's class imports torch)
# when a preset of a family other than the default preset's is picked.


def run_settings_for(steps: int) -> RunSettings:
    """Log, preview and save often enough that a short run still shows a curve and a face."""
    log_every = max(1, min(10, steps // 50))
    preview_every = max(log_every, min(100, steps // 4))
    return build(
        RunSettings,
        steps=steps,
        log_every=log_every,
        preview_every=preview_every,
        save_every=max(1, min(250, steps)),
    )


def losses_of(record: dict[str, Any]) -> dict[str, float]:
    """A metrics.jsonl record's losses by name (it logs each as loss_<name>)."""
    out = {}
    for key, value in record.items():
        if key.startswith("loss_"):
            with contextlib.suppress(TypeError, ValueError):
                out[key.removeprefix("loss_")] = float(value)
    return out


def points_of(records: list[dict[str, Any]]) -> list[Point]:
    out = []
    for r in records:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            out.append((int(r["step"]), losses_of(r)))
    return out


# ---- messages from workers --------------------------------------------------------------


class JobEvents(Message):
    """Engine events of the followed job. A burst collapses into one message *without*
    dropping any: replacing merges the event lists, so the chart gets every point."""

    _seq = 0

    def __init__(self, generation: int, events: list[Any]) -> None:
        super().__init__()
        JobEvents._seq += 1
        self.seq = JobEvents._seq
        self.generation = generation
        self.events = events

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, JobEvents) or message.generation != self.generation:
            return False
        first, second = sorted((self, message), key=lambda m: m.seq)
        first.events.extend(second.events)
        second.events = first.events  # both share the merged list: whichever is kept has all
        return True


class History(Message):
    def __init__(self, model: str, records: list[dict[str, Any]]) -> None:
        super().__init__()
        self.model, self.records = model, records


class Note(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


# ---- the screen ---------------------------------------------------------------------------


class TrainScreen(FollowsJob, Screen):
    DEFAULT_CSS = """
    TrainScreen #body { height: 1fr; }
    TrainScreen #form { width: 32; padding: 0 1; border-right: solid $panel-lighten-2; }
    TrainScreen .row { height: 1; margin-bottom: 0; }
    TrainScreen .row > Label { width: 8; }
    TrainScreen .row > Input, TrainScreen .row > Select { width: 1fr; }
    TrainScreen .hd-only { display: none; }
    TrainScreen.-hd .hd-only { display: block; }
    TrainScreen.-no-faceset-a #row-faceset-a { display: none; }
    TrainScreen.-no-faceset-b #row-faceset-b { display: none; }
    TrainScreen #row-inputs { display: none; height: auto; max-height: 4; }
    TrainScreen.-inputs #row-inputs { display: block; }
    TrainScreen #inputs { height: auto; max-height: 4; }
    TrainScreen #start { width: 100%; margin-top: 1; }
    TrainScreen #job { height: auto; margin-top: 1; text-style: bold; }
    TrainScreen #status { height: auto; }
    TrainScreen #gpu { margin-top: 1; color: $text-muted; }
    TrainScreen #live { width: 1fr; }
    TrainScreen #bottom { height: 9; }
    TrainScreen #stats { width: 24; padding: 0 1; }
    TrainScreen #preview { width: 1fr; }
    """

    # Not a text field: while one has focus its letters are typed, and the Footer hides them.
    AUTO_FOCUS = "#start"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("n", "save_now", "Save now"),
        Binding("d", "detach", "Detach"),
        Binding("a", "attach", "Attach"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self.ws = Workspace(workspace)
        self.stopping = False
        self.starting = False
        self._view = StatsView()
        self._preview_due: Path | None = None
        self._preview_read = 0.0
        self._preview_stamp: tuple[Path, int] | None = None
        self._shown_model: str | None = None
        self.facesets: list[str] = []
        # The inputs an existing model trains on as ticks (None: a new model).
        self._model_inputs: set[str] | None = None

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        facesets = self.facesets = self.ws.faceset_names()
        options = [(name, name) for name in facesets]
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="form"):
                yield self._row(
                    "preset",
                    Select(
                        [(p, p) for p in PRESETS],
                        value=registry.default_preset(),
                        allow_blank=False,
                        compact=True,
                        id="preset",
                    ),
                )
                yield self._row("model", Input(self._default_model(), compact=True, id="model"))
                yield self._row(
                    "face A",
                    Select(
                        options,
                        value=facesets[0] if facesets else Select.NULL,
                        compact=True,
                        id="faceset-a",
                    ),
                    id="row-faceset-a",
                )
                yield self._row(
                    "face B",
                    Select(
                        options,
                        value=facesets[1] if len(facesets) > 1 else Select.NULL,
                        compact=True,
                        id="faceset-b",
                    ),
                    id="row-faceset-b",
                )
                yield self._row(
                    "inputs", SelectionList[str](compact=True, id="inputs"), id="row-inputs"
                )
                yield self._row("steps", Input("1000", type="integer", compact=True, id="steps"))
                yield self._row(
                    "batch", Input(placeholder="preset's", type="integer", compact=True, id="batch")
                )
                yield self._row(
                    "size",
                    Select(
                        [(str(s), s) for s in self._allowed("size")],
                        value=self._allowed("size")[0],
                        allow_blank=False,
                        compact=True,
                        id="size",
                    ),
                    classes="hd-only",
                )
                yield self._row(
                    "layout",
                    Select(
                        [(v, v) for v in self._allowed("layout")],
                        value=self._allowed("layout")[0],
                        allow_blank=False,
                        compact=True,
                        id="layout",
                    ),
                    classes="hd-only",
                )
                yield Button("Start training", id="start", compact=True, variant="primary")
                yield Static("no job running", id="job")
                yield Static("", id="status")
                yield GpuPanel(id="gpu")
            with Vertical(id="live"):
                yield LossChart(id="chart")
                with Horizontal(id="bottom"):
                    yield TrainStats(id="stats")
                    yield PreviewImage(id="preview")
        yield Footer()

    @staticmethod
    def _allowed(option: str) -> tuple[Any, ...]:
        """The values any preset offers for `option`, in order (the form's initial choices)."""
        seen: dict[Any, None] = {}
        for _, preset in registry.presets():
            if option in preset.choose:
                seen.update(dict.fromkeys(preset.allowed[option]))
        return tuple(seen) or ("",)

    @staticmethod
    def _row(
        label: str,
        control: Input | Select | SelectionList,
        classes: str = "",
        id: str | None = None,
    ) -> Horizontal:
        return Horizontal(Label(label), control, classes=f"row {classes}".strip(), id=id)

    def _default_model(self) -> str:
        """The most recently trained model, or a fresh name."""
        models = self.ws.models_dir
        found = sorted(
            (p for p in models.glob("*/model.toml")) if models.is_dir() else [],
            key=lambda p: p.parent.stat().st_mtime,
        )
        return found[-1].parent.name if found else "model"

    def on_mount(self) -> None:
        if len(self.facesets) < 2:
            self._status("needs two facesets: extract faces first")
        self._refresh_inputs()
        self._model_changed(self.query_one("#model", Input).value)

    # ---- following a job (tui.following finds it, replays and tails it) --------------------

    job_kind = "train"

    def _history_of(self, job: Job) -> list[Point]:
        # Earlier runs of the model are only in metrics.jsonl; this run's events replay after.
        return points_of(read_metrics(self.ws.model_dir(job.model) / "metrics.jsonl"))

    def _event_message(self, generation: int, event: Any) -> JobEvents:
        return JobEvents(generation, [event])

    def _attached(self, job: Job, history: list[Point]) -> None:
        self._view = StatsView()
        self._set_model(job.model)
        chart = self.query_one(LossChart)
        chart.clear_points()
        chart.add_points(history)
        if history:
            step, losses = history[-1]
            self._view = StatsView(step=step, losses=dict(losses))
        elif (family := self._form_family()) is not None:
            self._placeholder_losses(family)
        self._show_preview_soon(self.ws.model_dir(job.model) / "previews" / "latest.png")

    def on_job_events(self, message: JobEvents) -> None:
        if message.generation != self._generation:
            return
        points: list[Point] = []
        view = self._view
        for event in message.events:
            if isinstance(event, Metrics):
                points.append((event.step, dict(event.losses)))
                total = event.extra.get("total_steps")
                view.step, view.losses = event.step, dict(event.losses)
                view.total = int(total) if total else view.total
                view.examples_per_s = event.examples_per_s
                view.eta_s = event.extra.get("eta_s")
                view.lr = event.extra.get("lr", view.lr)
            elif isinstance(event, Started):
                view.total = int(event.detail.get("steps") or 0) or view.total
                if view.total:
                    self.query_one("#steps", Input).value = str(view.total)
                where = event.detail.get("device", "?")
                self._status(f"{event.detail.get('preset')} on {where}")
            elif isinstance(event, Preview):
                self._show_preview_soon(Path(event.path))
            elif isinstance(event, Saved):
                self._status(f"saved {event.what}")
            elif isinstance(event, EngineWarning):
                self._status(f"warning: {event.message}\n{event.hint}", "yellow")
            elif isinstance(event, Info):
                self._status(event.message)
            elif isinstance(event, Finished):
                view.eta_s = 0.0
                word = "stopped" if event.result.get("stopped") else "finished"
                self._status(f"{word} at step {event.result.get('steps')}; checkpoint saved")
            elif isinstance(event, Failed):
                self._status(f"failed: {event.message}\n{event.hint}", "red")
        self.query_one(LossChart).add_points(points)
        self.query_one(TrainStats).show(view)

    def _job_ended(self, job: Job) -> None:
        if job.state == "failed" and job.reason:
            self._status(f"failed: {job.reason}", "red")

    # ---- previews: read at most every few seconds, however many events named one ---------

    PREVIEW_EVERY_S = 2.0

    def _show_preview_soon(self, path: Path) -> None:
        if self._preview_due is None:
            wait = max(0.3, self._preview_read + self.PREVIEW_EVERY_S - time.monotonic())
            self.set_timer(wait, self._load_preview)
        self._preview_due = path

    def _load_preview(self) -> None:
        path, self._preview_due = self._preview_due, None
        try:
            stamp = (path, path.stat().st_mtime_ns) if path is not None else None
        except OSError:
            return
        if stamp is not None and stamp != self._preview_stamp:  # a new grid, not a replay
            self._preview_read = time.monotonic()
            if self.query_one(PreviewImage).load(stamp[0]):
                self._preview_stamp = stamp

    # ---- the form ---------------------------------------------------------------------------

    def _set_model(self, name: str) -> None:
        field = self.query_one("#model", Input)
        if field.value != name:
            field.value = name  # its Changed event refills the form
        else:
            self._model_changed(name)

    @on(Input.Changed, "#model")
    def _model_input(self, event: Input.Changed) -> None:
        self._model_changed(event.value)

    def _model_changed(self, name: str) -> None:
        """An existing model keeps its frozen settings: show them, and its chart when idle."""
        toml = self._model_toml(name)
        frozen = toml is not None
        if frozen:
            with contextlib.suppress(SwapdeckError):
                self._fill_from(read_toml(toml))
        for selector in ARCH_FIELDS:
            self.query_one(selector).disabled = frozen or self.following
        # Unfrozen: an existing model may be given other inputs when it trains on.
        self.query_one("#inputs").disabled = self.following
        if not frozen:
            self._model_inputs = None
        if not self.following and name != self._shown_model:
            self._shown_model = name
            self._history_worker(name)

    def _model_toml(self, name: str) -> Path | None:
        try:
            path = self.ws.model_dir(name) / "model.toml"
        except SwapdeckError:
            return None
        return path if path.is_file() else None

    def _fill_from(self, settings: dict[str, Any]) -> None:
        values = {
            "#preset": settings.get("preset"),
            # A faceset the model does without (fast-swap's A) shows as "none".
            "#faceset-a": settings.get("faceset_a") or Select.NULL,
            "#faceset-b": settings.get("faceset_b") or Select.NULL,
            "#size": settings.get("size"),
            "#layout": settings.get("layout"),
        }
        for selector, value in values.items():
            select = self.query_one(selector, Select)
            with contextlib.suppress(Exception):  # a value the options lack (faceset removed)
                select.value = value
        batch = settings.get("batch_size")
        self.query_one("#batch", Input).value = str(batch) if batch else ""
        inputs = settings.get(INPUTS)
        if isinstance(inputs, list):
            # Empty: every faceset but B's, whichever there are when it trains.
            self._refresh_inputs(inputs or self._input_names())
            self._model_inputs = set(self._ticked())

    # ---- the family's rows: facesets and inputs ---------------------------------------------

    def _input_names(self) -> list[str]:
        """The facesets that can be inputs: all but B's (every one for a family without a B,
        such as occlusion)."""
        family = self._form_family()
        if family is None or "faceset_b" not in {
            o.name for o in registry.get_family(family).options
        }:
            return list(self.facesets)
        b = self.query_one("#faceset-b", Select).value
        return [name for name in self.facesets if name != b]

    def _ticked(self) -> list[str]:
        return list(self.query_one("#inputs", SelectionList).selected)

    def _refresh_inputs(self, chosen: list[str] | None = None) -> None:
        """List every faceset but B's; tick `chosen` (None: all, keeping what was unticked)."""
        box: SelectionList[str] = self.query_one("#inputs", SelectionList)
        if chosen is None:
            shown = {box.get_option_at_index(i).value for i in range(box.option_count)}
            unticked = shown - set(box.selected)
            ticks = {name for name in self.facesets if name not in unticked}
        else:
            ticks = set(chosen)
        box.clear_options()
        box.add_options([(name, name, name in ticks) for name in self._input_names()])

    @on(Select.Changed, "#faceset-b")
    def _b_changed(self) -> None:
        self._refresh_inputs()

    def _show_family(self, info: registry.FamilyInfo) -> None:
        """The faceset rows `info` has; an optional A offers "none" (and a new model starts so)."""
        names = {option.name for option in info.options}
        for option, control in FACESET_ROWS.items():
            self.set_class(option not in names, f"-no-{control}")
        self.set_class(INPUTS in names, "-inputs")
        if INPUTS in names:  # which facesets can be inputs depends on the family (B or none)
            self._refresh_inputs()
        face_a = self.query_one("#faceset-a", Select)
        optional = "faceset_a" in names and info.option("faceset_a").optional
        if optional != (face_a.prompt == NONE):
            face_a.prompt = NONE if optional else "Select"
            if self._model_toml(self.query_one("#model", Input).value) is None:
                b = self.query_one("#faceset-b", Select).value
                first = next((n for n in self.facesets if n != b), Select.NULL)
                face_a.value = Select.NULL if optional else first
        self._placeholder_losses(info.name)

    # ---- loss names before a run has logged any -----------------------------------------------

    def _placeholder_losses(self, family: str) -> None:
        """Name the stats panel's losses as `family` does while nothing is logged yet."""
        if self._view.step is not None:
            return  # the shown run's own names
        names = registry.get_family(family).loss_names
        self._view = StatsView(total=self._view.total, losses=dict.fromkeys(names))
        self.query_one(TrainStats).show(self._view)

    def _form_family(self) -> str | None:
        try:
            return registry.family_of_preset(str(self.query_one("#preset", Select).value)).name
        except SwapdeckError:
            return None

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        """Offer the choices the preset declares, with the values it accepts."""
        try:
            info = registry.family_of_preset(str(event.value))
        except SwapdeckError:
            return
        preset = info.preset(str(event.value))
        defaults = info.defaults(preset.name)
        for option in CHOICES:
            if option not in preset.choose:
                continue
            select = self.query_one(f"#{option}", Select)
            allowed = preset.allowed[option]
            keep = select.value if select.value in allowed else defaults[option]
            select.set_options([(str(v), v) for v in allowed])
            select.value = keep
        self.set_class(bool(preset.choose), "-hd")
        self._show_family(info)

    @staticmethod
    def _chosen(preset: str) -> tuple[str, ...]:
        try:
            return registry.family_of_preset(preset).preset(preset).choose
        except SwapdeckError:
            return ()

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_leave_field(self) -> None:
        self.set_focus(None)  # so the letter keys act on the screen again

    @work(thread=True, exclusive=True, group="history")
    def _history_worker(self, model: str) -> None:
        try:
            path = self.ws.model_dir(model) / "metrics.jsonl"
        except SwapdeckError:
            return
        self.post_message(History(model, read_metrics(path)))

    def on_history(self, message: History) -> None:
        if self.following or message.model != self.query_one("#model", Input).value:
            return
        chart = self.query_one(LossChart)
        chart.clear_points()
        chart.add_points(points_of(message.records))
        last = message.records[-1] if message.records else {}
        self._view = StatsView(
            step=last.get("step"),
            examples_per_s=last.get("examples_per_s"),
            lr=last.get("lr"),
            losses=dict(losses_of(last)),
        )
        family = self._form_family()
        if not last and family is not None:
            self._placeholder_losses(family)
        self.query_one(TrainStats).show(self._view)
        steps = self.query_one("#steps", Input)
        done = int(last.get("step") or 0)
        if done and int(steps.value or 0) <= done:  # --steps is the step to train until
            steps.value = str(done + 1000)
        latest = self._model_toml(message.model)
        if latest is not None:
            self._show_preview_soon(latest.parent / "previews" / "latest.png")
        else:
            self.query_one(PreviewImage).show_note("no preview yet")
            self._preview_stamp = None

    # ---- actions ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only the keys that apply now are shown: the Footer at 80 columns has little room.
        running = self.job is not None and self.job.running
        if action == "start":
            return not (self.following or self.starting)
        if action in ("stop", "save_now", "detach"):
            return self.following and running and (not self.stopping or action == "detach")
        if action == "attach":
            return not self.following and running
        return True

    def _refresh_state(self) -> None:
        self.refresh_bindings()
        self.query_one("#job", Static).update(Text(self._job_line()))
        busy = self.following or self.starting
        self.query_one("#start", Button).disabled = busy
        for selector in ("#model", "#steps"):
            self.query_one(selector).disabled = busy
        self._model_changed(self.query_one("#model", Input).value)

    def _status(self, text: str, style: str = "") -> None:
        # Text, not markup: engine messages may hold brackets.
        self.query_one("#status", Static).update(Text(text, style=style))

    def _job_line(self) -> str:
        if self.job is None:
            return "starting…" if self.starting else "no job running"
        if self.stopping:
            how = "stopping"
        elif self.job.running:
            how = "running, following" if self.following else "running, detached"
        else:
            how = self.job.state
        return f"job {self.job.id}\n{how}"

    def action_start(self) -> None:
        if self.following or self.starting:
            return
        try:
            model = check_name(self.query_one("#model", Input).value.strip(), "model name")
            steps = int(self.query_one("#steps", Input).value or 0)
            run = run_settings_for(steps)
        except (SwapdeckError, ValueError) as exc:
            message = exc.one_line() if isinstance(exc, SwapdeckError) else str(exc)
            self._status(message, "red")
            return
        requested: dict[str, Any] = dict.fromkeys(
            (
                "faceset_a",
                "faceset_b",
                "preset",
                "size",
                "layout",
                "batch_size",
                "lr",
                "loss",
                "seed",
            )
        )
        preset = str(self.query_one("#preset", Select).value)
        try:
            info = registry.family_of_preset(preset)
        except SwapdeckError as exc:  # an existing model's preset this swapdeck lacks
            self._status(exc.one_line(), "red")
            return
        new = self._model_toml(model) is None
        if INPUTS in {option.name for option in info.options}:
            ticked = self._ticked()
            if not ticked:
                self._status("choose at least one input faceset", "red")
                return
            # All ticked: the family's default, every faceset but B's (new ones too).
            inputs = () if set(ticked) == set(self._input_names()) else tuple(ticked)
            if new or set(ticked) != self._model_inputs:
                requested[INPUTS] = inputs
        if new:  # a new model: the form says what it is
            batch = self.query_one("#batch", Input).value
            sides = self._facesets_chosen(info)
            if sides is None:
                return
            requested.update(
                preset=preset,
                **sides,
                batch_size=int(batch) if batch else None,
                **{
                    option: self.query_one(f"#{option}", Select).value
                    for option in self._chosen(preset)
                },
            )
        self.starting = True
        self._status(f"starting {model}…")
        self._refresh_state()
        self._start_worker(model, requested, run)

    def _facesets_chosen(self, info: registry.FamilyInfo) -> dict[str, str] | None:
        """The family's facesets from the form; None (and a red status) if one it needs is blank."""
        chosen, missing = {}, []
        for option in info.options:
            if option.name not in FACESET_ROWS:
                continue
            value = self.query_one(f"#{FACESET_ROWS[option.name]}", Select).value
            if value is not Select.NULL:
                chosen[option.name] = str(value)
            elif option.required:
                missing.append(f"faceset {option.name[-1].upper()}")
        if missing:
            self._status(f"choose {' and '.join(missing)}", "red")
            return None
        return chosen

    @work(thread=True, group="start")
    def _start_worker(self, model: str, requested: dict[str, Any], run: RunSettings) -> None:
        from engine import jobs

        self.post_message(JobStarted(jobs.start_train(self.ws, model, requested, run)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app shows the error dialog (the event bubbles on); here the screen only unblocks.
        # (FollowsJob's handler unblocks a failed stop or follower.)
        if event.state != WorkerState.ERROR:
            return
        if event.worker.group == "start":
            self.starting = False
            self._status("could not start")
        self._refresh_state()

    # x: FollowsJob.action_stop asks the job to stop.
    def _stop_asked(self) -> None:
        self._status("stopping: saving a checkpoint…")

    def _stop_answered(self, job: Job) -> None:
        self._status(f"{job.state}; checkpoint saved")

    def on_note(self, message: Note) -> None:
        self.stopping = False
        self._status(message.text)
        self._refresh_state()

    def action_save_now(self) -> None:
        if self.job is not None and self.following:
            self._save_worker(self.job.id)

    @work(thread=True, group="save")
    def _save_worker(self, job_id: str) -> None:
        from engine import jobs

        jobs.save_now(self.ws, job_id)
        self.post_message(Note("checkpoint asked for: it is written at the next step"))

    def action_detach(self) -> None:
        if not self.following:
            return
        self._stop_following()
        self._generation += 1  # messages still queued from the old follower are ignored
        self._status("it keeps running; a: attach")
        self._refresh_state()

    def action_attach(self) -> None:
        if not self.following:
            self._follow_job(None)
