"""Image folders in the `root/person_name/image.jpg` layout (LFW's), decoded once and cached as arrays.

An image is decoded as an image viewer shows it (`as_shown`): upright by its EXIF orientation, its colours
converted from its ICC profile to sRGB, 16-bit grey scaled (not clipped) to 8 bits, transparent pixels over white.

Decoding is the slow part (LFW: 13,233 JPEGs), so the decoded uint8 array is saved in the cache folder under
a key made of the root's absolute path, the chosen files with their sizes and modification times, and the
settings: change any of them and the images are decoded again (`tinyface cache clear` removes them all). A thread
pool decodes files concurrently (Pillow releases the GIL while decoding, and reads from a cold disk overlap); at
most DECODE_BUDGET_PIXELS pixels are decoded at once, so that a folder of huge photos cannot exhaust memory, and a
JPEG of more than LARGE_IMAGE_PIXELS is decoded at a reduced scale that is still larger than what is kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from tinyface.data.cache import image_cache_dir
from tinyface.data.dataset import FaceDataset
from tinyface.data.untrusted import Member, UntrustedFileError, read_npz
from tinyface.files import atomic_write

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".gif", ".tif", ".tiff", ".webp"}
CACHE_FORMAT = 2  # bump when the decoding changes, so that old caches are not reused (2: decoded as shown)
LARGE_IMAGE_PIXELS = 16_000_000  # a JPEG larger than this is decoded at 1/2, 1/4 or 1/8 scale when that suffices
DECODE_BUDGET_PIXELS = 64_000_000  # pixels decoded at once by all threads (one larger image is decoded alone)
WHITE = (255, 255, 255, 255)  # what transparent pixels are shown over
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def as_shown(image: Image.Image) -> Image.Image:
    """The picture an image viewer shows of an opened image file, in mode "L" (grey) or "RGB": turned upright by
    its EXIF orientation; converted from its ICC profile (if any) to sRGB; 16- or 32-bit integer grey scaled from
    0..65535 and float grey from 0..1 to 0..255; transparent pixels (alpha, or a transparent palette colour)
    composited over white; palette, bilevel, CMYK, YCbCr ... converted to RGB or grey."""
    image = ImageOps.exif_transpose(image)
    profile = image.info.get("icc_profile")
    if profile and image.mode in ("RGB", "CMYK", "L"):
        try:
            image = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(profile)), _SRGB,
                                              outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: the plain conversion below, as most viewers do
    if image.mode.startswith("I"):  # "I;16", "I;16B", "I": 16-bit (or wider) integer grey
        image = _grey(np.asarray(image, dtype=np.float64) / 257)
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        image = _grey(values * 255 if np.nanmax(values, initial=0) <= 1 else values)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, WHITE), image.convert("RGBA"))
    return image if image.mode in ("L", "RGB") else image.convert("L" if image.mode == "1" else "RGB")


def _grey(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.nan_to_num(np.rint(values)), 0, 255).astype(np.uint8), mode="L")


class _PixelBudget:
    """At most `limit` pixels decoded at once across threads; an image larger than the limit waits until it is
    alone."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.changed = limit, 0, threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.used == 0 or self.used + pixels <= self.limit)
            self.used += pixels
        try:
            yield
        finally:
            with self.changed:
                self.used -= pixels
                self.changed.notify_all()


_DECODING = _PixelBudget(DECODE_BUDGET_PIXELS)


def decode_image(path: str | Path, size: int, grayscale: bool = True, face_crop: float | None = None) -> np.ndarray:
    """One image file as uint8 (C, size, size): optional centre square of side face_crop * (the image's shorter
    side), then a bilinear resize (antialiased when shrinking). C is 1 for grayscale, else 3 (RGB).

    The crop is a fraction, not pixels, so that a face framed as in the training images lands the same at any
    resolution (LFW's 250 px frames with face_crop 0.4 keep the central 100 px; a 1000 px photo framed the same
    way keeps 400). The file is decoded as shown (see as_shown)."""
    with Image.open(path) as opened:
        needed = size if face_crop is None else math.ceil(size / face_crop)  # the shorter side that suffices
        if opened.format == "JPEG" and opened.width * opened.height > LARGE_IMAGE_PIXELS:
            opened.draft(None, (needed, needed))  # decode at the smallest of 1/8, 1/4, 1/2 that keeps `needed`
        with _DECODING.hold(opened.width * opened.height):
            image = as_shown(opened)
            if face_crop is not None:
                side = max(1, round(face_crop * min(image.size)))
                left, top = (image.width - side) // 2, (image.height - side) // 2
                image = image.crop((left, top, left + side, top + side))
            return model_input(image, size, grayscale)


def model_input(image: Image.Image, size: int, grayscale: bool) -> np.ndarray:
    """A picture (already cropped) as a model's input: uint8 (C, size, size), grey (C = 1, Pillow's "L":
    0.299 R + 0.587 G + 0.114 B) or RGB (C = 3), bilinearly resized (antialiased when shrinking)."""
    image = image.convert("L" if grayscale else "RGB")
    array = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return array[None] if grayscale else array.transpose(2, 0, 1)


