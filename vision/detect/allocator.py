"""Keep freed photo-sized blocks in the process instead of handing them back to the kernel.

A detector process allocates and frees the same large blocks over and over: a decoded
1152x864 photo is 3 MB, a 4000x3000 one 36 MB, and each letterboxed batch, tile group and
output copy is another block of the same size as the last one. glibc's ``malloc`` serves
blocks over its mmap threshold (128 KiB at start, raised at most to the size of a block freed
since) with a fresh ``mmap`` and returns them with ``munmap``, and it trims the free top of its
heap back to the kernel; every page of the next block is then faulted in and zeroed again.
On the reference machine (a 2-core virtual machine) a page fault costs about 2 µs: decoding
a 1152x864 JPEG took 3.5 ms with its 730 page faults and 2.25 ms without them, and a 3 MB
``np.full`` 1.4 ms instead of 0.1 ms.

:func:`keep_freed_memory` sets glibc's mmap threshold to its largest value (32 MiB: photos
up to 11 megapixels come from the heap) and the trim threshold to 256 MiB (that much free memory
may stay in the process). The price is resident memory that does not shrink after a peak,
which is what a detector process, working batch after batch, reaches again anyway. It is
process-wide, so :class:`~vision.detect.inference.Detector` calls it when it is built (a
detector is built once per process); ``FIELDOPS_KEEP_FREED_MEMORY=0`` turns it off. Elsewhere
than glibc (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading

#: Environment variable that turns the setting off ("0").
ENV = "FIELDOPS_KEEP_FREED_MEMORY"
#: glibc's ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc refuses more: half its 64 MiB heap size).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of a heap kept before it is trimmed.
TRIM_THRESHOLD = 256 * 2**20

_lock = threading.Lock()
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process (see the module's docstring).

    Returns:
        True when the thresholds are set (now or by an earlier call), False when it is turned
        off by ``FIELDOPS_KEEP_FREED_MEMORY=0``, the C library is not glibc or glibc refused.
    """
    global _done
    with _lock:
        if _done is None:
            _done = _set_thresholds()
        return _done


def _set_thresholds() -> bool:
    if os.environ.get(ENV, "1").strip() == "0":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on a refused value
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
