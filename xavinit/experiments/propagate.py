"""``xavinit propagate``: activations forward and gradients backward at initialization.

For each (scheme, activation) one network is drawn (biases 0, or ``N(0, bias_var)`` with
``--bias-var``; softmax output) and a batch of
inputs pushed through it; per layer the result holds the measured statistics and, beside them,
the paper's linear-regime prediction (eq. 5-7) and the mean-field prediction (Poole et al. 2016)
from the same ``Var[W]``. Glorot and Bengio (2010), section 4 and figures 6, 7 and 8.
The draws are :mod:`xavinit.core.sampling`'s, the measurement, trial merging and predictions
:mod:`xavinit.core.measure`'s; this module turns the config into those calls and assembles the
result (with its ``prediction_notes``), and reads a checkpoint's stack for ``--weights``.

Conventions: layer ``k`` (1-based) is the k-th weight matrix and what it produces. Hidden layers
report their post-activations ``z^k = f(s^k)``; the output layer reports the logits ``s^L``.
``backprop_var`` is the variance of the per-example gradient ``dC_n/ds^k`` (the cost of one
example, so it does not depend on the batch size); ``weight_grad_var`` is the variance of the
entries of ``dC/dW^k`` for the batch-mean cost, the gradient SGD would apply. Its predictions
carry the cross-example term (:func:`xavinit.core.theory.mean_field_weight_grad_var`): with a
non-centred activation the examples' activations share their mean, and with softmax NLL the
output errors of different examples are correlated, so the batch mean does not average the
gradient down by ``1/B``. Where a prediction is an approximation beyond finite width, or does
not apply, the run's ``prediction_notes`` says so (and a prediction that does not apply is
``None``).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from xavinit.config import PropagateConfig
from xavinit.core.activations import Activation, get_activation
from xavinit.core.backends import get_backend
from xavinit.core.measure import (
    LayerMeasurement,
    MeasuredMoments,
    MeasurePlan,
    measure_network,
    merge_trials,
    predictions,
)
from xavinit.core.network import Buffers
from xavinit.core.roles import describe, select_names
from xavinit.core.sampling import WeightSource
from xavinit.core.schemes import Scheme, get_scheme
from xavinit.core.stats import moments_and_sample
from xavinit.core.theory import linear_regime_applies
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.formats import open_tensors
from xavinit.resources import blas_thread_count, require_memory
from xavinit.results import PropagateLayer, PropagateResult, PropagateRun


def measure_plan(config: PropagateConfig) -> MeasurePlan:
    """The core's description of the networks ``config`` measures."""
    return MeasurePlan(
        widths=config.layers,
        batch=config.batch,
        seed=config.seed,
        dtype=config.dtype,
        inputs=config.input,
        top=config.backward,
        bias_var=config.bias_var,
        bins=config.bins,
        jacobian_samples=config.jacobian_samples,
        backend=config.backend,
        device=config.device,
    )


def weight_source(scheme: Scheme | WeightSource) -> WeightSource:
    """A scheme's draws, or a file's matrices as they are."""
    return scheme if isinstance(scheme, WeightSource) else WeightSource.drawn(scheme)


def prediction_notes(config: PropagateConfig, activation: Activation) -> dict[str, str]:
    """Which predictions are not exact, and why: field name -> one sentence.

    Mean field is exact as the width grows (finite width adds errors of order
    ``1/sqrt(width)``, the trials' spread); what is listed here is approximate beyond that.
    """
    notes: dict[str, str] = {}
    name = activation.spec
    if activation.name != "linear":
        if linear_regime_applies(activation):
            text = (
                f"linear regime (f(s) ~ s, eq. 5-7): first order in Var[s]; {name} bends "
                "away from s as the variance grows"
            )
        else:
            f0 = float(activation.forward(np.array([0.0]))[0])
            slopes = activation.derivative_of(np.array([-1e-9, 1e-9]))
            text = (
                "not applicable, so left out: the linear regime needs f(0) = 0 and f'(0) = 1 "
                f"(section 4.2.1); {name} has f(0) = {f0:.4g}, f'(0-) = {slopes[0]:.4g}, "
                f"f'(0+) = {slopes[1]:.4g}"
            )
        for field_name in (
            "linear_activation_var",
            "linear_backprop_var",
            "linear_weight_grad_var",
        ):
            notes[field_name] = text
    if config.backward == "nll" and config.batch > 1:
        ratio = config.batch / min(config.layers[1:-1] or config.layers[-1:])
        notes["predicted_weight_grad_var"] = (
            "mean field with the cross-example terms; with softmax NLL the output error also "
            "depends on the batch's own activations through the top weights, a term of "
            f"relative order batch/width (here {ratio:.2g}) left out: at batch = width on the "
            "paper's network it adds up to 16% (tanh under he-normal, 42 trials)"
        )
    return notes


