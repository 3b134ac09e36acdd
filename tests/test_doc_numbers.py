"""Figures the docs quote, recomputed from their formula or their results JSON, so that a page
cannot drift from what it cites: theory.md's power of the variance test, and the numbers of
reproducing.md (its Table 1 is ``report --paper``'s output verbatim; every other number is
recomputed here from ``docs/results/*.json``, the straight-line fits included)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.core.stats import variance_interval_p

DOCS = Path(__file__).resolve().parents[1] / "docs"
runner = CliRunner()


def _text(name: str) -> str:
    """A doc with its line breaks and runs of spaces as single spaces."""
    return re.sub(r"\s+", " ", (DOCS / name).read_text())


def _power_of_ten(x: float) -> str:
    """``54147.0`` -> ``5.4*10^4``."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}*10^{int(exponent)}"


# --- theory.md: the smallest deviation the variance test finds ---------------------------------

ALPHA, TOL = 0.01, 0.01
KURTOSIS = {"uniform": 9 / 5, "normal": 3.0}


def _z() -> float:
    """``z_{1 - alpha/2}``: one matrix's two tests are a Holm family, first step at alpha/2."""
    return NormalDist().inv_cdf(1 - ALPHA / 2)


def _smallest_deviation(n: float, kurtosis: float) -> float:
    return TOL + _z() * (1 + TOL) * math.sqrt((kurtosis - 1) / n)


def _entries_for(deviation: float, kurtosis: float) -> float:
    return (_z() * (1 + TOL) / (deviation - TOL)) ** 2 * (kurtosis - 1)


def test_theory_power_figures_follow_the_formula():
    text = _text("theory.md")
    small = _smallest_deviation(1e4, KURTOSIS["uniform"])
    large = _smallest_deviation(1e6, KURTOSIS["uniform"])
    assert f"{100 * small:.1f}% for 10^4 uniform entries, {100 * large:.1f}% for 10^6" in text
    uniform = _power_of_ten(_entries_for(0.02, KURTOSIS["uniform"]))
    normal = _power_of_ten(_entries_for(0.02, KURTOSIS["normal"]))
    assert (uniform, normal) == ("5.4*10^4", "1.4*10^5")
    assert f"a 2% error is found from about {uniform} uniform or {normal} normal entries" in text


def test_the_power_formula_is_the_per_matrix_rule():
    """At the quoted threshold the interval test's p-value is alpha/2, the level Holm's first
    step applies to a matrix's smaller p-value (to 1%: the formula leaves out the mirror tail
    ``Phi((-|r| - tol) / se)``, at most 0.7% of it at 10^4 normal entries)."""
    for n in (1e4, 5.4e4, 1e6):
        for kurtosis in KURTOSIS.values():
            r = _smallest_deviation(n, kurtosis)
            p = variance_interval_p(1 + r, 1.0, int(n), kurtosis, TOL)
            assert p == pytest.approx(ALPHA / 2, rel=1e-2)


# --- reproducing.md: the sweep and the training runs --------------------------------------------

PAPER = {("tanh", "normalized"): 15.60, ("softsign", "standard"): 16.27,
         ("softsign", "normalized"): 16.06}  # fmt: skip
"""Table 1's Shapeset test errors (%), typed here from the paper."""

MODELS = (
    ("Softsign", "softsign", "standard"), ("Softsign N", "softsign", "normalized"),
    ("Tanh", "tanh", "standard"), ("Tanh N", "tanh", "normalized"),
    ("Sigmoid", "sigmoid", "standard"), ("Sigmoid N", "sigmoid", "normalized"),
)  # fmt: skip


@pytest.fixture(scope="module")
def sweep():
    return json.loads((DOCS / "results" / "sweep-shapeset.json").read_text())


def _chosen(sweep, activation: str, scheme: str) -> dict:
    """The run that continued to the end: the model's chosen rate."""
    (run,) = [
        r for r in sweep["runs"]
        if (r["activation"], r["scheme"]) == (activation, scheme) and r["updates"] == 200000
    ]  # fmt: skip
    return run


def _at(run: dict, update: int) -> dict:
    (point,) = [p for p in run["curve"] if p["update"] == update]
    return point


def _stats(run: dict, update: int, field: str) -> list[float]:
    rows = sorted(
        (s for s in run["layer_stats"] if s["update"] == update), key=lambda s: s["layer"]
    )
    return [s[field] for s in rows]


