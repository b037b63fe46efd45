"""The Olivetti faces (AT&T Laboratories Cambridge): 40 people x 10 grey 64x64 images.

The file is Sam Roweis's `olivettifaces.mat` (the one scikit-learn fetches): key `faces`, uint8 (4096, 400);
image i is faces[:, i].reshape(64, 64).T and shows person i // 10.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

import numpy as np

from tinyface.data.cache import user_cache_dir
from tinyface.data.dataset import FaceDataset
from tinyface.data.matfile import MatFileError, parse_mat
from tinyface.files import atomic_write

OLIVETTI_URL = "https://ndownloader.figshare.com/files/5976027"
OLIVETTI_SHA256 = "b1988d02c72fe5b8ee82b5ef3bb7982eafc74f1e1ff0ae0ade35061ad0af534d"
OLIVETTI_FILE = "olivettifaces.mat"
PEOPLE, IMAGES_PER_PERSON, SIDE = 40, 10, 64
MAX_FILE_BYTES = 8 * 2**20  # the file is 1.4 MB (1.6 MB of pixels once inflated): no more is downloaded or inflated


class DownloadError(RuntimeError):
    """A download failed or did not give the expected file."""


def load_olivetti(
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    url: str = OLIVETTI_URL,
    cache_dir: str | Path | None = None,
) -> FaceDataset:
    """Load the 400 Olivetti faces as a FaceDataset: uint8 (400, 1, 64, 64), labels 0..39, names s01..s40.

    Looks for olivettifaces.mat in `data_dir` (which must then hold it), else in $TINYFACE_DATA, else in the
    cache folder (`cache_dir`, default $TINYFACE_CACHE or ~/.cache/tinyface), else downloads it from `url`
    once, checks its sha256 and contents, and saves it in the cache folder.
    """
    path = find_olivetti(data_dir, cache_dir)
    if path is not None:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise MatFileError(f"{path} is {path.stat().st_size:,} bytes, not the 1.4 MB {OLIVETTI_FILE}; delete or "
                               "replace it")
        return _olivetti_dataset(path.read_bytes(), source=str(path))
    cache_path = Path(cache_dir or user_cache_dir()) / OLIVETTI_FILE
    if not download:
        raise FileNotFoundError(
            f"{OLIVETTI_FILE} was not found in $TINYFACE_DATA or {cache_path.parent}; "
            "pass data_dir=, set TINYFACE_DATA, or call with download=True"
        )
    data = _download(url)
    digest = hashlib.sha256(data).hexdigest()
    if digest != OLIVETTI_SHA256:
        raise DownloadError(
            f"the file downloaded from {url} ({len(data)} bytes) has sha256 {digest}, "
            f"expected {OLIVETTI_SHA256}; "
            "it was not cached. Retry, or download it yourself and pass data_dir="
        )
    dataset = _olivetti_dataset(data, source=url)  # check the contents before trusting the cache with them
    atomic_write(cache_path, lambda file: file.write(data))
    return dataset


def find_olivetti(data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Path | None:
    """Where olivettifaces.mat is on this machine (see load_olivetti for the order), or None."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        path = path if path.is_file() else path / OLIVETTI_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; pass the folder that holds {OLIVETTI_FILE}")
        return path
    folders = [Path(os.environ["TINYFACE_DATA"])] if os.environ.get("TINYFACE_DATA") else []
    folders.append(Path(cache_dir or user_cache_dir()))
    return next((f / OLIVETTI_FILE for f in folders if (f / OLIVETTI_FILE).is_file()), None)


def _download(url: str) -> bytes:
    """The bytes at `url`, at most MAX_FILE_BYTES; DownloadError when the transfer fails or is cut short."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read(MAX_FILE_BYTES + 1)
    except (OSError, http.client.HTTPException) as error:  # IncompleteRead (a cut transfer) is an HTTPException
        raise DownloadError(
            f"could not download {OLIVETTI_FILE} from {url} ({type(error).__name__}: {error}); check the network, "
            "or download it yourself and pass data_dir= (or set TINYFACE_DATA)"
        ) from error
    if len(data) > MAX_FILE_BYTES:
        raise DownloadError(f"{url} sent more than {MAX_FILE_BYTES:,} bytes, and {OLIVETTI_FILE} is 1.4 MB; it was "
                            "not cached. Check the address, or download it yourself and pass data_dir=")
    return data


def _olivetti_dataset(data: bytes, source: str) -> FaceDataset:
    try:
        faces = parse_mat(data, source, max_bytes=MAX_FILE_BYTES).get("faces")
    except MatFileError as error:
        raise MatFileError(f"{error}. Delete or replace {source} and load again.") from None
    expected = (SIDE * SIDE, PEOPLE * IMAGES_PER_PERSON)
    if faces is None or faces.dtype != np.uint8 or faces.shape != expected:
        found = "no 'faces' variable" if faces is None else f"'faces' {faces.dtype} {faces.shape}"
        raise MatFileError(
            f"{source}: expected 'faces' uint8 {expected}, found {found}. Delete or replace it."
        )
    # Column i is image i, stored column-major: reshape each column to 64x64 and transpose.
    images = faces.T.reshape(-1, SIDE, SIDE).transpose(0, 2, 1)[:, None]
    labels = np.repeat(np.arange(PEOPLE), IMAGES_PER_PERSON)
    names = [f"s{p + 1:02d}" for p in range(PEOPLE)]
    return FaceDataset(np.ascontiguousarray(images), labels, names)
