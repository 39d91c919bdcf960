"""A compare's report: report.md and report.json, the loss chart and the contact sheet.

The results table marks the best value of each column: the highest or the lowest
as the column says, and for the jitter ratio the one closest to 1 (as steady as
the original footage; below 1 is smoothed away, above 1 shakes).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.compare.spec import Budget
from engine.compare.state import CompareState, ModelState
from engine.config import CompareConfig
from engine.results import CompareModelResult, CompareResult, ScoreResult
from engine.workspace import Workspace, atomic_write_text

Better = Literal["high", "low", "one"] | None


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    value: Callable[[CompareModelResult], float | None]
    better: Better
    digits: int = 3

    def format(self, value: float | None) -> str:
        """A cell as report.md, the CLI and the wizard write it."""
        if value is None:
            return "—"
        if self.digits == 0:
            return f"{int(value):,}"
        return f"{value:.{self.digits}f}"


def _loss(name: str) -> Callable[[CompareModelResult], float | None]:
    return lambda r: r.losses.get(name)


def _scored(figure: Callable[[ScoreResult], float | None]):
    """A score figure, None for a model that converted nothing."""
    return lambda r: None if r.score is None else figure(r.score)


def columns(results: Sequence[CompareModelResult]) -> list[Column]:
    """The results table's columns; one per loss name any model has."""
    names = list(dict.fromkeys(n for r in results for n in r.losses))
    identity = lambda key: _scored(lambda s: getattr(s.average.identity, key))  # noqa: E731
    expression = lambda key: _scored(lambda s: getattr(s.average.expression, key))  # noqa: E731
    return [
        Column("steps", "steps", lambda r: r.steps, None, 0),
        Column("examples", "examples seen", lambda r: r.examples, None, 0),
        Column("examples_per_s", "examples/s", lambda r: r.examples_per_s, "high", 1),
        *(Column(f"loss_{n}", f"loss {n}", _loss(n), "low", 4) for n in names),
        Column("retrieval", "ID retrieval", identity("retrieval"), "high"),
        Column("dist_target", "ID dist target", identity("dist_target"), "low"),
        Column("dist_source", "ID dist source", identity("dist_source"), "high"),
        Column("nme", "landmark NME", expression("nme"), "low"),
        Column("yaw", "yaw err °", expression("yaw"), "low", 2),
        Column("pitch", "pitch err °", expression("pitch"), "low", 2),
        Column("roll", "roll err °", expression("roll"), "low", 2),
        Column("jitter_ratio", "jitter ratio", _scored(lambda s: s.average.stability.ratio), "one"),
        Column("ssim_a", "SSIM A", _scored(lambda s: s.reconstruction.ssim_a), "high"),
        Column("ssim_b", "SSIM B", _scored(lambda s: s.reconstruction.ssim_b), "high"),
        Column("convert_fps", "convert frames/s", _convert_fps, "high", 1),
    ]


def _convert_fps(r: CompareModelResult) -> float | None:
    return None if r.convert is None else r.convert.frames_per_s


def best(results: Sequence[CompareModelResult], cols: Sequence[Column]) -> dict[str, list[str]]:
    """Per column with a direction, the SPEC(s) with the best value (ties all count)."""
    out: dict[str, list[str]] = {}
    for col in cols:
        if col.better is None:
            continue
        values = [(r.spec, col.value(r)) for r in results]
        known = [(spec, float(v)) for spec, v in values if v is not None]
        if len(known) < 2:
            continue  # a best of one is no comparison
        if col.better == "high":
            goal = max(v for _, v in known)
            out[col.key] = [s for s, v in known if v == goal]
        elif col.better == "low":
            goal = min(v for _, v in known)
            out[col.key] = [s for s, v in known if v == goal]
        else:
            goal = min(abs(v - 1.0) for _, v in known)
            out[col.key] = [s for s, v in known if abs(v - 1.0) == goal]
    return out


