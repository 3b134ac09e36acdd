"""``.safetensors``, read from its documented header without the ``safetensors`` package.

Layout of the file (https://github.com/huggingface/safetensors, "Format"): an unsigned 64-bit
little-endian header length ``N``, then ``N`` bytes of UTF-8 JSON mapping each tensor's name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the byte after the
header) plus an optional ``"__metadata__"`` of strings, then the data, little-endian and
C-contiguous. Every offset, size and overlap is checked against the file before anything is
mapped; each tensor is memory-mapped on its own, so only the one being checked is resident, but
for small ones (at most :data:`SMALL_TENSOR_BYTES`), which are read with one ``pread`` from the
file kept open: a map costs 70 us, a read 5-7 us (a file of 20,000 8 x 8 tensors).
BF16 is widened to float32 by placing its 16 bits in the upper half of a float32 (no torch).

Decision: the core reads this format itself. The header is about a page of code to validate;
the ``safetensors`` package is a compiled extension whose numpy API cannot give BF16, so it
stays a test dependency (its files are the fixtures).
"""

from __future__ import annotations

import math
import os

import numpy as np

from xavinit.errors import XavinitError
from xavinit.formats.base import TensorInfo, TensorSource, bfloat16_to_float32, empty_tensor
from xavinit.serialize import parse_json_text

MAX_HEADER = 100 * 1024 * 1024
"""The safetensors package refuses headers above 100 MB; so do we."""

DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
    "C64": "<c8",
}
"""safetensors dtype -> numpy storage type (BF16 is stored as its 16 bits)."""

SMALL_TENSOR_BYTES = 1 << 16
"""Tensors of at most this many bytes are read into memory (a copy), larger ones mapped."""

NAMES = {"BF16": "bfloat16", "BOOL": "bool", "C64": "complex64"}


def is_safetensors(head: bytes) -> bool:
    """Whether the first bytes look like a safetensors file: an 8-byte length, then ``{``.

    The length itself is checked by the reader, which says what is wrong with it.
    """
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") >= 2


class SafetensorsSource(TensorSource):
    """The tensors of a ``.safetensors`` file, in the order of their data."""

    format = "safetensors"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._fd: int | None = None
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            head = stream.read(8)
            if len(head) < 8:
                raise self._corrupt(f"{len(head)} bytes, shorter than the 8-byte header length")
            length = int.from_bytes(head, "little")
            if length > MAX_HEADER or length > size - 8:
                raise self._corrupt(
                    f"its header declares {length} bytes but the file has {size - 8} after "
                    "the length"
                )
            raw = stream.read(length)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._corrupt("its header is not UTF-8") from None
        try:
            header = parse_json_text(text, "header")
        except XavinitError as error:
            detail = str(error).removeprefix("header: ")
            raise self._corrupt(f"its header is not JSON ({detail})") from None
        if not isinstance(header, dict):
            raise self._corrupt("its header is not a JSON object")
        self._data_start = 8 + length
        self._data_size = size - self._data_start
        tensors: list[tuple[int, int, TensorInfo]] = []
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            tensors.append(self._describe(name, entry))
        tensors.sort(key=lambda item: (item[0], item[1]))
        for (begin, end, info), (next_begin, _, other) in zip(tensors, tensors[1:], strict=False):
            if next_begin < end:
                raise self._corrupt(
                    f"tensors {info.name!r} and {other.name!r} overlap (bytes {begin}-{end} "
                    f"and from {next_begin})"
                )
        self.tensors = [info for _, _, info in tensors]

    def _corrupt(self, why: str) -> XavinitError:
        return XavinitError(f"{self.path}: not a valid safetensors file: {why}")

    def _describe(self, name: str, entry: object) -> tuple[int, int, TensorInfo]:
        if not isinstance(entry, dict):
            raise self._corrupt(f"entry {name!r} is not an object")
        dtype = entry.get("dtype")
        shape = entry.get("shape")
        offsets = entry.get("data_offsets")
        if not isinstance(dtype, str):
            raise self._corrupt(f"tensor {name!r} has no dtype")
        if dtype not in DTYPES:
            raise XavinitError(
                f"{self.path}: tensor {name!r} has dtype {dtype}; xavinit reads "
                f"{', '.join(d for d in DTYPES if d not in ('BOOL', 'C64'))} "
                f"(leave it out with --key '!{name}')"
            )
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise self._corrupt(
                f"tensor {name!r} has shape {shape!r}; expected non-negative integers"
            )
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(n) is int for n in offsets)
        ):
            raise self._corrupt(f"tensor {name!r} has data_offsets {offsets!r}")
        begin, end = offsets
        itemsize = np.dtype(DTYPES[dtype]).itemsize
        nbytes = math.prod(shape) * itemsize  # Python integers: no overflow
        if not 0 <= begin <= end <= self._data_size:
            raise self._corrupt(
                f"tensor {name!r} lies at bytes {begin}-{end}, outside the "
                f"{self._data_size} bytes of data"
            )
        if end - begin != nbytes:
            raise self._corrupt(
                f"tensor {name!r} of shape {tuple(shape)} and dtype {dtype} needs {nbytes} "
                f"bytes, but its offsets span {end - begin}"
            )
        info = TensorInfo(
            name,
            tuple(shape),
            NAMES.get(dtype, np.dtype(DTYPES[dtype]).name),
            layout="out-in",
            key=(begin, dtype),
        )
        return begin, end, info

    def contiguous(self, info: TensorInfo) -> int | None:
        begin, _ = info.key
        return self._data_start + begin

    def load(self, info: TensorInfo) -> np.ndarray:
        begin, dtype = info.key
        storage = np.dtype(DTYPES[dtype])
        if info.size == 0:
            return empty_tensor(
                self.path, info.name, info.shape, np.float32 if dtype == "BF16" else storage
            )
        nbytes = info.size * storage.itemsize
        if nbytes <= SMALL_TENSOR_BYTES:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            data = os.pread(self._fd, nbytes, self._data_start + begin)
            if len(data) != nbytes:  # the file shrank since its header was read
                raise self._corrupt(f"tensor {info.name!r} ends past the end of the file")
            array = np.frombuffer(data, dtype=storage).reshape(info.shape)
        else:
            array = np.memmap(
                self.path, dtype=storage, mode="r", offset=self._data_start + begin,
                shape=info.shape or (1,),
            ).reshape(info.shape)  # fmt: skip
        if dtype == "BF16":
            return bfloat16_to_float32(array)
        return array

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
