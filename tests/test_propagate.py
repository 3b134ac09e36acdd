"""``xavinit propagate``: the paper's section 4 at initialization, measured against theory.

The reproduction tests run the paper's own network (1024 -> 5 x 1000 tanh -> 10, uniform
inputs, batch 1000, seed 0) at full width: both schemes take about 3 s. The ReLU tests scale
the width down to 400 (and say so) since they check ratios, not the paper's numbers.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.config import PropagateConfig
from xavinit.core.activations import get_activation
from xavinit.core.measure import jacobian_singular_values
from xavinit.experiments.propagate import run_propagate

runner = CliRunner()


@pytest.fixture(scope="module")
def paper():
    """The paper's network under standard and normalized, default options."""
    result = run_propagate(PropagateConfig())
    return {run.scheme: run for run in result.runs}


def _hidden(run):
    return [layer for layer in run.layers if layer.kind == "hidden"]


def test_backprop_ratio_layer1_over_layer5(paper):
    # Standard: each layer multiplies Var[dC/ds] by n Var[W] E[f'^2] = (1/3) E[f'^2] <= 1/3,
    # so the ratio over 4 layers is at most (1/3)^4 = 0.0123; with E[f'^2] ~ 0.9 it is ~0.009.
    standard = paper["standard"].backprop_var_ratio
    assert 0.0075 < standard < (1 / 3) ** 4
    # Normalized: n Var[W] = 1 (equal widths), so only E[f'^2] < 1 shrinks it: about 0.33.
    assert 0.28 < paper["normalized"].backprop_var_ratio < 0.40


@pytest.mark.parametrize("scheme", ["standard", "normalized"])
def test_measurement_matches_mean_field(paper, scheme):
    for layer in _hidden(paper[scheme]):
        assert layer.activation_var == pytest.approx(layer.predicted_activation_var, rel=0.10)
        assert layer.backprop_var == pytest.approx(layer.predicted_backprop_var, rel=0.25)


def test_jacobian_mean_singular_values(paper):
    # PAPER.md: independent simulation, layers 2..5: standard 0.476, 0.485, 0.488, 0.490;
    # normalized 0.725, 0.749, 0.768, 0.783 (the paper: "about 0.5" and "about 0.8").
    expected = {
        "standard": [0.476, 0.485, 0.488, 0.490],
        "normalized": [0.725, 0.749, 0.768, 0.783],
    }
    for scheme, values in expected.items():
        measured = [layer.jacobian_sv_mean for layer in _hidden(paper[scheme])[1:]]
        assert measured == pytest.approx(values, abs=0.02)


def test_weight_gradients_vary_far_less_than_backprop_gradients_under_standard(paper):
    hidden = _hidden(paper["standard"])
    dw = [layer.weight_grad_var for layer in hidden]
    ds = [layer.backprop_var for layer in hidden]
    assert max(dw) / min(dw) < 1.3  # eq. 14: the same for every layer
    assert max(ds) / min(ds) > 50  # shrinks by about 3 per layer going down


def test_linear_regime_predictions_by_hand(paper):
    first = paper["standard"].layers[0]
    # Layer 1: Var[W] = 1/(3 * 1024); Var[s^1] = 1024 * Var[W] * Var[x] = Var[x] / 3, and
    # U[-1, 1] inputs have Var[x] = 1/3 (measured on the batch, so allow sampling error).
    assert first.weight_var == pytest.approx(1 / (3 * 1024))
    assert first.linear_activation_var == pytest.approx(1 / 9, rel=0.01)
    # Var[dC/ds^1] = Var[dC/ds^6] * (1000/3000)^4 * (10/3000): layers 2..5 and the output.
    top = paper["standard"].layers[-1].backprop_var
    assert first.linear_backprop_var == pytest.approx(top * (1 / 3) ** 4 * (10 / 3000), rel=1e-9)


def test_linear_network_matches_the_linear_regime():
    config = PropagateConfig(
        layers=(300, 200, 200, 10), activations=("linear",), schemes=("normalized",),
        jacobian_samples=0,
    )  # fmt: skip
    (run,) = run_propagate(config).runs
    for layer in run.layers:
        assert layer.activation_var == pytest.approx(layer.linear_activation_var, rel=0.1)
        assert layer.backprop_var == pytest.approx(layer.linear_backprop_var, rel=0.1)