def test_table_1_is_report_paper_verbatim():
    path = DOCS / "results" / "sweep-shapeset.json"
    result = runner.invoke(app, ["report", str(path), "--paper", "-f", "markdown"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("| model | shapeset | paper | difference |")
    table = lines[start : start + 8]
    assert table[-1].startswith("| Sigmoid N |")
    assert "\n".join(table) in (DOCS / "reproducing.md").read_text()


def test_validation_table(sweep):
    text = (DOCS / "reproducing.md").read_text()
    for name, activation, scheme in MODELS:
        chosen = _chosen(sweep, activation, scheme)["lr"]
        cells = []
        for lr in (0.01, 0.03, 0.1):
            (run,) = [r for r in sweep["runs"] if (r["activation"], r["scheme"], r["lr"]) == (
                activation, scheme, lr)]  # fmt: skip
            cell = f"{100 * run['selection_valid_error']:.2f}%"
            cells.append(f"**{cell}**" if lr == chosen else cell)
        assert f"| {name} | " + " | ".join(cells) + " |" in text, name


def test_learning_rate_gaps(sweep):
    """For the models that learn: the spread of the three rates' validation errors, and how far
    the runner-up is behind the chosen rate (points)."""
    text = _text("reproducing.md")
    spreads, gaps = [], []
    for activation, scheme in PAPER:
        errors = sorted(
            100 * r["selection_valid_error"] for r in sweep["runs"]
            if (r["activation"], r["scheme"]) == (activation, scheme)
        )  # fmt: skip
        spreads.append(errors[-1] - errors[0])
        gaps.append(errors[1] - errors[0])
    assert (
        f"the best and worst rates are {min(spreads):.1f} to {max(spreads):.1f} points apart for "
        f"the models that learn, and the runner-up is {min(gaps):.1f} to {max(gaps):.1f} points "
        "behind the chosen one"
    ) in text


def test_budget_and_time(sweep):
    text = _text("reproducing.md")
    runs = sweep["runs"]
    assert sum(r["updates"] for r in runs) == 1_440_000
    assert len(runs) * 20000 == 360_000 and sum(r["updates"] == 200000 for r in runs) == 6
    hours = sum(r["wall_seconds"] for r in runs) / 3600
    assert f"**Time:** {hours:.1f} worker-hours" in text


def test_slopes_per_doubling_and_their_extrapolation(sweep):
    """Least squares of test error (%) on log2(updates) over the evaluations from 50,000 to
    200,000 (closed form, not numpy.polyfit), and where each line meets Table 1."""
    text = _text("reproducing.md")
    slopes, reach = {}, {}
    for (activation, scheme), paper in PAPER.items():
        points = [p for p in _chosen(sweep, activation, scheme)["curve"]
                  if 50000 <= p["update"] <= 200000]  # fmt: skip
        assert len(points) == 61
        x = np.log2([p["update"] for p in points])
        y = np.array([100 * p["test_error"] for p in points])
        b = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
        a = float(y.mean() - b * x.mean())
        slopes[activation, scheme] = -b
        reach[activation, scheme] = 2 ** ((paper - a) / b)
    assert slopes["softsign", "standard"] == pytest.approx(11.947, abs=5e-4)  # issue 24
    quoted = (
        f"gives {slopes['tanh', 'normalized']:.1f} points per doubling for Tanh N, "
        f"{slopes['softsign', 'normalized']:.1f} for Softsign N and "
        f"{slopes['softsign', 'standard']:.1f} for Softsign"
    )
    assert quoted in text
    millions = {k: f"{v / 1e6:.2g}" for k, v in reach.items()}
    assert (
        f"Tanh N after about {millions['tanh', 'normalized']} million updates, Softsign after "
        f"{millions['softsign', 'standard']} million, Softsign N after "
        f"{millions['softsign', 'normalized']} million"
    ) in text


def test_errors_and_costs_quoted_in_the_text(sweep):
    text = _text("reproducing.md")
    final = {(a, s): 100 * _chosen(sweep, a, s)["final_test_error"] for _, a, s in MODELS}
    assert (
        f"Tanh N ({final['tanh', 'normalized']:.1f}%), Softsign N "
        f"({final['softsign', 'normalized']:.1f}%) and Softsign ({final['softsign', 'standard']:.1f}%)"
    ) in text
    at_100k = {k: 100 * _at(_chosen(sweep, *k), 100000)["test_error"] for k in PAPER}
    assert (
        f"Softsign N {at_100k['softsign', 'normalized']:.1f}% against Softsign "
        f"{at_100k['softsign', 'standard']:.1f}%"
    ) in text
    tanh_n = _chosen(sweep, "tanh", "normalized")
    costs = [_at(tanh_n, u)["train_cost"] for u in (100000, 200000)]
    assert f"from {costs[0]:.2f} to {costs[1]:.2f} nats between 100,000 and 200,000" in text
    # Tanh (standard) stays at the cost of predicting the class priors, computed from them
    priors = [1 / 6] * 3 + [1 / 9] * 3 + [1 / 18] * 3
    entropy = -sum(p * math.log(p) for p in priors)
    tanh = _chosen(sweep, "tanh", "standard")
    cost = _at(tanh, 200000)["train_cost"]
    assert f"sits at {cost:.2f} nats" in text and f"class priors ({entropy:.3f})" in text
    start = ", ".join(f"{v:.2f}" for v in _stats(tanh, 0, "std"))
    end = ", ".join(f"{v:.2f}" for v in _stats(tanh, 200000, "std"))
    assert f"std {start} from layer 1 to 5 at the start, and {end} after 200,000" in text


def test_sigmoid_saturation_numbers(sweep):
    text = _text("reproducing.md")
    standard = _chosen(sweep, "sigmoid", "standard")
    normalized = _chosen(sweep, "sigmoid", "normalized")
    top = [_stats(standard, u, "mean")[4] for u in (0, 20000, 200000)]
    quoted = (
        f"falls from {top[0]:.2f} to {top[1]:.2f} by 20,000 updates and {top[2]:.2f} by 200,000 "
        f"({top[2]:.3f} standard, {_stats(normalized, 200000, 'mean')[4]:.3f} normalized), "
        f"while layer 4 rises to {_stats(standard, 200000, 'mean')[3]:.2f} "
        f"({_stats(normalized, 200000, 'mean')[3]:.2f})"
    )
    assert quoted in text


def test_figure_2_table_from_the_training_run():
    """The sigmoid run's mean activation per layer at each update the table lists."""
    text = (DOCS / "reproducing.md").read_text()
    run = json.loads((DOCS / "results" / "sigmoid.json").read_text())["runs"][0]
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                      text, re.M)  # fmt: skip
    assert [int(r[0]) for r in rows] == [0, 500, 1000, 2000, 5000, 10000, 20000, 40000]
    for update, *means in rows:
        expected = [f"{m:.3f}" for m in _stats(run, int(update), "mean")]
        assert means == expected, update


def test_gaps_to_table_1(sweep):
    text = _text("reproducing.md")
    final = {(a, s): 100 * _chosen(sweep, a, s)["final_test_error"] for _, a, s in MODELS}
    above = [final[k] - v for k, v in PAPER.items()]
    assert f"The models that learn are {min(above):.0f} to {max(above):.0f} points above" in text
    assert f"Tanh is at {final['tanh', 'standard']:.0f}% against 27%" in text
    caught_up = final["softsign", "standard"] - final["softsign", "normalized"]
    assert f"Softsign had caught up to within {caught_up:.1f} points" in text
    ours = max(final[k] for k in PAPER) - min(final[k] for k in PAPER)
    theirs = max(PAPER.values()) - min(PAPER.values())
    assert f"(within {math.ceil(ours)} points here, and within {theirs:.1f} in Table 1)" in text


def test_tanh_training_run_numbers():
    """tanh.json after 40,000 updates: standard's shrinking stds; normalized's 98th percentiles
    and saturated fractions of hidden layers 1-4."""
    text = _text("reproducing.md")
    runs = {
        r["scheme"]: r for r in json.loads((DOCS / "results" / "tanh.json").read_text())["runs"]
    }
    stds = ", ".join(f"{v:.2f}" for v in _stats(runs["standard"], 40000, "std"))
    assert f"(std {stds} from layer 1 to 5)" in text
    p98 = _stats(runs["normalized"], 40000, "p98")[:4]
    saturated = [100 * v for v in _stats(runs["normalized"], 40000, "saturated_fraction")[:4]]
    assert (
        f"climb to {min(p98):.2f}-{max(p98):.2f} and {min(saturated):.1f}-{max(saturated):.0f}% "
        "of their units saturate"
    ) in text
