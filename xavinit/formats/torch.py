"""PyTorch checkpoints (``torch.save``, zip format of torch >= 1.6) without importing torch.

The archive holds ``<name>/data.pkl``, a pickle of the saved object, and ``<name>/data/<key>``,
one uncompressed member per storage. The pickle goes through an unpickler that resolves only the
globals a weights-only load needs (:data:`ALLOWED`): ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter`` (and ``_with_state``), the storage
types (``torch.FloatStorage``...) and the dtypes (``torch.float32``...). Each is replaced by a
function of this module that only records what it is given; any other global (``os.system``,
``builtins.eval``, a model class) is refused by name before the pickle calls anything, so
nothing in the file runs. Tensors come out as :class:`TensorRef` (storage key, dtype, offset,
size, strides), checked against the storage's bytes and memory-mapped from the zip member.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.fileio import check_zip_sizes
from xavinit.formats.base import TensorInfo, TensorSource, bfloat16_to_float32

STORAGES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "<c8",
    "ComplexDoubleStorage": "<c16",
}
"""``torch.<X>Storage`` -> numpy storage type (``bfloat16`` widened on read)."""

DTYPES = {
    "float64": "<f8",
    "float32": "<f4",
    "float16": "<f2",
    "bfloat16": "bfloat16",
    "int64": "<i8",
    "int32": "<i4",
    "int16": "<i2",
    "int8": "i1",
    "uint8": "u1",
    "bool": "?",
}
"""``torch.<dtype>`` globals a pickle may name."""

REBUILDERS = ("_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state")

ALLOWED = (
    "collections.OrderedDict",
    *(f"torch._utils.{name}" for name in REBUILDERS),
    *(f"torch.{name}" for name in STORAGES),
    *(f"torch.{name}" for name in DTYPES),
)
"""Every global a checkpoint's pickle may name; anything else is refused."""

MAX_PICKLE = 256 * 1024 * 1024
"""A state dict's pickle is small (names and shapes); larger is refused before it is read."""

STATE_DICT_HINT = "save the weights instead: torch.save(model.state_dict(), PATH)"


@dataclass(frozen=True)
class StorageType:
    """A storage type or dtype named by the pickle: its numpy storage type."""

    dtype: str


@dataclass(frozen=True)
class Storage:
    """A storage the pickle refers to: its member key, element type and element count."""

    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor the pickle rebuilds: a view of a storage (element offset, size, strides)."""

    storage: Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(type(v) is int for v in value):
        raise pickle.UnpicklingError(f"{what} must be a tuple of integers, got {value!r}")
    return tuple(value)


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any
) -> TensorRef:
    if not isinstance(storage, Storage) or type(storage_offset) is not int:
        raise pickle.UnpicklingError("a tensor must be rebuilt from a storage and an offset")
    return TensorRef(storage, storage_offset, _ints(size, "size"), _ints(stride, "stride"))


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    if not isinstance(data, TensorRef):
        raise pickle.UnpicklingError("a parameter must wrap a tensor")
    return data


def _storage_type(name: str) -> StorageType:
    return StorageType(STORAGES.get(name) or DTYPES[name])


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle named a global outside :data:`ALLOWED`."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _python3_name(module: str, name: str) -> str:
    """A global's name as Python 3 spells it (protocol 2 writes ``__builtin__.eval``)."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


