"""The weight-gradient table of docs/theory.md: measured over predicted ``Var[dC/dW]``, with errors.

On the paper's network (``propagate``'s defaults: 1024-1000x5-10, batch 1000, softmax NLL on
random labels), ``--trials`` independent networks per (activation, scheme), each measured and
predicted as a one-trial ``propagate`` run (trial ``t``'s streams, seed 0), so each network's
prediction uses its own measured input and top-gradient moments. For hidden layers 2 to 5 it
prints the measured weight-gradient variance over two predictions, averaged over the trials:
the diagonal term only, ``E[(z^{k-1})^2] E[(delta^k)^2] / B`` (mean field at batch 1, over
``B``), and ``propagate``'s (with the cross-example term), as ``before -> after +- se``, ``se``
the standard error of the trials' mean ratio (sample std over ``sqrt(trials)``).

Run: ``python bench/weight_grad_ratio.py [--trials 42]`` (one BLAS thread; about 20 s per
(activation, scheme) at 42 trials here).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from xavinit.config import PropagateConfig
from xavinit.core.activations import get_activation
from xavinit.core.measure import measure_network, predictions
from xavinit.core.sampling import WeightSource
from xavinit.core.schemes import get_scheme
from xavinit.core.theory import mean_field_weight_grad_var
from xavinit.experiments.propagate import measure_plan

ACTIVATIONS = ("sigmoid", "relu", "tanh", "softsign", "gelu")
SCHEMES = ("standard", "normalized", "he-normal")


def trial_ratios(
    config: PropagateConfig, activation: str, scheme: str, trial: int
) -> tuple[np.ndarray, np.ndarray]:
    """One network's measured ``Var[dC/dW^k]`` over its diagonal-only and full predictions, from
    its own measured input and top-gradient moments (as a one-trial ``propagate`` run)."""
    act, sch = get_activation(activation), get_scheme(scheme)
    source = WeightSource.drawn(sch)
    measured, _ = measure_network(measure_plan(config), source, act, trial, None)
    moments = measured.moments
    widths = config.layers
    weight_vars = source.variances(widths)
    rows = predictions(widths, weight_vars, act, moments, config.batch, config.bias_var)
    diagonal = mean_field_weight_grad_var(
        moments.input_second_moment, moments.input_cross_moment, widths, weight_vars, act,
        moments.top_backprop_var, moments.top_cross_moment, 1,
    ).weight_grad_var / config.batch  # fmt: skip
    dw = np.array([layer.weight_grad_var for layer in measured.layers])
    full = np.array([row.predicted_weight_grad_var for row in rows])
    return dw / diagonal, dw / full


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=42)
    parser.add_argument("-a", "--activation", action="append", default=None)
    parser.add_argument("-s", "--scheme", action="append", default=None)
    args = parser.parse_args()
    config = PropagateConfig(jacobian_samples=0)
    widths = config.layers
    print(f"{args.trials} trials, network {'-'.join(map(str, widths))}, batch {config.batch}")
    print("| activation | scheme | layer 2 | layer 3 | layer 4 | layer 5 |")
    print("|---|---|---|---|---|---|")
    for activation in args.activation or ACTIVATIONS:
        for scheme in args.scheme or SCHEMES:
            pairs = [trial_ratios(config, activation, scheme, t) for t in range(args.trials)]
            before = np.mean([p[0] for p in pairs], axis=0)
            after = np.array([p[1] for p in pairs])
            mean, se = after.mean(axis=0), after.std(axis=0, ddof=1) / math.sqrt(args.trials)
            cells = [f"{before[k]:.2f} → {mean[k]:.2f} ± {se[k]:.2f}" for k in range(1, 5)]
            print(f"| {activation} | `{scheme}` | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
