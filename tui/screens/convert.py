"""Screen 4: convert footage with a trained model, preview it, verify and score the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Header, Input, Label, ProgressBar, Select, Static
from textual.worker import Worker
from textual_image.widget import Image

from engine.events import CancelToken
from engine.results import ScoreResult
from tui.messages import EngineEvent, TaskDone, poster, worker_ended
from tui.widgets.path_field import PathField

PREVIEW_FRAMES = 4
_VIDEO_OUT = {".mp4", ".m4v", ".mov", ".mkv", ".webm"}
CHOICES: dict[str, tuple[str, ...]] = {
    "direction": ("a-to-b", "b-to-a"),
    "mask": ("auto", "hull", "learned", "occlusion"),
    "color": ("rct", "hist", "avg", "none"),
}


def _family(name: str) -> Any:
    """The registry's declaration of family `name` (no torch), or None if unknown."""
    from engine.errors import SwapdeckError
    from engine.train import registry

    try:
        return registry.get_family(name)
    except SwapdeckError:
        return None


def default_output(workspace: Path, source: Path, model: str, preview: bool) -> Path:
    """outputs/<input>_<model>: a video keeps its container, a folder stays a folder."""
    outputs = workspace / "outputs"
    if preview:
        return outputs / f"{source.stem}_{model}_preview.png"
    if source.is_dir():
        return outputs / f"{source.name}_{model}"
    suffix = source.suffix.lower()
    if suffix not in _VIDEO_OUT:
        from engine.media.images import is_image_path

        suffix = ".png" if is_image_path(source) else ".mp4"
    return outputs / f"{source.stem}_{model}{suffix}"


