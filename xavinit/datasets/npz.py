"""A dataset from any ``.npz`` of arrays ``x_train, y_train, x_test, y_test``.

Inputs of any shape ``(N, ...)``; the splits are ``x_train`` / ``x_valid`` (else the last 1/6
of train) / ``x_test``. The file is read by :func:`xavinit.fileio.read_npz`, with
``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xavinit.datasets.base import Dataset
from xavinit.datasets.preprocess import CHUNK_ROWS, build_split, check_preprocess, row_chunks
from xavinit.errors import XavinitError
from xavinit.fileio import read_npz

MAX_CLASSES = 100_000
"""At most this many classes: one output unit each (a label of 10^9 would ask for a 10^9-wide
output layer)."""


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
    arrays = read_npz(source, "npz")
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
    if classes > MAX_CLASSES:
        raise XavinitError(
            f"{label}: {source} holds label {classes - 1}; labels must be 0..K-1 with K at most "
            f"{MAX_CLASSES:,} (one output unit per class)"
        )
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
    return build_split(
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
        for start, chunk in zip(range(0, len(x), CHUNK_ROWS), row_chunks(x), strict=True):
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