def test_relu_he_normal_keeps_second_moments_and_normalized_halves_them():
    # Width scaled down from 1000 to 400 for speed; the expected ratios do not depend on width:
    # E[relu(s)^2] = q/2, so n Var[W] = 2 (He) keeps q, and n Var[W] = 1 halves it per layer.
    config = PropagateConfig(
        layers=(400, 400, 400, 400, 400, 400, 10), activations=("relu",),
        schemes=("he-normal", "normalized"), jacobian_samples=0, input="normal",
    )  # fmt: skip
    runs = {run.scheme: run for run in run_propagate(config).runs}

    def second_moments(run):
        return [layer.activation_var + layer.activation_mean**2 for layer in run.layers[:-1]]

    # Per layer, the gain of a width-400 ReLU layer along the batch's direction fluctuates by
    # about sqrt(2/400) = 7% (one draw of W), so single ratios get a wide band and the
    # geometric mean over the four steps a narrow one.
    for scheme, per_layer, band in (("he-normal", 1.0, 0.25), ("normalized", 0.5, 0.1)):
        m = second_moments(runs[scheme])
        steps = [upper / lower for lower, upper in itertools.pairwise(m)]
        assert all(abs(step - per_layer) < band for step in steps), (scheme, steps)
        assert (m[-1] / m[0]) ** (1 / 4) == pytest.approx(per_layer, rel=0.1), scheme


def test_jacobian_singular_values_against_a_direct_svd():
    rng = np.random.default_rng(3)
    for shape in ((30, 20), (20, 30)):
        w = rng.standard_normal(shape)
        d = rng.uniform(0.2, 1.0, (2, shape[1]))
        sv_mean, sv_ratio = jacobian_singular_values(w, d, 2)
        direct = [np.linalg.svd(w * row, compute_uv=False) for row in d]
        assert sv_mean == pytest.approx(np.mean([s.mean() for s in direct]), rel=1e-9)
        assert sv_ratio == pytest.approx(np.mean([s.max() / s.min() for s in direct]), rel=1e-6)


def test_saturation_rule_for_sigmoid_and_relu():
    sigmoid = get_activation("sigmoid")
    z = np.array([0.005, 0.5, 0.995, 0.02])
    assert sigmoid.saturated(z).tolist() == [True, False, True, False]
    relu = get_activation("relu")
    assert relu.saturated(np.array([0.0, 0.0, 1.0])).mean() == pytest.approx(2 / 3)


