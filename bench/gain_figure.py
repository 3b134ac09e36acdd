"""The figure of docs/gain.md: activation variance against depth at PyTorch's gain and ours.

For tanh, sigmoid, selu (where PyTorch's ``calculate_gain`` has a value) and gelu (where it has
none; relu's sqrt(2), what ``kaiming_*`` gives, stands in), one network of 50 hidden layers of
500 units per gain, ``variance-scaling:mode=fan_in,distribution=normal,gain=G``, 100 examples
``x ~ N(0, I / g^2)`` (``g`` our gain, so that layer 1 sees ``N(0, 1)`` at our gain), propagated
by ``xavinit propagate``'s own code: the measured ``Var[z]`` per layer (markers) and the
mean-field prediction (lines). Writes ``docs/figures/gain-variance-depth.png``.

Run: ``python bench/gain_figure.py`` (needs matplotlib; about 20 s).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from xavinit.core.activations import get_activation
from xavinit.core.network import forward
from xavinit.core.sampling import draw_inputs, draw_weights
from xavinit.core.schemes import get_scheme
from xavinit.core.stats import moments_and_sample
from xavinit.core.theory import gain_theory, mean_field_forward

DEPTH, WIDTH, BATCH = 50, 500, 100
PANELS = (
    ("tanh", None),
    ("sigmoid", None),
    ("selu", None),
    ("gelu", ("relu's sqrt(2)", math.sqrt(2.0))),
)
OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "gain-variance-depth.png"


def measure(name: str, gain: float, ours: float) -> tuple[list[float], list[float]]:
    """Measured and mean-field Var[z] per hidden layer at ``gain`` (inputs scaled by 1/ours)."""
    act = get_activation(name)
    widths = (WIDTH,) * (DEPTH + 1) + (10,)
    spec = f"variance-scaling:mode=fan_in,distribution=normal,gain={gain!r}"
    scheme = get_scheme(spec)
    weights = draw_weights(scheme, widths, 0, 0, np.dtype(np.float32))
    x = draw_inputs(0, 0, BATCH, widths[0], "normal", np.dtype(np.float32)) / np.float32(ours)
    with np.errstate(all="ignore"):
        cache = forward(x, weights, None, act)
    measured = [moments_and_sample(z)[0].variance for z in cache.hidden]
    weight_vars = [scheme.variance(WIDTH, WIDTH)] * (len(widths) - 1)
    theory = mean_field_forward(1.0 / ours**2, widths, weight_vars, act)
    return measured, [float(v) for v in theory.var[:-1]]


def main() -> int:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("needs matplotlib: pip install 'xavinit[plot]'", file=sys.stderr)
        return 2
    fig = Figure(figsize=(16, 4.4), layout="constrained")
    axes = fig.subplots(1, len(PANELS))
    layers = np.arange(1, DEPTH + 1)
    for ax, (name, stand_in) in zip(axes, PANELS, strict=True):
        theory = gain_theory(name)
        ours = theory.forward_gain
        if stand_in is None:
            assert theory.torch_gain is not None
            other_label, other = f"PyTorch {theory.torch_gain:.4g}", theory.torch_gain
        else:
            other_label, other = stand_in
        for label, gain, colour in ((f"ours {ours:.4f}", ours, "#1f77b4"),
                                    (other_label, other, "#d62728")):  # fmt: skip
            measured, predicted = measure(name, gain, ours)
            ax.plot(layers, predicted, color=colour, linewidth=1.6, label=f"{label}, mean field")
            ax.plot(layers, measured, "o", color=colour, markersize=3.5, label=f"{label}, measured")
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer")
        ax.set_ylabel("Var[z]")
        slope = theory.fixed_point_slope
        ax.set_title(f"{name} (variance map slope at q* = 1: {slope:.2f})", fontsize="medium")
        ax.legend(fontsize="small")
    fig.suptitle(
        f"Activation variance against depth, {DEPTH} layers of {WIDTH}, {BATCH} examples, "
        "at PyTorch's gain and at the exact forward gain (xavinit gain)"
    )
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
