"""The phase-diagram figure of docs/gain.md: order and chaos in (sigma_w, sigma_b) per activation.

For every activation xavinit knows, :func:`xavinit.core.theory.phase_diagram` over a grid of gains
``sigma_w`` (``Var[W] = sigma_w^2 / fan_in``) and bias standard deviations ``sigma_b``: colour is
``chi_1`` at the smallest attracting fixed point ``q*`` of ``q -> sw^2 E[f(sqrt(q) z)^2] +
sb^2`` (Poole et al., 2016, figure 1), the black line ``chi_1 = 1`` (order on its left, chaos
on its right), grey where no fixed point exists (the variance grows without bound). The purple
curve is the fixed-point gain of ``xavinit gain --bias-var sb^2`` (``q* = 1``), solid where that
fixed point attracts (slope < 1), dotted where it repels; the crosses are the stable fixed
points quoted in the docs.
Writes ``docs/figures/gain-phase-diagram.png``.

Run: ``python bench/phase_figure.py`` (needs matplotlib; about 30 s).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from xavinit.core.activations import ACTIVATION_NAMES, get_activation
from xavinit.core.theory import gain_theory, phase_diagram

NAMES = ACTIVATION_NAMES
SIGMA_W = np.linspace(0.5, 2.5, 101)
SIGMA_B = np.linspace(0.0, 1.0, 51)
EXAMPLES = {"silu": (1.5, 0.2), "gelu": (1.5, 0.05), "mish": (1.45, 0.05)}
"""(gain, sb^2) of the stable fixed points docs/gain.md quotes."""
COLUMNS = 5
OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "gain-phase-diagram.png"


def main() -> int:
    try:
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
    except ImportError:
        print("needs matplotlib: pip install 'xavinit[plot]'", file=sys.stderr)
        return 2
    rows = math.ceil(len(NAMES) / COLUMNS)
    fig = Figure(figsize=(3.6 * COLUMNS + 1.2, 3.3 * rows + 0.6), layout="constrained")
    grid = fig.subplots(rows, COLUMNS, sharex=True, sharey=True, squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(NAMES) :]:
        ax.set_visible(False)
    image = None
    for ax, name in zip(axes, NAMES, strict=False):
        diagram = phase_diagram(get_activation(name), SIGMA_W, SIGMA_B)
        chi = diagram.chi1.T  # rows: sigma_b
        ax.set_facecolor("#bbbbbb")
        image = ax.pcolormesh(
            SIGMA_W, SIGMA_B, chi, cmap="coolwarm", norm=LogNorm(0.25, 4.0), shading="nearest"
        )
        ax.contour(SIGMA_W, SIGMA_B, np.ma.masked_invalid(chi), levels=[1.0], colors="k")
        sb2 = SIGMA_B**2
        sb2 = sb2[sb2 < 1.0]
        gains, slopes = [], []
        for value in sb2:
            theory = gain_theory(name, float(value))
            gains.append(theory.fixed_point_gain)
            slopes.append(theory.fixed_point_slope)
        gains_a, slopes_a = np.array(gains), np.array(slopes)
        sigma_b = np.sqrt(sb2)
        ax.plot(gains_a, sigma_b, ":", color="#6a3d9a", linewidth=1.6, label="q* = 1, repelling")
        stable = slopes_a < 1.0
        ax.plot(gains_a[stable], sigma_b[stable], "-", color="#6a3d9a", linewidth=2.2,
                label="q* = 1, attracting")  # fmt: skip
        if name in EXAMPLES:
            gain, bias_var = EXAMPLES[name]
            ax.plot([gain], [bias_var**0.5], "x", color="#2ca02c", markersize=9, mew=2.5,
                    label=f"gain {gain}, sb² {bias_var}")  # fmt: skip
        ax.set_xlim(SIGMA_W[0], SIGMA_W[-1])
        ax.set_title(name)
        if name in EXAMPLES or name == NAMES[0]:
            ax.legend(fontsize="x-small", loc="upper left")
    for ax in grid[-1]:
        ax.set_xlabel("σ_w (gain)")
    for ax in grid[:, 0]:
        ax.set_ylabel("σ_b (bias std)")
    assert image is not None
    fig.colorbar(image, ax=axes, label="χ1 at the fixed point (order < 1 < chaos)")
    fig.suptitle(
        "Mean-field phase diagram: χ1 = σ_w² E[f'(√q* z)²]; black: χ1 = 1; grey: no fixed "
        "point, the variance grows without bound"
    )
    fig.savefig(OUT, dpi=100)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
