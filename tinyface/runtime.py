"""Settings of the process that change speed, never results: threads and memory.

Threads. tinyface has two pools: OpenBLAS's (NumPy's matrix products, the convolutions) and Numba's (the compiled
loops of nn/_compiled.py and the kernels). In a training step the two alternate many times, so a pool whose idle
threads keep spinning steals the cores from the other one: on 2 cores a CNN step ran 15% slower from OpenBLAS's
spinning alone, and 2x slower when PyTorch's OpenMP runtime, spinning by default, ran Numba's loops. So both pools
must put their idle threads to sleep at once, whatever the user imported before tinyface:

- OpenBLAS spins for OPENBLAS_THREAD_TIMEOUT (2^n cycles; default 2^28, about 0.1 s) before sleeping, and reads it
  when it starts its threads. We set it to 2^4. When NumPy (hence OpenBLAS) was loaded before us, we also ask the
  loaded OpenBLAS to read its environment again and stop its threads; its next parallel product starts them
  afresh, with the new timeout.
- Numba runs on its own `workqueue` threading layer, whose idle threads wait on a condition variable (they never
  spin), instead of an OpenMP runtime whose wait policy was fixed by whoever loaded it first (PyTorch brings one).
  The layer is chosen when Numba first starts its threads, so setting it at import works in every order. It may
  not be entered by two threads at once; tinyface's compiled functions hold the GIL (none is `nogil`), so two
  Python threads never are.

A value the user has set (OPENBLAS_THREAD_TIMEOUT, NUMBA_THREADING_LAYER) is kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys


def _loaded_libraries(name: str) -> list[str]:
    """Paths of the shared libraries loaded in this process whose file name contains `name` (Linux; else [])."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return []
    return sorted(path for path in paths if name in os.path.basename(path))


def restart_openblas_threads() -> int:
    """Make every loaded OpenBLAS read its environment again and stop its threads, which its next parallel call
    starts again under the new settings (the same restart OpenBLAS does after a fork). Returns how many it
    restarted. Call it from one thread, while no matrix product runs."""
    restarted = 0
    for path in _loaded_libraries("openblas"):
        library = ctypes.CDLL(path)
        if not hasattr(library, "blas_thread_shutdown_"):
            continue
        if hasattr(library, "openblas_read_env"):  # newer versions read the environment once, at load
            library.openblas_read_env()
        library.blas_thread_shutdown_()
        restarted += 1
    return restarted


def _threads_sleep_when_idle() -> None:
    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"  # spin 2^4 cycles, not OpenBLAS's default 2^28
        if "numpy" in sys.modules:  # OpenBLAS already started, with the default
            restart_openblas_threads()
    layer = os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None and numba_config.THREADING_LAYER == "default":  # Numba loaded before us
        numba_config.THREADING_LAYER = layer


_threads_sleep_when_idle()


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the OS at once.

    By default glibc serves every allocation over 32 MB with a fresh mmap and unmaps it when freed, so a training
    loop that allocates the same large temporaries every step pays for page faults and zeroing each time (here
    about a fifth of a CNN step). Training and benchmarks call this once; it changes nothing but speed, and does
    nothing (returning False) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, (1 << 31) - 1))
