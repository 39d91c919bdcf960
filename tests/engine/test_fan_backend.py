"""The fan backend, loaded through face-alignment's real loading code, offline.

The weights are face-alignment's own networks, randomly initialised with a fixed seed
and saved under the exact names face-alignment downloads, in a temporary TORCH_HOME.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import face_alignment.utils
import numpy as np
import pytest
import torch
import torch.hub
from face_alignment.api import models_urls as fan_urls
from face_alignment.detection.sfd.net_s3fd import s3fd
from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls
from face_alignment.models import FAN
from skimage import data

from engine.errors import UnavailableError
from engine.faces.backends.fan import (
    WEIGHT_FILES,
    FanBackend,
    fan_weights_status,
    weight_file_name,
)
from engine.faces.types import Detection

REPO = Path(__file__).resolve().parents[2]
S3FD_FILE = weight_file_name(sfd_urls["s3fd"])
FAN_FILE = weight_file_name(fan_urls["2DFAN-4"])
FACE_BOX = np.array([175, 76, 265, 166], dtype=np.float32)  # the astronaut's face


def use_torch_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point torch hub at `home`; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(home))
    # A torch.hub.set_dir() from elsewhere would win over TORCH_HOME.
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert torch.hub.get_dir() == str(home / "hub")
    return home / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub checkpoints folder holding randomly initialised S3FD and 2D-FAN weights."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    # Plain state dicts: face-alignment 1.5 torch.loads both with weights_only=True.
    torch.save(s3fd().state_dict(), folder / S3FD_FILE)
    torch.save(FAN(4).state_dict(), folder / FAN_FILE)
    return folder


def link_weights(weights_dir: Path, checkpoints: Path, names: tuple[str, ...]) -> None:
    checkpoints.mkdir(parents=True, exist_ok=True)
    for name in names:
        (checkpoints / name).symlink_to(weights_dir / name)


@pytest.fixture(scope="module")
def backend(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FanBackend:
    home = tmp_path_factory.mktemp("torch_home")
    with pytest.MonkeyPatch.context() as mp:
        checkpoints = use_torch_home(mp, home)
        link_weights(weights_dir, checkpoints, WEIGHT_FILES)
        # No flipped second pass: halves the FAN time on a 2-core CI box.
        return FanBackend(device="cpu", flip_input=False)


def test_file_names_match_face_alignment_tables() -> None:
    assert (S3FD_FILE, FAN_FILE) == WEIGHT_FILES
    assert S3FD_FILE.startswith("s3fd-") and FAN_FILE.startswith("2DFAN4-")


def test_weights_status_follows_torch_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path
) -> None:
    checkpoints = use_torch_home(monkeypatch, tmp_path / "home")
    assert fan_weights_status() == (False, str(checkpoints))
    link_weights(weights_dir, checkpoints, (S3FD_FILE,))
    assert fan_weights_status() == (False, str(checkpoints))  # one of two is not enough
    link_weights(weights_dir, checkpoints, (FAN_FILE,))
    assert fan_weights_status() == (True, str(checkpoints))


def test_weights_status_is_cheap(tmp_path: Path) -> None:
    """No torch, no face_alignment: `auto` calls this on every run."""
    code = (
        "import json, sys\n"
        "from engine.faces.backends.fan import fan_weights_status\n"
        "print(json.dumps([fan_weights_status(), 'torch' in sys.modules,"
        " 'face_alignment' in sys.modules]))\n"
    )
    env = {**os.environ, "TORCH_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    status, torch_loaded, fa_loaded = json.loads(out.stdout)
    assert status == [False, str(tmp_path / "hub" / "checkpoints")]
    assert not torch_loaded and not fa_loaded


def test_loads_and_describes(backend: FanBackend) -> None:
    assert backend.name == "fan"
    assert backend.device == "cpu"
    assert backend.describe() == "face-alignment S3FD + 2D-FAN on cpu"


@pytest.mark.slow
def test_landmarks_on_a_given_box(backend: FanBackend) -> None:
    image = data.astronaut()
    (points,) = backend.landmarks(image, [FACE_BOX])
    assert points.shape == (68, 2)
    assert points.dtype == np.float32
    assert np.isfinite(points).all()
    # Random weights put points anywhere in FAN's crop, but the crop is around the box.
    x0, y0, x1, y1 = FACE_BOX
    w, h = x1 - x0, y1 - y0
    assert (points[:, 0] > x0 - w).all() and (points[:, 0] < x1 + w).all()
    assert (points[:, 1] > y0 - h).all() and (points[:, 1] < y1 + h).all()
    assert backend.landmarks(image, []) == []


def assert_detections(found: list[Detection]) -> None:
    assert isinstance(found, list)
    for det in found:
        assert isinstance(det, Detection)
        assert det.box.shape == (4,) and det.box.dtype == np.float32
        assert np.isfinite(det.box).all()
        assert isinstance(det.score, float) and 0.0 <= det.score <= 1.0


def test_detect_returns_detections(backend: FanBackend) -> None:
    small = np.ascontiguousarray(data.astronaut()[::4, ::4])  # 128 x 128: fast on CPU
    assert_detections(backend.detect(small))


def as_rows(found: list[Detection]) -> np.ndarray:
    """(x0, y0, x1, y1, score) rows in a fixed order: by box, rounded against float noise."""
    rows = np.array([[*d.box, d.score] for d in found], dtype=np.float64).reshape(-1, 5)
    keys = np.round(rows[:, :4]).T[::-1]
    return rows[np.lexsort(keys)]


@pytest.mark.slow
def test_detect_batch_keeps_order_across_shapes(backend: FanBackend) -> None:
    small = np.ascontiguousarray(data.astronaut()[::4, ::4])
    other = np.ascontiguousarray(data.astronaut()[:96, :64])
    images = [small, other, small]
    found = backend.detect_batch(images)
    assert len(found) == 3
    for dets in found:
        assert_detections(dets)
    # The same image gives the same boxes alone and inside a batch (NMS may order ties
    # differently, so compare them sorted).
    single = as_rows(backend.detect(small))
    np.testing.assert_allclose(as_rows(found[0]), single, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(as_rows(found[2]), single, rtol=1e-4, atol=1e-2)
    assert backend.detect_batch([]) == []


def test_offline_without_weights_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = use_torch_home(monkeypatch, tmp_path / "empty")
    tried: list[str] = []

    def offline(url: str, *args: object, **kwargs: object) -> None:
        tried.append(url)
        raise urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable"))

    # Both the name torch.hub exports and face-alignment's own import of it.
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", offline)
    start = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        FanBackend(device="cpu")
    assert time.monotonic() - start < 10
    err = info.value
    assert tried == [sfd_urls["s3fd"]]  # face-alignment's own URL, first file first
    assert S3FD_FILE in err.message and "could not be downloaded" in err.message
    assert "Network is unreachable" in err.message
    assert str(checkpoints) in err.hint
    assert "\n" not in err.one_line() and "Traceback" not in err.one_line()
    assert err.exit_code == 7
    assert not any(checkpoints.iterdir())  # nothing half-written


def test_corrupt_weight_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_dir: Path
) -> None:
    checkpoints = use_torch_home(monkeypatch, tmp_path / "home")
    link_weights(weights_dir, checkpoints, (S3FD_FILE,))
    (checkpoints / FAN_FILE).write_bytes(b"<html>captive portal</html>")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a present file must not be downloaded again")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", no_network)
    with pytest.raises(UnavailableError) as info:
        FanBackend(device="cpu")
    err = info.value
    assert FAN_FILE in err.message and "corrupt" in err.message
    assert S3FD_FILE not in err.message
    assert str(checkpoints) in err.hint
    assert "\n" not in err.one_line()


def test_cuda_without_gpu_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnavailableError, match="no CUDA GPU"):
        FanBackend(device="cuda")
