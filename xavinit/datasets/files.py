"""Datasets read from files on disk (MNIST, CIFAR-10, any ``.npz``) and scikit-learn's digits.

Nothing is ever downloaded: each loader reads files the user already has, checks their format
and splits them as Glorot and Bengio (2010) did:

| dataset | inputs | train / valid / test |
|---|---|---|
| MNIST | 28x28 = 784 | first 50,000 / last 10,000 of the training file / the 10,000 test images |
| CIFAR-10 | 3x32x32 = 3072 | ``data_batch_1..4`` / ``data_batch_5`` / ``test_batch`` |
| ``.npz`` | any ``(N, ...)`` | ``x_train`` / ``x_valid`` (else the last 1/6 of train) / ``x_test`` |
| digits | 8x8 = 64 | 1197 / 300 / 300 by a permutation drawn from the seed |

Preprocessing (statistics from the training split only, applied to every split; float32 out):

- ``"scale"``: the raw pixel range to [-1, 1]. ``uint8`` pixels: ``x / 127.5 - 1``; digits
  (0..16): ``x / 8 - 1``; any other ``.npz`` data: the training set's min and max map to -1
  and +1 (validation and test values beyond that range land outside [-1, 1]).
- ``"standardize"``: ``(x - mean) / std`` per feature, population std (``ddof=0``); a feature
  constant in the training set gets std 1, so it becomes 0.

CIFAR-10 pickles are read by an unpickler that only rebuilds numpy arrays (a pickle can run
arbitrary code); ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from xavinit.datasets.base import ArrayStream, Dataset, Split
from xavinit.errors import XavinitError

PREPROCESSING = ("scale", "standardize")
"""The ``preprocess`` choices every loader accepts."""

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

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4")
CIFAR10_VALID_BATCH = "data_batch_5"
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_INPUTS = 3 * 32 * 32

DIGITS_VALID = 300
DIGITS_TEST = 300

_CHUNK_ROWS = 4096  # rows converted to float64 at a time, so CIFAR-10 never needs a 1 GB copy


# --- public loaders ---------------------------------------------------------------------------


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
    return _build(
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


def load_cifar10(path: str | Path, preprocess: str = "scale", seed: int = 0) -> Dataset:
    """Read CIFAR-10's python pickles; split 40k/10k/10k as in Glorot and Bengio (2010).

    ``data_batch_1`` to ``data_batch_4`` are the training set, ``data_batch_5`` the validation
    set and ``test_batch`` the test set. Each pickle is a dict with ``b"data"`` uint8
    ``(N, 3072)`` and ``b"labels"`` (N ints in 0..9), read by an unpickler that refuses every
    global but numpy's array reconstruction, so a tampered file cannot run code.

    Each row keeps CIFAR's stored order, channel-major: the 1024 red pixels (row by row), then
    green, then blue. So ``image_shape`` is ``(3, 32, 32)``, the shape a row reshapes to, as
    for every dataset; :func:`to_images` moves the channels last, ``(32, 32, 3)``, for showing.

    Args:
        path: the ``cifar-10-batches-py`` folder (or a folder that contains it).
        preprocess: ``"scale"`` (``x / 127.5 - 1``) or ``"standardize"``.
        seed: seeds the training stream's shuffling.

    Returns:
        A :class:`Dataset` with ``x`` float32 ``(count, 3072)`` and ``y`` int64 ``(count,)``.
    """
    check_preprocess(preprocess)
    folder = Path(path).expanduser()
    if not folder.exists():
        raise XavinitError(
            f"cifar10: {folder} does not exist; expected the cifar-10-batches-py folder "
            "(data_batch_1..5, test_batch)"
        )
    if folder.is_file():
        hint = (
            "extract it (tar xzf) and pass the cifar-10-batches-py folder"
            if folder.name.endswith((".tar.gz", ".tgz", ".tar"))
            else "expected the cifar-10-batches-py folder (data_batch_1..5, test_batch)"
        )
        raise XavinitError(f"cifar10: {folder} is a file; {hint}")
    if not (folder / CIFAR10_TEST_BATCH).exists() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    batches = (*CIFAR10_TRAIN_BATCHES, CIFAR10_VALID_BATCH, CIFAR10_TEST_BATCH)
    for batch in batches:
        if not (folder / batch).is_file():
            raise XavinitError(
                f"cifar10: folder {folder} lacks {batch}; expected the python version's "
                "data_batch_1..5 and test_batch (cifar-10-python.tar.gz, extracted)"
            )
    parts = [_read_cifar_batch(folder / batch) for batch in batches]
    train_x = np.concatenate([x for x, _ in parts[:4]])
    train_y = np.concatenate([y for _, y in parts[:4]])
    return _build(
        name="cifar10",
        image_shape=(3, 32, 32),
        class_names=CIFAR10_CLASSES,
        train=(train_x, train_y),
        valid=parts[4],
        test=parts[5],
        preprocess=preprocess,
        pixel_range=(0.0, 255.0),
        seed=seed,
    )


def load_npz(path: str | Path, preprocess: str = "scale", seed: int = 0) -> Dataset:
    """Read a dataset from an ``.npz`` of arrays ``x_train, y_train, x_test, y_test``.

    Optional ``x_valid, y_valid`` give the validation split (both or neither); without them
    the last sixth of the training arrays (``count // 6``; 6 rows at least) becomes validation.
    ``x`` may have any shape ``(N, ...)``: rows are flattened in C order and ``image_shape`` is
    ``x_train.shape[1:]``. Labels are integers ``>= 0`` (``(N,)`` or ``(N, 1)``; whole-valued
    floats are accepted); ``classes`` is the largest label + 1. An optional string array
    ``class_names`` names them. Other arrays are ignored. Pickled (object) arrays are refused.

    Args:
        path: the ``.npz`` file.
        preprocess: ``"scale"`` (uint8: ``x / 127.5 - 1``; else the training min and max to
            -1 and +1) or ``"standardize"``.
        seed: seeds the training stream's shuffling.
    """
    check_preprocess(preprocess)
    source = Path(path).expanduser()
    arrays = _read_npz(source, "npz")
    label = "npz"
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if key not in arrays:
            raise XavinitError(
                f"{label}: {source} lacks array {key!r}; expected x_train, y_train, x_test, "
                f"y_test (optional x_valid, y_valid); found {', '.join(sorted(arrays)) or 'none'}"
            )
    has_valid = ("x_valid" in arrays, "y_valid" in arrays)
    if any(has_valid) and not all(has_valid):
        present, absent = ("x_valid", "y_valid") if has_valid[0] else ("y_valid", "x_valid")
        raise XavinitError(
            f"{label}: {source} has {present} but not {absent}; give both or neither"
        )
    splits = ("train", "valid", "test") if all(has_valid) else ("train", "test")
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in splits:
        x = _check_npz_inputs(source, f"x_{split}", arrays[f"x_{split}"])
        y = _check_npz_labels(source, f"y_{split}", arrays[f"y_{split}"])
        if len(x) != len(y):
            raise XavinitError(
                f"{label}: {source} has {len(x)} rows in x_{split} but {len(y)} labels in "
                f"y_{split}; they must match"
            )
        if split != "train" and x.shape[1:] != data["train"][0].shape[1:]:
            raise XavinitError(
                f"{label}: {source} has x_{split} rows of shape {x.shape[1:]} but x_train rows "
                f"of shape {data['train'][0].shape[1:]}; they must match"
            )
        data[split] = (x, y)
    if "valid" not in data:
        x, y = data["train"]
        n_valid = len(y) // 6
        if n_valid == 0 or n_valid == len(y):
            raise XavinitError(
                f"{label}: {source} has {len(y)} training rows and no x_valid; at least 6 are "
                "needed to keep the last sixth for validation"
            )
        data["train"] = (x[:-n_valid], y[:-n_valid])
        data["valid"] = (x[-n_valid:], y[-n_valid:])
    classes = 1 + max(int(y.max()) for _, y in data.values() if y.size)
    class_names = tuple(str(c) for c in range(classes))
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.dtype.kind not in "US" or names.ndim != 1 or len(names) != classes:
            raise XavinitError(
                f"{label}: {source} has class_names of shape {names.shape} and dtype "
                f"{names.dtype}; expected {classes} strings (labels 0..{classes - 1})"
            )
        class_names = tuple(
            n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names.tolist()
        )
    x_train = data["train"][0]
    if x_train.dtype == np.uint8:
        pixel_range: tuple[float, float] | None = (0.0, 255.0)
    else:
        pixel_range = None
    return _build(
        name="npz",
        image_shape=tuple(int(d) for d in x_train.shape[1:]),
        class_names=class_names,
        train=data["train"],
        valid=data["valid"],
        test=data["test"],
        preprocess=preprocess,
        pixel_range=pixel_range,
        seed=seed,
        classes=classes,
    )


def load_digits(preprocess: str = "scale", seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, 0..16 grey levels), split 1197/300/300.

    The split is a permutation drawn from ``seed`` (its own stream, independent of the
    training stream's shuffling): the first 300 permuted images are the test set, the next 300
    the validation set, the rest the training set. So a different seed gives a different split.
    scikit-learn is imported only here (``pip install 'xavinit[digits]'``).

    Args:
        preprocess: ``"scale"`` (``x / 8 - 1``) or ``"standardize"``.
        seed: seeds the split and the training stream's shuffling.
    """
    check_preprocess(preprocess)
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError:
        raise XavinitError("digits needs scikit-learn: pip install 'xavinit[digits]'") from None
    bunch = sklearn_load_digits()
    x = np.asarray(bunch.data, dtype=np.float64).reshape(-1, 64)
    y = np.asarray(bunch.target).astype(np.int64)
    if len(x) != len(y) or len(y) <= DIGITS_VALID + DIGITS_TEST:
        raise XavinitError(
            f"digits: scikit-learn returned {len(x)} images and {len(y)} labels; expected "
            "1797 of each"
        )
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(11,))).permutation(len(y))
    test, valid, train = np.split(order, [DIGITS_TEST, DIGITS_TEST + DIGITS_VALID])
    return _build(
        name="digits",
        image_shape=(8, 8),
        class_names=tuple(str(digit) for digit in range(10)),
        train=(x[train], y[train]),
        valid=(x[valid], y[valid]),
        test=(x[test], y[test]),
        preprocess=preprocess,
        pixel_range=(0.0, 16.0),
        seed=seed,
        classes=10,
    )


