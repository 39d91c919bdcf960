"""Keep freed memory in the process while training on CPU.

glibc serves every allocation above its mmap threshold (32 MB at most) with a
fresh mmap and unmaps it on free, so each training step page-faults its
weight casts, gradients and large activations in again from zeroed pages. On
the `original` model that costs about 15% of a CPU step. Serving everything
from the heap and not trimming it makes a step reuse last step's pages; a
training process's resident size is its peak anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt() parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# mallopt takes an int: return heap memory to the system only past 2 GB free at its top.
_TRIM_AT = 2**31 - 1


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed memory instead of returning it; False where that is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl and others have no mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_AT))
