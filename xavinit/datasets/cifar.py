"""CIFAR-10 read from its python pickles, by an unpickler that only rebuilds numpy arrays.

3x32x32 = 3072 inputs; ``data_batch_1..4`` / ``data_batch_5`` / ``test_batch`` are the train /
valid / test splits, as in Glorot and Bengio (2010). A pickle can run arbitrary code, so every
global but numpy's array reconstruction is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from xavinit.datasets.base import Dataset
from xavinit.datasets.preprocess import build_split, check_preprocess
from xavinit.errors import XavinitError

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
    return build_split(
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
    flat = isinstance(labels, np.ndarray) or (
        isinstance(labels, list | tuple) and all(type(v) is int for v in labels)
    )  # checked first: np.asarray of a nested, self-referencing list never ends
    y = np.asarray(labels) if flat else np.asarray([], dtype=object)
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
