"""What every checkpoint reader gives: named tensors, described before they are read.

A reader opens a file, lists its tensors (:class:`TensorInfo`: name, shape, dtype and what the
format knows of its layout, role and groups) without reading their data, and reads one tensor
at a time on request (memory-mapped where the format allows), so a file larger than memory is
checked tensor by tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.errors import XavinitError

INSTALL_FORMATS = "pip install 'xavinit[formats]'"
"""The exact line that installs the optional readers (h5py, onnx)."""

LAYOUTS = ("in-out", "out-in")
ROLES = ("dense", "conv", "embedding", "attention", "bias", "norm", "other")

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


def bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) to float32: the same bits in the upper half of a float32."""
    out = np.empty(raw.shape, dtype=np.uint32)
    np.left_shift(raw, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


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
