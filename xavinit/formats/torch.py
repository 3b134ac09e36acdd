"""PyTorch checkpoints without importing torch: ``torch.save`` zip archives (torch >= 1.6) and
legacy non-zip files (torch < 1.6, or ``_use_new_zipfile_serialization=False``).

**Zip archives** hold ``<name>/data.pkl``, a pickle of the saved object, and
``<name>/data/<key>``, one uncompressed member per storage. **Legacy files** are a sequence of
pickles in one stream: the magic number 0x1950a86a20f9469cfc6c, the protocol version (1001), a
``sys_info`` dict (byte order, type sizes), the saved object, and the sorted list of storage keys;
then, for each key in that order, the storage's element count (8 bytes, little-endian) followed by
its raw bytes. The object names its storages by persistent ids ``('storage', storage_type,
root_key, location, numel, view_metadata)``, where ``view_metadata`` is None or ``(view_key,
offset, size)`` (a view into the root storage, written by very old torch).

Both pickles go through an unpickler that resolves only the globals a weights-only load needs
(:data:`ALLOWED`): ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``_rebuild_parameter`` (and ``_with_state``), the storage types (``torch.FloatStorage``...) and
the dtypes (``torch.float32``...); legacy files may also name ``torch._utils._rebuild_tensor``
(torch 0.3) and the CUDA storage types (``torch.cuda.FloatStorage``: a file saved from a GPU,
read to the host). Each is replaced by a function of this module that only records what it is
given; any other global (``os.system``, ``builtins.eval``, a model class) is refused by name
before the pickle calls anything, so nothing in the file runs. The legacy header pickles
(magic number, version, ``sys_info``, the key list) may name no global at all. Before a pickle
is unpickled its opcodes are walked once without building anything (:func:`prescan`): a string
or bytes declaring more than the data holds is refused before the unpickler allocates it, and so
are the protocol-5 buffer opcodes torch never writes. A legacy file's pickles are read 1 MiB at a
time, up to :data:`MAX_PICKLE` in all; listing the tensors of the unpickled object visits at most
:data:`MAX_ENTRIES` values (shared references cannot multiply the paths).

Tensors come out as :class:`TensorRef` (storage, dtype, offset, size, strides), named by their
path in the saved object (``model.fc1.weight``), and are read one at a time: each storage is
memory-mapped (from the zip member, or from its place in the legacy stream) after its offset,
size and strides are checked against the bytes the file holds for it. Before a legacy file's
object is used, every storage's declared count is checked against its count in the stream and
against the file size, so a truncated file or a storage declaring more elements than the file
holds (2^62, say) is refused before anything is allocated. TorchScript archives
(``torch.jit.save``) are read by :mod:`xavinit.formats.torchscript` with the same pieces.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.fileio import check_zip_sizes
from xavinit.formats.base import TensorInfo, TensorSource, bfloat16_to_float32, empty_tensor

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
"""Every global a zip checkpoint's pickle may name; anything else is refused."""

LEGACY_ALLOWED = (
    *ALLOWED,
    "torch._utils._rebuild_tensor",
    *(f"torch.cuda.{name}" for name in STORAGES),
)
"""Every global a legacy checkpoint's object pickle may name: :data:`ALLOWED`, torch 0.3's
``_rebuild_tensor`` and the CUDA storage types (a file saved from a GPU)."""

MAX_PICKLE = 256 * 1024 * 1024
"""A state dict's pickle is small (names and shapes); larger is refused before it is read
(for a legacy file: all its pickles together)."""

MAX_ENTRIES = 1_000_000
"""At most this many values are visited when the tensors of an unpickled object are listed
(a small pickle that shares one dict under two keys, 60 levels deep, names 2^60 paths)."""

ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,  # a zip version or compression method zipfile does not know
    RuntimeError,  # an encrypted member
)
"""What reading a damaged or unusual zip archive raises."""

STATE_DICT_HINT = "save the weights instead: torch.save(model.state_dict(), PATH)"

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
MAGIC_BYTES = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
"""The magic number as a pickle writes it (LONG1 of 10 bytes), whatever the protocol."""

PROTOCOL_VERSION = 1001


