"""glibc malloc's thresholds, set for the NumPy kernels' allocation patterns (mallopt).

Where large arrays come from decides how much memory a long NumPy loop keeps resident and how many
pages it faults in again: the classifier wants its per-batch arrays reused, the index builder wants
its temporaries returned at once. Each caller says which, and why, where it calls this.
"""

from __future__ import annotations

__all__ = ["M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD", "set_malloc_thresholds"]

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3


def set_malloc_thresholds(thresholds: dict[int, int]) -> bool:
    """Set glibc malloc options (``{M_MMAP_THRESHOLD: bytes, …}``); whether they were set (False
    elsewhere than glibc, where this does nothing)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError, TypeError):
        return False
    if mallopt is None:
        return False
    for option, value in thresholds.items():
        mallopt(option, value)
    return True
