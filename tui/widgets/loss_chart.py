"""A family's losses against step: a plotext chart that redraws at most twice a second.

The series are named as the family names its losses (the autoencoder's "a" and "b",
fast-swap's "content", "style", "light" and "tv"): whatever names the points carry.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable

from textual_plotext import PlotextPlot

from tui.widgets.throttle import RedrawThrottle

Point = tuple[int, dict[str, float]]  # step, loss by name


def loss_label(name: str) -> str:
    """How a loss is labelled: a side's ("a") as "A", any other by its name."""
    return name.upper() if len(name) == 1 else name


def _bucket_means(xs: list[int], ys: list[float], buckets: int) -> tuple[list[float], list[float]]:
    """Average runs of consecutive points: a long run still draws in a few columns' time."""
    if len(xs) <= buckets:
        return [float(x) for x in xs], ys
    size = len(xs) / buckets
    out_x, out_y = [], []
    for i in range(buckets):
        lo, hi = int(i * size), max(int((i + 1) * size), int(i * size) + 1)
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def _step_ticks(first: int, last: int, count: int = 4) -> list[int]:
    if last <= first:
        return [first]
    return sorted({round(first + (last - first) * i / count) for i in range(count + 1)})


class LossChart(PlotextPlot):
    """Holds every logged point; draws a downsampled view on a log scale when it can.

    The first point after `clear_points` names the series; a point lacking one of
    them (or holding a NaN) is skipped, so every series has a value at every step.
    """

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """
    MIN_REDRAW_S = 1.0  # a redraw costs ~20 ms: the wizard must stay light while following

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.steps: list[int] = []
        self.series: dict[str, list[float]] = {}
        self.redraw = RedrawThrottle(self, self._draw, self.MIN_REDRAW_S)

    def on_mount(self) -> None:  # Textual also runs PlotextPlot.on_mount (theme set-up)
        self.redraw.now()

    def on_resize(self) -> None:
        self.redraw.now()  # the bucket count follows the width

    def clear_points(self) -> None:
        self.steps.clear()
        self.series = {}
        self.redraw.request()

    def add_points(self, points: Iterable[Point]) -> None:
        """Append points; a step at or before the last one (resume, rollback) rewinds to it."""
        added = False
        for step, losses in points:
            if not self.steps:
                self.series = {name: [] for name in losses}
            values = [losses.get(name, math.nan) for name in self.series]
            if not (values and all(math.isfinite(v) for v in values)):
                continue
            if self.steps and step <= self.steps[-1]:
                cut = bisect_left(self.steps, step)
                del self.steps[cut:]
                for ys in self.series.values():
                    del ys[cut:]
            self.steps.append(step)
            for ys, value in zip(self.series.values(), values, strict=True):
                ys.append(value)
            added = True
        if added:
            self.redraw.request()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.steps:
            plt.title("loss: no steps logged yet")
            self.refresh()
            return
        buckets = max(8, 2 * (self.size.width - 10))  # braille: two dots per column
        log = min(min(ys) for ys in self.series.values()) > 0
        for name, ys in self.series.items():
            xs, vs = _bucket_means(self.steps, ys, buckets)
            plt.plot(xs, vs, label=loss_label(name), marker="braille")
        plt.yscale("log" if log else "linear")
        ticks = _step_ticks(self.steps[0], self.steps[-1])
        plt.xticks(ticks, [str(t) for t in ticks])
        plt.xlabel("step")
        self.refresh()
