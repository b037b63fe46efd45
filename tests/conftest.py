"""Shared test setup.

- Without an NVIDIA GPU, Numba's CUDA kernels run in its CUDA simulator: NUMBA_ENABLE_CUDASIM must be set
  before numba.cuda is first imported, so it is decided here, from the presence of a GPU device node.
- Real faces come from $TINYFACE_DATA (CI sets it). When it is set, a missing file is a failure, not a skip.
- Markers (registered in pyproject.toml): a test that uses one of the real-data fixtures below is marked
  `real_data` here, so `pytest -m "not real_data"` runs without the data; `gpu` and `slow` are set by hand.
- Hypothesis strategies and gradient checks live in tinyface.testing (public), not here.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

if not glob.glob("/dev/nvidia[0-9]*"):
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


REAL_DATA_FIXTURES = {"data_dir", "olivetti_path", "olivetti"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)


def real_data_dir() -> Path | None:
    value = os.environ.get("TINYFACE_DATA")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """$TINYFACE_DATA with both datasets in it: skips when unset, fails loudly when set but incomplete."""
    root = real_data_dir()
    if root is None:
        pytest.skip("TINYFACE_DATA is not set: point it at the folder holding olivettifaces.mat and lfw/")
    missing = [name for name in ("olivettifaces.mat", "lfw/pairs.txt") if not (root / name).is_file()]
    if missing:
        pytest.fail(f"TINYFACE_DATA={root} lacks {missing}; fix the variable or fetch the data")
    return root


@pytest.fixture(scope="session")
def olivetti_path() -> Path:
    """Path of olivettifaces.mat: fails loudly if TINYFACE_DATA is set but the file is missing, skips if unset."""
    root = real_data_dir()
    if root is None:
        pytest.skip("TINYFACE_DATA is not set: point it at the folder holding olivettifaces.mat")
    path = root / "olivettifaces.mat"
    if not path.is_file():
        pytest.fail(f"TINYFACE_DATA={root} but {path} does not exist")
    return path


@pytest.fixture(scope="session")
def olivetti(olivetti_path: Path):
    """The Olivetti faces as a FaceDataset (40 people x 10 images, 1x64x64 uint8)."""
    from tinyface.data import load_olivetti

    return load_olivetti(olivetti_path.parent, download=False)
