"""Occluder synthesis over real aligned faces (the sample faceset `a`, at 48 px):
seeded, every kind covers part of the face and changes no pixel it does not draw, the
target is the face minus the occluder, hands and microphones come up often, and the
texture bank's real pixels dress the occluders."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from engine.train.families.occlusion import synth
from engine.train.families.occlusion.family import MaskData, load_faceset, occluded_batch
from engine.workspace import Workspace

SIZE = 48


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def faces(sample_workspace: Workspace) -> MaskData:
    return load_faceset(sample_workspace, "a", SIZE)  # reads only


@pytest.fixture(scope="module")
def bank(faces: MaskData) -> synth.TextureBank:
    return synth.texture_bank(faces.faces, faces.targets, faces.anchors, _rng(0))


def test_a_seed_gives_the_same_occluders(faces: MaskData, bank: synth.TextureBank) -> None:
    images, anchors = faces.faces[:8], faces.anchors[:8]
    first = synth.occlude(images, anchors, _rng(1), bank, share=0.7)
    again = synth.occlude(images, anchors, _rng(1), bank, share=0.7)
    other = synth.occlude(images, anchors, _rng(2), bank, share=0.7)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    assert np.array_equal(images, faces.faces[:8])  # the faces themselves are not drawn on
    bare = ~first[1].any(axis=(1, 2))  # a share of 0.7 leaves some faces bare, untouched
    assert 0 < bare.sum() < 8 and np.array_equal(first[0][bare], images[bare])


@pytest.mark.parametrize("kind", synth.KINDS)
def test_each_kind_covers_the_face_and_only_what_it_draws(
    faces: MaskData, bank: synth.TextureBank, kind: str
) -> None:
    for i in range(6):
        image, face = faces.faces[i], faces.targets[i] >= 128
        occluder = synth.draw(SIZE, faces.anchors[i], _rng(10 + i), bank, (kind,))
        out = synth.composite(image, occluder)
        assert occluder.kinds == (kind,)
        assert (occluder.mask & face).sum() >= 3, (kind, i)  # it covers part of the face
        assert occluder.mask.mean() < 0.7, (kind, i)  # and not the whole crop
        untouched = occluder.alpha == 0
        assert untouched.mean() > 0.3
        assert np.array_equal(out[untouched], image[untouched])
        assert (out != image).any(-1)[occluder.mask].mean() > 0.5  # it shows


def test_the_target_is_the_face_minus_the_occluder(
    faces: MaskData, bank: synth.TextureBank
) -> None:
    data = faces.take(np.arange(8))
    x, target, cover = occluded_batch(data, _rng(3), bank, share=1.0)
    face = torch.from_numpy(data.targets >= 128)[:, None]
    assert cover.sum() > 0
    assert target[cover].sum() == 0  # what covers the face is not face
    assert torch.equal(target.bool(), face & ~cover)
    changed = (x != torch.from_numpy(data.faces).permute(0, 3, 1, 2)).any(1, keepdim=True)
    assert changed[cover].float().mean() > 0.5


def test_hands_and_microphones_come_up_often(faces: MaskData, bank: synth.TextureBank) -> None:
    rng = _rng(4)
    drawn = [synth.draw(SIZE, faces.anchors[k % 8], rng, bank) for k in range(120)]
    counts = Counter(kind for occluder in drawn for kind in occluder.kinds)
    assert set(counts) == set(synth.KINDS)
    assert counts["hand"] >= 25 and counts["microphone"] >= 18, counts
    assert all(occluder.mask.any() for occluder in drawn)


def test_the_bank_is_cut_around_and_inside_the_faces(faces: MaskData) -> None:
    # Paint each face's hull red and everything around it blue: scenes must come out
    # blue (cut from around the faces), skin patches red (cut from inside the hulls).
    painted = np.where((faces.targets >= 128)[..., None], [255, 0, 0], [0, 0, 255])
    bank = synth.texture_bank(painted.astype(np.uint8), faces.targets, faces.anchors, _rng(5))
    assert len(bank.scenes) >= 20 and len(bank.skin) >= 20
    assert (bank.scenes[..., 2] == 255).mean() > 0.9
    assert (bank.skin[..., 0] > 250).all() and (bank.skin[..., 2] < 5).all()


def test_bank_textures_dress_the_occluders(faces: MaskData) -> None:
    t, ts = synth._bank_sizes(SIZE)
    magenta = np.full((4, t, t, 3), (255, 0, 255), np.uint8)
    green = np.full((4, ts, ts, 3), (40, 200, 40), np.uint8)
    bank = synth.TextureBank(magenta, green)
    rng = _rng(6)
    shaped = [synth.draw(SIZE, faces.anchors[0], rng, bank, ("shapes",)) for _ in range(30)]
    from_bank = [
        o.mask & (np.abs(o.colour - np.array([1, 0, 1], np.float32)).max(-1) < 0.05) for o in shaped
    ]
    assert sum(m.any() for m in from_bank) >= 3  # some shapes wear the bank's texture
    hand = synth.draw(SIZE, faces.anchors[0], rng, bank, ("hand",))
    skin = hand.colour[hand.mask] / hand.alpha[hand.mask][:, None]
    assert (skin[:, 1] > 1.5 * skin[:, 0]).mean() > 0.9  # the hand is the bank's skin
