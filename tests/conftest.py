"""Shared fixtures: the sample data, and facesets extracted from it once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ExtractConfig, build
from engine.extract import extract
from engine.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def sample_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace with facesets `a` and `b` extracted from sample_data with dlib."""
    ws = Workspace(tmp_path_factory.mktemp("sample_ws"))
    for name in ("a", "b"):
        config = build(ExtractConfig, sources=[SAMPLE / name], faceset=name, backend="dlib")
        extract(config, ws)
    return ws
