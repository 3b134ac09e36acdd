"""``xavinit propagate --model``: signal propagation through the user's own network.

The model is loaded and probed by :mod:`xavinit.core.modelprobe` (torch, torch.export or ONNX);
this module adds the theory beside the measurement and the verdict. Theory: for a Linear or
Conv layer, mean field predicts its output's variance from the measured second moment of its
input and the measured ``E[W^2]`` and ``E[b^2]`` of its weights,
``q = fan_in E[W^2] E[x^2] + E[b^2]`` (Poole et al. 2016; the paper's eq. 5 with a measured
input), and for a known activation ``f`` applied to that output, ``Var_z[f(sqrt(q) z)]`` and
``E_z[f(sqrt(q) z)]`` (:func:`xavinit.core.theory.mean_field_forward`, the prediction ``propagate``
prints for its own MLPs). Verdict: :func:`xavinit.core.modelprobe.drift` of the activation variance
and of the gradient variance between the first and the last measured module, against
``--max-drift``.
"""

from __future__ import annotations

import dataclasses
import math

from xavinit.config import PropagateModelConfig
from xavinit.core.activations import get_activation
from xavinit.core.modelprobe import (
    Record,
    drift,
    load_model,
    measure,
    measure_onnx,
    model_inputs,
    parse_model_args,
)
from xavinit.core.theory import mean_field_forward
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.resources import require_memory
from xavinit.results import ModelDrift, ModelModule, ModelRun, PropagateResult

ONNX_BACKWARD = (
    "unavailable: onnxruntime runs inference only, so no gradient is measured; give the "
    "model's torch factory or a .pt2 export for the backward pass"
)
GELU_NOTE = (
    "GELU modules are predicted with xavinit's tanh-approximate gelu, within 5e-4 of the exact "
    "GELU everywhere"
)


def predictions(records: list[Record]) -> list[tuple[float | None, float | None, str | None]]:
    """``(predicted variance, predicted mean, the layer it starts from)`` per record."""
    out: list[tuple[float | None, float | None, str | None]] = []
    for record in records:
        source = records[record.follows] if record.follows is not None else record
        if (
            source.fan_in is None
            or source.weight_var is None
            or source.input_second_moment is None
            or not math.isfinite(source.input_second_moment)
        ):
            out.append((None, None, None))
            continue
        if record is source:
            activation = get_activation("linear")
        elif record.activation is not None:
            activation = get_activation(record.activation)
        else:
            out.append((None, None, None))
            continue
        field = mean_field_forward(
            source.input_second_moment,
            (source.fan_in, 1),
            [source.weight_var],
            activation,
            bias_vars=source.bias_var or 0.0,
        )
        if record is source:
            out.append((float(field.q[0]), None, source.name))
        else:
            out.append((float(field.var[0]), float(field.mean[0]), source.name))
    return out


