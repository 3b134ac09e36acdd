"""The first images of a dataset, to be shown (``xavinit data preview``), with their label names.

The drawing is the renderer's (:mod:`xavinit.render.preview`); here the images are read and laid
out as pictures.
"""

from __future__ import annotations

import numpy as np

from xavinit.errors import XavinitError


def load_preview_images(spec: str, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The first ``count`` images of a dataset, for showing, with their label names.

    ``shapeset`` gives the first images of the training stream for ``seed``; any other spec
    goes to ``xavinit.datasets.load_dataset`` and gives the first images of its test split.

    Returns:
        ``(images, names)``: images ``(count, H, W)`` (grey) or ``(count, H, W, 3)`` (colour)
        with values in [-1, 1], and one label name per image.
    """
    name = spec.strip().lower()
    if name == "shapeset":
        from xavinit.datasets.shapeset import CLASS_NAMES, SIZE, ShapesetStream

        x, y = ShapesetStream(seed).next_batch(count)
        return x.reshape(count, SIZE, SIZE), [CLASS_NAMES[int(label)] for label in y]
    try:
        from xavinit.datasets import load_dataset
    except ImportError:
        raise XavinitError(
            f"unknown dataset {spec!r}: only 'shapeset' can be previewed here "
            "(no other dataset loader is installed)"
        ) from None
    dataset = load_dataset(spec, "scale", seed)
    x, y = dataset.test.x[:count], dataset.test.y[:count]
    images = _image_layout(np.asarray(x, dtype=np.float64), tuple(dataset.image_shape))
    low, high = float(images.min(initial=0.0)), float(images.max(initial=0.0))
    if low < -1 or high > 1:  # standardized or unscaled inputs: stretch the set to [-1, 1]
        images = 2 * (images - low) / max(high - low, 1e-12) - 1
    names = list(getattr(dataset, "class_names", ()) or ())
    labels = [names[int(k)] if int(k) < len(names) else str(int(k)) for k in y]
    return images, labels


def _image_layout(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``(count, inputs)`` -> ``(count, H, W)`` or ``(count, H, W, 3)``."""
    images = x.reshape(len(x), *shape)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # channels first -> channels last
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4):
        raise XavinitError(f"cannot show images of shape {shape}")
    return images
