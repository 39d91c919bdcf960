"""fan: face-alignment's S3FD detector and 2D-FAN landmarks, batched on the device.

The weights live where face-alignment itself keeps them, `<torch hub>/checkpoints`
(which follows TORCH_HOME), so a copy fetched by either tool serves both. They are
downloaded from face-alignment's own URLs on first use; after that no network is needed.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import numpy as np

from engine.errors import UnavailableError
from engine.faces.backends.base import FaceBackend
from engine.faces.types import Detection

# Copied from face_alignment 1.5.0 (detection/sfd/sfd_detector.py `models_urls['s3fd']` and
# api.py `models_urls['2DFAN-4']`). Importing face_alignment to read them pulls in torch,
# numba, OpenCV and scikit-image (over a second), too slow for fan_weights_status().
# FanBackend reads the live tables instead, and a test checks these still match them.
S3FD_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"
FAN_2D_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"

# How many same-sized frames go through the detector in one forward pass.
DETECT_BATCH = 8


def weight_file_name(url: str) -> str:
    """The file name face-alignment saves a URL under (the URL path's last part)."""
    return os.path.basename(urlparse(url).path)


WEIGHT_FILES = (weight_file_name(S3FD_URL), weight_file_name(FAN_2D_URL))


def hub_checkpoints_dir() -> Path:
    """`torch.hub.get_dir()/checkpoints`, without importing torch when it is not loaded yet."""
    torch = sys.modules.get("torch")
    if torch is not None:
        # Only a loaded torch can have had torch.hub.set_dir() called on it.
        return Path(torch.hub.get_dir()) / "checkpoints"
    # The same rule torch.hub.get_dir() follows when set_dir() was never called.
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(torch_home) / "hub" / "checkpoints"


def fan_weights_status() -> tuple[bool, str]:
    """Whether the S3FD and 2D-FAN weights are on disk, and the folder they belong in.

    Cheap: no face_alignment import, no network.
    """
    folder = hub_checkpoints_dir()
    present = all((folder / name).is_file() for name in WEIGHT_FILES)
    return present, str(folder)


def resolve_device(device: str) -> str:
    """'auto' -> the first CUDA GPU if there is one, else 'cpu'; 'cuda' -> 'cuda:<index>'."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UnavailableError(
            f"unknown device {device!r}", "use auto, cpu, cuda or cuda:<index>"
        ) from None
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type != "cuda":
        raise UnavailableError(
            f"the fan backend does not run on {device!r}", "use auto, cpu, cuda or cuda:<index>"
        )
    if not torch.cuda.is_available():
        raise UnavailableError(
            f"device {device!r} asked for, but torch sees no CUDA GPU here",
            "use --device cpu, or install a CUDA build of torch",
        )
    index = parsed.index if parsed.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise UnavailableError(
            f"no CUDA device {index} (this machine has {torch.cuda.device_count()})",
            "pick an index below that",
        )
    return f"cuda:{index}"


def _import_face_alignment() -> ModuleType:
    try:
        import face_alignment
    except ImportError as exc:
        raise UnavailableError(
            f"face-alignment is not importable ({exc})", "run: pip install face-alignment"
        ) from None
    return face_alignment


def _live_weight_urls() -> dict[str, str]:
    """face-alignment's own URL tables for the files this backend loads, by label."""
    from face_alignment.api import models_urls as fan_urls
    from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

    return {"S3FD detector": sfd_urls["s3fd"], "2D-FAN landmark": fan_urls["2DFAN-4"]}


def _fetch(label: str, url: str, folder: Path) -> Path:
    """Download `url` into the hub checkpoints folder unless it is there already."""
    import torch.hub

    path = folder / weight_file_name(url)
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Quietly (the engine never prints); torch writes a temp file and renames it in.
        torch.hub.download_url_to_file(url, str(path), None, progress=False)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise UnavailableError(
            f"{label} weights {path.name} are missing from {folder} "
            f"and could not be downloaded ({reason})",
            f"on a machine with internet, fetch {url} and put it in {folder}",
        ) from None
    return path


def _unreadable(path: Path) -> bool:
    """Whether `path` fails to load as plain tensors. weights_only: a pickle that would
    run code is refused, never executed. mmap makes it cheap for zip-format files."""
    import torch

    with warnings.catch_warnings():  # torch's remarks on odd pickles; the engine never prints
        warnings.simplefilter("ignore")
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            try:  # a legacy (pre-zip) torch file cannot be mapped
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                return True
    return False


def _corrupt(label: str, path: Path, url: str) -> UnavailableError:
    return UnavailableError(
        f"{label} weights {path} are corrupt or unreadable",
        f"delete the file and run again with internet, "
        f"or put a good copy of {url} in {path.parent}",
    )


def _check_weights(paths: dict[str, Path], urls: dict[str, str]) -> None:
    """Refuse a weight file that is not plain tensors before face-alignment opens it.

    face-alignment 1.5 loads both files with weights_only=True itself; checking here
    keeps a planted pickle harmless whatever version of it (or of torch) is installed.
    """
    for label, path in paths.items():
        if _unreadable(path):
            raise _corrupt(label, path, urls[label])


def _load_error(paths: dict[str, Path], urls: dict[str, str], exc: Exception) -> UnavailableError:
    """Name the weight file that broke loading, so the user knows which one to replace."""
    for label, path in paths.items():
        if _unreadable(path):
            return _corrupt(label, path, urls[label])
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    folder = next(iter(paths.values())).parent
    return UnavailableError(
        f"face-alignment could not load its weights from {folder} ({first_line})",
        f"delete {', '.join(p.name for p in paths.values())} there and run again with internet",
    )


def _to_detections(rows: Iterable[np.ndarray]) -> list[Detection]:
    """face-alignment's (x0, y0, x1, y1, score) rows -> Detections."""
    return [Detection(np.asarray(row[:4], dtype=np.float32), float(row[4])) for row in rows]


class FanBackend(FaceBackend):
    """S3FD boxes + 2D-FAN 68-point landmarks from the face-alignment package."""

    name = "fan"

    def __init__(self, device: str = "auto", flip_input: bool = True) -> None:
        fa = _import_face_alignment()
        self.device = resolve_device(device)
        # Batches pay off on a GPU; on a CPU they only add latency.
        self.batch_size = DETECT_BATCH if self.device.startswith("cuda") else 1
        folder = hub_checkpoints_dir()
        urls = _live_weight_urls()
        paths = {label: _fetch(label, url, folder) for label, url in urls.items()}
        _check_weights(paths, urls)
        kwargs: dict[str, object] = {
            "device": self.device,
            "face_detector": "sfd",
            # Hand S3FD its file ourselves: face-alignment then loads it with
            # weights_only=True, instead of unpickling it freely via load_state_dict_from_url.
            "face_detector_kwargs": {"path_to_detector": str(paths["S3FD detector"])},
            "flip_input": flip_input,
            # torch.compile costs minutes on first use and writes its own cache; stay eager.
            "compile": False,
            "max_batch_size": 16,
        }
        # face-alignment 1.4 has no compile / max_batch_size; pass what this version takes.
        accepted = inspect.signature(fa.FaceAlignment).parameters
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        try:
            self._fa = fa.FaceAlignment(fa.LandmarksType.TWO_D, **kwargs)
        except Exception as exc:
            # Unpickling errors, truncated files and state dicts of the wrong shape all
            # surface here with different types; each means "this weight file is bad".
            raise _load_error(paths, urls, exc) from None

    def describe(self) -> str:
        return f"face-alignment S3FD + 2D-FAN on {self.device}"

    def detect(self, image: np.ndarray) -> list[Detection]:
        rows = self._fa.face_detector.detect_from_image(np.ascontiguousarray(image))
        return _to_detections(rows)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Frames of one size go through S3FD together, DETECT_BATCH at a time."""
        import torch

        found: list[list[Detection]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            by_shape.setdefault(img.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), DETECT_BATCH):
                chunk = indices[start : start + DETECT_BATCH]
                # Move uint8 to the device (4x less traffic); the detector makes it float there.
                batch = torch.from_numpy(np.stack([images[i] for i in chunk]))
                batch = batch.to(self.device).permute(0, 3, 1, 2)
                per_image = self._fa.face_detector.detect_from_batch(batch)
                for i, rows in zip(chunk, per_image, strict=True):
                    found[i] = _to_detections(rows)
        return found

    def landmarks(self, image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        if not boxes:
            return []
        # float64: face-alignment writes the box scale into a torch tensor, which refuses float32.
        faces = [np.asarray(box, dtype=np.float64)[:4] for box in boxes]
        points = self._fa.get_landmarks_from_image(image, detected_faces=faces)
        return [np.asarray(p, dtype=np.float32).reshape(68, 2) for p in points]
