"""Tensors handed over in memory: a mapping of names to arrays (``model.state_dict()``, a dict
of JAX or numpy arrays), read without importing their framework.

Anything with ``__dlpack__`` (torch, JAX, CuPy on the host) is taken zero-copy through
``numpy.from_dlpack``; anything with ``__array__`` through ``numpy.asarray``. PyTorch tensors
are ``out-in``, JAX arrays (Flax kernels) ``in-out``, numpy arrays have no layout (guessed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.formats.base import TensorInfo, TensorSource

MAPPING_LABEL = "<mapping>"


def _framework(value: Any) -> str:
    return type(value).__module__.partition(".")[0]


def to_numpy(name: str, value: Any) -> np.ndarray:
    """A numpy view (or copy) of an array-like, without importing its framework.

    Raises:
        XavinitError: the value is not an array, or cannot leave its device or autograd graph.
    """
    if isinstance(value, np.ndarray):
        return _widen(value)
    errors = []
    if hasattr(value, "__dlpack__"):
        try:
            return _widen(np.from_dlpack(value))
        except (BufferError, TypeError, RuntimeError, ValueError) as error:
            errors.append(str(error).splitlines()[0] if str(error) else type(error).__name__)
    if hasattr(value, "__array__"):
        try:
            return _widen(np.asarray(value))
        except (TypeError, RuntimeError, ValueError) as error:
            errors.append(str(error).splitlines()[0] if str(error) else type(error).__name__)
    widen = getattr(value, "float", None)
    if errors and callable(widen) and "bfloat16" in " ".join(errors).lower():
        return to_numpy(name, widen())  # a torch bfloat16 tensor: numpy has no bfloat16
    if not errors:
        raise XavinitError(
            f"tensor {name!r} is a {type(value).__name__}, not an array (nothing with "
            "__array__ or __dlpack__)"
        )
    detail = errors[-1]
    raise XavinitError(
        f"tensor {name!r} cannot be read as a numpy array ({detail}); pass CPU tensors "
        "without gradients, e.g. model.state_dict()"
    )


def _widen(array: np.ndarray) -> np.ndarray:
    """bfloat16 (ml_dtypes, from JAX) as float32; other arrays unchanged."""
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array


class MappingSource(TensorSource):
    """The arrays of a mapping, in its order."""

    format = "mapping"

    def __init__(self, arrays: Mapping[str, Any]) -> None:
        super().__init__(MAPPING_LABEL)
        if not isinstance(arrays, Mapping) or not arrays:
            raise XavinitError("give a non-empty mapping of names to arrays")
        self._arrays: dict[str, np.ndarray] = {}
        for name, value in arrays.items():
            array = to_numpy(str(name), value)
            layout = {"torch": "out-in", "jax": "in-out", "jaxlib": "in-out"}.get(_framework(value))
            kind = "str" if array.dtype.kind in "OSUa" else array.dtype.name
            self._arrays[str(name)] = array
            self.tensors.append(TensorInfo(str(name), tuple(array.shape), kind, layout=layout))

    def load(self, info: TensorInfo) -> np.ndarray:
        return self._arrays[info.name]
