"""What the benchmarks share: the CPU they ran on, peak memory, a clip looped.

The benchmarks run as scripts (`python bench/NAME.py`), so this folder is first on
sys.path and they import this module by its plain name.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_description() -> str:
    """Model name, threads torch uses, and whether the CPU has the flags that set its
    (bf16) speed."""
    import torch

    model, flags = "", None
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    if flags is None:
        have = "flags unknown (no /proc/cpuinfo)"
    else:
        have = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in CPU_FLAGS)
    return f"{model}, {torch.get_num_threads()} threads (torch); {have}"


def peak_rss_kb() -> int:
    """This process's peak resident memory so far (VmHWM), in KiB."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


def looped(clip: Path, times: int, out: Path, crf: str | None = None) -> Path:
    """The clip's video `times` over (no audio), re-encoded with PyAV as H.264 (at `crf`,
    or libx264's default)."""
    import av

    with av.open(str(out), "w") as dst:
        stream = None
        pts = 0
        for _ in range(times):
            with av.open(str(clip)) as src:
                vin = src.streams.video[0]
                if stream is None:
                    stream = dst.add_stream("libx264", rate=vin.average_rate)
                    stream.width, stream.height = vin.codec_context.width, vin.codec_context.height
                    stream.pix_fmt = "yuv420p"
                    if crf is not None:
                        stream.options = {"crf": crf}
                for frame in src.decode(vin):
                    new = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), "rgb24")
                    new.pts, pts = pts, pts + 1
                    for packet in stream.encode(new):
                        dst.mux(packet)
        assert stream is not None
        for packet in stream.encode():
            dst.mux(packet)
    return out
