"""How tinyface's two pools of threads share the CPU: OpenBLAS's (NumPy's matrix products, the convolutions)
and Numba's (the compiled loops of nn/numba_cpu.py and the kernels).

By default each pool keeps its threads spinning for a while after finishing, waiting for more work. In a training
step the two alternate many times, so a spinning pool steals the cores from the other one: on 2 cores a CNN step
ran 15% slower from OpenBLAS's spinning alone. We ask both to sleep at once instead. These are environment
variables that each library reads when it loads, so this module must be imported before NumPy is (tinyface's
`__init__` does it first; the `tinyface` command gets it for free). A value the user has set is kept.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # spin 2^4 cycles, not OpenBLAS's default 2^28
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # Numba's OpenMP threads sleep when idle