@dataclass(frozen=True)
class StorageType:
    """A storage type or dtype named by the pickle: its numpy storage type."""

    dtype: str


@dataclass(frozen=True)
class Storage:
    """A storage the pickle refers to: its key, element type and element count.

    ``folder``: the archive folder holding it (``data``; ``constants`` for a TorchScript
    archive's constants). ``start``: where it begins in its root storage, in elements (a legacy
    view storage; 0 otherwise).
    """

    key: str
    dtype: str
    numel: int
    folder: str = "data"
    start: int = 0


@dataclass(frozen=True)
class TensorRef:
    """A tensor the pickle rebuilds: a view of a storage (element offset, size, strides)."""

    storage: Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(type(v) is int for v in value):
        raise pickle.UnpicklingError(f"{what} must be a tuple of integers, got {value!r:.80}")
    return tuple(value)


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any
) -> TensorRef:
    if not isinstance(storage, Storage) or type(storage_offset) is not int:
        raise pickle.UnpicklingError("a tensor must be rebuilt from a storage and an offset")
    shape = _ints(size, "size")
    if min(shape, default=0) < 0:
        raise pickle.UnpicklingError(f"negative size {shape}")
    return TensorRef(storage, storage_offset, shape, _ints(stride, "stride"))


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    if not isinstance(data, TensorRef):
        raise pickle.UnpicklingError("a parameter must wrap a tensor")
    return data


def _storage_type(name: str) -> StorageType:
    return StorageType(STORAGES.get(name) or DTYPES[name])


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle named a global outside what its reader allows."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class TooLarge(pickle.UnpicklingError):
    """A pickle (or the object it builds) beyond this module's limits."""


def _python3_name(module: str, name: str) -> str:
    """A global's name as Python 3 spells it (protocol 2 writes ``__builtin__.eval``)."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


class TorchUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED`, each to a recording function of this module.

    ``folder`` is where the storages the pickle names live (``data``).
    """

    storage_modules: tuple[str, ...] = ("torch",)

    def __init__(self, stream: IO[bytes], folder: str = "data") -> None:
        super().__init__(stream, encoding="utf-8")
        self.folder = folder

    def find_class(self, module: str, name: str) -> Any:
        found = self.resolve(module, name)
        if found is None:
            raise RefusedGlobal(_python3_name(module, name))
        return found

    def resolve(self, module: str, name: str) -> Any:
        """What an allowed global stands for, or None."""
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in REBUILDERS:
            return _rebuild_tensor_v2 if name == "_rebuild_tensor_v2" else _rebuild_parameter
        if module in self.storage_modules and name in STORAGES:
            return _storage_type(name)
        if module == "torch" and name in DTYPES:
            return _storage_type(name)
        return None

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
        return Storage(pid[2], pid[1].dtype, pid[4], self.folder)


def dtype_name(storage: str) -> str:
    return "bfloat16" if storage == "bfloat16" else np.dtype(storage).name


def _storage_dtype(storage: Storage) -> np.dtype:
    return np.dtype("<u2" if storage.dtype == "bfloat16" else storage.dtype)


class Walk:
    """Counts the values visited while an unpickled object is walked, against
    :data:`MAX_ENTRIES`, and keeps the containers being walked (a cycle is not followed)."""

    def __init__(self) -> None:
        self.visited = 0
        self.path: set[int] = set()

    def enter(self, value: Any) -> bool:
        """Whether to walk into ``value`` (False: it contains itself)."""
        self.visited += 1
        if self.visited > MAX_ENTRIES:
            raise TooLarge(f"the pickle names more than {MAX_ENTRIES} values (shared references)")
        if id(value) in self.path:
            return False
        self.path.add(id(value))
        return True

    def leave(self, value: Any) -> None:
        self.path.discard(id(value))


def _flatten(value: Any, prefix: str, out: dict[str, TensorRef], walk: Walk) -> None:
    """Every tensor of a nested dict/list, named by its path (``model.fc1.weight``)."""
    if isinstance(value, TensorRef):
        walk.enter(value)
        out[unique(prefix, out)] = value
        walk.leave(value)
        return
    if not isinstance(value, dict | list | tuple) or not walk.enter(value):
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        _flatten(item, f"{prefix}.{key}" if prefix else str(key), out, walk)
    walk.leave(value)


