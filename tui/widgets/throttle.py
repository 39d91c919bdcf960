"""At most one redraw per interval, however many updates arrive in between."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.widget import Widget


class RedrawThrottle:
    """`request()` draws soon, but never sooner than `min_interval` after the last draw."""

    def __init__(self, widget: Widget, draw: Callable[[], None], min_interval: float) -> None:
        self.widget = widget
        self.draw = draw
        self.min_interval = min_interval
        self._last = 0.0
        self._pending = False

    def request(self) -> None:
        if self._pending or not self.widget.is_mounted:
            return
        self._pending = True
        # Textual timers reject a zero delay.
        wait = max(0.05, self._last + self.min_interval - time.monotonic())
        self.widget.set_timer(wait, self.now)

    def now(self) -> None:
        """Draw at once (and count it as the last draw)."""
        self._pending = False
        self._last = time.monotonic()
        self.draw()

    @property
    def pending(self) -> bool:
        return self._pending
