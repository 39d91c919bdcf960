"""convert --mask occlusion: what covers a face stays in front of the swapped one.

The frame is real footage (tests/footage.py: two people side by side) with a dark
microphone composited over each mouth. The occlusion model is a MaskNet whose weights
are set by hand to call exactly that colour "not face" (tests/convertmasks.py), so
what it predicts is known and the test cannot flake on a training run; it is written
and loaded through the real store, checkpoint and loader.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import cv2
import footage
import numpy as np
import pytest
import torch
from convertmasks import colour_key_net, save_occlusion_model

from engine.config import ConvertConfig, build
from engine.convert import convert
from engine.convert.run import choose_mask
from engine.errors import BadInputError, NotFoundError
from engine.faces.finder import FaceFinder
from engine.faces.mask import hull_mask
from engine.media.images import read_image
from engine.train.inference import load_trained
from engine.workspace import Workspace

MIC = (40, 40, 46)  # the occluder's colour, the one the occlusion model keys out


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on contended cores two threads wait on each other
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ws(sample_workspace: Workspace, tiny_model: str, tmp_path_factory) -> Workspace:
    """Model `tiny` (A = faceset a) alone in a workspace of its own, no occlusion model."""
    ws = Workspace(tmp_path_factory.mktemp("occ_convert") / "ws")
    shutil.copytree(sample_workspace.model_dir(tiny_model), ws.model_dir(tiny_model))
    return ws


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, np.ndarray, list[np.ndarray]]:
    """(the PNG, the occluder's pixels, each face's landmarks on the occluded frame)."""
    frame = footage.side_by_side(
        footage.read_frames("talk_d3.mp4", 30, 1), footage.read_frames("talk_d9.mp4", 30, 1)
    )[0]
    finder = FaceFinder("dlib", device="cpu")
    cover = np.zeros(frame.shape[:2], np.uint8)
    for face in finder.find(frame, False):
        points = face.landmarks
        width = float(np.ptp(points[:, 0]))
        # A microphone: a round head over the mouth's corner, its handle down out of frame.
        centre = (round(points[54, 0]), round(points[57, 1]))
        radius = round(0.22 * width)
        cv2.circle(cover, centre, radius, 255, -1)
        cv2.rectangle(
            cover,
            (centre[0] - radius // 2, centre[1]),
            (centre[0] + radius // 2, frame.shape[0]),
            255,
            -1,
        )
    frame[cover > 0] = MIC
    path = tmp_path_factory.mktemp("scene") / "two_people_mic.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finder.reset()
    landmarks = [f.landmarks for f in finder.find(frame, False)]
    assert len(landmarks) == 2  # the microphones leave both faces findable
    return path, cover > 0, landmarks


def run(ws: Workspace, src: Path, out: Path, **options: Any) -> list[Any]:
    events: list[Any] = []
    config = build(
        ConvertConfig, input=src, output=out, model="tiny", backend="dlib", device="cpu", **options
    )
    convert(config, ws, events.append)
    return events


def test_the_occluder_stays_untouched_where_the_hull_paints_it(
    ws: Workspace, scene: tuple[Path, np.ndarray, list[np.ndarray]], tmp_path: Path, monkeypatch
) -> None:
    # The watermark moves every pixel a little (by its 8x8 block's content): compare the
    # swap itself, not the mark.
    monkeypatch.setattr("engine.provenance.mark_frame", lambda rgb: rgb.copy())
    src, cover, landmarks = scene
    save_occlusion_model(ws, "mic", ("a",), colour_key_net(MIC), crop_size=256)
    before = read_image(src)
    results = {}
    for mask in ("hull", "auto"):  # auto: model tiny's faceset a has occlusion model "mic"
        out = tmp_path / f"{mask}.png"
        events = run(ws, src, out, mask=mask)
        results[mask] = (read_image(out), events[0].detail, events[-1].result)
    hull, hull_detail, hull_result = results["hull"]
    occ, occ_detail, occ_result = results["auto"]
    assert (hull_detail["mask"], "mask_model" in hull_detail) == ("hull", False)
    assert (occ_detail["mask"], occ_detail["mask_model"]) == ("occlusion", "mic")
    assert (occ_result["mask"], occ_result["mask_model"]) == ("occlusion", "mic")
    assert hull_result["faces_swapped"] == occ_result["faces_swapped"] == 2

    for points in landmarks:  # both people
        face = hull_mask(points, max(before.shape[:2]))[: before.shape[0], : before.shape[1]] > 0
        covered = face & cover
        # Feather (6% of the face) and the masks' resampling reach this far past their edge.
        reach = round(0.06 * float(np.ptp(points, axis=0).max())) + 10
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
        inside = covered & (cv2.erode(cover.astype(np.uint8), disk) > 0)
        bare = face & (cv2.dilate(cover.astype(np.uint8), disk) == 0)
        assert covered.sum() > 2000 and inside.sum() > 300

        def untouched(after: np.ndarray, where: np.ndarray) -> float:
            return float((after[where] == before[where]).all(axis=-1).mean())

        # The hull paints over the microphone; the occlusion mask leaves it bit-exact
        # (its whole interior, and much of its edge too) while the face around it changes.
        assert untouched(hull, covered) < 0.02
        assert untouched(occ, inside) == 1.0
        assert untouched(occ, covered) > 0.4
        assert untouched(hull, bare) < 0.05 and untouched(occ, bare) < 0.05


def test_auto_takes_the_occlusion_model_of_the_replaced_side_only(
    ws: Workspace, tmp_path: Path
) -> None:
    """An occlusion model trained on B's faceset masks b-to-a, not a-to-b (auto: the learned
    mask of tiny, as before); one named is used, and one asked for and missing is refused."""
    own = Workspace(tmp_path / "ws")
    shutil.copytree(ws.model_dir("tiny"), own.model_dir("tiny"))
    save_occlusion_model(own, "occ_b", ("b",))
    model = load_trained(own, "tiny", "cpu")

    def chosen(**options: Any) -> tuple[str, str | None]:
        config = build(ConvertConfig, input="x.png", output="y.png", model="tiny", **options)
        source = "a" if config.direction == "a-to-b" else "b"
        mask, masker = choose_mask(config, own, model, source)
        return mask, masker.name if masker is not None else None

    assert chosen() == ("learned", None)
    assert chosen(direction="b-to-a") == ("occlusion", "occ_b")
    assert chosen(mask="occlusion", mask_model="occ_b") == ("occlusion", "occ_b")
    assert chosen(mask="hull") == ("hull", None)
    # The swap model's own occlusion model (masked training's) comes before the faceset's.
    own_settings = model.settings.model_copy(update={"occlusion_model": "occ_b"})
    model = dataclasses.replace(model, settings=own_settings)
    assert chosen() == ("occlusion", "occ_b")
    model = dataclasses.replace(
        model, settings=own_settings.model_copy(update={"occlusion_model": ""})
    )
    with pytest.raises(NotFoundError, match="no occlusion model covers faceset a") as caught:
        chosen(mask="occlusion")
    assert "swapdeck train --family occlusion" in caught.value.hint
    assert "--inputs a" in caught.value.hint
    with pytest.raises(BadInputError, match="tiny is a autoencoder model, not an occlusion"):
        chosen(mask="occlusion", mask_model="tiny")
    with pytest.raises(BadInputError, match="--mask hull uses none"):
        chosen(mask="hull", mask_model="occ_b")
