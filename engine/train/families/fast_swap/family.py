"""Training Fast Face-swap (being written: issue 15)."""

from __future__ import annotations

from typing import ClassVar

from engine.train.families.fast_swap import FAMILY
from engine.train.family import Family


class FastSwapFamily(Family):  # type: ignore[misc]
    info: ClassVar = FAMILY
    loss_names: ClassVar[tuple[str, ...]] = ("content", "style", "light", "tv")
