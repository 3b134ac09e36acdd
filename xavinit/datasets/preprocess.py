"""Preprocessing shared by the file datasets, and building a :class:`Dataset` from arrays.

Preprocessing (statistics from the training split only, applied to every split; float32 out):

- ``"scale"``: the raw pixel range to [-1, 1]. ``uint8`` pixels: ``x / 127.5 - 1``; digits
  (0..16): ``x / 8 - 1``; any other ``.npz`` data: the training set's min and max map to -1
  and +1 (validation and test values beyond that range land outside [-1, 1]).
- ``"standardize"``: ``(x - mean) / std`` per feature, population std (``ddof=0``); a feature
  constant in the training set gets std 1, so it becomes 0.
"""

from __future__ import annotations

import numpy as np

from xavinit.datasets.base import ArrayStream, Dataset, Split
from xavinit.errors import XavinitError

PREPROCESSING = ("scale", "standardize")
"""The ``preprocess`` choices every loader accepts."""

CHUNK_ROWS = 4096  # rows converted to float64 at a time, so CIFAR-10 never needs a 1 GB copy


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


def build_split(
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
            low = min(float(c.min()) for c in row_chunks(x))
            high = max(float(c.max()) for c in row_chunks(x))
        else:
            low, high = pixel_range
        spread = (high - low) / 2
        return (high + low) / 2, spread if spread > 0 else 1.0
    total = np.zeros(x.shape[1], dtype=np.float64)
    for chunk in row_chunks(x):
        total += chunk.sum(axis=0, dtype=np.float64)
    mean = total / len(x)
    squares = np.zeros(x.shape[1], dtype=np.float64)
    for chunk in row_chunks(x):
        deviation = chunk.astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", deviation, deviation)
    std = np.sqrt(squares / len(x))
    std[std == 0] = 1.0
    return mean, std


def _apply(x: np.ndarray, center: float | np.ndarray, spread: float | np.ndarray) -> np.ndarray:
    """``(x - center) / spread`` as float32 ``(count, inputs)``, computed in float64 chunks."""
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, len(x), CHUNK_ROWS):
        block = x[start : start + CHUNK_ROWS].astype(np.float64)
        block -= center
        block /= spread
        out[start : start + CHUNK_ROWS] = block
    return out


def row_chunks(x: np.ndarray) -> list[np.ndarray]:
    return [x[start : start + CHUNK_ROWS] for start in range(0, len(x), CHUNK_ROWS)]
