"""`tinyface cache`: where tinyface keeps decoded images, and `tinyface cache clear` to remove them (they are
copies of the faces in image folders, and outlive the photos; see tinyface.data.cache)."""

from __future__ import annotations

import argparse

from tinyface.data.cache import cached_images, clear_image_cache, image_cache_dir


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `cache` to `tinyface`."""
    p = commands.add_parser("cache", help="show or clear the cache of decoded images",
                            description="Image folders are decoded once and their pixels kept in the cache folder "
                            "($TINYFACE_CACHE, else $XDG_CACHE_HOME/tinyface, else ~/.cache/tinyface), until removed. "
                            "`tinyface cache` shows what is kept; `tinyface cache clear` removes it.")
    p.add_argument("action", nargs="?", choices=("show", "clear"), default="show")
    p.set_defaults(handler=_cache)


def _cache(args: argparse.Namespace) -> int:
    folder = image_cache_dir()
    if args.action == "clear":
        count, freed = clear_image_cache()
        print(f"removed {count} file(s) of decoded images ({freed / 1e6:.1f} MB) from {folder}")
        return 0
    files = cached_images()
    size = sum(p.stat().st_size for p in files)
    print(f"{folder}: {len(files)} file(s) of decoded images, {size / 1e6:.1f} MB (`tinyface cache clear` removes "
          "them)")
    return 0