def unique(name: str, taken: Container[str]) -> str:
    """``name``, or ``name#2``, ``name#3``... where two paths spell the same name (a key
    ``'a.b'`` beside a dict ``a`` holding ``b``): no tensor hides another."""
    if name not in taken:
        return name
    number = 2
    while f"{name}#{number}" in taken:
        number += 1
    return f"{name}#{number}"


def tensors_of(loaded: Any) -> dict[str, TensorRef]:
    """The tensors of an unpickled state dict (or a dict holding one), in pickle order."""
    if isinstance(loaded, TensorRef):
        return {"tensor": loaded}
    found: dict[str, TensorRef] = {}
    _flatten(loaded, "", found, Walk())
    return found


def check_ref(
    corrupt: Callable[[str], XavinitError], name: str, ref: TensorRef, available: int
) -> int:
    """Refuse a tensor that reaches past its storage or its storage's bytes in the file;
    returns its number of elements."""
    storage = ref.storage
    dtype = _storage_dtype(storage)
    if len(ref.shape) != len(ref.strides) or ref.offset < 0 or min(ref.strides, default=0) < 0:
        raise corrupt(f"tensor {name!r}: bad size {ref.shape} or strides {ref.strides}")
    if min(ref.shape, default=0) < 0:
        raise corrupt(f"tensor {name!r}: negative size {ref.shape}")
    count = math.prod(ref.shape)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides, strict=True))
    if count and (last >= storage.numel or storage.numel * dtype.itemsize > available):
        raise corrupt(
            f"tensor {name!r} reaches element {last} of a storage of "
            f"{storage.numel} ({available} bytes in the file)"
        )
    return count


def view_of(flat: np.ndarray, ref: TensorRef) -> np.ndarray:
    """The tensor ``ref`` describes, as a view of its storage's elements (bfloat16 widened)."""
    count = math.prod(ref.shape)
    contiguous = _contiguous_strides(ref.shape)
    if ref.strides == contiguous or count == 1:
        array = flat[ref.offset : ref.offset + count].reshape(ref.shape)
    else:
        array = np.lib.stride_tricks.as_strided(
            flat[ref.offset :],
            shape=ref.shape,
            strides=tuple(s * flat.dtype.itemsize for s in ref.strides),
            writeable=False,
        )
    if ref.storage.dtype == "bfloat16":
        return bfloat16_to_float32(array)
    return array


def empty_of(path: str, name: str, ref: TensorRef) -> np.ndarray:
    """A tensor without elements, of its shape and (widened) type."""
    storage = ref.storage
    dtype = np.float32 if storage.dtype == "bfloat16" else _storage_dtype(storage)
    return empty_tensor(path, name, ref.shape, dtype)


REFUSED_OPCODES = frozenset({"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"})
"""Protocol-5 buffer opcodes: torch never writes them (and CPython's own error path for a huge
BYTEARRAY8 prints to stderr)."""


def prescan(stream: Any) -> None:
    """Walk one pickle's opcodes without building anything, then rewind: a declared length
    past the end of the data, or an opcode of :data:`REFUSED_OPCODES`, is refused before the
    unpickler allocates for it."""
    start = stream.tell()
    for opcode, _, _ in pickletools.genops(stream):
        if opcode.name in REFUSED_OPCODES:
            raise pickle.UnpicklingError(f"opcode {opcode.name} (a pickle buffer)")
    stream.seek(start)


def load_pickle(unpickler: pickle.Unpickler, stream: Any) -> Any:
    """``unpickler.load()`` of the pickle at ``stream``'s position, after :func:`prescan`."""
    prescan(stream)
    return unpickler.load()


def _load(kind: Callable[[Any], pickle.Unpickler], stream: Any) -> Any:
    return load_pickle(kind(stream), stream)


