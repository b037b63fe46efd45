"""Where downloaded and decoded data is kept between runs: `$TINYFACE_CACHE`, else
`$XDG_CACHE_HOME/tinyface`, else `~/.cache/tinyface` (files in it are written with tinyface.files.atomic_write).
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """The folder tinyface caches data in (not created here)."""
    if os.environ.get("TINYFACE_CACHE"):
        return Path(os.environ["TINYFACE_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tinyface"
    return Path.home() / ".cache" / "tinyface"
