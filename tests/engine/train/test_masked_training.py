"""Masked training: covered pixels weigh nothing in the autoencoder's loss; the visible
channel comes from imported labels and an occlusion model's predictions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from maskutil import half_label, make_occlusion_model

from engine.config import RunSettings, build
from engine.errors import BadInputError, NotFoundError
from engine.faceset import Faceset
from engine.train.augment import Augmenter, AugmentSpec
from engine.train.data import predict_face
from engine.train.families.autoencoder.family import AutoencoderFamily
from engine.train.families.occlusion.inference import load_occlusion
from engine.train.loop import train
from engine.train.losses import LossSpec, SwapLoss
from engine.train.store import ModelPaths, create_model, new_settings
from engine.workspace import Workspace

SIZE = 32
FACE = (slice(4, 28), slice(4, 28))
COVER = (slice(14, 26), slice(6, 18))  # a hand over the lower left of the face
SEEN = (slice(6, 12), slice(18, 26))  # face, not covered


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, SIZE, SIZE, generator=gen) * 0.6 + 0.2
    pred = (target + 0.1 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    masks = torch.zeros(2, 3, SIZE, SIZE)
    masks[:, 0, FACE[0], FACE[1]] = 1.0
    masks[:, 1, 16:22, 10:22] = 1.0  # the mouth, half under the hand
    masks[:, 2] = 1.0
    masks[:, 2, COVER[0], COVER[1]] = 0.0
    return pred, target, masks


def _changed(image: torch.Tensor, region: tuple[slice, slice], seed: int) -> torch.Tensor:
    out = image.clone()
    gen = torch.Generator().manual_seed(seed)
    out[:, :, region[0], region[1]] = torch.rand(
        out[:, :, region[0], region[1]].shape, generator=gen
    )
    return out


def test_covered_pixels_weigh_nothing_and_the_rest_as_before() -> None:
    pred, target, masks = _batch()
    loss = SwapLoss(LossSpec())
    mask = masks[:, 0:1] * masks[:, 2:3]  # the face a learned mask should draw: hull minus hand
    base, parts = loss(pred, target, masks, mask)
    assert parts["mask"].item() == 0.0
    # Whatever is under the hand, in the target or the prediction: the same loss.
    for seed in (1, 2):
        other, _ = loss(
            _changed(pred, COVER, seed), _changed(target, COVER, seed + 10), masks, mask
        )
        assert torch.allclose(other, base, rtol=0, atol=1e-6)
    # A change where the face is seen does count.
    assert loss(pred, _changed(target, SEEN, 3), masks, mask)[0].item() > base.item() + 1e-3
    # A learned mask that paints the hand in as face is wrong now.
    assert loss(pred, target, masks, masks[:, 0:1])[1]["mask"].item() > 0.01
    # All visible is exactly the two-channel loss.
    masks[:, 2] = 1.0
    assert torch.allclose(loss(pred, target, masks)[0], loss(pred, target, masks[:, :2])[0])


def test_the_visible_channel_moves_with_the_hull() -> None:
    gen = torch.Generator().manual_seed(0)
    faces = torch.randint(0, 256, (3, 3, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    masks = torch.zeros(3, 3, SIZE, SIZE, dtype=torch.uint8)
    masks[:, 0, 4:20, 6:30] = 255
    masks[:, 2] = masks[:, 0]
    _, _, out = Augmenter(AugmentSpec(), SIZE)(faces, masks, torch.Generator().manual_seed(1))
    assert out.shape == (3, 3, SIZE, SIZE)
    assert torch.equal(out[:, 2], out[:, 0]) and out[:, 0].std() > 0.1


def _family(ws: Workspace, **options: object) -> AutoencoderFamily:
    requested = {"preset": "tiny", "faceset_a": "a", "faceset_b": "b", "size": SIZE, **options}
    return AutoencoderFamily(new_settings(requested), ws)


def _expected_visible(hull: torch.Tensor, face: np.ndarray) -> torch.Tensor:
    covered = (hull.int() * (255 - torch.from_numpy(face).int()) + 127) // 255
    return (255 - covered).byte()


def test_labels_and_an_occlusion_model_give_the_visible_channel(facesets_ws: Path) -> None:
    ws = Workspace(facesets_ws)
    with Faceset.open(ws.faceset_dir("a")) as fs:
        records = list(fs.faces())
        fs.set_labels([(records[0].id, half_label(fs.size)), (records[1].id, half_label(fs.size))])
    label = cv2.imdecode(np.frombuffer(half_label(SIZE), np.uint8), cv2.IMREAD_GRAYSCALE)

    # Labels alone: the labelled faces get their visible channel; B, with none, stays plain.
    family = _family(ws)
    family.load_data(torch.device("cpu"))
    a, b = family.data_a, family.data_b
    assert a.masks.shape[1] == 3 and b.masks.shape[1] == 2
    # Face 0 is held out (the first of the evenly spaced), face 1 is training face 0.
    for masks in (a.held_masks[0], a.masks[0]):
        assert torch.equal(masks[2], _expected_visible(masks[0], label))
        assert masks[2, :, : SIZE // 2].float().mean() < 200 < masks[2, :, SIZE // 2 :].min()
    assert (a.masks[1:, 2] == 255).all() and (a.held_masks[1:, 2] == 255).all()

    # With an occlusion model: its prediction for the others; a label still wins.
    make_occlusion_model(ws, "occ")
    family = _family(ws, occlusion_model="occ")
    family.load_data(torch.device("cpu"))
    a, b = family.data_a, family.data_b
    assert a.masks.shape[1] == 3 and b.masks.shape[1] == 3
    assert torch.equal(a.masks[0, 2], _expected_visible(a.masks[0, 0], label))
    model = load_occlusion(ws, "occ", "cpu")
    with Faceset.open(ws.faceset_dir("b")) as fs:
        coverage = float(fs.meta("coverage"))
    predicted = predict_face(model, b.faces[:5].permute(0, 2, 3, 1).numpy(), coverage)
    want = _expected_visible(b.masks[:5, 0], predicted)
    assert torch.equal(b.masks[:5, 2], want) and (want < 255).any()


def _run() -> RunSettings:
    return build(
        RunSettings, steps=2, save_every=2, preview_every=1000, snapshot_every=0, device="cpu"
    )


def test_masked_training_trains_and_keeps_the_option(facesets_ws: Path) -> None:
    ws = Workspace(facesets_ws)
    make_occlusion_model(ws, "occ")
    requested = {"preset": "tiny", "faceset_a": "a", "faceset_b": "b", "size": SIZE}
    requested |= {"batch_size": 2, "occlusion_model": "occ"}
    result = train(ws, "masked", requested, _run())
    assert result.steps == 2 and np.isfinite(result.loss_a)
    assert 'occlusion_model = "occ"' in ModelPaths(ws.model_dir("masked")).toml.read_text()


def test_a_bad_occlusion_model_is_refused_before_anything_is_written(facesets_ws: Path) -> None:
    ws = Workspace(facesets_ws)
    with pytest.raises(BadInputError, match=r"occlusion_model '\.\./x' is not a plain name"):
        new_settings(
            {"preset": "tiny", "faceset_a": "a", "faceset_b": "b", "occlusion_model": "../x"}
        )
    make_occlusion_model(ws, "untrained", trained=False)
    create_model(
        new_settings({"preset": "tiny", "faceset_a": "a", "faceset_b": "b"}),
        ModelPaths(ws.model_dir("swap")),
    )
    cases = {
        "nope": (NotFoundError, "no occlusion model 'nope'"),
        "untrained": (BadInputError, "occlusion model untrained has not been trained yet"),
        "swap": (BadInputError, "model swap is a autoencoder model, not an occlusion mask"),
    }
    requested = {"preset": "tiny", "faceset_a": "a", "faceset_b": "b", "size": SIZE}
    for name, (error, message) in cases.items():
        with pytest.raises(error, match=message) as caught:
            train(ws, "new", {**requested, "occlusion_model": name}, _run())
        assert "\n" not in caught.value.one_line()
        assert not ws.model_dir("new").exists()