class _Unpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED`, each to a recording function of this module."""

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in REBUILDERS:
            return _rebuild_tensor_v2 if name == "_rebuild_tensor_v2" else _rebuild_parameter
        if module == "torch" and (name in STORAGES or name in DTYPES):
            return _storage_type(name)
        raise RefusedGlobal(_python3_name(module, name))

    def persistent_load(self, pid: Any) -> Any:
        if (
            not isinstance(pid, tuple)
            or len(pid) != 5
            or pid[0] != "storage"
            or not isinstance(pid[1], StorageType)
            or not isinstance(pid[2], str)
            or type(pid[4]) is not int
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        return Storage(pid[2], pid[1].dtype, pid[4])


def _flatten(value: Any, prefix: str, out: dict[str, TensorRef]) -> None:
    """Every tensor of a nested dict/list, named by its path (``model.fc1.weight``)."""
    if isinstance(value, TensorRef):
        out[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}" if prefix else str(index), out)


def _dtype_name(storage: str) -> str:
    return "bfloat16" if storage == "bfloat16" else np.dtype(storage).name


class TorchSource(TensorSource):
    """The tensors of a ``torch.save`` zip archive, in pickle order."""

    format = "pytorch"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._stream = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _corrupt(self, why: str) -> XavinitError:
        return XavinitError(f"{self.path}: not a readable PyTorch checkpoint: {why}")

    def _open(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self._stream)
            check_zip_sizes(self._zip, "weights", self.path)
            names = self._zip.namelist()
            pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            if not pickles:
                kind = (
                    "a TorchScript archive" if any("/code/" in n for n in names) else "no data.pkl"
                )
                raise self._corrupt(f"{kind}; {STATE_DICT_HINT}")
            self._prefix = pickles[0][: -len("data.pkl")]
            info = self._zip.getinfo(pickles[0])
            if info.file_size > MAX_PICKLE:
                raise self._corrupt(f"data.pkl declares {info.file_size} bytes")
            data = self._zip.read(pickles[0])
            order = self._member(f"{self._prefix}byteorder")
            if order is not None and order.strip() not in (b"little", b""):
                raise self._corrupt("big-endian checkpoints are not supported")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as error:
            raise self._corrupt(f"damaged zip archive ({error or type(error).__name__})") from None
        try:
            loaded = _Unpickler(io.BytesIO(data)).load()
        except RefusedGlobal as refused:
            raise XavinitError(self._refusal(refused.name)) from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as error:
            raise self._corrupt(f"damaged pickle ({error or type(error).__name__})") from None
        except (AttributeError, IndexError, RecursionError, MemoryError) as error:
            raise self._corrupt(f"damaged pickle ({type(error).__name__})") from None
        found: dict[str, TensorRef] = {}
        _flatten(loaded, "", found)
        if isinstance(loaded, TensorRef):
            found = {"tensor": loaded}
        self.tensors = [
            TensorInfo(name, ref.shape, _dtype_name(ref.storage.dtype), layout="out-in", key=ref)
            for name, ref in found.items()
        ]

    def _refusal(self, name: str) -> str:
        model = name.startswith(("torch.nn.", "__main__.")) or ".nn.modules." in name
        if model:
            return (
                f"{self.path}: refused: a whole pickled model ({name}), not a state dict; "
                f"{STATE_DICT_HINT} (nothing in the file was run)"
            )
        return (
            f"{self.path}: refused to unpickle global {name!r}: a weights-only checkpoint may "
            "name only OrderedDict, torch._utils._rebuild_tensor_v2/_rebuild_parameter, the "
            "storage types and dtypes (nothing in the file was run)"
        )

    def _member(self, name: str) -> bytes | None:
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            return None
        if info.file_size > 1024:
            raise self._corrupt(f"{name} declares {info.file_size} bytes")
        return self._zip.read(info)

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        """Where a stored member's bytes start: after its local header (30 bytes + name + extra)."""
        self._stream.seek(info.header_offset)
        local = self._stream.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise self._corrupt(f"member {info.filename!r} has no local header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        return info.header_offset + 30 + name_length + extra_length

    def load(self, info: TensorInfo) -> np.ndarray:
        ref: TensorRef = info.key
        storage = ref.storage
        member = f"{self._prefix}data/{storage.key}"
        try:
            entry = self._zip.getinfo(member)
        except KeyError:
            raise self._corrupt(f"tensor {info.name!r}: storage {member!r} is missing") from None
        dtype = np.dtype("<u2" if storage.dtype == "bfloat16" else storage.dtype)
        if len(ref.shape) != len(ref.strides) or ref.offset < 0 or min(ref.strides, default=0) < 0:
            raise self._corrupt(
                f"tensor {info.name!r}: bad size {ref.shape} or strides {ref.strides}"
            )
        count = math.prod(ref.shape)
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides, strict=True))
        if count and (last >= storage.numel or storage.numel * dtype.itemsize > entry.file_size):
            raise self._corrupt(
                f"tensor {info.name!r} reaches element {last} of a storage of "
                f"{storage.numel} ({entry.file_size} bytes in the file)"
            )
        if count == 0:
            return np.empty(ref.shape, dtype=np.float32 if storage.dtype == "bfloat16" else dtype)
        flat: np.ndarray
        try:
            if entry.compress_type == zipfile.ZIP_STORED:
                start = self._data_offset(entry)
                flat = np.memmap(
                    self._stream, dtype=dtype, mode="r", offset=start, shape=(storage.numel,)
                )
            else:  # compressed (rare): read it, within the sizes checked at open
                flat = np.frombuffer(self._zip.read(entry), dtype=dtype, count=storage.numel)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise self._corrupt(f"tensor {info.name!r}: {error or type(error).__name__}") from None
        contiguous = _contiguous_strides(ref.shape)
        if ref.strides == contiguous or count == 1:
            array = flat[ref.offset : ref.offset + count].reshape(ref.shape)
        else:
            array = np.lib.stride_tricks.as_strided(
                flat[ref.offset :],
                shape=ref.shape,
                strides=tuple(s * dtype.itemsize for s in ref.strides),
                writeable=False,
            )
        if storage.dtype == "bfloat16":
            return bfloat16_to_float32(array)
        return array

    def close(self) -> None:
        archive = getattr(self, "_zip", None)
        if archive is not None:
            archive.close()
        self._stream.close()


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    step = 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02"
"""How a legacy (torch < 1.6, non-zip) checkpoint starts: pickle protocol 2 and its magic
number 0x1950a86a20f9469cfc6c."""


def legacy_message(path: str) -> str:
    """The one message for a legacy or bare-pickle checkpoint."""
    return (
        f"{path}: a legacy PyTorch checkpoint (torch < 1.6, not a zip archive) or a bare "
        "pickle; xavinit reads the zip format: re-save it with a current torch "
        "(torch.save(torch.load(PATH, weights_only=True), NEW_PATH))"
    )
