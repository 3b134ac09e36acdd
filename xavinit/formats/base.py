"""What every checkpoint reader gives: named tensors, described before they are read.

A reader opens a file, lists its tensors (:class:`TensorInfo`: name, shape, dtype and what the
format knows of its layout, role and groups) without reading their data, and reads one tensor
at a time on request (memory-mapped where the format allows), so a file larger than memory is
checked tensor by tensor.
"""

from __future__ import annotations

import math
import mmap
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.extras import install
from xavinit.limits import MAX_ARRAY_BYTES
from xavinit.resources import require_memory

INSTALL_FORMATS = install("formats")
"""The exact line that installs the optional readers (h5py, onnx)."""

ROLES = ("dense", "conv", "embedding", "attention", "recurrent", "bias", "norm", "other")
"""What a tensor is. ``recurrent``: an RNN's stacked gate matrices (PyTorch ``weight_ih_l0`` and
``weight_hh_l0``, Keras LSTM/GRU ``kernel`` and ``recurrent_kernel``, ONNX LSTM/GRU/RNN ``W``
and ``R``)."""

NUMERIC_KINDS = "fiu"
"""numpy dtype kinds a weight may have: float, signed and unsigned integer."""


class FormatUnavailableError(XavinitError):
    """An optional package a reader needs is not installed."""


def require(module: str, what: str) -> Any:
    """Import an optional package, or raise :class:`FormatUnavailableError` with the install line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise FormatUnavailableError(
            f"reading {what} needs the {module} package: {INSTALL_FORMATS}"
        ) from None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a file, described before it is read.

    Attributes:
        name: the tensor's name in the file (``fc1.weight``, ``dense/kernel``).
        shape: its shape as stored.
        dtype: numpy's name of its element type (``float32``), or ``bfloat16``.
        layout: ``out-in`` or ``in-out`` when the format says which, else None.
        role: the role when the format knows it (a Keras layer class, an ONNX op), else None.
        groups: a convolution's groups when the format knows them, else None.
        owner: for a bias, the name of the weight it belongs to, when the format knows it.
        key: the reader's own handle on the tensor (a storage key, a dataset path).
        depthwise: a Keras depthwise kernel ``(*kernel, in, multiplier)``.
        fan_axes: ``(input axes, output axes)`` where the format knows which axes of the
            stored array are contracted with the layer's input and which index its output
            (a Keras ``EinsumDense`` kernel ``(units, heads, dim)`` is ``((0,), (1, 2))``, an ONNX
            LSTM ``W`` ``(directions, 4 hidden, input)`` is ``((2,), (1,))``); axes in neither
            are independent copies (directions). None: the role and layout decide.
        note: what the reader wants said about the tensor (a convention it applied).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str | None = None
    role: str | None = None
    groups: int | None = None
    owner: str | None = None
    key: Any = None
    depthwise: bool = False
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    note: str = ""

    @property
    def size(self) -> int:
        """Number of entries."""
        return math.prod(self.shape)


class TensorSource:
    """An open file of named tensors: ``tensors`` lists them, ``load`` reads one.

    Use as a context manager; ``close`` releases the file.
    """

    format: str = ""
    """Name of the format (``safetensors``, ``pytorch``...)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tensors: list[TensorInfo] = []

    def load(self, info: TensorInfo) -> np.ndarray:
        """Read one tensor (memory-mapped where the format allows)."""
        raise NotImplementedError

    def contiguous(self, info: TensorInfo) -> int | None:
        """Where the tensor's bytes start in ``self.path`` when they lie there C-contiguous and
        little-endian in the type ``info.dtype`` names, else None (the format decides)."""
        return None

    def read(self, info: TensorInfo, workspace: Workspace | None = None) -> np.ndarray:
        """One tensor to compute on: float32 (16-bit types widened), float64 kept, other
        types as :meth:`load` gives them.

        With a ``workspace``, float16 and bfloat16 tensors are widened into its buffer, reused
        from tensor to tensor (valid until the next read), a chunk at a time straight from the
        file where the bytes lie contiguous (:meth:`contiguous`); contiguous float32 tensors
        are mapped from the file (the page cache's own pages, no copy); others are copied into
        the buffer. Memory holds one float32 tensor at a time.
        """
        array, fill = self.read_lazily(info, workspace)
        if fill is not None:
            with fill:
                fill(0, info.size)
                if array.size:
                    fill.settle(float(array.min()), float(array.max()))
        return array

    def read_lazily(
        self, info: TensorInfo, workspace: Workspace | None = None
    ) -> tuple[np.ndarray, Filler | None]:
        """As :meth:`read`, but the workspace's entries are filled by the returned
        :class:`Filler`, range after range in order, as the caller reaches them: a block of rows
        is read from the file and used while it is still in cache; once all are filled, the
        caller hands the extremes it found to :meth:`Filler.settle` (float16 infinities and
        NaNs). ``(array, None)`` when the array is complete already."""
        if workspace is None or info.dtype not in WIDENED:
            return self.load(info), None
        start = self.contiguous(info) if sys.byteorder == "little" else None
        if start is not None and info.dtype == "float32":
            return self.load(info), None  # mapped: the page cache's own pages, no copy
        source = self.load(info) if start is None else None  # the reader validates it first
        require_memory(
            4 * info.size - workspace.capacity, f"tensor {info.name!r} of {self.path} as float32"
        )
        out = workspace.array(info.size)
        if source is not None:
            _widen_into(source, out)
            return out.reshape(info.shape), None
        assert start is not None
        return out.reshape(info.shape), Filler(self.path, start, info.dtype, out)

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> TensorSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[TensorInfo, np.ndarray]]:
        """Each tensor with its data, read lazily one at a time, in file order."""
        for info in self.tensors:
            yield info, self.load(info)


