"""scikit-learn's bundled 8x8 digits: 64 inputs, split 1197 / 300 / 300 by the seed."""

from __future__ import annotations

import numpy as np

from xavinit.core.streams import digits_split_rng
from xavinit.datasets.base import Dataset
from xavinit.datasets.preprocess import build_split, check_preprocess
from xavinit.errors import XavinitError
from xavinit.extras import install

DIGITS_VALID = 300
DIGITS_TEST = 300


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
        raise XavinitError(f"digits needs scikit-learn: {install('digits')}") from None
    bunch = sklearn_load_digits()
    x = np.asarray(bunch.data, dtype=np.float64).reshape(-1, 64)
    y = np.asarray(bunch.target).astype(np.int64)
    if len(x) != len(y) or len(y) <= DIGITS_VALID + DIGITS_TEST:
        raise XavinitError(
            f"digits: scikit-learn returned {len(x)} images and {len(y)} labels; expected "
            "1797 of each"
        )
    order = digits_split_rng(seed).permutation(len(y))
    test, valid, train = np.split(order, [DIGITS_TEST, DIGITS_TEST + DIGITS_VALID])
    return build_split(
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