def unpickle_errors(
    path: str,
    corrupt: Callable[[str], XavinitError],
    refusal: Callable[[str], str],
    run: Callable[[], Any],
) -> Any:
    """``run()`` (an unpickling), its failures turned into one-line :class:`XavinitError`."""
    try:
        return run()
    except RefusedGlobal as refused:
        raise XavinitError(refusal(refused.name)) from None
    except TooLarge as error:
        raise corrupt(str(error)) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        OverflowError,
    ) as error:
        why = " ".join(str(error).split()) or type(error).__name__
        raise corrupt(f"damaged pickle ({why:.200})") from None
    except (AttributeError, IndexError, RecursionError, MemoryError) as error:
        raise corrupt(f"damaged pickle ({type(error).__name__})") from None


def refusal_message(path: str, name: str, allowed: str) -> str:
    """The one line for a global a reader does not resolve."""
    model = name.startswith(("torch.nn.", "__main__.")) or ".nn.modules." in name
    if model:
        return (
            f"{path}: refused: a whole pickled model ({name}), not a state dict; "
            f"{STATE_DICT_HINT} (nothing in the file was run)"
        )
    return f"{path}: refused to unpickle global {name!r}: {allowed} (nothing in the file was run)"


STATE_DICT_ALLOWS = (
    "a weights-only checkpoint may name only OrderedDict, "
    "torch._utils._rebuild_tensor_v2/_rebuild_parameter, the storage types and dtypes"
)


class TorchSource(TensorSource):
    """The tensors of a ``torch.save`` zip archive, in pickle order."""

    format = "pytorch"
    kind = "PyTorch checkpoint"
    missing_hint = STATE_DICT_HINT

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._stream = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _corrupt(self, why: str) -> XavinitError:
        return XavinitError(f"{self.path}: not a readable {self.kind}: {why}")

    def _open(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self._stream)
            check_zip_sizes(self._zip, "weights", self.path)
            names = self._zip.namelist()
            pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            if not pickles:
                raise self._corrupt(f"no data.pkl; {self.missing_hint}")
            first = min(pickles, key=lambda n: (n.count("/"), names.index(n)))
            self._prefix = first[: -len("data.pkl")]
            self._names = names
            order = self._member(f"{self._prefix}byteorder")
            if order is not None and order.strip() not in (b"little", b""):
                raise self._corrupt("big-endian checkpoints are not supported")
            self._read_tensors()
        except ZIP_ERRORS as error:
            if isinstance(error, XavinitError):
                raise
            raise self._corrupt(f"damaged zip archive ({error or type(error).__name__})") from None

    def _pickle_bytes(self, member: str) -> bytes:
        """A pickle member's bytes, refused above :data:`MAX_PICKLE`."""
        info = self._zip.getinfo(member)
        if info.file_size > MAX_PICKLE:
            raise self._corrupt(f"{member} declares {info.file_size} bytes")
        return self._zip.read(info)

    def _read_tensors(self) -> None:
        data = self._pickle_bytes(f"{self._prefix}data.pkl")
        found = unpickle_errors(
            self.path,
            self._corrupt,
            self._refusal,
            lambda: tensors_of(_load(TorchUnpickler, io.BytesIO(data))),
        )
        self.tensors = [
            TensorInfo(name, ref.shape, dtype_name(ref.storage.dtype), layout="out-in", key=ref)
            for name, ref in found.items()
        ]

    def _refusal(self, name: str) -> str:
        return refusal_message(self.path, name, STATE_DICT_ALLOWS)

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
        member = f"{self._prefix}{storage.folder}/{storage.key}"
        try:
            entry = self._zip.getinfo(member)
        except KeyError:
            raise self._corrupt(f"tensor {info.name!r}: storage {member!r} is missing") from None
        if not check_ref(self._corrupt, info.name, ref, entry.file_size):
            return empty_of(self.path, info.name, ref)
        dtype = _storage_dtype(storage)
        flat: np.ndarray
        try:
            if entry.compress_type == zipfile.ZIP_STORED:
                start = self._data_offset(entry)
                flat = np.memmap(
                    self._stream, dtype=dtype, mode="r", offset=start, shape=(storage.numel,)
                )
            else:  # compressed (rare): read it, within the sizes checked at open
                flat = np.frombuffer(self._zip.read(entry), dtype=dtype, count=storage.numel)
        except ZIP_ERRORS as error:
            raise self._corrupt(f"tensor {info.name!r}: {error or type(error).__name__}") from None
        return view_of(flat, ref)

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