def _figure(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def score_line(result: ScoreResult) -> str:
    """Identity retrieval, landmark error and jitter ratio of the first scored pair."""
    video = result.videos[0]
    return (
        f"score: identity retrieval {_figure(video.identity.retrieval, '{:.0%}')}  "
        f"nme {_figure(video.expression.nme, '{:.4f}')}  "
        f"stability ratio {_figure(video.stability.ratio, '{:.2f}')}"
    )


def _mask_text(result: Any) -> str:
    """What a result says of an occlusion model it blended with ("" when none)."""
    model = getattr(result, "mask_model", None)
    return f"mask occlusion: {model}" if model else ""


def _verify_target(output: Path) -> Path | None:
    """verify reads one file: for a folder of images, the first one."""
    if not output.is_dir():
        return output
    return next(iter(sorted(p for p in output.iterdir() if p.is_file())), None)


class ConvertScreen(Screen):
    """Input, model and the main options; preview, convert, then verify and score."""

    AUTO_FOCUS = "MediaTree"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "preview", "Preview"),
        Binding("x", "convert", "Convert"),
        Binding("s", "stop", "Stop"),
        Binding("m", "reload_models", "Models"),
    ]

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace
        self.cancel: CancelToken | None = None
        self.lines: dict[str, str] = {}
        self.both_ways: dict[str, bool] = {}  # per offered model

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="convert-body"):
            with Horizontal(id="convert-top"):
                yield PathField(placeholder="input: a video or a folder", id="convert-input")
                with Vertical(id="convert-options"):
                    with Horizontal(classes="option"):
                        yield Label("model     ")
                        yield Select([], id="model", compact=True, prompt="no model yet")
                    for name, values in CHOICES.items():
                        with Horizontal(classes="option"):
                            yield Label(f"{name:<10}")
                            yield Select(
                                [(v, v) for v in values],
                                value=values[0],
                                allow_blank=False,
                                id=name,
                                compact=True,
                            )
                    # Which occlusion model auto (and "occlusion") would take.
                    yield Static("", id="mask-note")
                    yield Input(
                        placeholder="reference photo (optional)", id="reference", compact=True
                    )
                    yield Input(
                        placeholder="output (default: outputs/…)", id="output", compact=True
                    )
                    yield Checkbox("overwrite output", id="overwrite", compact=True)
            yield Static("pick an input and a model: p previews, x converts", id="convert-status")
            yield ProgressBar(total=1, id="convert-progress", show_eta=False)  # no idle pulse
            yield Static("", id="convert-result")
            yield Image(None, id="convert-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload_models()

    def on_screen_resume(self) -> None:
        # A model trained on the Train screen meanwhile should be offered here.
        self.action_reload_models()

    def action_reload_models(self) -> None:
        from engine.model_index import list_models
        from engine.workspace import Workspace

        select = self.query_one("#model", Select)
        current = select.value
        models = [m for m in list_models(Workspace(self.workspace)) if m["trained"]]
        # Only models that swap faces in footage (a fomm model reenacts instead); and
        # for each, whether it swaps both ways (a fast-swap model draws only B).
        self.both_ways = {
            m["name"]: info.both_ways
            for m in models
            if (info := _family(m["family"])) is not None and info.converts
        }
        names = list(self.both_ways)
        select.set_options([(n, n) for n in names])
        if current in names:
            select.value = current
        elif names:
            select.value = names[0]
        self._note_mask()  # an occlusion model may have been trained meanwhile

    @on(Select.Changed, "#model")
    def _model_changed(self, event: Select.Changed) -> None:
        """Offer b-to-a only for a model that swaps both ways."""
        both = self.both_ways.get(str(event.value), True)
        direction = self.query_one("#direction", Select)
        values = CHOICES["direction"] if both else CHOICES["direction"][:1]
        chosen = direction.value
        direction.set_options([(v, v) for v in values])
        direction.value = chosen if chosen in values else values[0]
        self._note_mask()

    @on(Select.Changed, "#direction")
    def _direction_changed(self) -> None:
        self._note_mask()

    def _note_mask(self) -> None:
        model = self.query_one("#model", Select).value
        if isinstance(model, str):
            self._find_occlusion(model, str(self.query_one("#direction", Select).value))
        else:
            self.query_one("#mask-note", Static).update("")

    @work(thread=True, exclusive=True, group="listing")
    def _find_occlusion(self, model: str, direction: str) -> None:
        """Name the occlusion model the mask would take (off the UI thread: torch loads)."""
        from engine.convert.occlusion import auto_occlusion
        from engine.errors import SwapdeckError
        from engine.workspace import Workspace

        try:
            name, faceset = auto_occlusion(Workspace(self.workspace), model, direction)
        except (SwapdeckError, OSError):  # an unreadable model.toml: convert will say
            name, faceset = None, None
        if name:
            note = f"occlusion model: {name} (auto uses it)"
        else:
            note = "occlusion model: none for " + (f"faceset {faceset}" if faceset else model)
        self.app.call_from_thread(self._show_note, note)

    def _show_note(self, note: str) -> None:
        if self.is_mounted:
            self.query_one("#mask-note", Static).update(note)

    # ---- running -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        busy = self.cancel is not None
        if action in ("preview", "convert"):
            return not busy
        if action == "stop":
            return busy
        return True

    def _values(self, preview: bool) -> dict[str, Any]:
        """What the user chose, as ConvertConfig fields (validated in the worker)."""
        source = self.query_one(PathField).value
        model = self.query_one("#model", Select).value
        model_name = model if isinstance(model, str) else ""
        values: dict[str, Any] = {
            "input": source,
            "model": model_name,
            **{name: self.query_one(f"#{name}", Select).value for name in CHOICES},
        }
        reference = self.query_one("#reference", Input).value.strip()
        values["references"] = [Path(reference).expanduser()] if reference else []
        typed = self.query_one("#output", Input).value.strip()
        if preview:
            values.update(preview_frames=PREVIEW_FRAMES, overwrite=True)
            values["output"] = default_output(self.workspace, source or Path(), model_name, True)
        else:
            values["overwrite"] = self.query_one("#overwrite", Checkbox).value
            values["output"] = (
                Path(typed).expanduser()
                if typed
                else default_output(self.workspace, source or Path(), model_name, False)
            )
        return values

    def _start(self, preview: bool) -> None:
        self.cancel = CancelToken()
        self.refresh_bindings()
        self.lines = {}
        self.query_one("#convert-result", Static).update("")
        self.query_one("#convert-status", Static).update(
            "rendering the preview…" if preview else "converting…"
        )
        self._run(self._values(preview), self.cancel)

    def action_preview(self) -> None:
        self._start(preview=True)

    def action_convert(self) -> None:
        self._start(preview=False)

    def action_stop(self) -> None:
        if self.cancel is not None:
            self.cancel.cancel()
            self.query_one("#convert-status", Static).update("stopping…")

    @work(thread=True, group="convert")
    def _run(self, values: dict[str, Any], cancel: CancelToken) -> None:
        from engine.config import ConvertConfig, build
        from engine.convert import convert
        from engine.errors import BadInputError
        from engine.workspace import Workspace

        if not values["model"]:
            raise BadInputError("no model chosen", "train one on the Train screen (t) first")
        if values["input"] is None:
            raise BadInputError("no input chosen", "pick a video or a folder of images")
        config = build(ConvertConfig, **values)
        ws = Workspace(self.workspace).ensure()  # outputs/ is where results go by default
        result = convert(config, ws, poster(self, "convert"), cancel)
        if config.preview_frames:
            self.post_message(TaskDone("preview", result))
            return
        self.post_message(TaskDone("convert", result))
        self._check(config, Path(result.output), ws, cancel)

    def _check(self, config: Any, output: Path, ws: Any, cancel: CancelToken) -> None:
        """verify the marks, then score the swap (the slow part: it finds every face again)."""
        from engine.provenance import verify
        from engine.score import score

        target = _verify_target(output)
        if target is not None:
            self.post_message(TaskDone("verify", verify(target)))
        result = score(
            ws,
            config.model,
            [(config.input, output)],
            config.direction,
            sink=poster(self, "score"),
            cancel=cancel,
        )
        self.post_message(TaskDone("score", result))

    # ---- showing -----------------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        event, task = message.event, message.task
        status = self.query_one("#convert-status", Static)
        if event.type == "progress":
            self.query_one("#convert-progress", ProgressBar).update(
                total=event.total, progress=event.done
            )
            total = "?" if event.total is None else event.total
            status.update(f"{task}: {event.done}/{total} {event.unit}")
        elif event.type in ("warning", "info"):
            self.notify(
                event.message, severity="warning" if event.type == "warning" else "information"
            )

    def on_task_done(self, message: TaskDone) -> None:
        result = message.result
        status = self.query_one("#convert-status", Static)
        if message.task == "preview":
            from PIL import Image as PILImage

            with PILImage.open(result.output) as picture:
                self.query_one("#convert-preview", Image).image = picture.copy()
            mask = _mask_text(result)
            status.update(f"preview: {result.output}" + (f" ({mask})" if mask else ""))
            return
        if message.task == "convert":
            mask = _mask_text(result)
            self.lines["convert"] = (
                f"output: {result.output} ({result.frames} frames, "
                f"{result.faces_swapped} faces swapped" + (f", {mask})" if mask else ")")
            )
            status.update("checking the watermark and scoring…")
        elif message.task == "verify":
            marked = "true" if result.marked else "false"
            self.lines["verify"] = f"verify: marked={marked} ({result.fraction:.0%} of frames)"
        elif message.task == "score":
            self.lines["score"] = score_line(result)
            status.update("done")
        self.query_one("#convert-result", Static).update("\n".join(self.lines.values()))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if worker_ended(event, "convert"):
            self.cancel = None
            self.refresh_bindings()

    def on_unmount(self) -> None:
        if self.cancel is not None:
            self.cancel.cancel()
