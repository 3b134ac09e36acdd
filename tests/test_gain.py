"""``xavinit gain``: the result contract, the depth check (passes at the computed gain, fails at
a gain 20% too small), its Monte-Carlo chain against real networks, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.config import GainConfig
from xavinit.core.activations import ACTIVATION_NAMES, get_activation
from xavinit.core.sampling import draw_weights
from xavinit.core.schemes import get_scheme
from xavinit.experiments import gain as gain_module
from xavinit.experiments.gain import (
    chain_ratios,
    chains_ratios,
    check_widths,
    replicas_for,
    scaled_weights,
    unit_weights,
)

runner = CliRunner()

GAIN_FIELDS = {
    "activation", "forward_gain", "backward_gain", "fixed_point_gain", "chi1", "torch_gain",
    "mean", "second_moment",
}  # fmt: skip
CHECK_FIELDS = {"activation", "depth", "width", "gain", "variance_ratio", "interval", "passed"}


def test_default_is_every_activation_with_the_contract_fields():
    result = runner.invoke(app, ["gain", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == "gain" and doc["passed"] is True and doc["depth_checks"] == []
    assert [row["activation"].split(":")[0] for row in doc["gains"]] == list(ACTIVATION_NAMES)
    for row in doc["gains"]:
        assert set(row) >= GAIN_FIELDS
    by_name = {row["activation"].split(":")[0]: row for row in doc["gains"]}
    assert by_name["relu"]["forward_gain"] == pytest.approx(math.sqrt(2), rel=1e-12)
    assert by_name["relu"]["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-12)
    assert by_name["tanh"]["torch_gain"] == pytest.approx(5 / 3)
    assert by_name["gelu"]["torch_gain"] is None and by_name["gelu"]["torch_ratio"] is None
    assert by_name["linear"]["depth_scale"] == "inf"  # non-finite floats are strings in JSON


@pytest.fixture(scope="module")
def checks():
    """Depth 50, width 200 (the chain's interval is derived for the network's width)."""
    out = {}
    for scale in ("1.0", "0.8"):
        args = ["gain", "relu", "gelu", "silu", "tanh", "selu", "--check", "--depth", "50"]
        result = runner.invoke(app, [*args, "--width", "200", "--gain-scale", scale, "-f", "json"])
        out[scale] = (result.exit_code, json.loads(result.stdout))
    return out


def test_depth_checks_hold_at_the_computed_gain(checks):
    code, doc = checks["1.0"]
    assert code == 0 and doc["passed"] is True
    assert [c["activation"] for c in doc["depth_checks"]] == [
        "relu",
        "gelu",
        "silu",
        "tanh",
        "selu",
    ]
    for check, row in zip(doc["depth_checks"], doc["gains"], strict=True):
        assert set(check) >= CHECK_FIELDS
        assert check["passed"] and (check["depth"], check["width"]) == (50, 200)
        assert check["gain"] == pytest.approx(row["forward_gain"], rel=1e-12)
        low, high = check["interval"]
        assert low <= check["variance_ratio"] <= high and len(check["variances"]) == 50
        # 5 activations at family-wise alpha 0.01: 2 / (N + 1) <= 0.01 / 5
        assert check["replicas"] == 999


def test_depth_checks_fail_for_a_gain_20_percent_too_small(checks):
    code, doc = checks["0.8"]
    assert code == 1 and doc["passed"] is False
    for check, row in zip(doc["depth_checks"], doc["gains"], strict=True):
        assert not check["passed"], check["activation"]
        assert check["gain"] == pytest.approx(0.8 * row["forward_gain"], rel=1e-12)
        assert check["variance_ratio"] < check["interval"][0]


def test_relu_ratio_is_near_one_and_tanh_narrowly_so(checks):
    """The ratio's spread follows the map: tanh's fixed point attracts (slope 0.46), so its
    interval is narrow; relu's is marginal (slope 1) and its ratio wanders like a log-normal."""
    doc = checks["1.0"][1]
    widths = {c["activation"]: c["interval"][1] / c["interval"][0] for c in doc["depth_checks"]}
    assert widths["tanh"] < 2 < widths["relu"]
    assert widths["gelu"] > 1e6  # repelling fixed point: the variance goes anywhere


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    values = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), values, side="right") / a.size
    cdf_b = np.searchsorted(np.sort(b), values, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu"])
def test_the_chain_has_the_law_of_real_networks(name: str):
    """300 networks of 20 layers of 40 units (float64, Gaussian weights, drawn here) against
    2000 replicas of the chain: the two-sample Kolmogorov-Smirnov statistic of the log ratios
    stays below its 0.1% critical value 1.95 sqrt(1/300 + 1/2000)."""
    act = get_activation(name)
    gain = 1 / math.sqrt(
        float(np.mean(act(np.random.default_rng(0).standard_normal(10**6)) ** 2))
    )  # Monte-Carlo gain: any gain will do, the same in both
    rng = np.random.default_rng(1)
    width, depth, networks = 40, 20, 300
    measured = np.empty(networks)
    for i in range(networks):
        z = rng.standard_normal(width) / gain
        variances = []
        for _ in range(depth):
            z = act(z @ (rng.standard_normal((width, width)) * gain / math.sqrt(width)))
            variances.append(z.var())
        measured[i] = variances[-1] / variances[0]
    simulated = chain_ratios(act, gain, width, depth, 2000, np.random.default_rng(2))
    statistic = _ks_statistic(np.log(measured), np.log(simulated))
    assert statistic < 1.95 * math.sqrt(1 / networks + 1 / 2000), statistic


def test_each_check_network_is_its_schemes_own_draw():
    """The check scales one set of unit draws for every activation: the weights are, bit for
    bit, those the scheme draws itself from propagate's generators."""
    config = GainConfig(activations=("relu",), check=True, depth=3, width=11, seed=4)
    unit = unit_weights(config)
    assert [w.shape for w in unit] == [(11, 11)] * 3 + [(11, 1)]
    for gain in (1.5335910263, math.sqrt(2), 0.8 * 1.5925, 1.0):
        scheme = get_scheme(f"variance-scaling:mode=fan_in,distribution=normal,gain={gain!r}")
        expected = draw_weights(scheme, check_widths(config), 4, 0, np.dtype(np.float32))
        got = scaled_weights(scheme, unit)
        assert [w.dtype for w in got] == [np.float32] * 4
        assert [w.tobytes() for w in got] == [w.tobytes() for w in expected], gain


def test_the_chains_of_several_activations_are_each_ones_own_chain(monkeypatch):
    """chains_ratios draws once for all activations and works in blocks of replicas: each
    activation's ratios are bit for bit those of the chain written out plainly here (its own
    generator, whole chunks), across chunk and block boundaries (chunks of 7 replicas, blocks
    of 3, 17 replicas)."""
    monkeypatch.setattr(gain_module, "CHAIN_CHUNK", 7 * 12)
    monkeypatch.setattr(gain_module, "CHAIN_BLOCK", 3 * 12)
    width, depth, replicas, sb2 = 12, 4, 17, 0.1
    pairs = [(get_activation(name), g) for name, g in [("tanh", 1.6), ("erf", 1.5), ("relu", 1.4)]]
    got = chains_ratios(pairs, width, depth, replicas, np.random.default_rng(5), sb2)
    for (act, g), ratios in zip(pairs, got, strict=True):
        rng = np.random.default_rng(5)
        expected = []
        for rows in (7, 7, 3):
            q = (1 - sb2) * (rng.chisquare(width, size=rows) / width) + sb2
            for k in range(depth):
                z = act(rng.standard_normal((rows, width)) * np.sqrt(q)[:, None])
                m1, m2 = z.mean(axis=1), np.einsum("ij,ij->i", z, z) / width
                var = np.maximum(m2 - m1 * m1, 0.0)
                if k == 0:
                    first = var
                q = g**2 * m2 + sb2
            expected.extend(var / first)
        assert ratios.tobytes() == np.array(expected).tobytes(), act.spec


@pytest.mark.parametrize("name", ["silu", "tanh"])
def test_the_chain_with_biases_has_the_law_of_real_networks(name: str):
    """As above with biases N(0, 0.2): networks at gain^2 = (1 - 0.2) / m2 whose inputs are
    N(0, m2) (m2 a Monte-Carlo E[f(z)^2]) and whose layers add biases drawn here, against the
    chain at the same gain and bias variance."""
    act = get_activation(name)
    sb2 = 0.2
    m2 = float(np.mean(act(np.random.default_rng(0).standard_normal(10**6)) ** 2))
    gain = math.sqrt((1 - sb2) / m2)
    rng = np.random.default_rng(1)
    width, depth, networks = 40, 20, 300
    measured = np.empty(networks)
    for i in range(networks):
        z = rng.standard_normal(width) * math.sqrt(m2)
        variances = []
        for _ in range(depth):
            w = rng.standard_normal((width, width)) * gain / math.sqrt(width)
            z = act(z @ w + rng.standard_normal(width) * math.sqrt(sb2))
            variances.append(z.var())
        measured[i] = variances[-1] / variances[0]
    simulated = chain_ratios(act, gain, width, depth, 2000, np.random.default_rng(2), sb2)
    statistic = _ks_statistic(np.log(measured), np.log(simulated))
    assert statistic < 1.95 * math.sqrt(1 / networks + 1 / 2000), statistic


def test_gain_with_biases():
    """--bias-var 0.2: the fixed-point gain puts q* = 1 with the biases, slopes and chi1 shrink
    by 0.8 (silu's 1.173 -> 0.938: its fixed point attracts), and the depth check builds the
    network at that gain with biases and passes."""
    plain = json.loads(runner.invoke(app, ["gain", "silu", "relu", "-f", "json"]).stdout)
    result = runner.invoke(
        app, ["gain", "silu", "relu", "--bias-var", "0.2", "--check", "--depth", "20",
              "--width", "100", "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["config"]["bias_var"] == 0.2 and doc["passed"] is True
    for row, base in zip(doc["gains"], plain["gains"], strict=True):
        assert row["bias_var"] == 0.2 and base["bias_var"] == 0.0
        assert row["forward_gain"] == base["forward_gain"]
        assert row["fixed_point_gain"] ** 2 * row["second_moment"] == pytest.approx(0.8)
        assert row["fixed_point_slope"] == pytest.approx(0.8 * base["fixed_point_slope"])
        assert row["chi1"] == pytest.approx(0.8 * base["chi1"])
        assert row["phase"] == "ordered"
    assert doc["gains"][0]["fixed_point_slope"] < 1 < plain["gains"][0]["fixed_point_slope"]
    for check, row in zip(doc["depth_checks"], doc["gains"], strict=True):
        assert check["gain"] == row["fixed_point_gain"] and check["passed"]
    markdown = runner.invoke(app, ["gain", "silu", "--bias-var", "0.2", "-f", "markdown"])
    assert (
        "with biases N(0, 0.2)" in markdown.stdout
        and "| `silu` | 1.6765 | 1.6233 | 1.4995 | 0.938 |" in markdown.stdout
    )


def test_replicas_make_alpha_family_wise():
    for k, alpha in ((1, 0.01), (5, 0.01), (15, 0.01), (3, 0.05)):
        n = replicas_for(k, alpha)
        assert 2 / (n + 1) <= alpha / k < 2 / n


def test_table_and_markdown():
    table = runner.invoke(app, ["gain", "tanh", "relu", "--check", "--depth", "5", "--width", "20"])
    assert table.exit_code == 0, table.stderr
    assert "PyTorch/ours" in table.stdout and "E[f(z)²]" in table.stdout
    assert "PASSED: 2 of 2 depth checks" in table.stdout
    markdown = runner.invoke(app, ["gain", "silu", "-f", "markdown"])
    assert "| `silu` | 1.6765 |" in markdown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["swishy"], "did you mean 'swish'"),
        (["--depth", "10"], "--depth: applies only with --check"),
        (["--check", "--gain-scale", "0"], "--gain-scale"),
        (["--check", "--alpha", "1.5"], "--alpha"),
        (["--check", "--width", "5"], "--width: must be >= 10"),
        (["--check", "--depth", "50", "--width", "10000000"], "memory"),
        (["elu:alpha=-1"], "alpha must be a number from 0 to 1e+06"),
        (["--bias-var", "1"], "--bias-var: must be < 1"),
        (["--bias-var", "-0.1"], "--bias-var: must be >= 0"),
    ],
)
def test_bad_input(args, message, tmp_path):
    target = tmp_path / "gain.json"
    result = runner.invoke(app, ["gain", *args, "-o", str(target)])
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "Traceback" not in result.stderr and not target.exists()


def test_config_file_keys(tmp_path):
    config = tmp_path / "gain.yaml"
    config.write_text("activation: [relu, tanh]\ncheck: true\ndepth: 4\nwidth: 16\n")
    result = runner.invoke(app, ["gain", "-c", str(config), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [c["activation"] for c in doc["depth_checks"]] == ["relu", "tanh"]
    config.write_text("check: maybe\n")
    bad = runner.invoke(app, ["gain", "-c", str(config)])
    assert bad.exit_code == 2 and "check" in bad.stderr
