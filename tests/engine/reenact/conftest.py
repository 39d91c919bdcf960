"""A workspace with a random-weight fomm model and short real driving clips, made once."""

from __future__ import annotations

from pathlib import Path

import pytest
from reenactutil import cut_clip, fomm_model, talking

from engine.workspace import Workspace


@pytest.fixture(scope="session")
def fomm_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str]:
    """(workspace, model name): a fomm-small model at 64 px with random weights."""
    ws = Workspace(tmp_path_factory.mktemp("fomm_ws"))
    ws.ensure()
    return ws, fomm_model(ws)


@pytest.fixture(scope="session")
def driving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.3 s of talk_d3 (9 frames) with its sound."""
    return talking(tmp_path_factory.mktemp("driving") / "talk.mp4", 0.3)


@pytest.fixture(scope="session")
def driving_cuts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A face, a cut to a wall, a cut to two people: 5 frames each."""
    return cut_clip(tmp_path_factory.mktemp("driving") / "cuts.mp4")
