"""`swapdeck compare`: several models trained on the same facesets for the same budget,
each converting the same clip with the same settings and scored the same way.

Models are trained one after another on one device, with the same seed. Every
phase of every model is recorded in REPORT/state.json as it ends, so a rerun (after
a kill, a stop or a dropped connection) goes on where it stopped: a model trained
to its budget is not trained again, a conversion of the same clip by the same
checkpoint is not redone. The report is written last (engine.compare.report).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compare.spec import Budget, ModelSpec, model_name, parse_budget, parse_specs
from engine.compare.state import CompareState, ModelState, Segment, load_state
from engine.config import CompareConfig, ConvertConfig, RunSettings, build
from engine.errors import BadInputError, CancelledError, NotFoundError, WorkspaceError
from engine.events import CancelToken, Finished, Info, Progress, Sink, Started, null_sink
from engine.results import (
    CompareModelResult,
    CompareResult,
    ConvertResult,
    ScoreResult,
    StructureFigures,
    TrainResult,
)
from engine.workspace import DIR_MODE, Workspace, check_name

_STEP_CAP = 10_000_000  # a time budget's runs end by time, not steps
STATE_FILE = "state.json"


@dataclass(frozen=True)
class Planned:
    """One SPEC, checked, with the model it names in the workspace."""

    spec: ModelSpec
    model: str
    requested: dict[str, Any] | None  # None: an existing model, compared as it is


def devices(device: str) -> list[str]:
    """The devices models train on: `cuda:0,cuda:1` side by side; `auto` or `cuda` means
    every GPU when there are several; otherwise one."""
    named = [d.strip() for d in device.split(",") if d.strip()]
    if len(named) > 1:
        return named
    if named and named[0] in ("auto", "cuda"):
        import torch

        count = torch.cuda.device_count()
        if count > 1:
            return [f"cuda:{i}" for i in range(count)]
    return named or ["auto"]


def compare_name(config: CompareConfig) -> str:
    """The compare's name: a prefix of the models it trains, and its job's name."""
    if config.name:
        return config.name
    base = config.report.resolve().name
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in base).strip("-.")
    return check_name(cleaned[:40] or "compare", "compare name (give --name)")


def command_line(workspace: Workspace, config: CompareConfig) -> list[str]:
    """The `swapdeck compare` line that runs (or resumes) this compare."""
    line = ["swapdeck", "compare", "-w", str(workspace.root)]
    line += ["-a", config.faceset_a, "-b", config.faceset_b]
    line += ["--models", ",".join(config.models), "--clip", str(config.clip)]
    line += ["--budget", config.budget, "-o", str(config.report)]
    if config.name:
        line += ["--name", config.name]
    defaults = CompareConfig(
        faceset_a="a", faceset_b="b", models=["x"], clip=Path(), budget="1", report=Path()
    )
    for key in ("seed", "device", "backend", "sheet_frames"):
        value = getattr(config, key)
        if value != getattr(defaults, key):
            line += [f"--{key.replace('_', '-')}", str(value)]
    return line


# ---- checks before anything is trained ----------------------------------------------------


def plan(workspace: Workspace, config: CompareConfig) -> tuple[list[Planned], Budget]:
    """Every SPEC, the facesets, the clip and the budget checked; raises one SwapdeckError
    before anything is trained or written."""
    from engine.media.video import probe_video
    from engine.train.registry import get_family
    from engine.train.store import load_settings, new_settings, open_model

    specs = parse_specs(config.models)
    budget = parse_budget(config.budget)
    for faceset in (config.faceset_a, config.faceset_b):
        if not (workspace.faceset_dir(faceset) / "faceset.sqlite").exists():
            raise NotFoundError(
                f"no faceset {faceset!r} in {workspace.root}",
                f"extract it first: swapdeck extract -w {workspace.root} -f {faceset} SOURCE",
            )
    if not config.clip.is_file():
        raise NotFoundError(f"no clip {config.clip}", "give --clip a video of person A")
    probe_video(config.clip)
    name = compare_name(config)
    planned = []
    for spec in specs:
        model = model_name(name, spec)
        if spec.existing:
            toml = workspace.model_dir(model) / "model.toml"
            if not toml.exists():
                raise NotFoundError(
                    f"model {spec.text!r} in --models: no model {model!r} in {workspace.root}",
                    "name a trained model, or give a preset to train a new one",
                )
            load_settings(toml)  # a model.toml this swapdeck reads
            requested = None
        else:
            info = get_family(spec.family)
            requested = spec.requested(info, config.faceset_a, config.faceset_b, config.seed)
            try:
                new_settings(requested)
                if (workspace.model_dir(model) / "model.toml").exists():
                    open_model(workspace, model, requested)  # the same settings, or refused
            except BadInputError as exc:
                raise BadInputError(
                    f"model {spec.text!r} in --models: {exc.message}", exc.hint
                ) from None
        planned.append(Planned(spec, model, requested))
    return planned, budget


# ---- the run ------------------------------------------------------------------------------


@contextlib.contextmanager
def _report_lock(folder: Path) -> Iterator[None]:
    """One compare per report folder at a time (the OS drops the lock with its holder)."""
    path = folder / ".compare.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInputError(
                f"another compare is writing {folder}",
                "follow it with 'swapdeck jobs list', or write this report to another folder",
            ) from None
        yield
    finally:
        os.close(fd)


def _clip_key(config: CompareConfig, step: int) -> str:
    """What a conversion was made from: the clip's bytes (size, mtime), the checkpoint's
    step and the convert settings every model shares."""
    stat = config.clip.stat()
    text = json.dumps(
        [str(config.clip.resolve()), stat.st_size, stat.st_mtime_ns, step, config.backend]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Compare:
    def __init__(
        self,
        workspace: Workspace,
        config: CompareConfig,
        sink: Sink,
        cancel: CancelToken,
    ) -> None:
        self.workspace, self.config, self.sink, self.cancel = workspace, config, sink, cancel
        self.folder = config.report
        self.state_path = self.folder / STATE_FILE
        self.devices = devices(config.device)
        self.trained_now: set[str] = set()  # slugs trained side by side in this run

    def run(self, planned: list[Planned], budget: Budget) -> CompareResult:
        from engine.compare.report import write_report

        started = time.monotonic()
        state = load_state(self.state_path) or CompareState(
            faceset_a=self.config.faceset_a, faceset_b=self.config.faceset_b
        )
        if (state.faceset_a, state.faceset_b) != (self.config.faceset_a, self.config.faceset_b):
            raise BadInputError(
                f"{self.folder} holds a compare of facesets {state.faceset_a} and "
                f"{state.faceset_b}, not {self.config.faceset_a} and {self.config.faceset_b}",
                "write this report to another folder (-o)",
            )
        self.state = state
        self.sink(
            Started(
                stage="compare",
                detail={
                    "name": compare_name(self.config),
                    "models": [p.spec.text for p in planned],
                    "budget": budget.describe(),
                    "report": str(self.folder),
                },
            )
        )
        results = []
        try:
            if len(self.devices) > 1:
                from engine.compare.side_by_side import train_side_by_side

                train_side_by_side(self, planned, budget)
                self._check_cancel()
            for index, item in enumerate(planned):
                self.sink(Progress(stage="compare", done=index, total=len(planned), unit="models"))
                self.sink(Info(message=f"model {index + 1}/{len(planned)}: {item.spec.text}"))
                entry = state.models.setdefault(
                    item.spec.slug, ModelState(spec=item.spec.text, model=item.model)
                )
                results.append(self._one(item, entry, budget))
        finally:  # a stopped run's time counts too
            state.seconds += time.monotonic() - started
            state.runs += 1
            self._save()
        self.sink(Progress(stage="compare", done=len(planned), total=len(planned), unit="models"))
        result = write_report(
            self.workspace,
            self.config,
            budget,
            state,
            results,
            command_line(self.workspace, self.config),
        )
        self.sink(Finished(stage="compare", result=result.model_dump(mode="json")))
        return result

    def _save(self) -> None:
        try:
            self.state.save(self.state_path)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write {self.state_path} ({exc.strerror})", "free disk space"
            ) from None

    def _check_cancel(self) -> None:
        if self.cancel.cancelled:
            raise CancelledError(
                "compare stopped",
                "run the same command again to go on where it stopped",
            )

    # ---- one model ------------------------------------------------------------------

    def _one(self, item: Planned, entry: ModelState, budget: Budget) -> CompareModelResult:
        from engine.compare.structure import measure_structure

        if item.requested is not None:
            self._train(item, entry, budget)
        self._check_cancel()
        if entry.structure is None:
            entry.structure = measure_structure(self.workspace, item.model).model_dump(mode="json")
            self._save()
        if not _converts(self.workspace, item.model):
            self.sink(
                Info(
                    message=f"{item.spec.text}: its models do not swap faces in footage; "
                    "trained and measured, not converted"
                )
            )
            return self._result(item, entry, None)
        step = _checkpoint_step(self.workspace, item.model)
        key = _clip_key(self.config, step)
        output = self.folder / "videos" / f"{item.spec.slug}.mp4"
        if entry.convert_key != key or not output.exists() or entry.score is None:
            entry.convert_key, entry.convert, entry.score = None, None, None
            entry.convert = self._convert(item, output).model_dump(mode="json")
            self._save()
            self._check_cancel()
            entry.score = self._score(item, output).model_dump(mode="json")
            entry.convert_key = key
            self._save()
        return self._result(item, entry, output)

    def _train(self, item: Planned, entry: ModelState, budget: Budget) -> None:
        from engine.train.loop import train

        begun = self.begin_training(item, entry, budget)
        if begun is None:
            return
        run, segment = begun

        def watch(event: Any) -> None:
            self.on_train_event(entry, segment, event)
            self.sink(event)

        result = train(self.workspace, item.model, item.requested or {}, run, watch, self.cancel)
        self.end_training(entry, segment, result)

    def begin_training(
        self, item: Planned, entry: ModelState, budget: Budget, device: str | None = None
    ) -> tuple[RunSettings, Segment] | None:
        """This stretch's run and its record, or None when the model has its budget."""
        if entry.budget != budget.text:
            entry.budget, entry.trained = budget.text, False
        if entry.trained:
            if item.spec.slug not in self.trained_now:
                self.sink(Info(message=f"{item.spec.text}: trained to its budget already"))
            return None
        run = self._run_settings(item, entry, budget, device)
        if run is None:
            entry.trained = True
            self._save()
            return None
        segment = Segment(
            start_step=_checkpoint_step(self.workspace, item.model), started=time.time()
        )
        entry.segments.append(segment)
        self._save()
        return run, segment

    def on_train_event(self, entry: ModelState, segment: Segment, event: Any) -> None:
        # The budget counts from the first step, as the trainer's time limit does.
        if event.type == "started" and event.stage == "train":
            segment.started = time.time()
            entry.device = str(event.detail.get("device"))
            entry.precision = str(event.detail.get("precision"))
            self._save()

    def end_training(self, entry: ModelState, segment: Segment, result: TrainResult) -> None:
        segment.end_step, segment.seconds = result.steps, result.seconds
        entry.train = result.model_dump(mode="json", exclude_unset=True)
        entry.trained = not self.cancel.cancelled  # a stop leaves the rest of its budget
        self._save()

    def _run_settings(
        self, item: Planned, entry: ModelState, budget: Budget, device: str | None = None
    ) -> RunSettings | None:
        """This stretch's run: the steps or seconds left of the budget, or None if none are."""
        common = {
            "save_every": 250,
            "preview_every": 500,
            "snapshot_every": 0,
            "device": device or self.devices[0],
        }
        if budget.kind == "examples":
            steps = budget.steps(_examples_per_step(self.workspace, item))
            if _checkpoint_step(self.workspace, item.model) >= steps:
                return None
            log_every = max(1, min(10, steps // 50))
            return build(RunSettings, steps=steps, log_every=log_every, **common)
        left = budget.amount - _spent(self.workspace, item.model, entry)
        if left < 1.0:
            return None
        return build(RunSettings, steps=_STEP_CAP, time_limit=left, **common)

    def _convert(self, item: Planned, output: Path) -> ConvertResult:
        from engine.convert import convert

        output.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        config = build(
            ConvertConfig,
            input=self.config.clip,
            output=output,
            model=item.model,
            overwrite=True,
            backend=self.config.backend,
            device=self.devices[0],
        )
        result = convert(config, self.workspace, self.sink, self.cancel)
        assert isinstance(result, ConvertResult)  # no preview_frames: a whole conversion
        return result

    def _score(self, item: Planned, output: Path) -> ScoreResult:
        from engine.score import score

        return score(
            self.workspace,
            item.model,
            [(self.config.clip, output)],
            backend=self.config.backend,
            sink=self.sink,
            cancel=self.cancel,
        )

    def _result(self, item: Planned, entry: ModelState, output: Path | None) -> CompareModelResult:
        scored = ScoreResult.model_validate(entry.score) if output is not None else None
        steps = _checkpoint_step(self.workspace, item.model)
        per_step = _examples_per_step(self.workspace, item)
        done = [s for s in entry.segments if s.seconds is not None]
        seconds = round(sum(s.seconds or 0.0 for s in done), 2) if done else None
        trained_steps = sum((s.end_step or 0) - s.start_step for s in done)
        losses: dict[str, float | None] = {}
        if entry.train is not None:
            losses = TrainResult.model_validate(entry.train).losses
        else:
            losses = _last_losses(self.workspace, item.model)
        return CompareModelResult(
            spec=item.spec.text,
            model=item.model,
            trained_here=item.requested is not None,
            structure=StructureFigures.model_validate(entry.structure),
            steps=steps,
            examples=steps * per_step,
            train_seconds=seconds,
            examples_per_s=(round(trained_steps * per_step / seconds, 2) if seconds else None),
            losses=losses,
            device=entry.device,
            precision=entry.precision,
            convert=ConvertResult.model_validate(entry.convert) if output is not None else None,
            score=scored,
            output=str(output) if output is not None else None,
        )


def _checkpoint_step(workspace: Workspace, model: str) -> int:
    """The step of the model's checkpoint (0 when it has none yet)."""
    from engine.train.checkpoint import read_info

    path = workspace.model_dir(model) / "checkpoint.safetensors"
    if not path.exists():
        return 0
    return int(read_info(path)["step"])


def _converts(workspace: Workspace, model: str) -> bool:
    from engine.train.registry import get_family
    from engine.train.store import load_settings

    settings = load_settings(workspace.model_dir(model) / "model.toml")
    return get_family(settings.family).converts


def _examples_per_step(workspace: Workspace, item: Planned) -> int:
    """Training examples one step of this model sees (one process)."""
    from engine.train.registry import implementation
    from engine.train.store import load_settings, new_settings

    toml = workspace.model_dir(item.model) / "model.toml"
    settings = (
        load_settings(toml)
        if toml.exists() or item.requested is None
        else new_settings(item.requested)
    )
    return int(implementation(settings.family)(settings, workspace).examples_per_step)


def _metrics(workspace: Workspace, model: str) -> list[dict[str, Any]]:
    path = workspace.model_dir(model) / "metrics.jsonl"
    records = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and "step" in record:
                    records.append(record)
    return records


def _spent(workspace: Workspace, model: str, entry: ModelState) -> float:
    """Training seconds this compare has spent on the model; a stretch that was killed
    counts up to the last metrics line it logged."""
    spent = 0.0
    for segment in entry.segments:
        if segment.seconds is not None:
            spent += segment.seconds
            continue
        times = [
            r["t"]
            for r in _metrics(workspace, model)
            if r["step"] > segment.start_step and r.get("t", 0) >= segment.started
        ]
        if times:
            spent += max(times) - segment.started
    return spent


def _last_losses(workspace: Workspace, model: str) -> dict[str, float | None]:
    records = _metrics(workspace, model)
    if not records:
        return {}
    return {k.removeprefix("loss_"): v for k, v in records[-1].items() if k.startswith("loss_")}


def compare(
    config: CompareConfig,
    workspace: Workspace,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
) -> CompareResult:
    """Train, convert and score every model of `config.models`; write the report.

    Every SPEC, the facesets, the clip and the budget are checked first: a bad one
    is refused before anything trains. Emits Started/Progress/Finished ("compare")
    around the stages' own events. A stop (`cancel`) raises CancelledError once the
    stage under way has saved; the same call later goes on from there.
    """
    cancel = cancel or CancelToken()
    planned, budget = plan(workspace, config)
    folder = config.report
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create the report folder {folder} ({exc.strerror})",
            "give -o a folder you can write",
        ) from None
    with _report_lock(folder):
        return _Compare(workspace, config, sink, cancel).run(planned, budget)


__all__ = ["command_line", "compare", "compare_name", "plan"]
