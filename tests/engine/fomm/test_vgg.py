"""VGG-19 for the perceptual loss: torchvision's file loads, safely, or is refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from vggfile import random_vgg_state, write_random_vgg

from engine.errors import CorruptError, UnavailableError
from engine.train.vgg import (
    WEIGHTS_FILE,
    find_weights,
    hub_weights_path,
    load_vgg19,
    weights_status,
)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_vgg_state(seed=3)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, state) -> Path:
    folder = tmp_path_factory.mktemp("vgg")
    torch.save(state, folder / WEIGHTS_FILE)
    return folder / WEIGHTS_FILE


def _reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """relu1_1 ... relu5_1 computed straight from the state dict, layer by layer, written
    from torchvision's VGG-19 table: conv ids in order, "M" a 2x2 max pool."""
    order = [0, 2, "M", 5, 7, "M", 10, 12, 14, 16, "M", 19, 21, 23, 25, "M", 28]
    taps = {0, 5, 10, 19, 28}
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = (x - mean) / std
    out = []
    for item in order:
        if item == "M":
            h = F.max_pool2d(h, 2)
            continue
        w, b = state[f"features.{item}.weight"], state[f"features.{item}.bias"]
        h = F.relu(F.conv2d(h, w, b, padding=1))
        if item in taps:
            out.append(h)
    return out


def test_loads_torchvision_layout_and_matches_the_authors_slices(weights, state):
    vgg = load_vgg19(weights)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    got = vgg(x)
    want = _reference(state, x)
    assert [tuple(g.shape) for g in got] == [
        (2, 64, 48, 48),
        (2, 128, 24, 24),
        (2, 256, 12, 12),
        (2, 512, 6, 6),
        (2, 512, 3, 3),
    ]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    # Deep features are not dead: the random file keeps activations alive, as a trained one.
    assert got[-1].abs().mean() > 1e-3


def test_frozen_and_always_in_eval(weights):
    vgg = load_vgg19(weights)
    vgg.train()
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())
    # Only the loss's layers are kept (up to relu5_1); the buffers are not saved.
    assert set(vgg.state_dict()) == {
        f"features.{i}.{k}" for i in (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
        for k in ("weight", "bias")
    }  # fmt: skip


def test_hub_cache_is_where_it_is_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / "hub" / "checkpoints" / WEIGHTS_FILE
    assert hub_weights_path() == expected
    assert weights_status() == (False, expected)
    write_random_vgg(expected.parent)
    assert find_weights() == expected
    assert weights_status() == (True, expected)


def test_missing_file_says_which_file_goes_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    with pytest.raises(UnavailableError) as caught:
        find_weights()
    line = caught.value.one_line()
    assert "\n" not in line
    assert WEIGHTS_FILE in line
    assert str(tmp_path / "home" / "hub" / "checkpoints") in line
    assert "--vgg-weights" in line
    with pytest.raises(UnavailableError, match=r"not found at .*nothere\.pth"):
        find_weights(str(tmp_path / "nothere.pth"))


def _refused(tmp_path: Path, content: object, needle: str) -> None:
    path = tmp_path / "bad.pth"
    torch.save(content, path)
    with pytest.raises(CorruptError) as caught:
        load_vgg19(path)
    assert needle in caught.value.one_line()
    assert "\n" not in caught.value.one_line()


def test_vgg16_or_wrong_shapes_are_refused(tmp_path, state):
    # VGG-16 has a max pool at features.16 where VGG-19 has conv3_4.
    no16 = {k: v for k, v in state.items() if not k.startswith("features.16.")}
    _refused(tmp_path, no16, "features.16.weight: missing")
    narrow = {**state, "features.5.weight": torch.zeros(64, 64, 3, 3)}
    _refused(tmp_path, narrow, "features.5.weight: [64, 64, 3, 3], VGG-19 has [128, 64, 3, 3]")
    _refused(tmp_path, torch.zeros(3), "holds a Tensor")
    nan = {**state, "features.0.bias": torch.full((64,), float("nan"))}
    _refused(tmp_path, nan, "not finite")


class _Payload:
    """What a hostile .pth would hold: unpickling it runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_payload_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / WEIGHTS_FILE
    torch.save({"features.0.weight": _Payload(marker)}, path)
    with pytest.raises(CorruptError, match="not a plain weights file"):
        load_vgg19(path)
    assert not marker.exists()
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CorruptError):
        load_vgg19(garbage)
