"""The C allocator of a CPU run: ``allocator=keep`` keeps freed memory in the process (glibc ``mallopt``).

glibc serves every allocation above its mmap threshold (tens of MB: the activations of an image batch) with fresh
pages from the kernel and gives them back when freed, so each training step pays the page faults again. With
``keep``, no allocation is served by mmap, freed memory is not trimmed and the heap grows in 1 GB steps: later steps
reuse the same pages. Measured on Wave-MambaAD at batch 16 on 2 threads (README, "The allocator matters"): about
1.4-1.8x faster training steps, 1.4-2.0x faster inference, 0.1-0.3 GB more peak memory. Only where the memory
comes from changes, not the computation. The image experiments set ``allocator: keep``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

ALLOCATORS = ("system", "keep")
# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
KEEP = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 2**30))


def use_allocator(name: str) -> bool:
    """Apply ``allocator=<name>`` to this process: ``system`` leaves the C library's defaults, ``keep`` sets
    glibc's ``M_MMAP_MAX`` 0, ``M_TRIM_THRESHOLD`` 2 GiB - 1 and ``M_TOP_PAD`` 1 GiB (what the environment variables
    ``MALLOC_MMAP_MAX_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` set before a process starts).

    Returns:
        True when ``keep`` was applied (logged); False for ``system``, where the C library has no ``mallopt`` (not
        glibc: macOS, musl) and where it refused a parameter (both logged as warnings).

    Raises:
        ValueError: ``name`` is not one of :data:`ALLOCATORS`.
    """
    if name not in ALLOCATORS:
        raise ValueError(f"allocator={name!r}: expected {' or '.join(ALLOCATORS)}")
    if name == "system":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        log.warning("allocator=keep: this C library has no mallopt (glibc only); the system allocator is used")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    refused = [parameter for parameter, value in KEEP if mallopt(parameter, value) != 1]
    if refused:
        log.warning("allocator=keep: mallopt refused the parameters %s; freed memory may still be returned", refused)
    else:
        log.info("allocator=keep: freed memory stays in the process (glibc mallopt)")
    return not refused
