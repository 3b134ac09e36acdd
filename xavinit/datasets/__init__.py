"""Datasets for training: the Shapeset-3x2 stream, MNIST, CIFAR-10, any ``.npz``, digits.

A dataset is named by a spec string, ``KIND`` or ``KIND:PATH``:

| spec | what it reads |
|---|---|
| ``shapeset`` | Shapeset-3x2 generated on the fly (pixels already in [-1, 1]) |
| ``mnist:PATH`` | a folder with MNIST's four IDX files (``.gz`` or not) or ``mnist.npz`` |
| ``cifar10:PATH`` | the ``cifar-10-batches-py`` folder |
| ``npz:PATH`` | an ``.npz`` with ``x_train, y_train, x_test, y_test`` |
| ``digits`` | scikit-learn's 8x8 digits (``pip install 'xavinit[digits]'``) |

Nothing is ever downloaded: each loader reads files the user already has, checks their format
and splits them as Glorot and Bengio (2010) did:

| dataset | inputs | train / valid / test |
|---|---|---|
| MNIST | 28x28 = 784 | first 50,000 / last 10,000 of the training file / the 10,000 test images |
| CIFAR-10 | 3x32x32 = 3072 | ``data_batch_1..4`` / ``data_batch_5`` / ``test_batch`` |
| ``.npz`` | any ``(N, ...)`` | ``x_train`` / ``x_valid`` (else the last 1/6 of train) / ``x_test`` |
| digits | 8x8 = 64 | 1197 / 300 / 300 by a permutation drawn from the seed |

One module per format: :mod:`~xavinit.datasets.mnist`, :mod:`~xavinit.datasets.cifar`,
:mod:`~xavinit.datasets.npz`, :mod:`~xavinit.datasets.digits` and
:mod:`~xavinit.datasets.shapeset`; :mod:`~xavinit.datasets.preprocess` holds the preprocessing
(``"scale"`` or ``"standardize"``, fitted on the training split) that the file loaders share.
CIFAR-10 pickles are read by an unpickler that only rebuilds numpy arrays (a pickle can run
arbitrary code); ``.npz`` files are read with ``allow_pickle=False``.

Example:
    >>> data = load_dataset("mnist:~/data/mnist", preprocess="scale", seed=0)  # doctest: +SKIP
    >>> data.inputs, data.classes, len(data.valid)  # doctest: +SKIP
    (784, 10, 10000)
"""

from __future__ import annotations

import numbers

from xavinit.datasets.base import ArrayStream, Dataset, Split, TrainStream
from xavinit.datasets.cifar import load_cifar10
from xavinit.datasets.digits import load_digits
from xavinit.datasets.mnist import load_mnist
from xavinit.datasets.npz import load_npz
from xavinit.datasets.preprocess import PREPROCESSING, check_preprocess, to_images
from xavinit.errors import XavinitError
from xavinit.specs import suggest

DATASET_KINDS = ("shapeset", "mnist", "cifar10", "npz", "digits")
"""Every dataset kind a spec may name."""

_PATH_EXAMPLES = {
    "mnist": "mnist:~/data/mnist (a folder with the four IDX files or mnist.npz)",
    "cifar10": "cifar10:~/data/cifar-10-batches-py",
    "npz": "npz:~/data/mine.npz (arrays x_train, y_train, x_test, y_test)",
}

__all__ = [
    "DATASET_KINDS",
    "PREPROCESSING",
    "ArrayStream",
    "Dataset",
    "Split",
    "TrainStream",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "load_npz",
    "parse_dataset_spec",
    "to_images",
]


def load_dataset(spec: str, preprocess: str = "scale", seed: int = 0) -> Dataset:
    """Load the dataset a spec names: ``shapeset``, ``mnist:PATH``, ``cifar10:PATH``,
    ``npz:PATH`` or ``digits``.

    The kind is matched case-insensitively; everything after the first ``:`` is the path
    (``~`` is expanded). Shapeset ignores ``preprocess``: its pixels are already in [-1, 1].

    Args:
        spec: the dataset spec.
        preprocess: ``"scale"`` (raw pixel range to [-1, 1]) or ``"standardize"`` (per-feature
            mean 0, std 1 on the training split).
        seed: a non-negative integer seeding the training stream (and digits' split).

    Raises:
        XavinitError: an unknown kind (with the closest one suggested), a missing or
            unexpected path, a bad preprocess or seed, or an unreadable file.
    """
    check_preprocess(preprocess)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise XavinitError(f"seed must be a non-negative integer, got {seed!r}")
    kind, path = parse_dataset_spec(spec)
    if kind == "shapeset":
        from xavinit.datasets.shapeset import load_shapeset

        return load_shapeset(int(seed))
    seed = int(seed)
    if kind == "mnist":
        return load_mnist(path, preprocess, seed)
    if kind == "cifar10":
        return load_cifar10(path, preprocess, seed)
    if kind == "npz":
        return load_npz(path, preprocess, seed)
    return load_digits(preprocess, seed)


def parse_dataset_spec(spec: str) -> tuple[str, str]:
    """``(kind, path)`` of a dataset spec, checked without reading anything.

    Raises:
        XavinitError: an unknown kind (with the closest one suggested), a kind that needs a
            path without one, or a path given to a kind that takes none.
    """
    kind, colon, path = spec.partition(":")
    kind = kind.strip().lower()
    path = path.strip()
    if kind not in DATASET_KINDS:
        raise XavinitError(_unknown_kind(spec, kind))
    if kind in _PATH_EXAMPLES:
        if not path:
            raise XavinitError(
                f"dataset {kind} needs a path: {kind}:PATH, for example {_PATH_EXAMPLES[kind]}"
            )
    elif colon:
        raise XavinitError(f"dataset {kind} takes no path; write just {kind!r}, not {spec!r}")
    return kind, path


def _unknown_kind(spec: str, kind: str) -> str:
    """The one-line message for an unknown kind: the closest kind, else a hint, and the list."""
    if spec.lower().endswith(".npz"):
        hint = f" (did you mean 'npz:{spec}'?)"
    else:
        hint = suggest(kind, DATASET_KINDS)
    return (
        f"unknown dataset kind {kind!r}{hint}; kinds: {', '.join(DATASET_KINDS)} "
        "(mnist, cifar10 and npz take :PATH)"
    )
