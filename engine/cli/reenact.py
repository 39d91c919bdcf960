"""`swapdeck reenact`: a portrait moved by a driving video (a fomm model)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.common import guarded
from engine.errors import UnavailableError


@guarded
def reenact_command(
    source: Annotated[str, typer.Argument(help="A portrait image, or a folder of them.")],
) -> None:
    """Move a portrait the way the person in a driving video moves (being built)."""
    raise UnavailableError("reenact is being built", "use a later swapdeck")
