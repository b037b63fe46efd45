"""Reading files that anyone can hand over: .npz archives (checkpoints, galleries, embeddings, caches) and the JSON
that describes them. Nothing is allocated on a file's word before it has been checked.

An .npz is a zip archive of .npy members, each a small header (dtype, shape, order) and then the raw values. A
crafted one can declare a shape of terabytes in a member of a few bytes, or deflate a few kilobytes into gigabytes,
so `read_npz` checks, in this order and before reading any values: the member list (names ending in .npy; the
expected ones present), the sizes the zip directory declares (`ZipInfo.file_size`, whose sum must stay under a
limit), then each header (no Python objects, no records; the declared values must fit in the declared member
size; the expected number of dimensions and kind of dtype). Only then are the values read, with pickles refused.

JSON from a file must be an object, and NaN or Infinity (which Python's json module accepts by default, and which
slip past every comparison such as `tau <= 0`) are refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

MAX_NPZ_BYTES = 2**31  # 2 GiB of values in one archive: far more than any tinyface file needs
NPY_MAGIC = b"\x93NUMPY"


class UntrustedFileError(ValueError):
    """A file is not what it claims to be: corrupt, crafted, or made by something else."""


class Member(NamedTuple):
    """What an expected .npz member must be: its number of dimensions and the kinds its dtype may have
    (numpy's dtype.kind letters: "f" float, "i" / "u" integer, "b" bool, "U" text)."""

    ndim: int
    kinds: str


def read_npz(file: str | Path | bytes, source: str | None = None, expected: Mapping[str, Member] | None = None,
             only_expected: bool = False, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz archive (a path, or its bytes), {name: array}, checked as the module docstring says.
    expected: members that must be there, each with its Member; only_expected: read no other member (the others
    are ignored). max_bytes: the most bytes of values read (default MAX_NPZ_BYTES). source names the file in errors
    (default: the path). Raises UntrustedFileError."""
    max_bytes = MAX_NPZ_BYTES if max_bytes is None else max_bytes
    source = source or ("<bytes>" if isinstance(file, bytes) else str(file))
    opened: BinaryIO = io.BytesIO(file) if isinstance(file, bytes) else open(file, "rb")  # noqa: SIM115
    with opened:
        if opened.read(len(NPY_MAGIC)) == NPY_MAGIC:
            raise UntrustedFileError(f"{source} is a single .npy array, not an .npz archive")
        opened.seek(0)
        try:
            with zipfile.ZipFile(opened) as archive:
                return _read_members(archive, source, dict(expected or {}), only_expected, max_bytes)
        except UntrustedFileError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise UntrustedFileError(f"{source} is corrupt or not an .npz archive ({error})") from None


def read_json_object(text: str | bytes, source: str) -> dict[str, Any]:
    """The JSON object in `text`; UntrustedFileError when it is not JSON, not an object, or holds NaN or Infinity."""

    def refuse(constant: str) -> Any:
        raise UntrustedFileError(f"{source} holds {constant}, which is not a number tinyface can use")

    try:
        value = json.loads(text, parse_constant=refuse)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UntrustedFileError(f"{source} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise UntrustedFileError(f"{source} holds a JSON {type(value).__name__}, expected an object")
    return value


def _read_members(archive: zipfile.ZipFile, source: str, expected: dict[str, Member], only_expected: bool,
                  max_bytes: int) -> dict[str, np.ndarray]:
    infos = {info.filename: info for info in archive.infolist()}
    strangers = [name for name in infos if not name.endswith(".npy")]
    if strangers:
        raise UntrustedFileError(f"{source} holds members that are not .npy arrays: {strangers[:5]}")
    members = {name[: -len(".npy")]: info for name, info in infos.items()}
    missing = sorted(set(expected) - set(members))
    if missing:
        raise UntrustedFileError(f"{source} lacks the arrays {missing} (it holds {sorted(members)[:10]})")
    chosen = {name: info for name, info in members.items() if name in expected or not only_expected}
    declared = sum(info.file_size for info in chosen.values())
    if declared > max_bytes:
        raise UntrustedFileError(f"{source} declares {declared:,} bytes of arrays, more than the "
                                 f"{max_bytes:,} tinyface reads; it is not a file tinyface wrote")
    for name, info in chosen.items():
        with archive.open(info) as member:
            _check_header(member, info.file_size, name, expected.get(name), source)
    arrays = {}
    for name, info in chosen.items():
        with archive.open(info) as member:
            arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def _check_header(member: BinaryIO, size: int, name: str, spec: Member | None, source: str) -> None:
    """Refuse a member whose header declares objects, records, more values than the member holds, or (when
    `spec` is given) another number of dimensions or kind of dtype."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise UntrustedFileError(f"{source}: array {name!r} has .npy format {version}, which tinyface does not read")
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise UntrustedFileError(f"{source}: array {name!r} holds {dtype} values; tinyface reads plain numbers and "
                                 "text only")
    values = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if values > size:
        raise UntrustedFileError(f"{source}: array {name!r} declares shape {shape} of {dtype} ({values} bytes) in "
                                 f"a member of {size} bytes; the file is corrupt or crafted")
    if spec is not None and (len(shape) != spec.ndim or dtype.kind not in spec.kinds):
        raise UntrustedFileError(f"{source}: array {name!r} is {dtype} of shape {shape}; expected "
                                 f"{spec.ndim} dimension(s) of kind {spec.kinds!r}")