WIDENED = ("float32", "float16", "bfloat16")
"""The element types :meth:`TensorSource.read` hands over as float32."""

CHUNK_ENTRIES = 1 << 19
"""16-bit entries widened at a time (1 MiB of them, 2 MiB widened)."""


class Workspace:
    """One float32 buffer that tensors are read into, grown to the largest and reused."""

    def __init__(self) -> None:
        self._buffer = np.empty(0, dtype=np.float32)

    @property
    def capacity(self) -> int:
        """Bytes the buffer holds now."""
        return int(self._buffer.nbytes)

    def array(self, count: int) -> np.ndarray:
        """A flat float32 view of ``count`` entries (its content is the last tensor's)."""
        if self._buffer.size < count:
            self._buffer = np.empty(0, dtype=np.float32)  # free the old one first
            self._buffer = np.empty(count, dtype=np.float32)
        return self._buffer[:count]

    def holds(self, array: np.ndarray) -> bool:
        """Whether ``array`` lives in the buffer (the next read overwrites it)."""
        return bool(np.may_share_memory(array, self._buffer))


_HALF_BITS = np.int32(-0x70002000)
"""``0x8FFFE000``: the sign bit and the 15 exponent-and-mantissa bits of a float16 shifted
into a float32's places."""

HALF_UNMARKED = 65536.0
"""``2^16``: a float16 infinity or NaN widened by :func:`half_to_float32` without ``mark`` lies
at or beyond it in magnitude, every finite float16 within ``+-65504`` below it."""


def half_to_float32(raw: np.ndarray, out: np.ndarray, *, mark: bool = True) -> None:
    """float16 bits (any 16-bit view) to float32 in ``out``, exactly, without temporaries.

    The bits sign-extended to 32 and shifted left by 13 put the sign, exponent and mantissa of
    the half in a float32's places with the exponent 112 too small; multiplying by ``2^112``
    rebiases it, subnormal halves included (F. Giesen, "half_to_float_fast"). Infinities and
    NaNs (exponent 31) come out at ``+-2^16 (1 + m)``, beyond :data:`HALF_UNMARKED`, and are
    marked afterwards (:func:`mark_half_specials`). Three times faster than numpy's own
    float16 cast here.

    ``mark=False`` leaves them unmarked, for a caller that finds the extremes anyway (a scan
    of every value): the two extra passes of ``max`` and ``min`` are a fifth of the widening.
    """
    bits = out.view(np.int32)
    np.copyto(bits, raw.view(np.int16), casting="unsafe")
    bits <<= 13
    bits &= _HALF_BITS
    out *= np.float32(2.0**112)
    if mark and out.size and (out.max() >= HALF_UNMARKED or out.min() <= -HALF_UNMARKED):
        mark_half_specials(out)


def mark_half_specials(out: np.ndarray) -> None:
    """Make the float16 infinities and NaNs that :func:`half_to_float32` left unmarked (the
    entries of ``out`` at or beyond :data:`HALF_UNMARKED` in magnitude) float32 infinities
    and NaNs: the exponent's bits all set, the sign and mantissa kept (exponent 143 -> 255)."""
    special = np.abs(out) >= HALF_UNMARKED
    out.view(np.int32)[special] |= np.int32(0x7F800000)


def _widen_chunk(raw: np.ndarray, kind: str, out: np.ndarray) -> None:
    """Place one chunk of stored 16-bit values into ``out`` (float32); float16 infinities and
    NaNs are left unmarked (:meth:`Filler.settle` marks them)."""
    if kind == "bfloat16":
        bits = out.view(np.uint32)
        np.copyto(bits, raw.view(np.uint16), casting="unsafe")
        bits <<= 16
    else:
        half_to_float32(raw, out, mark=False)


_LET_GO: int | None = getattr(mmap, "MADV_DONTNEED", None)
"""``madvise``'s "not needed" (None where the system has no ``madvise``, as on Windows)."""


