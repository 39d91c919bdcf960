"""Face backends: `dlib` (offline, CPU), `fan` (face-alignment, GPU-friendly) and
`mediapipe` (BlazeFace + face mesh on CPU, offline; finds turned heads).

`auto` picks `fan` when its weights are already on disk and a GPU is present.
Otherwise it picks `mediapipe` when its model files are installed: on real
footage it finds heads turned past where dlib's HOG gives up, every small face
HOG finds (its detector also runs on tiles), with steadier landmarks, in less
time. Without those files it picks `dlib`. It always says why.
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


def _mediapipe_missing() -> str | None:
    """Why the mediapipe backend cannot run here, or None when it can."""
    from engine.errors import UnavailableError
    from engine.faces.backends.mediapipe_backend import model_dir

    try:
        model_dir()
    except UnavailableError as exc:
        return f"{exc.message} ({exc.hint})"
    return None


def choose_backend(requested: str, detector: str = "hog") -> BackendChoice:
    """Resolve 'auto' into a concrete backend name, with the reason.

    `detector` is dlib's: asking for its CNN detector means asking for dlib.
    """
    if requested != "auto":
        return BackendChoice(requested, "asked for")
    if detector == "cnn":
        return BackendChoice("dlib", "--detector cnn is dlib's")
    from engine.faces.backends.fan import fan_weights_status

    present, where = fan_weights_status()
    if _cuda_available() and present:
        return BackendChoice("fan", "GPU present and face-alignment weights found")
    why = "no GPU" if not _cuda_available() else f"face-alignment weights are not in {where}"
    missing = _mediapipe_missing()
    if missing is None:
        return BackendChoice(
            "mediapipe",
            f"{why}, so mediapipe on the CPU (finds turned heads and small faces)",
        )
    return BackendChoice("dlib", f"{why}, and mediapipe cannot run: {missing}; so dlib")


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
