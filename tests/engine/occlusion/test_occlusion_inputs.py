"""What an occlusion model learns from, and what it refuses in one line before writing
anything: imported labels replace the hull as targets (and fill a quarter of each
batch); unusable facesets are skipped when not named and refused when named;
start_from must name a trained occlusion model of the same size and width."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.config import RunSettings, build
from engine.errors import BadInputError, NotFoundError, SwapdeckError
from engine.events import Started
from engine.faceset import Faceset
from engine.train.families.occlusion.family import (
    OcclusionFamily,
    load_faceset,
    occluded_batch,
)
from engine.train.families.occlusion.synth import TextureBank
from engine.train.loop import train
from engine.train.store import ModelPaths, create_model, load_settings, new_settings
from engine.workspace import Workspace

SIZE = 32
LABELLED = (1, 2, 3)  # rows of faceset a given a label (training faces, not held out)


def _half_label(size: int) -> bytes:
    """Left half covered (0), right half face (255)."""
    label = np.full((size, size), 255, np.uint8)
    label[:, : size // 2] = 0
    return cv2.imencode(".png", label)[1].tobytes()


def _run() -> RunSettings:
    return build(
        RunSettings,
        steps=1,
        save_every=1000,
        preview_every=1000,
        snapshot_every=0,
        device="cpu",
        precision="fp32",
    )


def _requested(**more: object) -> dict[str, object]:
    return {"preset": "occlusion-small", "size": SIZE, "batch_size": 4, **more}


@pytest.fixture(scope="module")
def ws(occlusion_model: tuple, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A copy of the shared model's workspace, plus: labels on three faces of `a`, a
    faceset `few` of 10 faces, a faceset `wide` cut at another coverage, an autoencoder
    model `ae` and an untrained occlusion model `raw`."""
    ws = Workspace(tmp_path_factory.mktemp("occlusion_inputs") / "ws")
    shutil.copytree(occlusion_model[0].root, ws.root)
    with Faceset.open(ws.faceset_dir("a")) as fs:
        ids = [r.id for r in fs.faces()]
        fs.set_labels([(ids[row], _half_label(fs.size)) for row in LABELLED])
    shutil.copytree(ws.faceset_dir("a"), ws.faceset_dir("few"))
    with Faceset.open(ws.faceset_dir("few")) as fs:
        fs.delete_faces([r.id for r in fs.faces()][10:])
    shutil.copytree(ws.faceset_dir("b"), ws.faceset_dir("wide"))
    with Faceset.open(ws.faceset_dir("wide")) as fs:
        fs.set_meta("coverage", "0.6")
    create_model(
        new_settings({"preset": "tiny", "faceset_a": "a", "faceset_b": "b"}),
        ModelPaths(ws.model_dir("ae")),
    )
    create_model(new_settings(_requested()), ModelPaths(ws.model_dir("raw")))
    return ws


def test_a_label_replaces_the_hull_as_the_target(ws: Workspace) -> None:
    data = load_faceset(ws, "a", SIZE)
    assert data.labelled.nonzero()[0].tolist() == list(LABELLED)
    half = data.targets[LABELLED[0]] >= 128
    assert not half[:, : SIZE // 2].any() and half[:, SIZE // 2 :].all()
    hull = data.targets[0] >= 128
    assert hull[:, : SIZE // 2].any()  # an unlabelled face keeps its hull
    _, target, _ = occluded_batch(data, np.random.default_rng(0), TextureBank.empty(SIZE), 0.0)
    assert torch.equal(target[:, 0].bool(), torch.from_numpy(data.targets >= 128))


def test_labelled_faces_are_a_quarter_of_every_batch(ws: Workspace) -> None:
    family = OcclusionFamily(new_settings(_requested(inputs=["a"], batch_size=8)), ws)
    family.load_data(torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        rows = family._indices(generator, torch.device("cpu"))
        assert family.data.labelled[rows].sum() >= 2


def test_every_usable_faceset_by_default_the_others_skipped(ws: Workspace) -> None:
    events: list = []
    train(ws, "all", _requested(), _run(), events.append)
    detail = next(e for e in events if isinstance(e, Started)).detail
    assert detail["facesets"] == "a,b"
    assert "few (faceset few has 10 faces" in detail["skipped"]
    assert "wide (coverage 0.6)" in detail["skipped"]
    assert detail["labelled"] == len(LABELLED)
    assert set(load_settings(ModelPaths(ws.model_dir("all")).toml).geometry) == {"a", "b"}


@pytest.mark.parametrize(
    ("more", "error", "words"),
    [
        ({"inputs": ["nope"]}, NotFoundError, "no faceset 'nope'"),
        ({"inputs": ["few"]}, BadInputError, "faceset few has 10 faces"),
        ({"inputs": ["a", "wide"]}, BadInputError, "wide was cut at coverage 0.6"),
        ({"start_from": "nope"}, NotFoundError, "no occlusion model 'nope' to start from"),
        ({"start_from": "ae"}, BadInputError, "ae is a autoencoder model"),
        ({"start_from": "raw"}, BadInputError, "raw has not been trained yet"),
        ({"start_from": "occ", "size": 48}, BadInputError, "its weights do not fit"),
    ],
)
def test_refused_in_one_line_before_anything_is_written(
    ws: Workspace, more: dict, error: type[SwapdeckError], words: str
) -> None:
    with pytest.raises(error) as caught:
        train(ws, "refused", _requested(**more), _run())
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert not ws.model_dir("refused").exists()


def test_resuming_does_not_need_the_model_it_started_from(ws: Workspace, tmp_path: Path) -> None:
    train(ws, "tuned", _requested(inputs=["b"], start_from="occ"), _run())
    shutil.move(ws.model_dir("occ"), tmp_path / "occ")  # the generic model is gone
    try:
        result = train(ws, "tuned", _requested(), build(RunSettings, steps=2, device="cpu"))
    finally:
        shutil.move(tmp_path / "occ", ws.model_dir("occ"))
    assert result.steps == 2