def load_image_folder(
    root: str | Path,
    *,
    size: int = 64,
    grayscale: bool = True,
    face_crop: float | None = None,
    min_images: int = 1,
    people: list[str] | None = None,
    cache_dir: str | Path | None = None,
    cache: bool = True,
    progress: bool = False,
    workers: int | None = None,
) -> FaceDataset:
    """Load `root/<person>/<image>` files as a FaceDataset of uint8 (N, C, size, size), one label per person
    (people sorted by name, or in the order of `people`), images sorted by file name.

    face_crop: keep the central square of this fraction of each image's shorter side before resizing (LFW's faces
    fill the central ~0.4-0.6 of the frame). min_images: drop people with fewer readable images. people: load only
    these folder names. Unreadable images are skipped with a warning that lists them. Decoded arrays are cached in
    `cache_dir` (default: <user cache>/images) unless cache=False.
    """
    root = Path(root).expanduser().resolve()
    if size < 1 or min_images < 1:
        raise ValueError(f"size and min_images must be positive, got {size}, {min_images}")
    if face_crop is not None and not 0 < face_crop <= 1:
        raise ValueError(f"face_crop is a fraction of the image's side in (0, 1], got {face_crop}")
    names, files = _scan(root, people)
    counts = np.array([len(f) for f in files], dtype=np.int64)
    names = [n for n, c in zip(names, counts, strict=True) if c >= min_images]
    files = [f for f, c in zip(files, counts, strict=True) if c >= min_images]
    paths = [path for person_files in files for path in person_files]
    labels = np.repeat(np.arange(len(names)), [len(f) for f in files])

    settings = {"size": size, "grayscale": grayscale, "face_crop": face_crop}
    cache_file = Path(cache_dir or image_cache_dir()) / f"{_cache_key(root, paths, settings)}.npz"
    cached = _read_cache(cache_file, len(paths)) if cache else None
    if cached is not None:
        images, readable = cached
    else:
        images, problems = decode_images(paths, size, grayscale, face_crop, progress, workers)
        readable = np.array([problem is None for problem in problems], dtype=bool)
        if cache:
            atomic_write(cache_file, lambda file: np.savez(file, images=images, readable=readable))

    if not readable.all():
        bad = [str(p) for p, ok in zip(paths, readable, strict=True) if not ok]
        warnings.warn(f"skipped {len(bad)} unreadable image(s) under {root}: {bad}", stacklevel=2)
        images, labels, paths = (
            images[readable],
            labels[readable],
            [p for p, ok in zip(paths, readable, strict=True) if ok],
        )
    dataset = FaceDataset(images, labels, names, [str(p) for p in paths])
    enough = np.flatnonzero(dataset.image_counts() >= min_images)
    return dataset if len(enough) == dataset.num_people else dataset.people(enough)


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in `folder` (by suffix, see IMAGE_SUFFIXES), sorted by name; hidden ones skipped."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))


def person_folders(root: str | Path) -> list[str]:
    """The names of the sub-folders of `root` (one per person), sorted; hidden ones skipped."""
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))


def _scan(root: Path, people: list[str] | None) -> tuple[list[str], list[list[Path]]]:
    """Person folder names (sorted) and each one's image files (sorted)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the folder holding one sub-folder per person")
    if people is None:
        names = person_folders(root)
    else:
        names = list(dict.fromkeys(people))
        missing = [name for name in names if not (root / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} people have no folder in {root}: {missing[:10]}")
    files = [image_files(root / name) for name in names]
    if not any(files):
        raise FileNotFoundError(
            f"no image files found in the person folders of {root} (layout: person/image.jpg)"
        )
    return names, files


def _read_cache(cache_file: Path, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (images, readable) arrays, or None if absent or unusable (then they are decoded again)."""
    if not cache_file.is_file():
        return None
    try:
        stored = read_npz(cache_file, expected={"images": Member(4, "u"), "readable": Member(1, "b")})
    except UntrustedFileError:
        return None
    images, readable = stored["images"], stored["readable"]
    return (images, readable) if len(images) == len(readable) == count else None


def _cache_key(root: Path, paths: list[Path], settings: dict) -> str:
    listing = [(str(p.relative_to(root)), st.st_size, st.st_mtime_ns) for p in paths for st in [p.stat()]]
    blob = json.dumps([CACHE_FORMAT, str(root), settings, listing]).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def decode_images(
    paths: list[str | Path],
    size: int,
    grayscale: bool = True,
    face_crop: float | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> tuple[np.ndarray, list[str | None]]:
    """Decode every file as decode_image does, with a thread pool: images uint8 (N, C, size, size) and, for each
    file, None or why it could not be read (missing, not an image, truncated; its image is left black)."""
    images = np.zeros((len(paths), 1 if grayscale else 3, size, size), dtype=np.uint8)
    problems: list[str | None] = [None] * len(paths)

    def decode_into(index: int) -> None:
        try:
            images[index] = decode_image(paths[index], size, grayscale, face_crop)
        except FileNotFoundError:
            problems[index] = "no such file"
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            problems[index] = f"{type(error).__name__}: {error}"

    with ThreadPoolExecutor(max_workers=workers or min(32, (os.cpu_count() or 1) + 4)) as pool:
        done = pool.map(decode_into, range(len(paths)))
        if progress:
            from tqdm import tqdm

            done = tqdm(done, total=len(paths), desc="decoding images", unit="img")
        for _ in done:
            pass
    return images, problems


def read_photo(path: str | Path) -> np.ndarray:
    """An image file at full resolution as uint8 (H, W) for grey images or (H, W, 3) RGB for the others, as shown
    (see as_shown: landmarks are measured on the picture a viewer shows); raises ValueError naming the file when it
    cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(as_shown(image))
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist") from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None


def write_image_folder(images: dict[str, np.ndarray], out: str | Path) -> Path:
    """Write uint8 images ((H, W) or (H, W, 3)) as PNG files at their relative paths under a new folder `out`.

    All or nothing: the files go to a temporary folder beside `out`, renamed to `out` once every one is written,
    so an interrupted run leaves no half-filled folder. `out` must not exist yet, or be empty."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; choose another output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        for name, pixels in images.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(target, format="PNG")
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