def check_preprocess(preprocess: str) -> None:
    """Raise :class:`XavinitError` unless ``preprocess`` is one of :data:`PREPROCESSING`."""
    if preprocess not in PREPROCESSING:
        raise XavinitError(
            f"unknown preprocess {preprocess!r}; choose one of: {', '.join(PREPROCESSING)}"
        )


def to_images(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """Rows ``(count, inputs)`` of ``dataset`` as images for showing, channels last.

    Every loader sets ``image_shape`` to the shape one row reshapes to (C order). Colour rows
    stored channel-major, ``(3, H, W)`` like CIFAR-10's, come back as ``(count, H, W, 3)``;
    everything else as ``(count, *image_shape)``.
    """
    images = np.asarray(x).reshape(-1, *dataset.image_shape)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)
    return images


# --- building a Dataset: preprocessing fitted on the training split ---------------------------


def _build(
    *,
    name: str,
    image_shape: tuple[int, ...],
    class_names: tuple[str, ...],
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    preprocess: str,
    pixel_range: tuple[float, float] | None,
    seed: int,
    classes: int | None = None,
) -> Dataset:
    """Flatten, fit the preprocessing on ``train``, apply it everywhere, wrap into a Dataset."""
    rows = [x.reshape(len(x), -1) for x in (train[0], valid[0], test[0])]
    center, spread = _fit(rows[0], preprocess, pixel_range)
    x_train, x_valid, x_test = (_apply(x, center, spread) for x in rows)
    y_train, y_valid, y_test = (
        np.ascontiguousarray(y, dtype=np.int64) for y in (train[1], valid[1], test[1])
    )
    return Dataset(
        name=name,
        inputs=int(rows[0].shape[1]),
        classes=len(class_names) if classes is None else classes,
        train=ArrayStream(x_train, y_train, seed),
        valid=Split(x_valid, y_valid),
        test=Split(x_test, y_test),
        image_shape=image_shape,
        class_names=class_names,
    )


