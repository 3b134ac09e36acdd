"""``.npy`` (memory-mapped) and ``.npz`` (through :func:`xavinit.fileio.read_npz`, the one npz
reader). NumPy files carry no layout: the checks guess it from a bias beside a weight, else
take xavinit's ``(fan_in, fan_out)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xavinit.errors import XavinitError
from xavinit.fileio import NpzReader, npz_headers
from xavinit.formats.base import TensorInfo, TensorSource

_EXPECTED = "a .npz archive of weight arrays (numpy.savez)"


def _dtype_name(dtype: np.dtype) -> str:
    return "str" if dtype.kind in "USa" else dtype.name


class NpySource(TensorSource):
    """One array, memory-mapped; its name is the file's stem."""

    format = "npy"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise XavinitError(f"{path}: corrupt .npy file ({detail})") from None
        self._array = array
        name = Path(path).stem
        self.tensors = [TensorInfo(name, tuple(array.shape), _dtype_name(array.dtype))]

    def load(self, info: TensorInfo) -> np.ndarray:
        return self._array

    def contiguous(self, info: TensorInfo) -> int | None:
        array = self._array
        native = array.dtype.byteorder in "<|" or (array.dtype.byteorder == "=")
        if isinstance(array, np.memmap) and array.flags.c_contiguous and native:
            return int(array.offset)
        return None

    def close(self) -> None:
        mapped = getattr(self._array, "_mmap", None)
        self._array = None
        if mapped is not None:
            mapped.close()


class NpzSource(TensorSource):
    """The arrays of an ``.npz``, listed from their headers and read one at a time."""

    format = "npz"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        headers = npz_headers(path, "weights", expected=_EXPECTED)
        self.tensors = [
            TensorInfo(name, shape, _dtype_name(dtype)) for name, (shape, dtype) in headers.items()
        ]
        self._reader = NpzReader(path, "weights", _EXPECTED)

    def load(self, info: TensorInfo) -> np.ndarray:
        return self._reader.read(info.name)

    def close(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
