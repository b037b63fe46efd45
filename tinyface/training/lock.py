"""The lock of a run folder: one training at a time writes into it.

The lock is a file, `train.lock`, created with O_CREAT | O_EXCL (the operating system creates it for one process
only) and holding the pid of its owner; it is removed when the training ends. A lock whose pid is no longer alive
was left by a crashed or killed training, and is taken over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "train.lock"


@contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the lock of the run folder `folder` (created if needed; removed again if it stays empty) while the
    body runs; raises RunLockedError when a living process holds it."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    _acquire(lock)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()


class RunLockedError(OSError):
    """Another training holds the run folder's lock."""


def _acquire(lock: Path) -> None:
    for _ in range(2):  # a stale lock is removed, then the lock is taken on the second try
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None and _alive(owner):
                raise RunLockedError(f"{lock.parent} is being trained by process {owner} (lock file {lock}); wait "
                                     f"for it to finish, or delete {lock} if that process is not a tinyface training"
                                     ) from None
            lock.unlink(missing_ok=True)  # stale: its owner is gone
            continue
        with os.fdopen(fd, "w") as file:
            file.write(f"{os.getpid()}\n")
        return
    raise RunLockedError(f"could not take the lock {lock}: another training took it first; try again")


def _owner(lock: Path) -> int | None:
    """The pid written in the lock file (None when it is unreadable, e.g. already removed)."""
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