def test_json_result_contract_and_summary():
    result = runner.invoke(
        app, ["propagate", "--layers", "64,32,32,10", "--batch", "200", "-f", "json", "--bins", "9"]
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == "propagate" and doc["passed"] is True
    assert [(r["scheme"], r["activation"]) for r in doc["runs"]] == [
        ("standard", "tanh"), ("normalized", "tanh"),
    ]  # fmt: skip
    layer = doc["runs"][0]["layers"][0]
    for key in (
        "layer", "activation_mean", "activation_var", "saturated_fraction", "backprop_var",
        "weight_grad_var", "predicted_activation_var", "predicted_backprop_var",
        "jacobian_sv_mean", "histogram", "activation_p2", "activation_p98",
        "linear_activation_var", "linear_backprop_var", "linear_weight_grad_var",
    ):  # fmt: skip
        assert key in layer, key
    assert len(layer["histogram"]["edges"]) == 10 and sum(layer["histogram"]["counts"]) == 200 * 32
    run = doc["runs"][0]
    hidden = [row for row in run["layers"] if row["kind"] == "hidden"]
    assert run["backprop_var_ratio"] == pytest.approx(
        hidden[0]["backprop_var"] / hidden[-1]["backprop_var"]
    )


def test_trials_report_mean_and_spread():
    config = PropagateConfig(layers=(50, 40, 10), trials=3, jacobian_samples=2, batch=100)
    run = run_propagate(config).runs[0]
    assert run.layers[0].spread["activation_var"] > 0
    assert sum(run.layers[0].histogram["counts"]) <= 3 * 100 * 40


def test_merge_trials_means_numbers_sums_counts_and_spreads_by_sample_std():
    """Two trials by hand: means (1 and 3 -> 2), sample std (ddof 1: sqrt(2) for 1 and 3),
    histogram counts summed, a field that is None (no saturation at the output layer, no
    Jacobian) stays None and has no spread; one trial is itself with every spread 0."""
    from xavinit.core.measure import LayerMeasurement, merge_trials

    def layer(value: float, saturated: float | None, counts: list[int]) -> LayerMeasurement:
        return LayerMeasurement(
            activation_mean=value, activation_var=2 * value, activation_std=value,
            activation_second_moment=value, activation_p2=-value, activation_p98=value,
            saturated_fraction=saturated, backprop_var=value, weight_grad_var=value,
            jacobian_sv_mean=None, jacobian_sv_ratio=None, activation_histogram=counts,
            backprop_histogram=counts, weight_grad_histogram=counts,
        )  # fmt: skip

    first = [layer(1.0, 0.25, [1, 2]), layer(5.0, None, [0, 4])]
    second = [layer(3.0, 0.75, [3, 0]), layer(5.0, None, [1, 1])]
    (hidden, hidden_spread), (top, top_spread) = merge_trials([first, second])
    assert hidden.activation_mean == 2.0 and hidden.activation_var == 4.0
    assert hidden.saturated_fraction == 0.5 and hidden.activation_p2 == -2.0
    assert hidden.activation_histogram == [4, 2] and top.weight_grad_histogram == [1, 5]
    assert hidden_spread["activation_mean"] == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert hidden_spread["activation_var"] == pytest.approx(2 * math.sqrt(2.0), rel=1e-15)
    assert hidden_spread["saturated_fraction"] == pytest.approx(math.sqrt(0.125), rel=1e-15)
    assert top.saturated_fraction is None and top.jacobian_sv_mean is None
    assert "saturated_fraction" not in top_spread and "jacobian_sv_mean" not in top_spread
    assert top_spread["backprop_var"] == 0.0
    # the spread's keys come in the result's order: moments, percentiles, then the gradients
    assert list(hidden_spread) == [
        "activation_mean", "activation_var", "activation_std", "activation_second_moment",
        "activation_p2", "activation_p98", "saturated_fraction", "backprop_var",
        "weight_grad_var",
    ]  # fmt: skip
    ((alone, alone_spread),) = merge_trials([[first[0]]])
    assert alone == first[0] and set(alone_spread.values()) == {0.0}


def test_table_and_histograms_and_markdown():
    args = ["propagate", "--layers", "64,32,32,10", "--batch", "100", "--histograms"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0
    assert "Var[dC/ds]" in table.stdout and "figure 6" in table.stdout
    assert any(block in table.stdout for block in "▁▂▃▄▅▆▇█")
    markdown = runner.invoke(app, [*args, "-f", "markdown"])
    assert markdown.stdout.startswith("**PASSED")


def test_overflow_is_a_failed_check_naming_the_layer():
    result = runner.invoke(
        app,
        ["propagate", "-s", "variance-scaling:scale=1000", "-a", "linear", "--depth", "50",
         "--width", "100", "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 1
    (run,) = json.loads(result.stdout)["runs"]
    # Var[s^k] ~ (1/3) * 1000^k overflows float32 (3.4e38) once 1000^k / 3 > 3.4e38: at layer
    # 13 for the squares in the variance, at layer 26 for the values themselves. Values are what
    # is checked, so the first non-finite layer is near 26.
    assert 20 <= run["overflow_layer"] <= 30
    assert f"layer {run['overflow_layer']}" in run["failure"]
    assert not math.isnan(run["overflow_layer"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "tanhh"], "did you mean 'tanh'"),
        (["--input", "gaussian"], "uniform, normal"),
        (["--batch", "0"], "--batch"),
        (["--batch", "10", "--jacobian-samples", "11"], "at most the batch size 10"),
        (["--backward", "sideways"], "nll, unit"),
        (["--bias-var", "-1"], "--bias-var: must be >= 0"),
        (["--bias-var", "inf"], "--bias-var"),
    ],
)
def test_bad_input(args, message, tmp_path):
    target = tmp_path / "p.json"
    result = runner.invoke(app, ["propagate", *args, "-o", str(target)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not target.exists()


def test_peak_memory_of_a_large_batch_stays_under_2_gb():
    code = (
        "import resource, sys\n"
        "from xavinit.cli import main\n"
        "code = main(['propagate', '--batch', '10000', '-s', 'normalized', '--jacobian-samples',"
        " '0', '-q', '-f', 'json'])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(peak, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stderr.strip().splitlines()[-1])
    assert peak < 2 * 1024**3, f"peak RSS {peak / 1024**3:.2f} GiB"


PREDICTED = (
    ("activation_var", "predicted_activation_var"),
    ("backprop_var", "predicted_backprop_var"),
    ("weight_grad_var", "predicted_weight_grad_var"),
)


@pytest.fixture(scope="module")
def five_activations():
    """tanh and softsign (standard, normalized), sigmoid (normalized), relu and gelu
    (he-normal): 200-400x3-10, batch 40 (batch/width 0.1, see prediction_notes), 6 trials."""
    cases = {
        "tanh": ("standard", "normalized"),
        "softsign": ("standard", "normalized"),
        "sigmoid": ("normalized",),
        "relu": ("he-normal",),
        "gelu": ("he-normal",),
        "linear": ("normalized",),
    }
    runs = []
    for activation, schemes in cases.items():
        config = PropagateConfig(
            layers=(200, 400, 400, 400, 10), batch=40, trials=6, schemes=schemes,
            activations=(activation,), jacobian_samples=0,
        )  # fmt: skip
        runs += run_propagate(config).runs
    return runs


def _standard_error(layer, field: str) -> float:
    return layer.spread[field] / math.sqrt(6)


def _within_5_standard_errors(run, pairs) -> None:
    """Each ``(measured, predicted)`` field pair of every layer within 5 standard errors; the
    output layer's backprop variance is the measured top gradient itself and is skipped."""
    for layer in run.layers:
        for measured, predicted in pairs:
            if layer.kind == "output" and measured == "backprop_var":
                continue
            error = abs(getattr(layer, measured) - getattr(layer, predicted))
            assert error <= 5 * _standard_error(layer, measured), (
                run.scheme, run.activation, layer.layer, measured,
            )  # fmt: skip


def test_every_prediction_matches_the_measurement_averaged_over_trials(five_activations):
    """Each mean-field prediction within 5 standard errors of the mean over 6 trials, the
    standard error being the trials' sample std over sqrt(6)."""
    for run in five_activations:
        _within_5_standard_errors(run, PREDICTED)


def test_linear_regime_predictions_and_their_notes(five_activations):
    by_activation = {run.activation: run for run in five_activations}
    # exact for the linear activation: within 5 standard errors
    for layer in by_activation["linear"].layers:
        for measured in ("activation_var", "weight_grad_var"):
            linear = getattr(layer, "linear_" + measured)
            assert abs(getattr(layer, measured) - linear) <= 5 * _standard_error(layer, measured)
    assert by_activation["linear"].prediction_notes.keys() == {"predicted_weight_grad_var"}
    # an approximation for tanh and softsign (kept, and said so) ...
    for name in ("tanh", "softsign"):
        run = by_activation[name]
        assert "first order" in run.prediction_notes["linear_activation_var"]
        assert all(layer.linear_activation_var is not None for layer in run.layers)
    # ... and no prediction at all where f(0) != 0 or f'(0) != 1
    for name, reason in (
        ("sigmoid", "f(0) = 0.5"),
        ("relu", "f'(0-) = 0"),
        ("gelu", "f'(0+) = 0.5"),
    ):
        run = by_activation[name]
        assert reason in run.prediction_notes["linear_weight_grad_var"]
        assert all(layer.linear_weight_grad_var is None for layer in run.layers)
    assert "batch/width" in by_activation["tanh"].prediction_notes["predicted_weight_grad_var"]


def test_cross_moments_are_recorded():
    config = PropagateConfig(layers=(30, 20, 10), batch=50, activations=("sigmoid",),
                             schemes=("normalized",), jacobian_samples=0)  # fmt: skip
    run = run_propagate(config).runs[0]
    # U[-1, 1] inputs are centred: E[x_b x_b'] ~ 0 within a few 1/(3 sqrt(50 * 49 * 30))
    assert abs(run.input_cross_moment) < 5 * (1 / 3) / math.sqrt(50 * 49 * 30 / 2)
    assert run.top_cross_moment is not None


NEW_ACTIVATIONS = ("elu", "silu", "mish", "softplus", "hardtanh", "relu6", "erf")


def test_new_activations_propagate():
    for name in NEW_ACTIVATIONS:
        config = PropagateConfig(layers=(40, 30, 30, 10), batch=30, activations=(name,),
                                 schemes=("normalized",), jacobian_samples=2)  # fmt: skip
        (run,) = run_propagate(config).runs
        assert run.passed and all(math.isfinite(layer.activation_var) for layer in run.layers)


def test_new_activations_train_and_scheme_gains_accept_them(module_blobs):
    """Every new activation learns the 3-class blobs (its f' in the SGD step, from s where it
    needs s), under a scheme whose gain names it: below 20% test error after 300 updates,
    against 67% for chance (each gets under 3% on this seed)."""
    args = ["train", "-d", f"npz:{module_blobs}", "--depth", "2", "--width", "16", "--updates",
            "300", "--eval-every", "300", "-q", "-f", "json"]  # fmt: skip
    for name in NEW_ACTIVATIONS:
        result = runner.invoke(app, [*args, "-a", name, "-s", f"normalized:gain={name}"])
        assert result.exit_code == 0, (name, result.stderr)
        (run,) = json.loads(result.stdout)["runs"]
        assert not run["diverged"] and run["final_test_error"] < 0.2, name


# --- biases (issue 24) ---------------------------------------------------------------------------

SILU_15 = "variance-scaling:gain=1.5,mode=fan_in,distribution=normal"


@pytest.fixture(scope="module")
def with_biases():
    """Biases N(0, 0.2): tanh (normalized), relu (he-normal), silu at gain 1.5 and linear
    (normalized), 200-400x3-10, batch 40, 6 trials."""
    cases = {
        "tanh": "normalized", "relu": "he-normal", "silu": SILU_15, "linear": "normalized",
    }  # fmt: skip
    runs = []
    for activation, scheme in cases.items():
        config = PropagateConfig(
            layers=(200, 400, 400, 400, 10), batch=40, trials=6, schemes=(scheme,),
            activations=(activation,), jacobian_samples=0, bias_var=0.2,
        )  # fmt: skip
        runs += run_propagate(config).runs
    return runs


def test_every_prediction_matches_the_measurement_with_biases(with_biases):
    """As without biases: each mean-field prediction (and, for the linear activation, each
    linear-regime one) within 5 standard errors of the mean over 6 trials."""
    for run in with_biases:
        pairs = list(PREDICTED)
        if run.activation == "linear":
            pairs += [("activation_var", "linear_activation_var"),
                      ("weight_grad_var", "linear_weight_grad_var")]  # fmt: skip
        _within_5_standard_errors(run, pairs)


def test_bias_variance_adds_to_every_preactivation_by_hand(with_biases):
    """linear/normalized with equal widths 400: q^k = q^{k-1} + 0.2 from q^1 = 200 * 2/600 *
    E[x^2] + 0.2 (E[x^2] measured, about 1/3)."""
    run = next(r for r in with_biases if r.activation == "linear")
    q = 200 * (2 / 600) * run.input_second_moment + 0.2
    for layer in run.layers[:-1]:
        assert layer.predicted_preactivation_var == pytest.approx(q, rel=1e-12)
        q = q + 0.2
    assert run.layers[-1].predicted_preactivation_var == pytest.approx(
        400 * (2 / 410) * (q - 0.2) + 0.2, rel=1e-12
    )


def _e(f, q, hz, hw):
    return f(math.sqrt(q) * hz) @ hw


def test_silu_with_biases_holds_its_stable_fixed_point_in_a_deep_network():
    """SiLU at gain 1.5, sb^2 = 0.2 (q* = 1.008, slope 0.94): one example (U[-1, 1], so q^1 =
    2.25 / 3 + 0.2 = 0.95) through 6 hidden layers of 1000, 3 trials; the measured variance of
    each layer within 5 standard errors of mean field, the standard error from the formula
    (computed here, by Gauss-Hermite): given layer k the units are i.i.d., so the sample
    variance has variance (mu_4 - V^2) / n, and q^{k+1} = g^2 mean(z^2) + sb^2 carries the noise
    of mean(z^2), Var[f^2] / n, up, times the map's slope g^2 M'(q) per layer (delta method)."""
    n, depth, trials, g2, sb2 = 1000, 6, 3, 2.25, 0.2
    widths = (n,) * (depth + 1) + (10,)
    config = PropagateConfig(
        layers=widths, batch=1, trials=trials, schemes=(SILU_15,), activations=("silu",),
        jacobian_samples=0, bias_var=sb2, backward="unit",
    )  # fmt: skip
    run = run_propagate(config).runs[0]
    hz, hw = np.polynomial.hermite_e.hermegauss(160)
    hw = hw / math.sqrt(2 * math.pi)

    def silu(s):
        return 0.5 * s * (1.0 + np.tanh(0.5 * s))

    def moments(q):
        m1 = _e(silu, q, hz, hw)
        m2 = _e(lambda s: silu(s) ** 2, q, hz, hw)
        m4 = _e(lambda s: silu(s) ** 4, q, hz, hw)
        c4 = _e(lambda s: (silu(s) - m1) ** 4, q, hz, hw)
        return m2, m4, c4, m2 - m1 * m1

    q = g2 * run.input_second_moment + sb2
    q_plain = q - sb2  # the same network's mean field without the biases
    var_q = g2**2 * (1 / 5 - 1 / 9) / n  # one example's mean of x^2 around the trials' mean
    h = 1e-5
    for layer in run.layers[:-1]:
        m2, m4, c4, v = moments(q)
        dv = (moments(q + h)[3] - moments(q - h)[3]) / (2 * h)
        dm = (moments(q + h)[0] - moments(q - h)[0]) / (2 * h)
        se = math.sqrt((dv**2 * var_q + (c4 - v * v) / n) / trials)
        assert layer.predicted_activation_var == pytest.approx(v, rel=1e-6)
        assert abs(layer.activation_var - v) <= 5 * se, (layer.layer, layer.activation_var, v, se)
        var_q = (g2 * dm) ** 2 * var_q + g2**2 * (m4 - m2 * m2) / n
        q = g2 * m2 + sb2
        plain_v = moments(q_plain)[3]
        q_plain = g2 * moments(q_plain)[0]
    assert g2 * run.input_second_moment + sb2 < q < 1.0082  # climbing to q* = 1.008
    # without the biases mean field puts the top layer elsewhere: the test tells them apart
    assert abs(plain_v - run.layers[-2].activation_var) > 8 * se


def test_bias_streams_and_zero_default():
    """bias-var 0 draws nothing (the paper's zero biases, results unchanged); the biases come
    from their own streams, so the weights and inputs are the same with and without them."""
    base = dict(layers=(20, 30, 5), batch=8, jacobian_samples=0, schemes=("normalized",))
    plain = run_propagate(PropagateConfig(**base)).to_dict()
    zero = run_propagate(PropagateConfig(**base, bias_var=0.0)).to_dict()
    assert plain["runs"] == zero["runs"]
    biased = run_propagate(PropagateConfig(**base, bias_var=0.5)).to_dict()
    assert biased["config"]["bias_var"] == 0.5
    assert biased["runs"][0]["input_second_moment"] == plain["runs"][0]["input_second_moment"]
    assert (
        biased["runs"][0]["layers"][0]["activation_var"]
        != plain["runs"][0]["layers"][0]["activation_var"]
    )


def test_bias_var_applies_only_to_drawn_networks(tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(weights, a=np.ones((4, 3), np.float32), b=np.ones((3, 2), np.float32))
    target = tmp_path / "p.json"
    result = runner.invoke(
        app, ["propagate", "--weights", str(weights), "--bias-var", "0.1", "-o", str(target)]
    )
    assert result.exit_code == 2 and not target.exists()
    assert result.stderr.strip() == (
        "Error: --bias-var: applies only to drawn networks, not --weights"
    )


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 40_000, 131_072])
def test_percentiles_are_numpys_bit_for_bit(size):
    """The tail percentiles found from a subsample's thresholds are ``numpy.percentile``'s to
    the bit: float32 and float64, ties, sorted values (a subsample that is not random), the
    ends (0 and 100) and the middle. Among equal values numpy's partition leaves 0.0 or -0.0 at
    a rank as its algorithm falls: there the number is the same, its sign may not be."""
    from xavinit.core.samples import percentiles

    rng = np.random.default_rng(size)
    arrays = [
        np.tanh(3 * rng.standard_normal(size)).astype(np.float32),
        rng.integers(-3, 4, size).astype(np.float64),
        np.sort(np.maximum(rng.standard_normal(size), 0.0))[::-1].copy(),
    ]
    for values in arrays:
        for q in [(2.0, 98.0), (0.0, 100.0), (50.0,), (0.3, 37.7, 99.9)]:
            got = np.array(percentiles(values, q))
            assert got.tobytes() == np.percentile(values, q).tobytes(), (values.dtype, q)
    zeros = np.where(rng.random(size) < 0.5, -0.0, 0.0).astype(np.float32)
    assert percentiles(zeros, (2.0, 50.0, 98.0)) == [0.0, 0.0, 0.0]


def test_percentiles_partition_everything_when_the_subsample_misleads():
    """A subsample whose low values are not the array's (every strided value small, the rest
    large) puts the threshold too low: the whole array is partitioned, still numpy's answer."""
    from xavinit.core.samples import PERCENTILE_SUBSAMPLE, percentiles

    n = 32 * PERCENTILE_SUBSAMPLE
    values = np.full(n, 1000.0, dtype=np.float32)
    values[:: n // PERCENTILE_SUBSAMPLE] = np.arange(PERCENTILE_SUBSAMPLE)
    values[5::7] = -np.arange(values[5::7].size, dtype=np.float32) * 0.5 + 900.0
    got = np.array(percentiles(values, (2.0, 98.0)))
    assert got.tobytes() == np.percentile(values, [2.0, 98.0]).tobytes()


def test_bins_are_binary_searchs_for_even_and_uneven_edges():
    """The histograms' bin of each value is ``searchsorted(edges, x, "right") - 1`` (the last
    bin closed) for evenly spaced edges from linspace, values on and one ulp beside every edge,
    a huge span, and uneven edges (where the arithmetic guess is far off)."""
    from xavinit.core.samples import bins_of

    rng = np.random.default_rng(0)
    grids = [
        np.linspace(-1.0, 1.0, 42),
        np.linspace(-3.7e-5, 9.1e-3, 42),
        np.array([-1e308, -5e307, 0.0, 5e307, 1e308]),  # the span overflows
        np.cumsum(rng.exponential(1.0, 30)) - 4.0,
    ]
    for grid in grids:
        lo, hi = grid[0], grid[-1]
        edges = np.concatenate([grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf)])
        values = np.concatenate([rng.uniform(lo / 2, hi / 2, 5000), edges])
        values = values[(values >= lo) & (values <= hi)]
        expected = np.minimum(np.searchsorted(grid, values, side="right") - 1, grid.size - 2)
        assert bins_of(values, grid).tolist() == expected.tolist()


@pytest.mark.parametrize("scheme", ["normalized", "orthogonal", "glorot-normal-truncated"])
def test_weights_and_inputs_drawn_into_buffers_measure_bit_for_bit(scheme):
    """measure_network with Buffers draws each trial's weights and inputs into the same arrays
    (no fresh matrix per layer) and measures exactly what fresh draws measure."""
    from xavinit.core.measure import measure_network
    from xavinit.core.network import Buffers
    from xavinit.core.sampling import WeightSource, draw_weights
    from xavinit.core.schemes import get_scheme
    from xavinit.experiments.propagate import measure_plan

    config = PropagateConfig(layers=(12, 9, 7, 3), batch=6, bias_var=0.1, jacobian_samples=2)
    plan, act = measure_plan(config), get_activation("tanh")
    source = WeightSource.drawn(get_scheme(scheme))
    buffers = Buffers()
    kept = []
    for trial in range(2):
        fresh, _ = measure_network(plan, source, act, trial, None)
        reused, _ = measure_network(plan, source, act, trial, None, buffers)
        assert repr(reused) == repr(fresh)
        widths = config.layers
        out = [buffers.get("weights", k, (widths[k], widths[k + 1]), np.dtype(np.float32))
               for k in range(len(widths) - 1)]  # fmt: skip
        drawn = draw_weights(source.scheme, widths, plan.seed, trial, np.dtype(np.float32), out)
        expected = draw_weights(source.scheme, widths, plan.seed, trial, np.dtype(np.float32))
        assert [w.tobytes() for w in drawn] == [w.tobytes() for w in expected]
        assert all(a is b for a, b in zip(drawn, out, strict=True))
        kept.append(buffers.get("inputs", 0, (6, 12), np.dtype(np.float32)))
    assert kept[0] is kept[1]


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1000, 1000), np.float32), ((1024, 1000), np.float32), ((7, 10), np.float32),
     ((3, 65_536), np.float32), ((300, 1000), np.float64), ((0, 5), np.float32)],
)  # fmt: skip
def test_scan_layer_gives_moments_and_sample_bit_for_bit(shape, dtype):
    """The layer scan (widened chunk by chunk, squared in place, no extremes) sums what
    ``moments_and_sample`` sums in the same order: equal floats, the same sample, and the same
    ``finite`` with a NaN or an infinity anywhere."""
    from xavinit.core.measure import STAT_SAMPLE, scan_layer
    from xavinit.core.network import Buffers
    from xavinit.core.stats import moments_and_sample

    rng = np.random.default_rng(3)
    array = (np.tanh(rng.standard_normal(shape)) * 3 + 0.25).astype(dtype)
    buffers = Buffers()
    for sample_size in (STAT_SAMPLE, 0):
        got, sample = scan_layer(array, sample_size, buffers, "sample", 0)
        want, want_sample = moments_and_sample(array, sample_size)
        assert (got.count, got.finite) == (want.count, want.finite)
        assert math.isnan(got.minimum) and math.isnan(got.maximum)  # not gathered
        if want.count:
            assert (got.mean, got.mean_square) == (want.mean, want.mean_square)
            assert got.variance == want.variance
        assert sample.dtype == want_sample.dtype
        assert sample.tobytes() == want_sample.tobytes()
    if array.size:
        for bad in (np.nan, np.inf, -np.inf):
            spoilt = array.copy()
            spoilt.flat[array.size // 2] = bad
            assert not scan_layer(spoilt, STAT_SAMPLE, buffers, "sample", 0)[0].finite


def test_scan_layer_moments_by_hand():
    """Two chunks and a tail of known values: ``mean`` and ``mean_square`` from the formula."""
    from xavinit.core.measure import scan_layer
    from xavinit.core.network import Buffers
    from xavinit.core.stats import CHUNK

    n = 2 * CHUNK + 10
    values = np.where(np.arange(n) % 2 == 0, 0.5, -1.5).astype(np.float32)  # exact in binary
    moments, sample = scan_layer(values, 3, Buffers(), "sample", 0)
    halves = n // 2  # n is even: as many 0.5 as -1.5
    assert moments.mean == (0.5 - 1.5) * halves / n == -0.5
    assert moments.mean_square == (0.25 + 2.25) * halves / n == 1.25
    assert moments.variance == 1.0
    step = math.ceil(n / 3)
    assert sample.tolist() == [values[i] for i in range(0, n, step)]


def test_bins_taken_from_the_guess_are_binary_searchs_where_the_guess_is_trusted():
    """The guess is taken unchecked only for a grid whose own edges it places within 1/1024 bin
    (any linspace, thousands of bins included) and only a value clear of its bin's ends; a grid
    whose span is below float64's resolution at its offset is not trusted, and every value of it
    is compared with the edges: both give searchsorted's bin, edges and their neighbours too."""
    from xavinit.core.samples import bins_of, guesses_exactly

    rng = np.random.default_rng(1)
    cases = [
        (np.linspace(-1.0, 1.0, 42), True),
        (np.linspace(-3.7e-5, 9.1e-3, 42), True),
        (np.linspace(0.0, 1.0, 20_001), True),
        (np.linspace(1000.0, 1000.0 + 1e-9, 42), False),  # 0.2 ulp of 1000 per bin
        (np.array([0.0, 1.0, 1.5, 3.0]), False),  # uneven
    ]
    for grid, trusted in cases:
        assert guesses_exactly(grid) is trusted
        lo, hi = grid[0], grid[-1]
        edges = np.concatenate([grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf)])
        values = np.concatenate([rng.uniform(lo, hi, 50_000), edges])
        values = values[(values >= lo) & (values <= hi)]
        expected = np.minimum(np.searchsorted(grid, values, side="right") - 1, grid.size - 2)
        assert bins_of(values, grid).tolist() == expected.tolist()
        narrow = values.astype(np.float32)  # compared as float64, exactly
        narrow = narrow[(narrow >= lo) & (narrow <= hi)]
        expected = np.minimum(np.searchsorted(grid, narrow, side="right") - 1, grid.size - 2)
        assert bins_of(narrow, grid).tolist() == expected.tolist()


def test_cross_moment_keeps_one_widened_buffer_for_each_size():
    # propagate widens the input and the top gradient each trial: both buffers are kept
    from xavinit.core.measure import cross_moment
    from xavinit.core.network import Buffers

    buffers = Buffers()
    x = np.random.default_rng(0).standard_normal((50, 30)).astype(np.float32)
    top = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    first = cross_moment(x, buffers)
    kept = dict(buffers._arrays)
    cross_moment(top, buffers)
    again = cross_moment(x, buffers)
    assert again == first
    assert all(buffers._arrays[key] is array for key, array in kept.items())
    wide = x.astype(np.float64)
    total = wide.sum(axis=0)
    expected = (total @ total - (wide * wide).sum()) / (50 * 49 * 30)
    assert math.isclose(first, expected, rel_tol=1e-12)
