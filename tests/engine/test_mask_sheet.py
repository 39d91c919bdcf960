"""`faceset masks`: the contact sheet tints, inside each hull, what the occlusion model
(red) or the face's imported label (blue) says covers the face, and nothing else."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from maskutil import half_label, make_occlusion_model

from engine.events import Finished, Saved, Started
from engine.faceset import Faceset
from engine.mask_sheet import HULL_RGB, LABEL_RGB, MODEL_RGB, mask_sheet, tile_origin
from engine.train.data import predict_face
from engine.train.families.occlusion.inference import load_occlusion
from engine.workspace import Workspace


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _tile_inputs(ws: Workspace, name: str, face_id: int, tile: int):
    with Faceset.open(ws.faceset_dir(name)) as fs:
        record = next(r for r in fs.faces() if r.id == face_id)
        crop = cv2.imread(str(fs.faces_dir / record.file), cv2.IMREAD_COLOR)
        coverage = float(fs.meta("coverage"))
    crop = cv2.resize(
        cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), (tile, tile), interpolation=cv2.INTER_AREA
    )
    hull = cv2.imdecode(np.frombuffer(record.mask, np.uint8), cv2.IMREAD_GRAYSCALE)
    hull = cv2.resize(hull, (tile, tile), interpolation=cv2.INTER_AREA) >= 128
    return crop, hull, coverage


def _outline(hull: np.ndarray) -> np.ndarray:
    """The hull's border pixels (where its outline is drawn), and no others."""
    return hull & ~cv2.erode(hull.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _check_tint(
    shown: np.ndarray, crop: np.ndarray, hull: np.ndarray, covered: np.ndarray, rgb
) -> None:
    """Covered pixels are the crop blended with `rgb`; the rest of the tile is the crop,
    away from the hull's outline and a label tile's frame and word."""
    away = ~_outline(hull)
    away[:18, :] = away[:, :3] = away[-3:, :] = away[:, -3:] = False
    tinted = crop.astype(np.float32) * 0.45 + np.array(rgb, np.float32) * 0.55
    assert covered[away].sum() > 50 and (~covered[away]).sum() > 50
    assert np.abs(shown[away & covered] - tinted[away & covered]).max() <= 1.0
    assert np.array_equal(shown[away & ~covered], crop[away & ~covered])


def test_the_sheet_tints_what_the_model_and_a_label_say_is_covered(facesets_ws: Path) -> None:
    ws = Workspace(facesets_ws)
    with Faceset.open(ws.faceset_dir("a")) as fs:
        ids = [r.id for r in fs.faces()]
        fs.set_labels([(ids[5], half_label(fs.size))])
    make_occlusion_model(ws, "occ", facesets=("a",))
    events: list = []

    result = mask_sheet(ws, "a", count=5, sink=events.append)  # its model: occlusion_for

    assert (result.mask, result.mask_model, result.labelled) == ("occlusion", "occ", 1)
    assert result.faces[0] == ids[5] and len(result.faces) == len(set(result.faces)) == 5
    assert Path(result.output) == ws.faceset_dir("a") / "masks.png"
    assert [type(e) for e in events][:1] == [Started] and isinstance(events[-1], Finished)
    assert any(isinstance(e, Saved) and e.path == result.output for e in events)
    sheet, tile = _read(Path(result.output)), result.tile_px
    x, y = tile_origin(4, result.columns, tile)
    assert sheet.shape == (y + tile + 2, x + tile + 2, 3)  # five tiles in a row, no more
    with Faceset.open(ws.faceset_dir("a")) as fs:
        assert fs.count() == len(ids)  # the sheet beside the manifest is no stray face

    model = load_occlusion(ws, "occ", "cpu")
    for i, face_id in enumerate(result.faces[:3]):
        crop, hull, coverage = _tile_inputs(ws, "a", face_id, tile)
        x, y = tile_origin(i, result.columns, tile)
        shown = sheet[y : y + tile, x : x + tile]
        if i == 0:  # the label: its left half covered
            covered = hull & (np.arange(tile) < tile // 2)[None, :]
            _check_tint(shown, crop, hull, covered, LABEL_RGB)
        else:
            covered = hull & (predict_face(model, crop[None], coverage)[0] < 128)
            _check_tint(shown, crop, hull, covered, MODEL_RGB)


def test_without_an_occlusion_model_the_sheet_shows_hulls_only(facesets_ws: Path) -> None:
    ws = Workspace(facesets_ws)
    make_occlusion_model(ws, "occ", facesets=("a",))  # covers a, not b
    out = facesets_ws / "sheets" / "b.png"
    result = mask_sheet(ws, "b", out, count=3)
    assert (result.mask, result.mask_model, result.covered_share) == ("hull", None, 0.0)
    crop, hull, _ = _tile_inputs(ws, "b", result.faces[0], result.tile_px)
    x, y = tile_origin(0, result.columns, result.tile_px)
    shown = _read(out)[y : y + result.tile_px, x : x + result.tile_px]
    edge = _outline(hull)
    assert (shown[edge] == HULL_RGB).all(axis=1).mean() > 0.3  # the outline
    assert np.array_equal(shown[~edge], crop[~edge])


def test_refusals_name_the_problem(facesets_ws: Path) -> None:
    from engine.errors import BadInputError, NotFoundError

    ws = Workspace(facesets_ws)
    with pytest.raises(NotFoundError, match="no faceset 'zz'"):
        mask_sheet(ws, "zz")
    with pytest.raises(NotFoundError, match="no occlusion model 'nope'"):
        mask_sheet(ws, "a", model="nope")
    with pytest.raises(BadInputError, match="is a PNG"):
        mask_sheet(ws, "a", facesets_ws / "sheet.jpg")
    assert not (ws.faceset_dir("a") / "masks.png").exists()
