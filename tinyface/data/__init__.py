"""Face data: from files to batches.

dataset.py (FaceDataset: uint8 images (N, C, H, W) with a person label each) first; then the sources: olivetti.py
(with its small MAT-file reader, matfile.py), folders.py (person/image.jpg folders such as LFW, decoded once and
cached, cache.py), lfw.py (LFW's protocol files); transforms.py (prewhiten, flip, crop, resize on whole batches)
and sampler.py (P people x K images per batch). untrusted.py reads the .npz and JSON files anyone can hand over
(checkpoints, galleries, caches), checking them before it allocates anything.
"""

from tinyface.data.cache import user_cache_dir
from tinyface.data.dataset import FaceDataset, split_people
from tinyface.data.folders import decode_image, load_image_folder
from tinyface.data.lfw import (
    LFWFormatError,
    Pair,
    image_path,
    image_root,
    pair_paths,
    people_in_pairs,
    read_pairs,
    read_people,
    read_people_counts,
)
from tinyface.data.matfile import MatFileError, read_mat
from tinyface.data.olivetti import OLIVETTI_URL, DownloadError, load_olivetti
from tinyface.data.sampler import PKSampler
from tinyface.data.transforms import (
    center_crop,
    prewhiten,
    random_crop,
    random_flip,
    random_rotate_zoom,
    resize,
    standardize,
    to_float32,
)

__all__ = [
    "OLIVETTI_URL",
    "DownloadError",
    "FaceDataset",
    "LFWFormatError",
    "MatFileError",
    "PKSampler",
    "Pair",
    "center_crop",
    "decode_image",
    "image_path",
    "image_root",
    "load_image_folder",
    "load_olivetti",
    "pair_paths",
    "people_in_pairs",
    "prewhiten",
    "random_crop",
    "random_flip",
    "random_rotate_zoom",
    "read_mat",
    "read_pairs",
    "read_people",
    "read_people_counts",
    "resize",
    "split_people",
    "standardize",
    "to_float32",
    "user_cache_dir",
]
