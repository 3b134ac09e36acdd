"""Every random stream of xavinit, one ``SeedSequence`` spawn key per use, all in one place.

A run's seed never feeds a generator directly: each use draws from
``default_rng(SeedSequence(seed, spawn_key=KEY))`` with its own key, so a stream does not depend
on which other streams a run consumes, or in which order (a layer's weights are the same
whether or not other layers, schemes or inputs are drawn; a resumed run is bit-identical).
The keys, which saved results and golden tests depend on, bit for bit:

| stream | spawn key | function | used by |
|---|---|---|---|
| weights of layer ``k >= 1`` in trial ``t`` | ``(t, k)`` | :func:`layer_rng` | init, propagate, train (trial 0) |
| propagate's inputs of trial ``t`` | ``(t, 0, 1)`` | :func:`input_rng` | propagate |
| propagate's labels or top gradient, trial ``t`` | ``(t, 0, 2)`` | :func:`input_rng` | propagate |
| gain --check's Monte-Carlo replicas | ``(0, 0, 3)`` | :func:`chain_rng` | gain |
| biases of layer ``k >= 1`` in trial ``t`` | ``(t, k, 4)`` | :func:`bias_rng` | propagate, gain --check (``--bias-var``) |
| Shapeset training block ``b`` | ``(b,)`` | :func:`block_rng` | datasets.shapeset |
| Shapeset validation set | ``(2**31 - 1,)`` | :func:`block_rng` | datasets.shapeset |
| Shapeset test set | ``(2**31 - 2,)`` | :func:`block_rng` | datasets.shapeset |
| epoch shuffles of an array dataset | ``(7,)`` | :func:`shuffle_rng` | datasets.base.ArrayStream |
| digits' train/valid/test split | ``(11,)`` | :func:`digits_split_rng` | datasets.files.load_digits |
| check's Lanczos start of a tensor | ``(crc32(name), 0, 3)`` | :func:`spectrum_rng` | verdicts (check, init --check) |

No two streams of one run share a key: weights have two-element keys with ``k >= 1``, propagate's
inputs three-element keys (biases too, but with a middle element ``k >= 1``, where inputs,
labels, the chain and check's spectra have 0), datasets one-element keys (so ``train``'s weights and data, drawn from
the same seed, never meet). The one-element keys ``7`` and ``11`` would collide with Shapeset's
blocks 7 and 11, but a run reads one dataset, so they never coexist.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = [
    "BIAS_KEY",
    "CHAIN_KEY",
    "DIGITS_SPLIT_KEY",
    "INPUT_KEY",
    "LABEL_KEY",
    "SHUFFLE_KEY",
    "TEST_KEY",
    "VALID_KEY",
    "bias_rng",
    "block_rng",
    "chain_rng",
    "digits_split_rng",
    "input_rng",
    "layer_rng",
    "shuffle_rng",
    "spectrum_rng",
]

INPUT_KEY, LABEL_KEY = 1, 2
"""The last element of propagate's input and label keys ``(trial, 0, which)``."""

SPECTRUM_KEY = 3
"""The last element of check's Lanczos-start keys ``(crc32(name), 0, 3)``: a tensor's start
vectors depend on its name only, not on which other tensors a run selects."""

CHAIN_KEY = 3
"""gain --check's Monte-Carlo replicas of the finite-width variance chain: ``(0, 0, 3)``."""

BIAS_KEY = 4
"""The last element of the bias keys ``(trial, layer, 4)``, ``layer >= 1``."""

VALID_KEY = 2**31 - 1
TEST_KEY = 2**31 - 2
"""Shapeset's fixed splits: ``spawn_key=(VALID_KEY,)`` and ``(TEST_KEY,)``, beyond any block."""

SHUFFLE_KEY = 7
"""An array dataset's epoch shuffles: ``spawn_key=(7,)``."""

DIGITS_SPLIT_KEY = 11
"""scikit-learn digits' split into train, validation and test: ``spawn_key=(11,)``."""


def _stream(seed: int, *key: int) -> np.random.Generator:
    """The generator ``default_rng(SeedSequence(seed, spawn_key=key))``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def layer_rng(seed: int, trial: int, layer: int) -> np.random.Generator:
    """The generator of one weight draw: layer ``layer`` (1-based) of trial ``trial``."""
    return _stream(seed, trial, layer)


def input_rng(seed: int, trial: int, which: int) -> np.random.Generator:
    """propagate's inputs (``which=INPUT_KEY``) or labels (``LABEL_KEY``) of one trial."""
    return _stream(seed, trial, 0, which)


def bias_rng(seed: int, trial: int, layer: int) -> np.random.Generator:
    """The generator of one bias draw: layer ``layer`` (1-based) of trial ``trial``."""
    return _stream(seed, trial, layer, BIAS_KEY)


def chain_rng(seed: int) -> np.random.Generator:
    """The generator of gain --check's Monte-Carlo replicas (one network's trial 0 weights and
    inputs come from :func:`layer_rng` and :func:`input_rng`, as in propagate)."""
    return _stream(seed, 0, 0, CHAIN_KEY)


def block_rng(seed: int, key: int) -> np.random.Generator:
    """Shapeset's training block ``key``, or a fixed split (``VALID_KEY``, ``TEST_KEY``)."""
    return _stream(seed, key)


def shuffle_rng(seed: int) -> np.random.Generator:
    """The generator of an array dataset's epoch shuffles."""
    return _stream(seed, SHUFFLE_KEY)


def digits_split_rng(seed: int) -> np.random.Generator:
    """The generator of the permutation that splits scikit-learn's digits."""
    return _stream(seed, DIGITS_SPLIT_KEY)


def spectrum_rng(seed: int, name: str) -> np.random.Generator:
    """The start vectors of the power iteration on tensor ``name`` (check's spectral test)."""
    key = zlib.crc32(name.encode("utf-8", "surrogateescape"))  # a name may hold undecodable bytes
    return _stream(seed, key, 0, SPECTRUM_KEY)