# ---- the pieces -----------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """What ran it: for a reader to rerun it like for like."""
    import av
    import numpy
    import torch

    import engine

    found = {
        "swapdeck": engine.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "av": av.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
    }
    if torch.cuda.is_available():
        found["gpu"] = torch.cuda.get_device_name(0)
        found["cuda"] = str(torch.version.cuda)
    return found


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loss_series(
    workspace: Workspace, entry: ModelState, result: CompareModelResult
):  # -> LossSeries
    """A model's logged losses against training seconds and examples seen.

    For a model trained here, time counts only its stretches of training (a rerun's
    gap is left out); an existing model's time is its metrics' clock from the first line.
    """
    from engine.compare.charts import LossSeries
    from engine.compare.run import _metrics

    per_step = result.examples // result.steps if result.steps else 0
    records = _metrics(workspace, result.model)
    seconds: list[float] = []
    examples: list[int] = []
    losses: dict[str, list[float]] = {}
    names = list(result.losses)
    kept = []
    if result.trained_here:
        before = 0.0
        for seg in entry.segments:
            for r in records:
                inside = r["step"] > seg.start_step and (
                    seg.end_step is None or r["step"] <= seg.end_step
                )
                if inside and r.get("t", 0) >= seg.started:
                    kept.append((before + r["t"] - seg.started, r))
            before += seg.seconds or 0.0
    elif records:
        first = records[0].get("t", 0.0)
        kept = [(r.get("t", first) - first, r) for r in records]
    for t, r in kept:
        if not all(isinstance(r.get(f"loss_{n}"), int | float) for n in names):
            continue
        seconds.append(round(t, 2))
        examples.append(r["step"] * per_step)
        for n in names:
            losses.setdefault(n, []).append(float(r[f"loss_{n}"]))
    return LossSeries(label=result.spec, seconds=seconds, examples=examples, losses=losses)


