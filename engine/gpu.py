"""GPU utilisation, memory and temperature through NVML (nvidia-ml-py), for the wizard.

No torch here: asking torch would create a CUDA context in the wizard's process
(hundreds of MB of GPU memory) just to read a few numbers. NVML reads them from
the driver, and sees every process's use, including a detached training job's.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

_lock = threading.Lock()
# None: not tried yet; False: NVML or its library is absent (not retried); else the module.
_nvml: Any = None


@dataclass(frozen=True)
class GpuStats:
    index: int
    name: str
    util_percent: int
    mem_used_mb: int
    mem_total_mb: int
    temperature_c: int


def _init() -> Any:
    """Load NVML once per process; remember a failure so a GPU-less box pays for it once."""
    global _nvml
    with _lock:
        if _nvml is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _nvml = pynvml
            except Exception:  # library missing, no driver, no GPU: all mean "no stats"
                _nvml = False
        return _nvml


def _one(nvml: Any, index: int) -> GpuStats:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = nvml.nvmlDeviceGetName(handle)
    if isinstance(name, bytes):  # older nvidia-ml-py returned bytes
        name = name.decode("utf-8", "replace")
    util = 0
    with contextlib.suppress(nvml.NVMLError):  # not supported on some (e.g. MIG) devices
        util = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    temperature = 0
    with contextlib.suppress(nvml.NVMLError):
        temperature = int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
    return GpuStats(
        index=index,
        name=str(name),
        util_percent=util,
        mem_used_mb=int(memory.used // 2**20),
        mem_total_mb=int(memory.total // 2**20),
        temperature_c=temperature,
    )


def gpu_stats() -> list[GpuStats]:
    """One entry per NVIDIA GPU the driver sees; [] when there is none or NVML is missing.

    Never raises: a panel that shows GPU numbers must not take the wizard down.
    """
    nvml = _init()
    if not nvml:
        return []
    try:
        return [_one(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
    except Exception:  # a GPU fell off the bus, the driver was reloaded, ...
        return []