def run_one(
    config: PropagateConfig,
    scheme: Scheme | WeightSource,
    activation: Activation,
    buffers: Buffers | None = None,
) -> PropagateRun:
    """All trials of one (scheme, activation) network, merged into one run (a file's matrices
    are labelled by its path in ``scheme``). The passes write into ``buffers`` (new ones when
    not given), which a caller running several networks hands to each."""
    buffers = Buffers() if buffers is None else buffers
    source = weight_source(scheme)
    name = None if source.scheme is None else source.scheme.name  # a file's matrices: none
    plan = measure_plan(config)
    per_trial: list[list[LayerMeasurement]] = []
    edges = None
    measured_moments: list[MeasuredMoments] = []
    for trial in range(config.trials):
        measured, edges = measure_network(plan, source, activation, trial, edges, buffers)
        if measured.overflow_layer is not None:
            return PropagateRun(
                scheme=source.label,
                scheme_name=name,
                activation=activation.spec,
                layers=[],
                passed=False,
                overflow_layer=measured.overflow_layer,
                failure=(
                    f"values stopped being finite at layer {measured.overflow_layer} "
                    f"(trial {trial + 1}): the variance overflowed {config.dtype}"
                ),
            )
        per_trial.append(measured.layers)
        measured_moments.append(measured.moments)
    moments = MeasuredMoments.mean(measured_moments)
    widths = config.layers
    theory = predictions(
        widths, source.variances(widths), activation, moments, config.batch, config.bias_var
    )
    assert edges is not None
    layers = []
    for k, ((row, spread), predicted) in enumerate(
        zip(merge_trials(per_trial), theory, strict=True)
    ):
        act_edges, grad_edges, dw_edges = edges[k]
        layers.append(
            PropagateLayer(
                layer=k + 1,
                fan_in=widths[k],
                fan_out=widths[k + 1],
                kind="hidden" if k < len(widths) - 2 else "output",
                activation_mean=float(row.activation_mean),
                activation_var=float(row.activation_var),
                activation_std=float(row.activation_std),
                activation_p2=float(row.activation_p2),
                activation_p98=float(row.activation_p98),
                saturated_fraction=row.saturated_fraction,
                backprop_var=float(row.backprop_var),
                weight_grad_var=float(row.weight_grad_var),
                jacobian_sv_mean=row.jacobian_sv_mean,
                jacobian_sv_ratio=row.jacobian_sv_ratio,
                histogram={"edges": act_edges.tolist(), "counts": row.activation_histogram},
                backprop_histogram={
                    "edges": grad_edges.tolist(),
                    "counts": row.backprop_histogram,
                },
                weight_grad_histogram={
                    "edges": dw_edges.tolist(),
                    "counts": row.weight_grad_histogram,
                },
                spread=spread if config.trials > 1 else {},
                **asdict(predicted),
            )
        )
    hidden = [layer for layer in layers if layer.kind == "hidden"]
    first, last = (hidden[0], hidden[-1]) if hidden else (layers[0], layers[0])
    return PropagateRun(
        scheme=source.label,
        scheme_name=name,
        activation=activation.spec,
        layers=layers,
        passed=True,
        backprop_var_ratio=_ratio(first.backprop_var, last.backprop_var),
        activation_var_ratio=_ratio(first.activation_var, last.activation_var),
        weight_grad_var_ratio=_ratio(first.weight_grad_var, last.weight_grad_var),
        input_second_moment=moments.input_second_moment,
        input_cross_moment=moments.input_cross_moment,
        top_cross_moment=moments.top_cross_moment,
        prediction_notes=prediction_notes(config, activation),
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def check_memory(config: PropagateConfig) -> None:
    """Refuse a batch whose activations and gradients would not fit in memory."""
    itemsize = np.dtype(config.dtype).itemsize
    widths = config.layers
    units = sum(widths)
    need = (
        3 * config.batch * units * itemsize
        + 2 * sum(widths[k] * widths[k + 1] for k in range(len(widths) - 1)) * itemsize
    )
    require_memory(need, f"--batch {config.batch} on layers of {units} units in all", share=0.8)


def load_stack(config: PropagateConfig) -> WeightSource:
    """The dense layers of ``config.weights``: its selected 2-D tensors in file order, each
    oriented ``(fan_in, fan_out)`` by the file's layout, chained by matching widths.

    Raises:
        XavinitError: an unreadable file, no 2-D tensor, a width that does not chain (naming
            the first mismatch), ``--layers`` that differ from the file's, or too little memory.
    """
    assert config.weights is not None
    path = config.weights
    dtype = np.dtype(config.dtype)
    with open_tensors(path) as source:
        described = describe(source.tensors, config.layout)
        names = set(select_names([t.name for t in described], config.keys))
        chosen = [t for t in described if t.name in names and len(t.shape) == 2]
        if not chosen:
            listed = ", ".join(f"{t.name} {t.shape}" for t in described[:12])
            raise XavinitError(f"{path}: no 2-D tensor selected for the stack; tensors: {listed}")
        need = sum(t.size for t in chosen) * dtype.itemsize
        require_memory(need, f"the {len(chosen)} matrices of {path}")
        infos = {info.name: info for info in source.tensors}
        matrices: list[np.ndarray] = []
        for previous, tensor in zip([None, *chosen], chosen, strict=False):
            fan_in, fan_out = tensor.fan_in, tensor.fan_out
            if previous is not None and previous.fan_out != fan_in:
                raise XavinitError(
                    f"{path}: {previous.name} ({previous.fan_in} -> {previous.fan_out}) does not "
                    f"chain into {tensor.name} ({fan_in} -> {fan_out}); select the dense layers "
                    "in order with --key, or set --layout"
                )
            if tensor.dtype not in ("float16", "bfloat16", "float32", "float64"):
                raise XavinitError(
                    f"{path}: {tensor.name} has dtype {tensor.dtype}; expected floats"
                )
            array = source.load(infos[tensor.name])
            oriented = array.T if tensor.layout == "out-in" else array
            matrix = np.ascontiguousarray(oriented, dtype=dtype)
            if not moments_and_sample(matrix)[0].finite:
                raise XavinitError(f"{path}: {tensor.name} holds NaN or infinite values")
            matrices.append(matrix)
    widths = (matrices[0].shape[0], *(m.shape[1] for m in matrices))
    if "layers" in config.model_fields_set and tuple(config.layers) != widths:
        raise XavinitError(
            f"--layers {','.join(map(str, config.layers))} differ from the widths of {path}: "
            f"{','.join(map(str, widths))}"
        )
    return WeightSource(path, None, tuple(matrices))


def run_propagate(config: PropagateConfig, progress: Progress | None = None) -> PropagateResult:
    """Run every (scheme, activation) network, or push through a file's own matrices
    (``config.weights``); ``passed`` is False if any overflowed."""
    sources: list[WeightSource]
    if config.weights is not None:
        loaded = load_stack(config)
        widths = (loaded.fixed[0].shape[0], *(m.shape[1] for m in loaded.fixed))
        config = config.model_copy(update={"layers": widths, "schemes": ()})
        sources = [loaded]
    else:
        sources = [WeightSource.drawn(get_scheme(s)) for s in config.schemes]
    check_memory(config)
    get_backend(config.backend, config.device).activate(blas_thread_count())
    pairs = [(s, get_activation(a)) for a in config.activations for s in sources]
    runs = []
    buffers = Buffers()  # one network's passes at a time: the next one reuses the memory
    for done, (source, activation) in enumerate(pairs):
        if progress is not None:
            progress(done, len(pairs), f"{source.label} / {activation.spec}")
        runs.append(run_one(config, source, activation, buffers))
    if progress is not None:
        progress(len(pairs), len(pairs), "done")
    return PropagateResult(
        seed=config.seed,
        config=config.to_dict(),
        passed=all(run.passed for run in runs),
        runs=runs,
    )
