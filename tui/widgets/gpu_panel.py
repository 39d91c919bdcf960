"""GPU utilisation, memory and temperature, read through NVML every two seconds."""

from __future__ import annotations

from textual import work
from textual.message import Message
from textual.widgets import Static

from engine.gpu import GpuStats, gpu_stats


def describe(stats: list[GpuStats]) -> str:
    if not stats:
        return "no GPU"
    return "\n".join(
        f"GPU{s.index} {s.util_percent:3d}%  {s.mem_used_mb / 1024:.1f}/"
        f"{s.mem_total_mb / 1024:.0f} GB  {s.temperature_c}°C"
        for s in stats
    )


class GpuPanel(Static):
    """Polls in a thread (a stuck driver must not freeze the screen); stops if there is no GPU."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; }
    """
    INTERVAL_S = 2.0

    class Read(Message):
        def __init__(self, stats: list[GpuStats]) -> None:
            super().__init__()
            self.stats = stats

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("GPU …", id=id, classes=classes)
        self.stats: list[GpuStats] | None = None

    def on_mount(self) -> None:
        self._poll()
        self._timer = self.set_interval(self.INTERVAL_S, self._poll)

    @work(thread=True, exclusive=True, group="gpu-panel")
    def _poll(self) -> None:
        self.post_message(self.Read(gpu_stats()))

    def on_gpu_panel_read(self, message: GpuPanel.Read) -> None:
        message.stop()
        first = self.stats is None
        self.stats = message.stats
        self.update(describe(message.stats))
        if first and not message.stats:
            self._timer.stop()  # no GPU now means none later: no need to keep asking
