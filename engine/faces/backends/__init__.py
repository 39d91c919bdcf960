"""Face backends: `dlib` (offline, CPU), `fan` (face-alignment, GPU-friendly) and
`mediapipe` (BlazeFace + face mesh on CPU, offline; finds turned heads).

`auto` picks `fan` when its weights are already on disk and a GPU is present,
otherwise `dlib`, and says why. It does not pick `mediapipe`: BlazeFace sees the
whole frame at 128 px, so it misses the small faces of wide shots that dlib's HOG
finds (80 px in a 1080p frame); it is for close-ups and turned heads, by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.faces.backends.base import FaceBackend


@dataclass(frozen=True)
class BackendChoice:
    name: str
    reason: str


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_backend(requested: str) -> BackendChoice:
    """Resolve 'auto' into a concrete backend name, with the reason."""
    if requested != "auto":
        return BackendChoice(requested, "asked for")
    from engine.faces.backends.fan import fan_weights_status

    present, where = fan_weights_status()
    if not _cuda_available():
        return BackendChoice(
            "dlib", "no GPU, so the CPU-friendly dlib backend (--backend mediapipe: turned heads)"
        )
    if not present:
        return BackendChoice("dlib", f"GPU present but face-alignment weights are not in {where}")
    return BackendChoice("fan", "GPU present and face-alignment weights found")


def load_backend(name: str, detector: str = "hog", device: str = "auto") -> FaceBackend:
    """Load a backend's models; raises UnavailableError when it cannot run here."""
    if name == "dlib":
        from engine.faces.backends.dlib_backend import DlibBackend

        return DlibBackend(detector=detector)
    if name == "fan":
        from engine.faces.backends.fan import FanBackend

        return FanBackend(device=device)
    if name == "mediapipe":
        from engine.faces.backends.mediapipe_backend import MediaPipeBackend

        return MediaPipeBackend()
    raise ValueError(f"unknown backend {name!r}")