class Filler:
    """Fills a workspace from a tensor's contiguous bytes, range after range in order.

    Use as a context manager (the file is released at the end). float32 bytes are read straight
    into the workspace; 16-bit ones are memory-mapped (the page cache's own pages, no copy into
    a buffer of ours), widened a chunk at a time as each range is asked for, and their pages
    let go once widened. float16
    infinities and NaNs are left unmarked until :meth:`settle`, which the reader of the values
    calls with their extremes once every range is filled (a scan finds them anyway).
    """

    def __init__(self, path: str, start: int, kind: str, out: np.ndarray) -> None:
        self.path = path
        self.kind = kind
        self.out = out
        self.done = 0
        self._stream = None
        self._map: mmap.mmap | None = None
        self._stored: np.ndarray | None = None
        self._lead = 0  # bytes of the map before the tensor (maps start on a page boundary)
        if kind == "float32":
            self._stream = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
            self._stream.seek(start)
        elif out.size:
            self._lead = start % mmap.ALLOCATIONGRANULARITY
            with open(path, "rb") as stream:
                try:
                    self._map = mmap.mmap(stream.fileno(), self._lead + 2 * out.size,
                                          access=mmap.ACCESS_READ, offset=start - self._lead)  # fmt: skip
                except ValueError as error:  # the bytes would lie past the end of the file
                    raise XavinitError(
                        f"{path}: the file ends inside a tensor (truncated)"
                    ) from error
            self._stored = np.frombuffer(self._map, np.uint16, out.size, self._lead)

    def __call__(self, first: int, stop: int) -> None:
        """Fill entries ``first:stop`` (``first`` is where the last call stopped)."""
        if first != self.done:
            raise ValueError(f"fill from {self.done}, not {first}")
        stop = min(stop, self.out.size)
        if self._stored is not None and self._map is not None:
            for lo in range(first, stop, CHUNK_ENTRIES):
                hi = min(lo + CHUNK_ENTRIES, stop)
                _widen_chunk(self._stored[lo:hi], self.kind, self.out[lo:hi])
            # the pages widened leave this process (they stay in the page cache): memory holds
            # the float32 workspace, not also the stored tensor (where the system can say so)
            used = (self._lead + 2 * stop) // mmap.PAGESIZE * mmap.PAGESIZE
            if used and _LET_GO is not None:
                self._map.madvise(_LET_GO, 0, used)
        elif self._stream is not None:
            self._read(memoryview(self.out[first:stop]).cast("B"))  # type: ignore[arg-type]
        self.done = stop

    def settle(self, low: float, high: float) -> bool:
        """Mark the float16 infinities and NaNs among the entries filled, given the least and
        the greatest of them (unmarked, they lie at or beyond :data:`HALF_UNMARKED`); costs
        nothing when the extremes show none. True when entries changed: whatever was computed
        from them must be computed again."""
        if self.kind != "float16" or not max(-low, high) >= HALF_UNMARKED:
            return False
        mark_half_specials(self.out[: self.done])
        return True

    def _read(self, view: memoryview) -> None:
        assert self._stream is not None
        done = 0
        while done < view.nbytes:
            got = self._stream.readinto(view[done:])
            if not got:
                raise XavinitError(f"{self.path}: the file ends inside a tensor (truncated)")
            done += got

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stored = None  # the view first: a map with a view cannot be closed
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> Filler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _widen_into(array: np.ndarray, out: np.ndarray) -> None:
    """Copy any float array into the flat float32 ``out`` a chunk at a time (memory-mapped
    sources are touched once)."""
    flat = array.reshape(-1)
    for first in range(0, flat.size, CHUNK_ENTRIES):
        np.copyto(out[first : first + CHUNK_ENTRIES], flat[first : first + CHUNK_ENTRIES],
                  casting="unsafe")  # fmt: skip


def bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) to float32: the same bits in the upper half of a float32."""
    out = np.empty(raw.shape, dtype=np.uint32)
    np.left_shift(raw, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


def empty_tensor(path: str, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A tensor without entries (a 0 in its shape); a shape numpy cannot make, its other
    dimensions beyond :data:`~xavinit.limits.MAX_ARRAY_BYTES`, is refused as corrupt."""
    if math.prod(n for n in shape if n) * np.dtype(dtype).itemsize > MAX_ARRAY_BYTES:
        raise XavinitError(
            f"{path}: tensor {name!r} has shape {shape}, larger than any array can be (corrupt)"
        )
    return np.empty(shape, dtype=dtype)


def refuse_dtype(path: str, name: str, dtype: str) -> XavinitError:
    """The one message for a tensor whose element type is not a number xavinit checks."""
    return XavinitError(
        f"{path}: tensor {name!r} has dtype {dtype}; xavinit checks numeric (float or "
        f"integer) tensors only (leave it out with --key '!{name}')"
    )


def check_extent(path: str, name: str, needed: int, available: int) -> None:
    """Refuse a tensor whose bytes would run past what the file holds for it."""
    if needed > available:
        raise XavinitError(
            f"{path}: tensor {name!r} needs {needed} bytes but the file holds {available} "
            "for it (truncated or corrupt)"
        )