def run_model(config: PropagateModelConfig) -> ModelRun:
    """Load, probe and judge one model."""
    loaded = load_model(config.model, parse_model_args(config.model_args), config.seed)
    shape = config.input_shape or loaded.input_shape
    if shape is None:
        raise XavinitError(
            f"--input-shape: {config.model} declares no input shape; give one example's shape "
            "without the batch, e.g. --input-shape 3,224,224 or --input-shape 128 for tokens"
        )
    tokens = config.input.startswith("tokens:")
    if loaded.integer_input and not tokens:
        raise XavinitError(f"--input: {config.model} takes integer ids; give --input tokens:VOCAB")
    batch = config.batch
    if loaded.batch is not None and "batch" not in config.model_fields_set:
        batch = loaded.batch  # an export with a fixed batch: take it rather than fail
    # the inputs, the model's outputs and their gradients: at least a few copies of the input
    require_memory(
        4 * 8 * batch * math.prod(shape),
        f"--batch {batch} --input-shape {','.join(map(str, shape))}",
    )
    x = model_inputs(config.input, batch, tuple(shape), config.seed)
    notes: list[str] = []
    backward = "measured"
    top_var: float | None = None
    if loaded.source == "onnx":
        records = measure_onnx(loaded, x)
        used = "leaf"
        backward = ONNX_BACKWARD
        if config.depth_of == "block":
            notes.append("an ONNX graph has no module tree: its layer-like nodes are measured")
    else:
        records, used, top_var = measure(loaded, x, config.depth_of, config.seed)
        if used != config.depth_of:
            notes.append("the model has no repeated blocks: every leaf module is measured")
    if not records:
        raise XavinitError(f"--model {config.model}: no module produced a floating-point output")
    if any("GELU" in r.type.rpartition(".")[2] or r.type == "onnx:Gelu" for r in records):
        notes.append(GELU_NOTE)
    theory = predictions(records)
    graded = [r for r in records if r.grad_var is not None]
    top_grad = graded[-1].grad_var if graded else None
    modules = []
    for index, (record, (predicted, predicted_mean, source)) in enumerate(
        zip(records, theory, strict=True)
    ):
        ratio = None
        if record.grad_var is not None and top_grad:
            ratio = record.grad_var / top_grad
        copied = {name: getattr(record, name) for name in _COPIED}
        copied["shape"] = list(record.shape)
        modules.append(
            ModelModule(
                index=index + 1,
                kind=used,
                grad_ratio_to_top=ratio,
                predicted_var=predicted,
                predicted_mean=predicted_mean,
                theory_from=source,
                **copied,
            )
        )
    checks = drift_checks(modules, config.max_drift, backward == "measured")
    failure = None
    if not all(math.isfinite(m.var) for m in modules):
        bad = next(m.name for m in modules if not math.isfinite(m.var))
        failure = f"values stopped being finite at {bad}"
    parameters = (
        sum(int(p.numel()) for p in loaded.module.parameters())
        if loaded.module is not None
        else sum(math.prod(t.dims) for t in loaded.onnx.graph.initializer)
    )
    return ModelRun(
        model=config.model,
        source=loaded.source,
        depth_of=used,
        batch=batch,
        input=config.input,
        input_shape=list(shape),
        parameters=parameters,
        max_drift=config.max_drift,
        passed=bool(checks) and all(c["passed"] for c in checks) and failure is None,
        modules=modules,
        drift=checks,
        backward=backward,
        top_grad_var=top_var,
        failure=failure,
        notes=notes,
    )


_COPIED = tuple(
    f.name
    for f in dataclasses.fields(ModelModule)
    if f.name != "kind" and f.name in {g.name for g in dataclasses.fields(Record)}
)
"""The fields a module's result takes from its measurement record as they are (``kind`` is the
granularity used; ``shape`` becomes a list)."""


def drift_checks(modules: list[ModelModule], max_drift: float, backward: bool) -> list[ModelDrift]:
    """The activation-variance check and, when gradients were measured, the gradient one."""
    names = [m.name for m in modules]
    checks: list[ModelDrift] = []
    quantities: list[tuple[str, list[float | None], bool]] = [
        ("activation_var", [m.var for m in modules], False)
    ]
    if backward:
        quantities.append(("grad_var", [m.grad_var for m in modules], True))
    for quantity, values, from_top in quantities:
        present = [n for n, v in zip(names, values, strict=True) if v is not None]
        if not present:
            continue
        ratio, beyond, passed = drift(names, values, max_drift, from_top)
        checks.append(
            ModelDrift(
                quantity=quantity,
                first=present[0],
                last=present[-1],
                ratio=ratio,
                beyond_from=beyond,
                passed=passed,
            )
        )
    return checks


def run_propagate_model(
    config: PropagateModelConfig, progress: Progress | None = None
) -> PropagateResult:
    """``propagate --model``: one model run; ``passed`` when no variance drifts beyond
    ``max_drift``."""
    if progress is not None:
        progress(0, 1, config.model)
    run = run_model(config)
    if progress is not None:
        progress(1, 1, "done")
    return PropagateResult(
        seed=config.seed, config=config.to_dict(), passed=run.passed, runs=[], models=[run]
    )
