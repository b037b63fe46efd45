"""The lock of a run folder: one training at a time writes into it.

The lock is an advisory lock (flock) on the file `train.lock`, taken without waiting: the operating system gives it
to one process only, and takes it back when that process ends, however it ends, so a lock left by a crashed or
killed training is simply free. The file holds the pid of its owner, for the message that names it, and is removed
when the training ends. A process that opened the file just before its owner removed it would hold a lock on a
removed file, so the lock counts only when the file it locked is still the one at that path.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "train.lock"


@contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the lock of the run folder `folder` (created if needed; removed again if it stays empty) while the
    body runs; raises RunLockedError when another process holds it."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    fd = _acquire(lock)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # while still holding it: whoever opens the path next makes a new file
        os.close(fd)
        if created and not any(folder.iterdir()):
            folder.rmdir()


class RunLockedError(OSError):
    """Another training holds the run folder's lock."""


def _acquire(lock: Path) -> int:
    """The open file descriptor of `lock`, locked by this process."""
    for _ in range(100):  # only a lock file removed under us, again and again, makes this loop
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = _owner(lock)
            who = f"process {owner}" if owner else "another process"
            raise RunLockedError(f"{lock.parent} is being trained by {who} (lock file {lock}); wait for it to "
                                 "finish, or choose another --out") from None
        if _same_file(fd, lock):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its owner removed the file between our open and our lock: try the new one
    raise RunLockedError(f"could not take the lock {lock}: it keeps being removed; try again")


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _owner(lock: Path) -> int | None:
    """The pid written in the lock file (None when it is unreadable, empty or already removed)."""
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None