def _fit(
    x: np.ndarray, preprocess: str, pixel_range: tuple[float, float] | None
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """``(center, spread)`` such that ``(x - center) / spread`` is the preprocessed input.

    ``"scale"``: center and half-width of ``pixel_range``, or of the training min and max when
    it is None (a constant training set gives spread 1). ``"standardize"``: the per-feature
    mean and population std of ``x``, computed in float64 chunks; a std of 0 becomes 1.
    """
    if preprocess == "scale":
        if pixel_range is None:
            low = min(float(c.min()) for c in _chunks(x))
            high = max(float(c.max()) for c in _chunks(x))
        else:
            low, high = pixel_range
        spread = (high - low) / 2
        return (high + low) / 2, spread if spread > 0 else 1.0
    total = np.zeros(x.shape[1], dtype=np.float64)
    for chunk in _chunks(x):
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / len(x)
    squares = np.zeros(x.shape[1], dtype=np.float64)
    for chunk in _chunks(x):
        deviation = chunk.astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", deviation, deviation)
    std = np.sqrt(squares / len(x))
    std[std == 0] = 1.0
    return mean, std


def _apply(x: np.ndarray, center: float | np.ndarray, spread: float | np.ndarray) -> np.ndarray:
    """``(x - center) / spread`` as float32 ``(count, inputs)``, computed in float64 chunks."""
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), _CHUNK_ROWS):
        block = x[start : start + _CHUNK_ROWS].astype(np.float64)
        block -= center
        block /= spread
        out[start : start + _CHUNK_ROWS] = block
    return out


