"""Where downloaded and decoded data is kept between runs: `$TINYFACE_CACHE`, else
`$XDG_CACHE_HOME/tinyface`, else `~/.cache/tinyface` (files in it are written with tinyface.files.atomic_write).

    olivettifaces.mat       the Olivetti faces, downloaded once
    images/<key>.npz        the decoded pixels of an image folder (one file per folder and settings; see folders.py)

Decoded images are kept until removed: they outlive the photos they were made from, and are copies of the faces
in them. `clear_image_cache` (the command `tinyface cache clear`) removes them; nothing else is deleted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

IMAGE_CACHE = "images"
_CACHED_IMAGES = re.compile(r"[0-9a-f]{24}\.npz|\.[0-9a-f]{24}\.npz\..*\.tmp")  # a key, or a write cut short


def user_cache_dir() -> Path:
    """The folder tinyface caches data in (not created here)."""
    if os.environ.get("TINYFACE_CACHE"):
        return Path(os.environ["TINYFACE_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tinyface"
    return Path.home() / ".cache" / "tinyface"


def image_cache_dir() -> Path:
    """The folder of decoded image folders (not created here)."""
    return user_cache_dir() / IMAGE_CACHE


def cached_images(folder: str | Path | None = None) -> list[Path]:
    """The files of decoded images in `folder` (default: image_cache_dir()), and only those."""
    folder = Path(folder) if folder is not None else image_cache_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and _CACHED_IMAGES.fullmatch(p.name))


def clear_image_cache(folder: str | Path | None = None) -> tuple[int, int]:
    """Remove every file of decoded images (cached_images) and the folder when that leaves it empty; returns
    (files removed, bytes freed). Other files in the folder are left alone."""
    files = cached_images(folder)
    freed = 0
    for path in files:
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    folder = Path(folder) if folder is not None else image_cache_dir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return len(files), freed
