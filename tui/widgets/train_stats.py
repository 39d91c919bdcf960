"""Step / total, examples per second, ETA, learning rate and the latest losses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from textual.widgets import Static

from tui.widgets.loss_chart import loss_label
from tui.widgets.throttle import RedrawThrottle

# Until a family's own loss names are known: those of engine.train.family.Family.
DEFAULT_LOSSES = ("a", "b")


@dataclass
class StatsView:
    step: int | None = None
    total: int | None = None
    examples_per_s: float | None = None
    eta_s: float | None = None
    lr: float | None = None
    # The latest loss by name, in the family's order (None: not logged yet).
    losses: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(DEFAULT_LOSSES))


def _eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, fmt)


def render_stats(view: StatsView) -> str:
    if view.step is None:
        step = "—"
    elif view.total:
        # No percentage: at 80 columns it would wrap and push the last loss off the panel.
        step = f"{view.step} / {view.total}"
    else:
        step = str(view.step)
    titles = {name: _loss_title(name) for name in view.losses}
    # The panel is 22 columns: a long name (fomm's) is cut to leave room for its value.
    longest = max((len(t) for t in titles.values()), default=0)
    width = min(LOSS_COLUMN_MAX, max(8, longest + 1))
    return "\n".join(
        [
            f"step    {step}",
            f"speed   {_num(view.examples_per_s, '.1f')} ex/s",
            f"ETA     {_eta(view.eta_s)}",
            f"lr      {_num(view.lr, '.1e')}",
            *(
                f"{titles[name][: width - 1]:<{width}}{_num(value, '.4f')}"
                for name, value in view.losses.items()
            ),
        ]
    )


LOSS_COLUMN_MAX = 16


def _loss_title(name: str) -> str:
    label = loss_label(name)
    return f"loss {label}" if label != name else name


class TrainStats(Static):
    """Redraws at most twice a second: metrics can arrive many times a second."""

    DEFAULT_CSS = """
    TrainStats { height: auto; max-height: 9; }
    """
    MIN_REDRAW_S = 0.5

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(render_stats(StatsView()), id=id, classes=classes)
        self.view = StatsView()
        self._shown = ""
        self.redraw = RedrawThrottle(self, self._draw, self.MIN_REDRAW_S)

    def show(self, view: StatsView) -> None:
        # A copy: the caller goes on changing its own.
        self.view = replace(view, losses=dict(view.losses))
        self.redraw.request()

    def _draw(self) -> None:
        text = render_stats(self.view)
        if text != self._shown:
            self._shown = text
            self.update(text)
