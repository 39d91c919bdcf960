"""`run_doctor` on this very machine, plus the branches a CPU box cannot reach."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from types import SimpleNamespace

import av
import dlib
import pynvml
import pytest
import torch
import torch.hub

from engine import doctor
from engine.doctor import Check, DoctorReport, run_doctor
from engine.faces.backends.fan import WEIGHT_FILES

BASE_CHECKS = ["python", "torch", "gpu", "dlib", "fan", "mediapipe", "pyav", "vgg19"]


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME with no weights; returns its hub checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() would hide TORCH_HOME
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def report() -> DoctorReport:
    return run_doctor()


def test_lists_every_check_in_order(report: DoctorReport) -> None:
    assert [c.name for c in report.checks] == BASE_CHECKS
    for check in report.checks:
        assert check.detail
        assert check.ok or check.hint, f"{check.name} fails without saying what to do"


def test_python(report: DoctorReport) -> None:
    check = report.check("python")
    assert check.ok
    assert platform.python_version() in check.detail


def test_torch_version_build_and_device(report: DoctorReport) -> None:
    check = report.check("torch")
    assert check.ok
    assert f"torch {torch.__version__}" in check.detail
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    assert build in check.detail
    if torch.cuda.is_available():
        assert torch.cuda.get_device_name(0) in check.detail
    else:
        assert check.detail.endswith("device cpu") or "device cpu (" in check.detail


def test_gpu_absent_is_not_a_failure(report: DoctorReport) -> None:
    if torch.cuda.is_available() or Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA GPU")
    check = report.check("gpu")
    assert check.ok
    assert check.detail.startswith("no NVIDIA GPU")
    assert not check.required


def test_dlib_usable(report: DoctorReport) -> None:
    check = report.check("dlib")
    assert check.ok, check.detail
    assert f"dlib {dlib.__version__}" in check.detail
    assert "face_recognition_models" in check.detail


def test_pyav_has_h264_and_aac(report: DoctorReport) -> None:
    check = report.check("pyav")
    assert check.ok, check.detail
    assert f"PyAV {av.__version__}" in check.detail
    assert "H.264 encoder libx264" in check.detail
    assert "AAC encoder aac" in check.detail


def test_whole_report_ok_here(report: DoctorReport) -> None:
    assert report.ok
    dumped = report.model_dump()
    assert dumped["ok"] is True
    assert [c["name"] for c in dumped["checks"]] == BASE_CHECKS


def test_fan_without_weights_says_where_they_would_go(empty_torch_home: Path) -> None:
    result = run_doctor()
    fan = result.check("fan")
    assert not fan.ok
    assert f"weights not in {empty_torch_home}" in fan.detail
    assert "downloaded there on first use" in fan.detail
    assert all(name in fan.hint for name in WEIGHT_FILES)
    assert str(empty_torch_home) in fan.hint
    assert not empty_torch_home.exists()  # looking created nothing
    # dlib still works, so the machine is fine.
    assert result.check("dlib").ok
    assert result.ok


def test_fan_with_weights_is_ok(empty_torch_home: Path) -> None:
    empty_torch_home.mkdir(parents=True)
    for name in WEIGHT_FILES:
        (empty_torch_home / name).write_bytes(b"only presence is checked")
    fan = doctor.check_fan()
    assert fan.ok, fan.detail
    assert f"weights in {empty_torch_home}" in fan.detail
    if not torch.cuda.is_available():
        assert "no GPU" in fan.detail


def test_workspace_inside_a_file_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    result = run_doctor(tmp_path / "file.txt" / "ws")
    check = result.check("workspace")
    assert not check.ok
    assert "file.txt is a file" in check.detail
    assert check.hint
    assert not result.ok


def test_workspace_that_is_a_file_is_not_ok(tmp_path: Path) -> None:
    (tmp_path / "ws").write_text("")
    check = doctor.check_workspace(tmp_path / "ws")
    assert not check.ok
    assert check.detail.endswith("is a file")


def test_new_workspace_is_ok_and_not_created(tmp_path: Path) -> None:
    result = run_doctor(tmp_path / "new")
    check = result.check("workspace")
    assert check.ok, check.detail
    assert "does not exist yet" in check.detail and str(tmp_path) in check.detail
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []  # the probe file is gone too
    assert result.ok


def test_existing_workspace_is_ok(tmp_path: Path) -> None:
    check = doctor.check_workspace(tmp_path)
    assert check.ok, check.detail
    assert f"{tmp_path} exists" in check.detail
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_parent_is_not_ok(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        check = doctor.check_workspace(locked / "ws")
    finally:
        locked.chmod(0o700)
    assert not check.ok
    assert "not writable" in check.detail


def test_nvml_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(pynvml, "nvmlInit", broken)
    check = doctor.check_gpu()
    assert not check.ok
    assert "Unknown Error" in check.detail
    assert "nvidia-smi" in check.hint
    assert not check.required


def test_gpu_details_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU branch, with NVML answering as an H100 box would."""
    gib = 1024**3
    shut: list[bool] = []
    fake = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: shut.append(True),
        "nvmlSystemGetDriverVersion": lambda: b"550.54.15",
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(used=2 * gib, total=80 * gib),
    }
    for name, fn in fake.items():
        monkeypatch.setattr(pynvml, name, fn)
    check = doctor.check_gpu()
    assert check.ok
    assert check.detail == "driver 550.54.15; 0: NVIDIA H100 80GB HBM3, 2.0/80.0 GiB used"
    assert shut == [True]


def test_missing_encoder_fails_pyav(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "H264_ENCODERS", ("no_such_encoder",))
    check = doctor.check_pyav()
    assert not check.ok
    assert "no H.264 encoder" in check.detail
    assert "AAC encoder aac" in check.detail
    assert "av" in check.hint


def face(name: str, ok: bool) -> Check:
    return Check(name=name, ok=ok, detail="x", hint="" if ok else "y", required=False)


def test_report_needs_one_face_backend() -> None:
    base = [Check(name="python", ok=True, detail="x")]
    assert DoctorReport(checks=[*base, face("dlib", True), face("fan", False)]).ok
    assert DoctorReport(checks=[*base, face("dlib", False), face("fan", True)]).ok
    assert not DoctorReport(checks=[*base, face("dlib", False), face("fan", False)]).ok
    failing = Check(name="pyav", ok=False, detail="x", hint="y")
    assert not DoctorReport(checks=[failing, face("dlib", True)]).ok
    optional = Check(name="gpu", ok=False, detail="x", hint="y", required=False)
    assert DoctorReport(checks=[*base, optional, face("dlib", True)]).ok


def test_doctor_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_doctor(tmp_path)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