# --- legacy (non-zip) files ------------------------------------------------------------------


def is_legacy(head: bytes) -> bool:
    """Whether a file's first bytes are a legacy checkpoint's magic-number pickle."""
    return head[:1] == b"\x80" and MAGIC_BYTES in head[:32]


def bare_pickle_message(path: str) -> str:
    """The one message for a pickle that is not a PyTorch checkpoint."""
    return (
        f"{path}: a bare pickle, not a PyTorch checkpoint (no torch.save magic number); "
        "xavinit does not unpickle arbitrary objects: save the weights with "
        "torch.save(model.state_dict(), PATH), safetensors or numpy.savez"
    )


class _NeedMoreError(Exception):
    """The pickles ran past the bytes read so far (read more, or the file is truncated)."""


class _Plain(pickle.Unpickler):
    """A legacy header pickle (magic number, version, sys_info, key list): no global at all."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream, encoding="utf-8")

    def find_class(self, module: str, name: str) -> Any:
        raise RefusedGlobal(_python3_name(module, name))

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")


def _text(value: Any) -> Any:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


class _LegacyUnpickler(TorchUnpickler):
    """The saved object of a legacy file: :data:`LEGACY_ALLOWED`, and 6-tuple persistent ids;
    records every storage it names (root key -> type and count)."""

    storage_modules = ("torch", "torch.cuda")

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.roots: dict[str, tuple[str, int]] = {}

    def resolve(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor_v2
        return super().resolve(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        if _text(pid[0]) == "module":
            raise pickle.UnpicklingError("a whole pickled model, not a state dict")
        if (
            len(pid) != 6
            or _text(pid[0]) != "storage"
            or not isinstance(pid[1], StorageType)
            or not isinstance(_text(pid[2]), str)
            or type(pid[4]) is not int
            or pid[4] < 0
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        dtype, key, numel, view = pid[1].dtype, _text(pid[2]), pid[4], pid[5]
        known = self.roots.setdefault(key, (dtype, numel))
        if known != (dtype, numel):
            raise pickle.UnpicklingError(
                f"storage {key!r} declared twice, as {known} and {(dtype, numel)}"
            )
        if view is None:
            return Storage(key, dtype, numel)
        if (
            not isinstance(view, tuple)
            or len(view) != 3
            or type(view[1]) is not int
            or type(view[2]) is not int
            or view[1] < 0
            or view[2] < 0
        ):
            raise pickle.UnpicklingError(f"unexpected storage view {view!r:.80}")
        if view[1] + view[2] > numel:
            raise pickle.UnpicklingError(
                f"a view of elements {view[1]}..{view[1] + view[2]} of storage {key!r} of {numel}"
            )
        return Storage(key, dtype, view[2], start=view[1])


@dataclass(frozen=True)
class _Placed:
    """A legacy storage in the stream: where its bytes start, and its element count."""

    offset: int
    numel: int


class LegacyTorchSource(TensorSource):
    """The tensors of a legacy (non-zip) ``torch.save`` file, in pickle order."""

    format = "pytorch-legacy"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._stream = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._size = os.fstat(self._stream.fileno()).st_size
            self._open()
        except BaseException:
            self.close()
            raise

    def _corrupt(self, why: str) -> XavinitError:
        return XavinitError(f"{self.path}: not a readable legacy PyTorch checkpoint: {why}")

    def _refusal(self, name: str) -> str:
        return refusal_message(
            self.path,
            name,
            "a legacy weights-only checkpoint may name only OrderedDict, "
            "torch._utils._rebuild_tensor(_v2)/_rebuild_parameter, the storage types and dtypes",
        )

    def _open(self) -> None:
        # The pickles come first; their length is known only once they are read: read 1 MiB,
        # then 4 times more while they run past it, up to MAX_PICKLE (or the file's end).
        limit = min(self._size, MAX_PICKLE)
        length = min(limit, 1 << 20)
        while True:
            self._stream.seek(0)
            head = io.BytesIO(self._stream.read(length))
            try:
                found, roots, keys = self._pickles(head)
                break
            except _NeedMoreError:
                if length < limit:
                    length = min(length * 4, limit)
                    continue
                if limit < self._size:
                    raise self._corrupt(f"its pickles are longer than {MAX_PICKLE} bytes") from None
                raise self._corrupt("truncated: the file ends inside its pickles") from None
        self._places = self._place(roots, keys, head.tell())
        self.tensors = [
            TensorInfo(name, ref.shape, dtype_name(ref.storage.dtype), layout="out-in", key=ref)
            for name, ref in found.items()
        ]

    def _pickles(
        self, head: io.BytesIO
    ) -> tuple[dict[str, TensorRef], dict[str, tuple[str, int]], Any]:
        """The header checked, the object's tensors, its storages and the key list.

        Raises:
            _NeedMoreError: a pickle runs past ``head``.
        """

        def load(unpickler: pickle.Unpickler) -> Any:
            start = head.tell()
            try:
                prescan(head)
            except (ValueError, EOFError):
                if head.tell() >= len(head.getbuffer()):
                    raise _NeedMoreError from None
                head.seek(start)
            return unpickler.load()

        def header() -> Any:
            return unpickle_errors(
                self.path, self._corrupt, self._refusal, lambda: load(_Plain(head))
            )

        if header() != MAGIC_NUMBER:
            raise self._corrupt("no torch.save magic number")
        version = header()
        if version != PROTOCOL_VERSION:
            raise self._corrupt(f"protocol version {version!r:.40}, expected {PROTOCOL_VERSION}")
        info = header()
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise self._corrupt("big-endian checkpoints are not supported")
        unpickler = _LegacyUnpickler(head)
        found = unpickle_errors(
            self.path, self._corrupt, self._refusal, lambda: tensors_of(load(unpickler))
        )
        return found, unpickler.roots, header()

    def _place(
        self, roots: dict[str, tuple[str, int]], keys: Any, offset: int
    ) -> dict[str, _Placed]:
        """Where each storage's bytes are, every count checked against the declared one and
        against the file's size (nothing is allocated from a declared size)."""
        if not isinstance(keys, list) or not all(isinstance(_text(k), str) for k in keys):
            raise self._corrupt("the storage key list is not a list of strings")
        keys = [_text(k) for k in keys]
        if len(set(keys)) != len(keys):
            raise self._corrupt("a storage is listed twice (overlapping storages)")
        listed = set(keys)
        missing = [k for k in roots if k not in listed]
        if missing:
            raise self._corrupt(f"storage {missing[0]!r} has no data in the file")
        places: dict[str, _Placed] = {}
        for key in keys:
            if key not in roots:
                raise self._corrupt(f"the key list names storage {key!r}, which no tensor uses")
            dtype, numel = roots[key]
            itemsize = np.dtype("<u2" if dtype == "bfloat16" else dtype).itemsize
            self._stream.seek(offset)
            raw = self._stream.read(8)
            if len(raw) != 8:
                raise self._corrupt(
                    f"truncated: storage {key!r} ends the file at byte {offset} of {self._size}"
                )
            (count,) = struct.unpack("<q", raw)
            if count != numel:
                raise self._corrupt(
                    f"storage {key!r} declares {numel} elements but its data says {count}"
                )
            offset += 8
            if count * itemsize > self._size - offset:
                raise self._corrupt(
                    f"truncated: storage {key!r} declares {count} elements ({count * itemsize} "
                    f"bytes) but {self._size - offset} bytes remain in the file"
                )
            places[key] = _Placed(offset, count)
            offset += count * itemsize
        return places

    def load(self, info: TensorInfo) -> np.ndarray:
        ref: TensorRef = info.key
        storage = ref.storage
        place = self._places[storage.key]
        dtype = _storage_dtype(storage)
        available = (place.numel - storage.start) * dtype.itemsize
        if not check_ref(self._corrupt, info.name, ref, available):
            return empty_of(self.path, info.name, ref)
        try:
            flat = np.memmap(
                self._stream,
                dtype=dtype,
                mode="r",
                offset=place.offset + storage.start * dtype.itemsize,
                shape=(storage.numel,),
            )
        except (OSError, ValueError) as error:
            raise self._corrupt(f"tensor {info.name!r}: {error or type(error).__name__}") from None
        return view_of(flat, ref)

    def close(self) -> None:
        self._stream.close()
