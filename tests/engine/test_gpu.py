"""engine.gpu: NVML stats for the wizard's GPU panel; [] without a GPU, never raises."""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import pytest

from engine import gpu


def test_gpu_stats_match_the_machine() -> None:
    stats = gpu.gpu_stats()
    if not glob.glob("/dev/nvidia[0-9]*"):
        assert stats == []
        return
    assert stats, "an NVIDIA device node exists but NVML reported no GPU"
    for i, s in enumerate(stats):
        assert s.index == i
        assert s.name
        assert 0 <= s.util_percent <= 100
        assert s.mem_total_mb > 0
        assert 0 <= s.mem_used_mb <= s.mem_total_mb
        assert 0 <= s.temperature_c < 130


def test_repeated_calls_are_cheap_and_stable() -> None:
    # The panel polls every ~2 s: a GPU-less box must not retry loading NVML each time.
    first = gpu.gpu_stats()
    assert [s.index for s in gpu.gpu_stats()] == [s.index for s in first]
    if not first:
        assert gpu._nvml is False


def test_a_driver_error_mid_way_gives_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # A GPU falling off the bus cannot be produced on purpose; stand in for NVML's failure.
    class Broken:
        class NVMLError(Exception):
            pass

        def nvmlDeviceGetCount(self) -> int:
            raise self.NVMLError("GPU is lost")

    monkeypatch.setattr(gpu, "_nvml", Broken())
    assert gpu.gpu_stats() == []


def test_no_torch_import() -> None:
    code = "import sys, engine.gpu as g; g.gpu_stats(); assert 'torch' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
