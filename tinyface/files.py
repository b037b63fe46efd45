"""Writing files safely, the one way every part of tinyface writes them.

A file is written to a temporary file in the same folder and renamed into place (`os.replace` is atomic), so an
interrupted run never leaves a half-written file (a checkpoint, a cache, a gallery) that a later run would trust.
A replaced file keeps its permissions, and `check_output` refuses, before any work, to replace a user's file
without --force or to write into a run folder.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

RUN_RECORD = "run.json"  # what makes a folder a run folder (tinyface.training.checkpoint.RUN_FILE)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], mode: int | None = None) -> Path:
    """Create `path` by calling `write(file)` on a temporary file next to it, then renaming it into place.
    A file it replaces keeps its mode; a new one gets `mode` (default: 0o666 less the umask; 0o600 for private
    data such as biometric templates)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask() if mode is None else mode
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp makes owner-only files
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename, so that not even a power cut leaves half a file
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def check_output(path: str | Path, force: bool = False) -> Path:
    """`path` as a file the user asked to write: refused inside a run folder (beside its run.json, whose files
    only training writes), and refused when it exists unless `force`."""
    path = Path(path)
    if (path.parent / RUN_RECORD).is_file():
        raise ValueError(f"{path} is inside the run folder {path.parent}; write outputs elsewhere")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to replace it, or choose another name")
    return path


def _umask() -> int:
    """The process's umask (reading it means setting it, so put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