def _structure_table(results: Sequence[CompareModelResult]) -> list[str]:
    lines = [
        "| model | family | preset | layout | input px | parameters | GFLOPs / example "
        "| memory MiB (batch) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.structure
        lines.append(
            f"| {r.spec} | {s.family} | {s.preset} | {s.layout or '—'} | {s.size or '—'} "
            f"| {s.parameters / 1e6:.2f} M | {s.flops_per_example / 1e9:.2f} "
            f"| {s.memory_mb:.0f} ({s.batch_size or '—'}) |"
        )
    return lines


def _results_table(
    results: Sequence[CompareModelResult], cols: Sequence[Column], marks: dict[str, list[str]]
) -> list[str]:
    lines = [
        "| model | " + " | ".join(c.header for c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for r in results:
        cells = []
        for c in cols:
            text = c.format(c.value(r))
            cells.append(f"**{text}**" if r.spec in marks.get(c.key, []) else text)
        lines.append(f"| {r.spec} | " + " | ".join(cells) + " |")
    return lines


def _markdown(result: CompareResult, cols: Sequence[Column], budget: Budget) -> str:
    models = result.models
    devices = sorted({f"{m.device} ({m.precision})" for m in models if m.device})
    lines = [
        f"# swapdeck compare: {result.name}",
        "",
        f"Facesets **{result.faceset_a}** (A) and **{result.faceset_b}** (B); every model "
        f"converts `{result.clip}` (A to B) with the same settings and is scored with "
        "`swapdeck score`.",
        "",
        f"- budget: {budget.describe()} (`--budget {budget.text}`), {_order(result)}, "
        f"seed {result.seed} for every model",
        f"- device: {', '.join(devices) or 'models trained before this compare'}",
        f"- took {result.seconds / 60:.1f} min in all"
        + (f", over {result.runs} runs" if result.runs > 1 else ""),
        "",
        "Rerun it (models already trained to their budget are not trained again):",
        "",
        "```",
        " ".join(_quote(part) for part in result.command),
        "```",
        "",
        "## Structure",
        "",
        *_structure_table(models),
        "",
        "FLOPs: one training step (forward and backward) per training example; memory: "
        "weights, gradients, optimizer state and the activations kept for backward, "
        f"at the batch the model trains with ({models[0].structure.measured}).",
        "",
        "## Results",
        "",
        *_results_table(models, cols, result.best),
        "",
        "Bold: the best of the column (highest examples/s, retrieval, distance from the "
        "source, SSIM and convert speed; lowest losses, distance to the target, landmark "
        "and pose errors; jitter ratio closest to 1). Losses of different families are "
        "not comparable; identity, landmarks and pose are measured on the converted clip, "
        "SSIM on held-out faces of each faceset.",
    ]
    unconverted = [m.spec for m in models if m.output is None]
    if unconverted:
        listed = ", ".join(unconverted)
        lines += ["", f"Not converted (their family does not swap faces in footage): {listed}."]
    not_here = [m.spec for m in models if not m.trained_here]
    if not_here:
        lines += [
            "",
            f"Existing models compared as they are (not trained here): {', '.join(not_here)}.",
        ]
    lines += [
        "",
        "## Loss curves",
        "",
        f"![loss curves]({Path(result.chart).name})",
        "",
        *_sheet_section(result),
        "## Versions",
        "",
        *(f"- {k}: {v}" for k, v in result.versions.items()),
        "",
    ]
    return "\n".join(lines)


def _order(result: CompareResult) -> str:
    if len(result.devices) > 1:
        return f"side by side on {', '.join(result.devices)} (one model per device at a time)"
    return "one model after another"


def _sheet_section(result: CompareResult) -> list[str]:
    if result.sheet is None:
        return []
    return [
        "## Contact sheet",
        "",
        f"Frames {', '.join(map(str, result.sheet_frames))} of the clip: the original, then "
        "each model's output; below each, the face zoomed.",
        "",
        f"![contact sheet]({Path(result.sheet).name})",
        "",
    ]


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(part)


def write_report(
    workspace: Workspace,
    config: CompareConfig,
    budget: Budget,
    state: CompareState,
    results: Sequence[CompareModelResult],
    command: list[str],
) -> CompareResult:
    """Write the chart, the sheet, report.json and report.md; returns what report.json holds."""
    from engine.compare.charts import contact_sheet, loss_chart

    folder = config.report
    series = [loss_series(workspace, state.models[_slug_of(state, r)], r) for r in results]
    chart = loss_chart(series, folder / "losses.png", title=f"losses, {budget.describe()}")
    outputs = [(r.spec, Path(r.output)) for r in results if r.output is not None]
    sheet = None
    if outputs:
        sheet = contact_sheet(
            config.clip, outputs, folder / "sheet.png", frames=config.sheet_frames
        )
    cols = columns(results)
    from engine.compare.run import compare_name, devices

    result = CompareResult(
        name=compare_name(config),
        report=str(folder / "report.md"),
        report_json=str(folder / "report.json"),
        chart=str(chart),
        sheet=str(sheet.path) if sheet else None,
        sheet_frames=list(sheet.frame_indices) if sheet else [],
        faceset_a=config.faceset_a,
        faceset_b=config.faceset_b,
        clip=str(config.clip),
        budget=budget.text,
        budget_kind=budget.kind,
        budget_amount=budget.amount,
        seed=config.seed,
        devices=devices(config.device),
        command=command,
        versions=versions(),
        models=list(results),
        best=best(results, cols),
        seconds=round(state.seconds, 1),
        runs=state.runs,
    )
    atomic_write_text(
        folder / "report.json", json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
    )
    atomic_write_text(folder / "report.md", _markdown(result, cols, budget))
    return result


def load_report(folder: Path) -> CompareResult:
    """The report.json a compare wrote in `folder`, checked."""
    from pydantic import ValidationError

    from engine.errors import CorruptError, NotFoundError

    path = folder / "report.json"
    try:
        return CompareResult.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise NotFoundError(
            f"no report.json in {folder}", "run the compare, or choose a compare's folder"
        ) from None
    except (OSError, ValueError, ValidationError) as exc:
        why = getattr(exc, "strerror", None) or "not a compare's report"
        raise CorruptError(
            f"cannot read {path} ({why})", "run the compare again to write it anew"
        ) from None


def _slug_of(state: CompareState, result: CompareModelResult) -> str:
    for slug, entry in state.models.items():
        if entry.model == result.model:
            return slug
    raise KeyError(result.model)