def _chunks(x: np.ndarray) -> list[np.ndarray]:
    return [x[start : start + _CHUNK_ROWS] for start in range(0, len(x), _CHUNK_ROWS)]


# --- IDX (MNIST) ------------------------------------------------------------------------------


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
    ``nd`` uint32 sizes, then ``prod(sizes)`` bytes. Every one of these is checked.
    """
    kind = "image" if magic == IDX_IMAGES_MAGIC else "label"
    raw = _read_bytes(path, label, f"an IDX {kind} file")
    if len(raw) < 4:
        raise XavinitError(
            f"{label}: {path} is not an IDX {kind} file (it is {len(raw)} bytes, shorter than "
            "the 4-byte magic number)"
        )
    (found,) = struct.unpack(">i", raw[:4])
    if found != magic:
        raise XavinitError(
            f"{label}: {path} is not an IDX {kind} file (magic {magic} expected, got {found})"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise XavinitError(
            f"{label}: {path} is truncated: its IDX header needs {header} bytes, "
            f"the file has {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise XavinitError(f"{label}: {path} declares images of {_dims(dims[1:])} pixels")
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "longer than its header says"
        raise XavinitError(
            f"{label}: {path} is {state}: its IDX header declares {_dims(dims)} = {size} bytes "
            f"of data, the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(dims)


def _read_bytes(path: Path, label: str, expected: str) -> bytes:
    """The bytes of ``path``, gunzipped when it ends with ``.gz``, errors as XavinitError."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
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
    arrays = _read_npz(path, "mnist")
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


# --- .npz -------------------------------------------------------------------------------------


