"""FOMM test fixtures: the authors' checkpoint (random weights) saved both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from fomm_authors import authors_checkpoint, save


@pytest.fixture(scope="session")
def vox_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """vox-256 checkpoints in the authors' layout (random weights), saved as torch saves
    now ("zip") and as the authors' torch 1.0 did ("legacy")."""
    folder = tmp_path_factory.mktemp("vox")
    data = authors_checkpoint()
    return {
        "zip": save(data, folder / "vox-cpk.pth.tar"),
        "legacy": save(data, folder / "vox-cpk-legacy.pth.tar", legacy=True),
    }
