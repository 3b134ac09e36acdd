"""Reference values from Glorot and Bengio (2010), for ``xavinit report --paper``."""

from __future__ import annotations

SOURCE = (
    "Glorot and Bengio (2010), Understanding the difficulty of training deep feedforward "
    "neural networks, AISTATS"
)

TABLE_1: dict[tuple[str, str], dict[str, float]] = {
    ("softsign", "standard"): {"shapeset": 16.27, "mnist": 1.64, "cifar10": 55.78},
    ("softsign", "normalized"): {"shapeset": 16.06, "mnist": 1.72, "cifar10": 53.8},
    ("tanh", "standard"): {"shapeset": 27.15, "mnist": 1.76, "cifar10": 55.9},
    ("tanh", "normalized"): {"shapeset": 15.60, "mnist": 1.64, "cifar10": 52.92},
    ("sigmoid", "standard"): {"shapeset": 82.61, "mnist": 2.21, "cifar10": 57.28},
}
"""Table 1: test error (%) of 5-hidden-layer networks after millions of updates."""

JACOBIAN_SV_MEAN: dict[str, float] = {"standard": 0.5, "normalized": 0.8}
"""Section 4.2.2: average singular value of the layer Jacobians at initialization (tanh)."""


def table_1_value(activation: str, scheme: str, dataset: str) -> float | None:
    """Table 1's test error (%) for a run, or None when the paper has no such entry."""
    kind = dataset.split(":", 1)[0].lower()
    return TABLE_1.get((activation, scheme), {}).get(kind)
