"""The random draws of an MLP at initialization: inputs, weights, biases and the top gradient.

Every draw has its own generator from :mod:`xavinit.core.streams`, keyed by (seed, trial, layer),
so a layer's weights are those ``xavinit init`` draws for the same layer and do not depend on
what else is in the run; ``propagate`` and ``gain --check`` draw through these functions.
Weights are ``(fan_in, fan_out)`` (the network's convention, :mod:`xavinit.core.network`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xavinit.core.schemes import Scheme
from xavinit.core.stats import moments_and_sample
from xavinit.core.streams import INPUT_KEY, LABEL_KEY, bias_rng, input_rng, layer_rng
from xavinit.core.uniform32 import fill_uniform

__all__ = [
    "WeightSource",
    "draw_biases",
    "draw_inputs",
    "draw_weights",
    "top_gradient",
]


def draw_inputs(
    seed: int,
    trial: int,
    batch: int,
    width: int,
    distribution: str,
    dtype: np.dtype,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``U[-1, 1]`` (``distribution="uniform"``, like pixels scaled to [-1, 1]) or ``N(0, 1)``
    (``"normal"``) inputs, ``(batch, width)``, into ``out`` when given (C-contiguous, that
    shape and dtype: the same numbers as a fresh array)."""
    rng = input_rng(seed, trial, INPUT_KEY)
    x = np.empty((batch, width), dtype=dtype) if out is None else out
    if distribution == "uniform":
        fill_uniform(rng, x, 2.0, 1.0)  # rng.random, then *= 2, -= 1
    else:
        rng.standard_normal(dtype=dtype, out=x)
    return x


def draw_weights(
    scheme: Scheme,
    widths: tuple[int, ...],
    seed: int,
    trial: int,
    dtype: np.dtype,
    out: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """One network's weights; layer k uses the same generator as ``xavinit init``'s layer k.
    ``out``: one array per layer to draw into (the same numbers as fresh arrays, without a
    fresh multi-MB array per layer to page-fault in: half the cost of a paper-sized draw)."""
    return [
        scheme.sample(
            (widths[k], widths[k + 1]),
            layer_rng(seed, trial, k + 1),
            dtype=dtype,
            out=None if out is None else out[k],
        )
        for k in range(len(widths) - 1)
    ]


def draw_biases(
    widths: tuple[int, ...], bias_var: float, seed: int, trial: int, dtype: np.dtype
) -> list[np.ndarray] | None:
    """One network's biases ``b^k ~ N(0, bias_var)``, ``(n_k,)`` per layer, or ``None`` (zero
    biases, nothing drawn) when ``bias_var`` is 0 (Poole et al., 2016)."""
    if bias_var == 0.0:
        return None
    std = math.sqrt(bias_var)
    biases = []
    for k in range(len(widths) - 1):
        b = bias_rng(seed, trial, k + 1).standard_normal(widths[k + 1], dtype=dtype)
        b *= dtype.type(std)
        biases.append(b)
    return biases


def top_gradient(seed: int, trial: int, probs: np.ndarray, kind: str) -> np.ndarray:
    """Per-example ``dC_n/ds^L``, ``probs``'s shape ``(batch, n_L)``: ``P - onehot(y)`` for
    softmax NLL with random labels (``kind="nll"``, as in the paper), or ``N(0, 1)`` noise
    (``"unit"``)."""
    rng = input_rng(seed, trial, LABEL_KEY)
    if kind == "unit":
        return rng.standard_normal(probs.shape, dtype=probs.dtype)
    labels = rng.integers(0, probs.shape[1], size=probs.shape[0])
    grad = probs.copy()
    grad[np.arange(probs.shape[0]), labels] -= 1.0
    return grad


@dataclass(frozen=True)
class WeightSource:
    """Where a network's weights come from: a scheme, drawn anew for each trial, or the fixed
    matrices of a file (``propagate --weights``), each ``(fan_in, fan_out)``.

    Attributes:
        label: What a run names it by: the scheme's spec or the file's path.
        scheme: The scheme to draw from; ``None`` for fixed matrices.
        fixed: The file's matrices, in order (empty for a scheme).
    """

    label: str
    scheme: Scheme | None = None
    fixed: tuple[np.ndarray, ...] = ()

    @classmethod
    def drawn(cls, scheme: Scheme) -> WeightSource:
        """Weights drawn from ``scheme``, labelled by its spec."""
        return cls(scheme.spec, scheme)

    def weights(
        self,
        widths: tuple[int, ...],
        seed: int,
        trial: int,
        dtype: np.dtype,
        out: Sequence[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """One network's weights (drawn into ``out`` when given; a file's are its own)."""
        if self.scheme is None:
            return list(self.fixed)
        return draw_weights(self.scheme, widths, seed, trial, dtype, out)

    def variances(self, widths: tuple[int, ...]) -> list[float]:
        """Var[W] of each layer: the scheme's, or each fixed matrix's mean of squares."""
        if self.scheme is None:
            return [moments_and_sample(w)[0].mean_square for w in self.fixed]
        return [self.scheme.variance(widths[k], widths[k + 1]) for k in range(len(widths) - 1)]
