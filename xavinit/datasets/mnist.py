"""MNIST (or Fashion-MNIST) read from its four IDX files or a Keras-style ``mnist.npz``.

28x28 = 784 inputs, split as Glorot and Bengio (2010): the first 50,000 / the last 10,000 of
the training file / the 10,000 test images. ``mnist.npz`` is read by
:func:`xavinit.fileio.read_npz`, with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from xavinit.datasets.base import Dataset
from xavinit.datasets.preprocess import build_split, check_preprocess
from xavinit.errors import XavinitError
from xavinit.fileio import read_npz
from xavinit.resources import require_memory

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files of MNIST, each also accepted with ``.gz`` or as ``train-images.idx3-ubyte``."""

MNIST_VALID = 10_000
"""Validation images taken from the end of MNIST's 60,000 training images (the paper's split)."""

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, columns)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count,)


def load_mnist(path: str | Path, preprocess: str = "scale", seed: int = 0) -> Dataset:
    """Read MNIST from its four IDX files or a Keras-style ``mnist.npz``; split 50k/10k/10k.

    The training file's last 10,000 images become the validation split, as in Glorot and
    Bengio (2010); a training file with fewer than 60,000 images gives its last sixth
    (``count // 6``) instead. Fashion-MNIST, stored in the same IDX format, reads the same way.

    Args:
        path: a folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally
            ``.gz``, or named with ``.idx3-ubyte``), or ``mnist.npz`` (arrays ``x_train``
            ``(N, 28, 28)`` uint8, ``y_train``, ``x_test``, ``y_test``), or that ``.npz`` itself.
        preprocess: ``"scale"`` (``x / 127.5 - 1``) or ``"standardize"``.
        seed: seeds the training stream's shuffling.

    Returns:
        A :class:`Dataset` with ``x`` float32 ``(count, 784)`` and ``y`` int64 ``(count,)``.
    """
    check_preprocess(preprocess)
    source = Path(path).expanduser()
    if not source.exists():
        raise XavinitError(
            f"mnist: {source} does not exist; expected a folder with the four IDX files "
            "or mnist.npz"
        )
    if source.is_dir():
        files = [_find_idx(source, base) for base in MNIST_FILES]
        found = [f for f in files if f is not None]
        if len(found) == len(files):
            train_x = _read_idx(found[0], IDX_IMAGES_MAGIC, "mnist")
            train_y = _read_idx(found[1], IDX_LABELS_MAGIC, "mnist")
            test_x = _read_idx(found[2], IDX_IMAGES_MAGIC, "mnist")
            test_y = _read_idx(found[3], IDX_LABELS_MAGIC, "mnist")
            names = [str(f) for f in found]
        elif (source / "mnist.npz").is_file():
            train_x, train_y, test_x, test_y, names = _read_mnist_npz(source / "mnist.npz")
        else:
            missing = MNIST_FILES[[f is None for f in files].index(True)]
            raise XavinitError(
                f"mnist: folder {source} lacks {missing}[.gz]; "
                "expected the four IDX files or mnist.npz"
            )
    elif "idx" in source.name and "ubyte" in source.name:
        raise XavinitError(
            f"mnist: {source} is one IDX file; pass the folder {source.parent} that holds all four"
        )
    else:
        train_x, train_y, test_x, test_y, names = _read_mnist_npz(source)

    _check_pairs("mnist", names[0], train_x, names[1], train_y)
    _check_pairs("mnist", names[2], test_x, names[3], test_y)
    if test_x.shape[1:] != train_x.shape[1:]:
        raise XavinitError(
            f"mnist: {names[2]} holds {_dims(test_x.shape[1:])} images but {names[0]} holds "
            f"{_dims(train_x.shape[1:])}; both files must have the same image size"
        )
    for name, labels in ((names[1], train_y), (names[3], test_y)):
        if labels.size and int(labels.max()) > 9:
            raise XavinitError(
                f"mnist: {name} holds label {int(labels.max())}; MNIST labels are 0..9"
            )
    count = len(train_y)
    n_valid = min(MNIST_VALID, count // 6)
    if n_valid == 0:
        raise XavinitError(
            f"mnist: {names[0]} holds {count} images; at least 6 are needed to keep a sixth "
            "for validation"
        )
    cut = count - n_valid
    return build_split(
        name="mnist",
        image_shape=tuple(int(d) for d in train_x.shape[1:]),
        class_names=tuple(str(digit) for digit in range(10)),
        train=(train_x[:cut], train_y[:cut]),
        valid=(train_x[cut:], train_y[cut:]),
        test=(test_x, test_y),
        preprocess=preprocess,
        pixel_range=(0.0, 255.0),
        seed=seed,
    )


def _find_idx(folder: Path, base: str) -> Path | None:
    """The first of ``base``, ``base.gz`` and their ``.idx`` spellings present in ``folder``."""
    dotted = base.replace("-idx", ".idx")
    for name in (base, base + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx(path: Path, magic: int, label: str) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (optionally gzipped) into a uint8 array.

    Layout (big-endian): int32 magic ``0x0000 08 nd`` (type 0x08 = ubyte, ``nd`` dimensions),
    ``nd`` uint32 sizes, then ``prod(sizes)`` bytes. Every one of these is checked, and the header
    is read first: the data is read (decompressed) only up to the size it declares, after that
    size has been checked against the memory available, so a small gzip that inflates to
    gigabytes is refused before it is inflated.
    """
    kind = "image" if magic == IDX_IMAGES_MAGIC else "label"
    expected = f"an IDX {kind} file"
    with _open_idx(path, label, expected) as stream:
        raw = _read(stream, 4, path, label, expected)
        if len(raw) < 4:
            raise XavinitError(
                f"{label}: {path} is not an IDX {kind} file (it is {len(raw)} bytes, shorter "
                "than the 4-byte magic number)"
            )
        (found,) = struct.unpack(">i", raw)
        if found != magic:
            raise XavinitError(
                f"{label}: {path} is not an IDX {kind} file (magic {magic} expected, got {found})"
            )
        ndim = magic & 0xFF
        head = _read(stream, 4 * ndim, path, label, expected)
        if len(head) < 4 * ndim:
            raise XavinitError(
                f"{label}: {path} is truncated: its IDX header needs {4 + 4 * ndim} bytes, "
                f"the file has {4 + len(head)}"
            )
        dims = struct.unpack(f">{ndim}I", head)
        if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
            raise XavinitError(f"{label}: {path} declares images of {_dims(dims[1:])} pixels")
        size = math.prod(dims)  # a Python int: no overflow
        require_memory(size, f"{label}: {path} (its header declares {_dims(dims)} bytes)")
        data = _read(stream, size, path, label, expected)
        extra = _read(stream, 1, path, label, expected)
    if len(data) != size or extra:
        state = "truncated" if len(data) < size else "longer than its header says"
        held = f"{len(data)}" if len(data) < size else f"more than {size}"
        raise XavinitError(
            f"{label}: {path} is {state}: its IDX header declares {_dims(dims)} = {size} bytes "
            f"of data, the file holds {held}"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _open_idx(path: Path, label: str, expected: str) -> IO[bytes]:
    """``path`` opened for reading, through gzip when it ends with ``.gz``."""
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except OSError as error:
        raise XavinitError(
            f"{label}: cannot read {path} ({error.strerror or error}); expected {expected}"
        ) from None


def _read(stream: IO[bytes], count: int, path: Path, label: str, expected: str) -> bytes:
    """At most ``count`` bytes, errors as XavinitError."""
    try:
        return stream.read(count)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise XavinitError(
            f"{label}: {path} is not a valid gzip file ({error or type(error).__name__}); "
            f"expected {expected}, gzipped"
        ) from None
    except OSError as error:
        raise XavinitError(
            f"{label}: cannot read {path} ({error.strerror or error}); expected {expected}"
        ) from None


def _check_pairs(label: str, x_name: str, x: np.ndarray, y_name: str, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise XavinitError(
            f"{label}: {y_name} holds {len(y)} labels but {x_name} holds {len(x)} images; "
            "they must match"
        )


def _read_mnist_npz(
    path: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``x_train, y_train, x_test, y_test`` from a Keras-style ``mnist.npz``, checked."""
    arrays = read_npz(path, "mnist")
    out = []
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if key not in arrays:
            raise XavinitError(
                f"mnist: {path} lacks array {key!r}; expected a Keras-style mnist.npz "
                "(x_train, y_train, x_test, y_test)"
            )
        array = arrays[key]
        ndim = 3 if key.startswith("x") else 1
        if array.dtype != np.uint8 or array.ndim != ndim:
            shape = "(N, 28, 28)" if ndim == 3 else "(N,)"
            raise XavinitError(
                f"mnist: {path} has {key} {array.dtype} of shape {array.shape}; expected uint8 "
                f"{shape} (for other data use npz:PATH)"
            )
        out.append(array)
    return (
        out[0],
        out[1],
        out[2],
        out[3],
        [f"{path}[{key}]" for key in ("x_train", "y_train", "x_test", "y_test")],
    )


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(d)) for d in shape)
