"""A small reader for MATLAB level-5 .mat files (the subset that holds numeric and char arrays).

SciPy is not a dependency, so this reads the format directly (MathWorks, "MAT-File Format", level 5):

    header:   116 bytes of text, 8 bytes subsystem offset, 2 bytes version, 2 bytes endian mark ("IM" or "MI")
    element:  tag = (data type: uint32, byte count: uint32), then the data, padded to a multiple of 8 bytes.
              A "small" element packs (byte count: uint16, data type: uint16) and <= 4 data bytes in 8.
    miCOMPRESSED (15): the data is a zlib stream holding one more element (usually an miMATRIX).
    miMATRIX (14): sub-elements array flags (class in the low byte), dimensions, name, real [, imag] part.

Numeric data is stored column-major (Fortran order), possibly in a smaller type than its MATLAB class (a
double array of integers 0..255 is stored as miUINT8); like SciPy's default, we return the stored type.
Cell arrays, structs, sparse matrices and objects are skipped. Level 4 and HDF5-based v7.3 files are rejected.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np


class MatFileError(ValueError):
    """A .mat file is truncated, corrupt or uses a part of the format this reader does not support."""


MI_MATRIX, MI_COMPRESSED = 14, 15
MI_DTYPES = {  # data type code -> numpy dtype (byte order added at read time)
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
    16: "u1",
    17: "u2",
    18: "u4",  # UTF-8/16/32 text
}
MX_CHAR = 4
MX_NUMERIC = set(range(6, 16))  # double, single, int8 ... uint64
COMPLEX_FLAG = 0x0800
MAX_INFLATED_BYTES = 2**30  # a compressed element inflates to at most this (a crafted one could fill memory)


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """Read the numeric and char variables of a level-5 .mat file: {name: array}."""
    path = Path(path)
    return parse_mat(path.read_bytes(), source=str(path))


def parse_mat(data: bytes, source: str = "<bytes>", max_bytes: int = MAX_INFLATED_BYTES) -> dict[str, np.ndarray]:
    """Parse the bytes of a level-5 .mat file; `source` names the file in error messages. A compressed element
    may inflate to at most `max_bytes`."""
    if len(data) < 128:
        raise MatFileError(f"{source}: {len(data)} bytes is too short for a MAT-file header (128 bytes)")
    if data[:19] == b"MATLAB 7.3 MAT-file":
        raise MatFileError(f"{source}: MATLAB v7.3 files are HDF5; save it with `save -v7` to read it here")
    endian_mark = data[126:128]
    if not data.startswith(b"MATLAB 5.0 MAT-file") or endian_mark not in (b"IM", b"MI"):
        raise MatFileError(f"{source}: not a MATLAB level-5 MAT-file (header does not start 'MATLAB 5.0')")
    order = "<" if endian_mark == b"IM" else ">"
    variables: dict[str, np.ndarray] = {}
    for dtype_code, payload in _elements(data, 128, order, source):
        if dtype_code == MI_COMPRESSED:
            payload = _inflate(payload, max_bytes, source)
            inner = list(_elements(payload, 0, order, source))
            if len(inner) != 1:
                raise MatFileError(f"{source}: a compressed element holds {len(inner)} elements, expected 1")
            dtype_code, payload = inner[0]
        if dtype_code == MI_MATRIX:
            named = _matrix(payload, order, source)
            if named is not None:
                variables[named[0]] = named[1]
    return variables


def _inflate(payload: bytes, max_bytes: int, source: str) -> bytes:
    """The zlib stream of a compressed element, inflated to at most max_bytes (more is refused, not allocated)."""
    stream = zlib.decompressobj()
    try:
        inflated = stream.decompress(payload, max_bytes + 1)
    except zlib.error as error:
        raise MatFileError(f"{source}: a compressed element is corrupt ({error})") from None
    if len(inflated) > max_bytes:
        raise MatFileError(f"{source}: a compressed element inflates to more than {max_bytes:,} bytes; this is not "
                           "a file this reader is meant for")
    if not stream.eof:
        raise MatFileError(f"{source}: a compressed element is corrupt (its zlib stream is cut short)")
    return inflated


def _elements(data: bytes, offset: int, order: str, source: str):
    """Yield (data type, payload bytes) for each element of `data` from `offset` to the end."""
    while offset < len(data):
        if offset + 8 > len(data):
            raise MatFileError(
                f"{source}: truncated element tag at byte {offset} (file is {len(data)} bytes)"
            )
        dtype_code, nbytes = np.frombuffer(data, dtype=f"{order}u4", count=2, offset=offset).tolist()
        if dtype_code >> 16:  # small data element: the 4 data bytes follow inside the 8-byte tag
            dtype_code, nbytes = dtype_code & 0xFFFF, dtype_code >> 16
            yield dtype_code, data[offset + 4 : offset + 4 + nbytes]
            offset += 8
            continue
        start, end = offset + 8, offset + 8 + nbytes
        if end > len(data):
            raise MatFileError(
                f"{source}: truncated data element at byte {offset}: it needs {nbytes} bytes, "
                f"{len(data) - start} remain (the file was cut short; fetch it again)"
            )
        yield dtype_code, data[start:end]
        offset = end if dtype_code == MI_COMPRESSED else start + -(-nbytes // 8) * 8  # pad to 8 bytes


def _matrix(payload: bytes, order: str, source: str) -> tuple[str, np.ndarray] | None:
    """Decode an miMATRIX payload into (name, array); None for classes we skip (cell, struct, sparse...)."""
    parts = list(_elements(payload, 0, order, source))
    if len(parts) < 3:
        raise MatFileError(f"{source}: a matrix element has {len(parts)} parts, expected at least 3")
    flags = int(_numeric(parts[0], order, source)[0])
    mx_class, is_complex = flags & 0xFF, bool(flags & COMPLEX_FLAG)
    shape = tuple(int(n) for n in _numeric(parts[1], order, source))
    name = bytes(parts[2][1]).decode("ascii", errors="replace")
    if mx_class not in MX_NUMERIC and mx_class != MX_CHAR:
        return None
    if len(parts) < 4 + is_complex:
        raise MatFileError(f"{source}: variable {name!r} is missing its data")
    values = _numeric(parts[3], order, source)
    if is_complex:
        values = values + 1j * _numeric(parts[4], order, source)
    if values.size != math.prod(shape):  # Python integers: crafted dimensions cannot overflow into a match
        raise MatFileError(f"{source}: variable {name!r} has {values.size} values for dimensions {shape}")
    array = values.reshape(shape, order="F")
    if mx_class == MX_CHAR:
        array = np.array(["".join(map(chr, row)) for row in array.reshape(shape[0], -1)])
    return name, np.ascontiguousarray(array)


def _numeric(element: tuple[int, bytes], order: str, source: str) -> np.ndarray:
    dtype_code, payload = element
    if dtype_code not in MI_DTYPES:
        raise MatFileError(f"{source}: unsupported data type code {dtype_code}")
    dtype = np.dtype(order + MI_DTYPES[dtype_code])
    if len(payload) % dtype.itemsize:
        raise MatFileError(f"{source}: {len(payload)} bytes is not a whole number of {dtype} values")
    return np.frombuffer(payload, dtype=dtype).astype(dtype.newbyteorder("="))
