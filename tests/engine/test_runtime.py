"""tinyface.runtime: idle threads sleep whatever was imported before tinyface (each case in a fresh Python)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

# After a matrix product and a compiled parallel loop, how much CPU the process burns while the main thread
# sleeps: a pool left spinning (OpenBLAS spins for about 0.1 s by default) burns tens of milliseconds.
IDLE_CPU = """
import sys, time, json
for name in sys.argv[1:]:
    __import__(name)
import numba, numpy as np
from tinyface.nn import _compiled

def idle_cpu(work):
    work()
    start = time.process_time()
    time.sleep(0.3)
    return time.process_time() - start

a = np.ones((600, 600), np.float32)
x = np.ones((8, 16, 32, 32), np.float32)
gemm = min(idle_cpu(lambda: a @ a) for _ in range(3))
loop = min(idle_cpu(lambda: _compiled.batchnorm_statistics(x)) for _ in range(3))
print(json.dumps({"gemm": gemm, "loop": loop, "layer": numba.threading_layer()}))
"""

FIRST_IMPORTS = [["tinyface"], ["numpy", "tinyface"], ["numba", "numpy", "tinyface"]]
if importlib.util.find_spec("torch") is not None:
    FIRST_IMPORTS.append(["torch", "tinyface"])  # PyTorch brings NumPy and an OpenMP runtime that spins


@pytest.mark.parametrize("imports", FIRST_IMPORTS, ids=lambda names: " then ".join(names))
def test_idle_threads_sleep_whatever_came_first(imports):
    unset = ("OPENBLAS_THREAD_TIMEOUT", "NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")  # as a user starts Python
    env = {key: value for key, value in os.environ.items() if key not in unset}
    done = subprocess.run([sys.executable, "-c", IDLE_CPU, *imports], capture_output=True, text=True, env=env,
                          check=True, timeout=300)
    idle = json.loads(done.stdout.strip().splitlines()[-1])
    assert idle["layer"] == "workqueue"
    assert idle["gemm"] < 0.005 and idle["loop"] < 0.005, idle
