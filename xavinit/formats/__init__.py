"""Checkpoint readers, one per format, chosen from the file's content (its magic bytes).

:func:`open_tensors` opens any supported file and returns a :class:`TensorSource`: its
``tensors`` describe every named tensor (shape, dtype, and the layout, role and groups the
format knows) before any is read, and ``load`` reads one at a time (memory-mapped where the
format allows).

| format | detected by | module | needs |
|---|---|---|---|
| ``.npy`` | ``\\x93NUMPY`` | numpy | core |
| ``.npz`` | a zip of ``.npy`` members | numpy (:func:`xavinit.fileio.read_npz`) | core |
| ``.safetensors`` | 8-byte header length, then ``{`` | safetensors | core |
| PyTorch ``.pt/.pth/.bin`` | a zip with ``data.pkl`` | torch (restricted unpickler) | core |
| PyTorch legacy ``.pt/.pth`` (torch < 1.6) | a pickle of torch's magic number | torch (restricted unpickler, storages after the pickles) | core |
| TorchScript ``.pt/.jit`` | a zip with ``data.pkl`` and ``constants.pkl`` or ``code/`` | torchscript (restricted unpickler, ``__torch__`` placeholders) | core |
| Keras ``.keras`` | a zip with ``model.weights.h5`` | keras | ``h5py`` |
| Keras ``.h5`` | the HDF5 signature | keras | ``h5py`` |
| ONNX ``.onnx`` | the extension, or a protobuf starting with ``ir_version`` | onnx | ``onnx`` |

Any other pickle (no ``torch.save`` magic number) is refused without being unpickled.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from xavinit.errors import XavinitError
from xavinit.formats.base import (
    INSTALL_FORMATS,
    FormatUnavailableError,
    TensorInfo,
    TensorSource,
)
from xavinit.serialize import require_regular_file

SUPPORTED = (
    ".npy, .npz, .safetensors, PyTorch .pt/.pth/.bin (zip or legacy), TorchScript, "
    "Keras .keras/.h5, ONNX .onnx"
)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def detect(path: str) -> str:
    """The format of a file from its first bytes (and, for zips, its member names).

    Returns one of ``npy``, ``npz``, ``safetensors``, ``pytorch``, ``pytorch-legacy``,
    ``torchscript``, ``keras``, ``keras-h5``, ``onnx``.

    Raises:
        XavinitError: a missing file, a folder, or content no reader knows.
    """
    from xavinit.formats.safetensors import is_safetensors

    file = Path(path)
    if not file.exists():
        raise XavinitError(f"weights file {path!r} does not exist")
    if file.is_dir():
        raise XavinitError(f"weights file {path!r} is a folder; expected one of {SUPPORTED}")
    require_regular_file(path, "weights file")
    try:
        size = file.stat().st_size
        with open(file, "rb") as stream:
            head = stream.read(32)
    except OSError as error:
        raise XavinitError(f"cannot read weights file {path!r}: {error.strerror}") from None
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path)
    if head.startswith(HDF5_SIGNATURE):
        return "keras-h5"
    if is_safetensors(head):
        return "safetensors"
    if head.startswith(b"\x80"):
        from xavinit.formats.torch import bare_pickle_message, is_legacy

        if is_legacy(head):
            return "pytorch-legacy"
        raise XavinitError(bare_pickle_message(path))
    if file.suffix.lower() == ".onnx" or head[:1] == b"\x08":
        return "onnx"
    if file.suffix.lower() in (".npy", ".npz"):
        raise XavinitError(f"{path}: not a NumPy file (no .npy header or zip archive)")
    kind = "empty" if size == 0 else "of an unknown format"
    raise XavinitError(f"{path}: the file is {kind}; xavinit reads {SUPPORTED}")


def _zip_kind(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise XavinitError(
            f"{path}: a damaged, corrupt or truncated zip archive ({error or type(error).__name__}); "
            f"xavinit reads {SUPPORTED}"
        ) from None
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        script = any(n.endswith("constants.pkl") or "/code/" in n for n in names)
        return "torchscript" if script else "pytorch"
    if "model.weights.h5" in names:
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        return "torchscript"  # no data.pkl: the reader says so
    raise XavinitError(
        f"{path}: a zip archive that is neither an .npz, a PyTorch checkpoint nor a .keras "
        f"model; xavinit reads {SUPPORTED}"
    )


def open_tensors(path: str | os.PathLike[str]) -> TensorSource:
    """Open a checkpoint of any supported format (use as a context manager).

    Raises:
        XavinitError: an unreadable or corrupt file, a refused pickle, or a missing optional
            package (:class:`FormatUnavailableError`, whose message has the ``pip install`` line).
    """
    name = str(path)
    kind = detect(name)
    if kind == "npy":
        from xavinit.formats.numpy import NpySource

        return NpySource(name)
    if kind == "npz":
        from xavinit.formats.numpy import NpzSource

        return NpzSource(name)
    if kind == "safetensors":
        from xavinit.formats.safetensors import SafetensorsSource

        return SafetensorsSource(name)
    if kind == "pytorch":
        from xavinit.formats.torch import TorchSource

        return TorchSource(name)
    if kind == "pytorch-legacy":
        from xavinit.formats.torch import LegacyTorchSource

        return LegacyTorchSource(name)
    if kind == "torchscript":
        from xavinit.formats.torchscript import TorchScriptSource

        return TorchScriptSource(name)
    if kind in ("keras", "keras-h5"):
        from xavinit.formats.keras import KerasSource

        return KerasSource(name, zipped=kind == "keras")
    from xavinit.formats.onnx import OnnxSource

    return OnnxSource(name)


__all__ = [
    "INSTALL_FORMATS",
    "SUPPORTED",
    "FormatUnavailableError",
    "TensorInfo",
    "TensorSource",
    "detect",
    "open_tensors",
]
