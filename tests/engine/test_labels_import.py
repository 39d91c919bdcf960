"""Importing hand-drawn label masks into a copy of a real (extracted) faceset."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.errors import BadInputError, NotFoundError
from engine.faceset import Faceset
from engine.labels import clear_labels, import_labels
from engine.workspace import Workspace


@pytest.fixture
def ws(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A workspace of its own holding a copy of the sample faceset `a` (256 px faces)."""
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.faceset_dir("a"), copy.faceset_dir("a"))
    return copy


def _labels(ws: Workspace) -> dict[str, np.ndarray | None]:
    with Faceset.open(ws.faceset_dir("a")) as faceset:
        return {
            f.file: None
            if f.label is None
            else cv2.imdecode(np.frombuffer(f.label, np.uint8), cv2.IMREAD_UNCHANGED)
            for f in faceset.faces()
        }


def _png(path: Path, pixels: np.ndarray, mode: str) -> None:
    Image.fromarray(pixels, mode).save(path)


def test_labels_of_any_mode_are_stored_as_binary_masks_of_the_crop_size(ws: Workspace) -> None:
    files = sorted(_labels(ws))
    assert len(files) > 5
    folder = ws.root / "drawn"
    folder.mkdir()
    size = 256
    expected = {}
    # RGB: white left half, black right, and the threshold's two sides (127 -> 0, 128 -> 255).
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[:, : size // 2] = 255
    rgb[:10, -10:] = 128
    rgb[-10:, -10:] = 127
    _png(folder / files[0], rgb, "RGB")
    expected[files[0]] = np.where(rgb[..., 0] >= 128, 255, 0)
    # RGBA cut-out: its alpha is the mask, whatever its colour.
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[: size // 3, :, 3] = 255
    _png(folder / files[1], rgba, "RGBA")
    expected[files[1]] = np.where(np.arange(size)[:, None] < size // 3, 255, 0).repeat(size, 1)
    # A quarter of the size, grayscale: resized by nearest neighbour.
    small = np.zeros((64, 64), np.uint8)
    small[:16, :32] = 200
    _png(folder / files[2], small, "L")
    expected[files[2]] = np.kron(np.where(small >= 128, 255, 0), np.ones((4, 4), int))
    # Opaque RGBA: its alpha says nothing, its luminance is the mask.
    opaque = np.full((size, size, 4), 255, np.uint8)
    opaque[size // 2 :, :, :3] = 0
    _png(folder / files[3], opaque, "RGBA")
    expected[files[3]] = np.where(np.arange(size)[:, None] < size // 2, 255, 0).repeat(size, 1)
    _png(folder / "nobody.png", small, "L")
    (folder / "notes.txt").write_text("not a label")

    events: list = []
    result = import_labels(ws, "a", folder, events.append)
    assert (result.matched, result.resized, result.unmatched) == (4, 1, ["nobody.png"])
    assert (result.labelled, result.unlabelled, result.cleared) == (4, len(files) - 4, 0)
    assert [e.type for e in events] == ["started", "progress", "warning", "finished"]
    assert "nobody.png" in events[2].message
    assert events[-1].result == result.model_dump(mode="json")
    stored = _labels(ws)
    for name, mask in expected.items():
        assert stored[name].dtype == np.uint8 and stored[name].shape == (size, size)
        np.testing.assert_array_equal(stored[name], mask, err_msg=name)
    assert all(stored[name] is None for name in files[4:])

    # All or nothing: an unreadable PNG among good ones is named, and nothing is written.
    (folder / files[4]).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    _png(folder / files[5], rgb, "RGB")
    with pytest.raises(BadInputError, match=files[4]):
        import_labels(ws, "a", folder)
    # Nothing named like a face: refused (exit 2), nothing written.
    other = ws.root / "other"
    other.mkdir()
    _png(other / "nobody.png", small, "L")
    with pytest.raises(BadInputError, match="named like a face") as refused:
        import_labels(ws, "a", other)
    assert refused.value.exit_code == 2 and "\n" not in refused.value.one_line()
    with pytest.raises(NotFoundError):
        import_labels(ws, "a", ws.root / "missing")
    assert {k for k, v in _labels(ws).items() if v is not None} == set(files[:4])

    # --clear with a folder replaces: only its labels are left; --clear alone removes them.
    (folder / files[4]).unlink()
    replaced = import_labels(ws, "a", folder, replace=True)
    assert (replaced.matched, replaced.cleared, replaced.labelled) == (5, 0, 5)
    only = ws.root / "only"
    only.mkdir()
    shutil.copy(folder / files[1], only / files[1])
    replaced = import_labels(ws, "a", only, replace=True)
    assert (replaced.matched, replaced.cleared, replaced.labelled) == (1, 4, 1)
    cleared = clear_labels(ws, "a")
    assert (cleared.cleared, cleared.labelled, cleared.unlabelled) == (1, 0, len(files))