def _read_npz(path: Path, label: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, read with ``allow_pickle=False``."""
    expected = "an .npz archive of numpy arrays (numpy.savez)"
    if not path.exists():
        raise XavinitError(f"{label}: {path} does not exist; expected {expected}")
    if path.is_dir():
        raise XavinitError(f"{label}: {path} is a folder; expected {expected}")
    try:
        with path.open("rb") as stream:  # our handle: np.load leaks its own on a damaged zip
            signature = stream.read(4)
            if signature not in (b"PK\x03\x04", b"PK\x05\x06"):
                kind = "a .npy array" if signature == b"\x93NUM" else "not a zip archive"
                raise XavinitError(f"{label}: {path} is {kind}; expected {expected}")
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        reason = f"a damaged .npz ({error or type(error).__name__})"
    except XavinitError:
        raise
    except ValueError as error:  # pickled data or object arrays, refused by allow_pickle=False
        reason = (
            f"unreadable ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
        )
    except OSError as error:
        reason = f"unreadable ({error.strerror or error})"
    raise XavinitError(f"{label}: {path} is {reason}; expected {expected}")


def _check_npz_inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """``x`` checked: ``(N, ...)`` with N > 0 rows of at least one number each, all finite."""
    if x.dtype.kind not in "biuf":
        raise XavinitError(
            f"npz: {path} has {key} of dtype {x.dtype}; expected numbers (int, uint or float)"
        )
    if x.ndim < 2 or x.shape[0] == 0 or x.size == 0:
        raise XavinitError(
            f"npz: {path} has {key} of shape {x.shape}; expected (N, ...) with N >= 1 examples "
            "of at least one feature"
        )
    if x.dtype.kind == "f":
        for start, chunk in zip(range(0, len(x), _CHUNK_ROWS), _chunks(x), strict=True):
            finite = np.isfinite(chunk)
            if not finite.all():
                row = start + int(np.argwhere(~finite)[0][0])
                raise XavinitError(
                    f"npz: {path} has a NaN or infinite value in {key} (row {row}); "
                    "expected finite numbers"
                )
    if x.dtype.kind == "b":
        x = x.astype(np.uint8)
    return x


def _check_npz_labels(path: Path, key: str, y: np.ndarray) -> np.ndarray:
    """``y`` as int64 ``(N,)``: integers ``>= 0``, shape ``(N,)`` or ``(N, 1)``."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        hint = "; one-hot labels? store y.argmax(axis=1)" if y.ndim == 2 else ""
        raise XavinitError(
            f"npz: {path} has {key} of shape {y.shape}; expected class indices (N,){hint}"
        )
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = y[~whole][0].item()
            raise XavinitError(
                f"npz: {path} has non-integer label {bad} in {key}; expected class indices "
                "0, 1, 2, ..."
            )
    elif y.dtype.kind not in "iu":
        raise XavinitError(
            f"npz: {path} has {key} of dtype {y.dtype}; expected integer class indices"
        )
    if y.size and y.min() < 0:
        raise XavinitError(
            f"npz: {path} has negative label {int(y.min())} in {key}; expected class indices "
            "0, 1, 2, ..."
        )
    return y.astype(np.int64)


# --- CIFAR-10 pickles -------------------------------------------------------------------------


def _numpy_internals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR-10 pickle may name, mapped to the objects they rebuild.

    numpy arrays pickle as ``_reconstruct(ndarray, shape, dtype)`` (protocols 0-4; the module is
    ``numpy.core`` before numpy 2, ``numpy._core`` since) or ``_frombuffer`` (protocol 5); bytes
    pickled by Python 3 at protocol 2 go through ``_codecs.encode``.
    """
    import codecs

    try:
        from numpy._core import multiarray, numeric  # numpy >= 2 (and a shim in 1.26)
    except ImportError:  # pragma: no cover - numpy < 1.26
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        # Private and absent from numpy's stubs, hence getattr.
        allowed[(f"{package}.numeric", "_frombuffer")] = getattr(numeric, "_frombuffer")  # noqa: B009
    return allowed


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds dicts, lists and numpy arrays, and refuses any other global."""

    def __init__(self, stream: Any, path: Path) -> None:
        super().__init__(stream, encoding="bytes")
        self._path = path
        self._allowed = _numpy_internals()

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise XavinitError(
                f"cifar10: {self._path} refers to {module}.{name}, which a CIFAR-10 batch never "
                "does; refused to load it (pickles can run code; only numpy arrays are allowed)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise XavinitError(
            f"cifar10: {self._path} uses a persistent id; refused (not a CIFAR-10 batch)"
        )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data uint8 (N, 3072), labels int64 (N,))`` from one CIFAR-10 python batch, checked."""
    expected = "a CIFAR-10 python batch (a pickled dict with b'data' and b'labels')"
    try:
        with path.open("rb") as stream:
            batch = _ArraysOnlyUnpickler(stream, path).load()
    except XavinitError:
        raise
    except OSError as error:
        raise XavinitError(
            f"cifar10: cannot read {path} ({error.strerror or error}); expected {expected}"
        ) from None
    except Exception as error:  # any malformed pickle: UnpicklingError, EOFError, ValueError...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise XavinitError(f"cifar10: {path} is not {expected} ({reason})") from None
    if not isinstance(batch, dict):
        raise XavinitError(f"cifar10: {path} holds a {type(batch).__name__}; expected {expected}")
    data, labels = _item(batch, "data"), _item(batch, "labels")
    if data is None or labels is None:
        keys = ", ".join(sorted(repr(k) for k in batch)) or "none"
        raise XavinitError(
            f"cifar10: {path} lacks b'data' or b'labels' (keys: {keys}); expected {expected}"
        )
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != CIFAR10_INPUTS
    ):
        shape = getattr(data, "shape", type(data).__name__)
        dtype = getattr(data, "dtype", "")
        raise XavinitError(
            f"cifar10: {path} has b'data' {dtype} {shape}; expected uint8 (N, {CIFAR10_INPUTS})"
        )
    try:
        y = np.asarray(labels)
    except (TypeError, ValueError):
        y = np.asarray([], dtype=object)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise XavinitError(
            f"cifar10: {path} has b'labels' that are not a list of integers; expected {expected}"
        )
    if len(y) != len(data):
        raise XavinitError(
            f"cifar10: {path} has {len(y)} labels for {len(data)} images; they must match"
        )
    if y.size and (y.min() < 0 or y.max() > 9):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise XavinitError(f"cifar10: {path} holds label {bad}; CIFAR-10 labels are 0..9")
    return data, y.astype(np.int64)


def _item(batch: dict[Any, Any], key: str) -> Any:
    """``batch[b"key"]``, or ``batch["key"]`` for batches re-pickled with str keys."""
    return batch.get(key.encode(), batch.get(key))


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(d)) for d in shape)
