"""Settings of the process that change speed, never results: threads and memory.

Threads. tinyface has two pools: OpenBLAS's (NumPy's matrix products, the convolutions) and Numba's (the compiled
loops of nn/_compiled.py and the kernels). By default each pool keeps its threads spinning for a while after
finishing, waiting for more work. In a training step the two alternate many times, so a spinning pool steals the
cores from the other one: on 2 cores a CNN step ran 15% slower from OpenBLAS's spinning alone. We ask both to sleep
at once instead. These are environment variables that each library reads when it loads, so this module must be
imported before NumPy is (tinyface's `__init__` does it first; the `tinyface` command gets it for free). A value the
user has set is kept.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # spin 2^4 cycles, not OpenBLAS's default 2^28
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # Numba's OpenMP threads sleep when idle


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the OS at once.

    By default glibc serves every allocation over 32 MB with a fresh mmap and unmaps it when freed, so a training
    loop that allocates the same large temporaries every step pays for page faults and zeroing each time (here
    about a fifth of a CNN step). Training and benchmarks call this once; it changes nothing but speed, and does
    nothing (returning False) where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, (1 << 31) - 1))
