"""Signal propagation through a user's own model: the optional torch and onnxruntime backend of
``xavinit propagate --model``.

A model comes from one of three places (:func:`load_model`):

- ``package.module:callable``, a factory in the user's code, imported from the current folder
  or ``PYTHONPATH`` and called with keyword arguments (importing it is the user's choice, as
  with pytest); ``torch.manual_seed(seed)`` is set first, so ``--seed`` fixes the model's init;
- a ``torch.export`` archive (``.pt2``): :func:`torch.export.load` rebuilds the exported graph
  of aten operators and its weights (no Python code of the file runs), and
  :func:`torch.export.unflatten` gives back the module tree of the exported model;
- an ONNX file, run by onnxruntime: forward only.

One batch goes forward; a unit-variance Gaussian gradient ``g`` is set at the model's output
(the cost ``C = sum(g * y)`` of the batch, so the gradient at any module's output is the
per-example ``dC_n/dy``) and goes backward. Per measured module (:func:`measure`): the output's
mean and variance over all entries, the signal propagation plot's average channel squared mean
``mean_c (E_{b,s}[y_c])^2`` and average channel variance ``mean_c Var_{b,s}[y_c]`` (Brock, De
and Smith 2021, "Characterizing signal propagation to close the performance gap in
unnormalized ResNets", section 3), the saturated fraction of a bounded activation, the variance
of the gradient at the output and of each parameter's gradient (of the batch-mean cost, as
``propagate`` reports ``weight_grad_var``), and for a block whose input and output have one
shape the variance of the residual branch ``y - x`` against the skip ``x``.

Dropout is off (the module tree is in eval mode) and batch normalization uses the batch's
statistics, as in training, whose first steps are what an initialization is about.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xavinit.core.activations import Activation, get_activation
from xavinit.core.streams import INPUT_KEY, LABEL_KEY, input_rng
from xavinit.errors import XavinitError
from xavinit.extras import install

SATURATION_SAMPLE = 1 << 17
"""The saturated fraction uses at most this many values of a module's output, at an even
stride (standard error below 0.14%)."""
SKIPPED_LEAVES = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Identity")
"""Leaf modules that pass their input on unchanged at evaluation: not measured."""
_FACTORY = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")

ACTIVATIONS = {
    "ReLU": "relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "GELU": "gelu",
    "GELUActivation": "gelu",
    "NewGELUActivation": "gelu",
    "GELUTanh": "gelu",
    "FastGELUActivation": "gelu",
    "SiLU": "silu",
    "SiLUActivation": "silu",
    "SELU": "selu",
    "Mish": "mish",
    "Softsign": "softsign",
    "ReLU6": "relu6",
    "Softplus": "softplus",
    "Relu": "relu",
    "Gelu": "gelu",
    "Selu": "selu",
}
"""Module classes (torch) and ONNX ops that are a known activation, by their xavinit name.
Every GELU maps to xavinit's tanh-approximate ``gelu``, within 5e-4 of the exact one.
Parametrised ones (LeakyReLU, ELU, Hardtanh) are read from the module in :func:`activation_of`."""

LINEAR_TYPES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Conv1D", "Gemm", "Conv", "MatMul")
"""Layers whose output the mean-field prediction ``q = fan_in E[W^2] E[x^2] + E[b^2]`` covers
(torch's Linear and ConvNd, transformers' Conv1D, ONNX's Gemm, Conv and MatMul)."""


@dataclass
class Record:
    """What one call of one measured module produced (filled in forward, then backward)."""

    name: str
    type: str
    kind: str
    shape: tuple[int, ...]
    channel_axis: int
    mean: float
    var: float
    channel_sq_mean: float
    channel_var: float
    saturated_fraction: float | None = None
    activation: str | None = None
    grad_var: float | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    branch_var: float | None = None
    skip_var: float | None = None
    fan_in: int | None = None
    weight_var: float | None = None
    bias_var: float | None = None
    input_second_moment: float | None = None
    follows: int | None = None
    """Index (in the records) of the Linear/Conv whose output this activation takes."""
    output_id: Any = None
    input_id: Any = None


@dataclass
class Loaded:
    """A model ready to probe: a torch module (factory or ``.pt2``) or an ONNX session."""

    source: str
    module: Any = None
    types: dict[str, str] = field(default_factory=dict)
    onnx: Any = None
    input_shape: tuple[int, ...] | None = None
    batch: int | None = None
    integer_input: bool = False


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise XavinitError(
            f"--model needs torch, which is not installed; install it with {install('torch')}"
        ) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No Python warning and no log record from a library reaches the user's terminal (torch's
    export logs a traceback before it raises on a damaged archive)."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def parse_model_args(items: tuple[str, ...]) -> dict[str, Any]:
    """``("depth=4", "scale=0.5", "name=x", "zero=true")`` -> keyword arguments: integers,
    floats and true/false become numbers and booleans, anything else stays a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise XavinitError(f"--model-arg {item!r}: expected key=value with a Python name")
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def model_kind(spec: str) -> str:
    """``factory``, ``export`` (.pt2) or ``onnx`` (.onnx), from the spec's form."""
    suffix = Path(spec).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".pt2":
        return "export"
    if _FACTORY.fullmatch(spec):
        return "factory"
    raise XavinitError(
        f"--model {spec!r}: expected package.module:callable (a factory in your code), a "
        "torch.export archive (.pt2) or an ONNX file (.onnx)"
    )


def load_model(spec: str, model_args: dict[str, Any], seed: int) -> Loaded:
    """The model ``spec`` names (see the module docstring), checked to have parameters.

    Raises:
        XavinitError: a missing extra (naming the install line), a missing file or factory, a
            factory that raises or returns no torch module, a model without parameters.
    """
    kind = model_kind(spec)
    if kind != "factory" and model_args:
        raise XavinitError("--model-arg: applies only to a factory (package.module:callable)")
    if kind != "factory" and not Path(spec).is_file():
        raise XavinitError(f"--model {spec!r}: no such file")
    if kind == "onnx":
        return _load_onnx(spec)
    torch = _torch()
    if kind == "export":
        loaded = _load_export(torch, spec)
    else:
        module = _call_factory(torch, spec, model_args, seed)
        types = {name: _qualname(m) for name, m in module.named_modules()}
        loaded = Loaded("factory", module, types)
    if not any(True for _ in loaded.module.parameters()):
        raise XavinitError(f"--model {spec!r}: the model has no parameters; nothing to initialize")
    return loaded


def _qualname(module: Any) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _call_factory(torch: Any, spec: str, kwargs: dict[str, Any], seed: int) -> Any:
    module_name, _, attribute = spec.partition(":")
    folder = os.getcwd()
    if folder not in sys.path:  # as `python -m` and pytest do: the user's own folder first
        sys.path.insert(0, folder)
    try:
        with _quiet():
            target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise XavinitError(
                f"--model {spec!r}: no module {error.name!r} in the current folder or on PYTHONPATH"
            ) from None
        raise XavinitError(f"--model {spec!r}: importing it raised {_short(error)}") from None
    except Exception as error:
        raise XavinitError(f"--model {spec!r}: importing it raised {_short(error)}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise XavinitError(f"--model {spec!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise XavinitError(f"--model {spec!r}: {attribute} is not callable")
    torch.manual_seed(seed)
    try:
        with _quiet():
            model = target(**kwargs)
    except Exception as error:
        raise XavinitError(f"--model {spec!r}: the factory raised {_short(error)}") from None
    if not isinstance(model, torch.nn.Module):
        raise XavinitError(
            f"--model {spec!r}: the factory returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _load_export(torch: Any, path: str) -> Loaded:
    try:
        with _quiet():
            program = torch.export.load(path)
            module = torch.export.unflatten(program)
    except Exception as error:
        raise XavinitError(
            f"--model {path!r}: not a readable torch.export archive ({_short(error)})"
        ) from None
    types: dict[str, str] = {}
    for node in program.graph.nodes:
        for path_name, kind in (node.meta.get("nn_module_stack") or {}).values():
            types.setdefault(path_name, kind if isinstance(kind, str) else str(kind))
    placeholders = [
        node.meta.get("val")
        for node in program.graph.nodes
        if node.op == "placeholder"
        and node.name not in program.graph_signature.inputs_to_parameters
        and node.name not in program.graph_signature.inputs_to_buffers
    ]
    shape, batch, integer = None, None, False
    if placeholders and placeholders[0] is not None and hasattr(placeholders[0], "shape"):
        dims = [int(d) if isinstance(d, int) else None for d in placeholders[0].shape]
        if dims and all(d is not None for d in dims):
            batch, shape = dims[0], tuple(d for d in dims[1:] if d is not None)
        integer = not placeholders[0].dtype.is_floating_point
    return Loaded("export", module, types, input_shape=shape, batch=batch, integer_input=integer)


def _load_onnx(path: str) -> Loaded:
    try:
        onnx = importlib.import_module("onnx")
        importlib.import_module("onnxruntime")
    except ImportError:
        raise XavinitError(
            f"--model {path!r}: ONNX models need onnx and onnxruntime; install them with "
            f"{install('onnx')}"
        ) from None
    try:
        model = onnx.load(path)
    except Exception as error:
        raise XavinitError(
            f"--model {path!r}: not a readable ONNX file ({_short(error)})"
        ) from None
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if not inputs:
        raise XavinitError(f"--model {path!r}: the graph has no input")
    if not model.graph.initializer:
        raise XavinitError(f"--model {path!r}: the model has no parameters; nothing to initialize")
    tensor_type = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    shape = tuple(dims[1:]) if dims[1:] and all(d for d in dims[1:]) else None
    batch = dims[0] if dims and dims[0] else None
    integer = tensor_type.elem_type in (6, 7)  # INT32, INT64
    return Loaded("onnx", onnx=model, input_shape=shape, batch=batch, integer_input=integer)  # type: ignore[arg-type]


# --- inputs ------------------------------------------------------------------------------------


def model_inputs(kind: str, batch: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """``(batch, *shape)`` inputs: ``normal`` N(0, 1) and ``uniform`` U[-1, 1] float32, or
    ``tokens:VOCAB`` integer ids uniform on ``0..VOCAB-1`` (int64), from propagate's input
    stream of ``seed``."""
    rng = input_rng(seed, 0, INPUT_KEY)
    size = (batch, *shape)
    if kind.startswith("tokens:"):
        return rng.integers(0, int(kind.partition(":")[2]), size=size, dtype=np.int64)
    if kind == "uniform":
        return (rng.random(size, dtype=np.float32) * 2.0 - 1.0).astype(np.float32)
    return rng.standard_normal(size, dtype=np.float32)


# --- which modules ------------------------------------------------------------------------------


def block_names(types: dict[str, str]) -> list[str]:
    """The repeated blocks of a module tree: items ``parent.K`` of a list whose siblings
    include another of the same class and that have children of their own; of nested ones the
    innermost, except that a block made of leaves only inside another block is part of it (a
    ResNet's residual layers, not its stages nor the conv-norm-relu units inside a layer; a
    transformer's layers)."""
    children: dict[str, list[str]] = {}
    for name in types:
        if name:
            parent = name.rpartition(".")[0]
            children.setdefault(parent, []).append(name)
    candidates = []
    for items in children.values():
        indexed = [n for n in items if n.rpartition(".")[2].isdigit()]
        for name in indexed:
            same = sum(1 for n in indexed if types[n] == types[name])
            if same >= 2 and children.get(name):
                candidates.append(name)

    def shallow(name: str) -> bool:
        return all(not children.get(child) for child in children.get(name, []))

    kept = [
        name
        for name in candidates
        if not (shallow(name) and any(name.startswith(other + ".") for other in candidates))
    ]
    return [name for name in kept if not any(other.startswith(name + ".") for other in kept)]


def leaf_names(types: dict[str, str]) -> list[str]:
    """Modules without children, less the ones that change nothing (dropout, identity)."""
    parents = {name.rpartition(".")[0] for name in types if name}
    return [
        name
        for name, kind in types.items()
        if name and name not in parents and kind.rpartition(".")[2] not in SKIPPED_LEAVES
    ]


def activation_of(kind: str, module: Any = None) -> Activation | None:
    """The xavinit activation a module class (or ONNX op) is, or None; LeakyReLU, ELU and
    Hardtanh with their own parameters when the module is at hand."""
    short = kind.rpartition(".")[2].removeprefix("onnx:")
    if short in ACTIVATIONS:
        if short == "Softplus" and module is not None and getattr(module, "beta", 1.0) != 1.0:
            return None
        return get_activation(ACTIVATIONS[short])
    if module is None:
        return None
    if short == "LeakyReLU" and hasattr(module, "negative_slope"):
        return get_activation(f"leaky-relu:slope={float(module.negative_slope)!r}")
    if short == "ELU" and hasattr(module, "alpha"):
        return get_activation(f"elu:alpha={float(module.alpha)!r}")
    if short == "Hardtanh" and (
        getattr(module, "min_val", None),
        getattr(module, "max_val", None),
    ) == (-1.0, 1.0):
        return get_activation("hardtanh")
    return None


# --- statistics ---------------------------------------------------------------------------------


def channel_axis(shape: tuple[int, ...], kind: str) -> int:
    """Where the channels are: axis 1 of a 4-D or 5-D output (NCHW) and of convolution and
    normalization layers' 3-D outputs (NCL); else the last axis (a transformer's features)."""
    if len(shape) >= 4:
        return 1
    short = kind.rpartition(".")[2].removeprefix("onnx:")
    if len(shape) == 3 and re.search(r"(Conv|BatchNorm|InstanceNorm|Pool)\w*1d$|^Conv$", short):
        return 1
    return len(shape) - 1


def moments(y: Any, axis: int) -> tuple[float, float, float, float]:
    """``(mean, variance, average channel squared mean, average channel variance)`` of a torch
    tensor or numpy array: per channel ``c`` the mean ``m_c`` and variance ``v_c`` over every
    other axis (batch and positions), then ``mean_c m_c^2`` and ``mean_c v_c``; the overall
    variance is ``mean_c v_c + mean_c m_c^2 - (mean_c m_c)^2`` (every channel has as many
    entries). Brock, De and Smith (2021), section 3."""
    dims = tuple(d for d in range(y.ndim) if d != axis)
    if isinstance(y, np.ndarray):
        y64 = y.astype(np.float64)
        means = y64.mean(axis=dims) if dims else y64
        var_c = y64.var(axis=dims) if dims else np.zeros_like(y64)
        m = np.asarray(means, dtype=np.float64)
        v = np.asarray(var_c, dtype=np.float64)
    else:
        torch = _torch()
        with torch.no_grad():
            # (before, C, after): the positions after the channel axis are contiguous, so the
            # per (example, channel) moments are one fast reduction; then per channel by the law
            # of total variance (every example has as many positions):
            # v_c = mean_b v_bc + Var_b m_bc
            shape = tuple(y.shape)
            before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
            y3 = y.reshape(before, shape[axis], after)
            if after > 1:
                var_bc, mean_bc = torch.var_mean(y3, dim=2, correction=0)
                mean_t = mean_bc.mean(dim=0)
                var_t = var_bc.mean(dim=0) + mean_bc.var(dim=0, correction=0)
            else:
                var_t, mean_t = torch.var_mean(y3[:, :, 0], dim=0, correction=0)
            m = mean_t.double().cpu().numpy()
            v = var_t.double().cpu().numpy()
    m = m.reshape(-1)
    v = v.reshape(-1)
    mean = float(m.mean())
    sq_mean = float(np.mean(m * m))
    channel_var = float(v.mean())
    return mean, channel_var + sq_mean - mean * mean, sq_mean, channel_var


def _saturated(activation: Activation | None, y: Any) -> float | None:
    """The saturated fraction (:meth:`Activation.saturated`) of a bounded activation's output
    ``y`` (numpy or torch), over an evenly strided sample of :data:`SATURATION_SAMPLE` values."""
    limits = activation.limits if activation is not None else None
    if activation is None or limits is None or not all(map(math.isfinite, limits)):
        return None
    flat = y.reshape(-1)
    size = int(flat.size if isinstance(flat, np.ndarray) else flat.numel())
    sample = flat[:: max(1, math.ceil(size / SATURATION_SAMPLE))]
    if not isinstance(sample, np.ndarray):
        sample = sample.detach().double().cpu().numpy()
    return float(np.count_nonzero(activation.saturated(sample.astype(np.float64)))) / sample.size


def _mean_square(values: Any) -> float:
    """``E[v^2]`` of a numpy array (float64) or a torch tensor (its float32 2-norm, one pass)."""
    if not isinstance(values, np.ndarray):
        torch = _torch()
        with torch.no_grad():
            count = values.numel()
            norm = float(torch.linalg.vector_norm(values.detach().float()))
            return norm * norm / count if count else math.nan
    flat = values.reshape(-1).astype(np.float64)
    return float(flat @ flat) / flat.size if flat.size else math.nan


def _first_tensor(value: Any, torch: Any) -> Any:
    """The first floating-point tensor of a module's output (a tensor, a tuple or list, a dict
    or a ``ModelOutput``), or None."""
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    items = (
        value.values()
        if isinstance(value, dict)
        else value
        if isinstance(value, list | tuple)
        else ()
    )
    for item in items:
        found = _first_tensor(item, torch)
        if found is not None:
            return found
    return None


def _linear_fans(kind: str, weight: Any) -> int | None:
    short = kind.rpartition(".")[2]
    if short not in LINEAR_TYPES or weight is None or weight.ndim < 2:
        return None
    if short == "Conv1D":  # transformers' GPT-2 layer keeps W as (fan_in, fan_out)
        return int(weight.shape[0])
    return int(np.prod(weight.shape[1:]))


# --- torch --------------------------------------------------------------------------------------


def measure(
    loaded: Loaded, x: np.ndarray, depth_of: str, seed: int
) -> tuple[list[Record], str, float | None]:
    """Push ``x`` forward and a unit Gaussian gradient backward through ``loaded`` (torch) and
    measure every leaf or block (``depth_of``; block falls back to leaf when the model has no
    repeated blocks).

    Returns:
        ``(records in execution order, the granularity used, Var of the top gradient)``.

    Raises:
        XavinitError: the model refuses the input (one line with torch's reason).
    """
    torch = _torch()
    model = loaded.module
    with _quiet():
        model.eval()
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.train()
    names = block_names(loaded.types) if depth_of == "block" else []
    used = "block" if names else "leaf"
    if not names:
        names = leaf_names(loaded.types)
    modules = dict(model.named_modules())
    records: list[Record] = []
    by_output: dict[int, int] = {}
    calls: dict[str, int] = {}
    handles = []

    def hook(name: str, kind: str, module: Any, inputs: Any, output: Any) -> None:
        y = _first_tensor(output, torch)
        if y is None:
            return
        calls[name] = calls.get(name, 0) + 1
        label = name if calls[name] == 1 else f"{name}#{calls[name]}"
        x_in = _first_tensor(inputs, torch)
        with torch.no_grad():
            yd = y.detach()
            axis = channel_axis(tuple(yd.shape), kind)
            mean, var, sq, cvar = moments(yd.float(), axis)
            activation = activation_of(kind, module)
            record = Record(label, kind, used, tuple(yd.shape), axis, mean, var, sq, cvar)
            if activation is not None:
                record.activation = activation.spec
                record.saturated_fraction = _saturated(activation, yd)
                if x_in is not None and id(x_in) in by_output:
                    record.follows = by_output[id(x_in)]
            weight = getattr(module, "weight", None)
            fan_in = _linear_fans(kind, weight)
            if fan_in is not None and x_in is not None:
                bias = getattr(module, "bias", None)
                record.fan_in = fan_in
                record.weight_var = _mean_square(weight)
                record.bias_var = _mean_square(bias) if bias is not None else 0.0
                record.input_second_moment = _mean_square(x_in)
            if used == "block" and x_in is not None and x_in.shape == yd.shape:
                skip = x_in.detach().float()
                record.skip_var = float(torch.var(skip, correction=0))
                record.branch_var = float(torch.var(yd.float() - skip, correction=0))
        index = len(records)
        records.append(record)
        by_output[id(y)] = index
        record.output_id = y  # keeps the tensor alive, so its id is not reused
        if y.requires_grad:

            def grad_hook(g: Any, record: Record = record) -> None:
                with torch.no_grad():
                    gd = g.detach().float()
                    record.grad_var = float(torch.var(gd, correction=0)) if gd.numel() else None

            y.register_hook(grad_hook)

    for name in names:
        module = modules[name]
        kind = loaded.types.get(name, _qualname(module))
        handles.append(
            module.register_forward_hook(
                lambda m, i, o, name=name, kind=kind: hook(name, kind, m, i, o)
            )
        )
    model.zero_grad(set_to_none=True)
    tensor = torch.from_numpy(x)
    try:
        with _quiet():
            output = model(tensor)
            top = _first_tensor(output, torch)
            if top is None:
                raise XavinitError("the model's output holds no floating-point tensor")
            grad = torch.from_numpy(
                input_rng(seed, 0, LABEL_KEY).standard_normal(tuple(top.shape), dtype=np.float32)
            ).to(top.dtype)
            if top.requires_grad:
                top.backward(grad)
    except XavinitError:
        raise
    except Exception as error:
        shape = ",".join(map(str, x.shape[1:]))
        raise XavinitError(
            f"the model refuses a batch of {x.shape[0]} inputs of shape {shape} "
            f"({x.dtype}): {_short(error)}; set --input-shape, --batch or --input"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    batch = x.shape[0]
    for record in records:
        record.output_id = None
        module = modules[record.name.partition("#")[0]]
        recurse = record.kind == "block"
        for pname, param in module.named_parameters(recurse=recurse):
            grad_var = None
            if param.grad is not None:
                # dC/dtheta of the batch-mean cost is the batch-sum's / B
                grad_var = float(torch.var(param.grad.detach(), correction=0)) / batch**2
            record.params.append(
                {
                    "name": pname,
                    "shape": [int(d) for d in param.shape],
                    "weight_var": _mean_square(param),
                    "grad_var": grad_var,
                }
            )
    top_var = float(grad.double().var(correction=0)) if top.requires_grad else None
    return records, used, top_var


# --- onnx ---------------------------------------------------------------------------------------


MEASURED_OPS = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Relu", "LeakyRelu", "Tanh", "Sigmoid", "Elu",
    "Selu", "Gelu", "Softplus", "Softsign", "HardSigmoid", "Clip",
    "BatchNormalization", "LayerNormalization", "InstanceNormalization",
)  # fmt: skip
"""The ONNX operators whose outputs are measured (the layers of the graph)."""


def measure_onnx(loaded: Loaded, x: np.ndarray) -> list[Record]:
    """Forward statistics of every layer-like node (:data:`MEASURED_OPS`) of an ONNX model,
    each node's output added to the graph's outputs and the graph run by onnxruntime on the
    CPU. No backward: onnxruntime's inference sessions compute no gradients."""
    onnx = importlib.import_module("onnx")
    ort = importlib.import_module("onnxruntime")
    model = onnx.ModelProto()
    model.CopyFrom(loaded.onnx)
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in MEASURED_OPS and n.output and n.output[0]]
    wanted: list[str] = []
    for node in nodes:
        wanted.append(node.output[0])
        if node.op_type in LINEAR_TYPES and node.input and node.input[0] not in weights:
            wanted.append(node.input[0])
    existing = {o.name for o in graph.output}
    graph_inputs = {i.name for i in graph.input}
    for name in dict.fromkeys(wanted):
        if name not in existing and name not in graph_inputs:
            graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    feed_name = next(i.name for i in graph.input if i.name not in weights)
    try:
        with _quiet():
            session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            names = [o.name for o in session.get_outputs()]
            values = dict(zip(names, session.run(names, {feed_name: x}), strict=True))
    except Exception as error:
        shape = ",".join(map(str, x.shape[1:]))
        raise XavinitError(
            f"the model refuses a batch of {x.shape[0]} inputs of shape {shape} ({x.dtype}): "
            f"{_short(error)}; set --input-shape, --batch or --input"
        ) from None
    values[feed_name] = x
    records: list[Record] = []
    by_output: dict[str, int] = {}
    numpy_helper = importlib.import_module("onnx.numpy_helper")
    for node in nodes:
        y = np.asarray(values.get(node.output[0]))
        if y.dtype.kind != "f" or y.ndim == 0:
            continue
        kind = f"onnx:{node.op_type}"
        axis = channel_axis(y.shape, kind)
        mean, var, sq, cvar = moments(y, axis)
        label = node.name or node.output[0]
        record = Record(label, kind, "leaf", tuple(y.shape), axis, mean, var, sq, cvar)
        activation = activation_of(kind)
        if node.op_type == "LeakyRelu":
            alpha = next((a.f for a in node.attribute if a.name == "alpha"), 0.01)
            activation = get_activation(f"leaky-relu:slope={float(alpha)!r}")
        if activation is not None:
            record.activation = activation.spec
            record.saturated_fraction = _saturated(activation, y)
            if node.input and node.input[0] in by_output:
                record.follows = by_output[node.input[0]]
        if node.op_type in LINEAR_TYPES and len(node.input) > 1 and node.input[1] in weights:
            weight = numpy_helper.to_array(weights[node.input[1]])
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            if node.op_type in ("Gemm", "MatMul") and not (node.op_type == "Gemm" and trans_b):
                fan_in = int(weight.shape[0]) if weight.ndim == 2 else None
            else:
                fan_in = int(np.prod(weight.shape[1:])) if weight.ndim >= 2 else None
            source = values.get(node.input[0])
            if fan_in is not None and source is not None:
                bias_name = node.input[2] if len(node.input) > 2 else ""
                record.fan_in = fan_in
                record.weight_var = _mean_square(weight)
                record.bias_var = (
                    _mean_square(numpy_helper.to_array(weights[bias_name]))
                    if bias_name in weights
                    else 0.0
                )
                record.input_second_moment = _mean_square(np.asarray(source))
        by_output[node.output[0]] = len(records)
        records.append(record)
    return records


# --- the verdict --------------------------------------------------------------------------------


def drift(
    names: list[str], values: list[float | None], max_drift: float, from_top: bool
) -> tuple[float | None, str | None, bool]:
    """The drift of one variance along the measured modules, as ``propagate --model`` judges
    it (and :mod:`xavinit.core.evidence` re-judges a saved result).

    Forward (``from_top`` False): ``ratio = v_last / v_first`` and ``beyond_from`` the first
    module, from the input, whose ``v / v_first`` leaves ``[1/max_drift, max_drift]``.
    Backward (``from_top`` True): ``ratio = v_first / v_last`` (the gradient flows from the
    last module down) and ``beyond_from`` the first module, from the top, whose
    ``v / v_last`` leaves the band. Modules without a value (None) are left out.

    Returns:
        ``(ratio or None when the reference is 0 or not finite, beyond_from, passed)``;
        ``passed`` when the ratio lies within the band.
    """
    pairs = [(n, v) for n, v in zip(names, values, strict=True) if v is not None]
    if not pairs:
        return None, None, False
    order = list(reversed(pairs)) if from_top else pairs
    reference = order[0][1]
    if not (math.isfinite(reference) and reference > 0):
        return None, order[0][0], False
    beyond = None
    for name, value in order:
        relative = value / reference
        if not (math.isfinite(relative) and 1.0 / max_drift <= relative <= max_drift):
            beyond = name
            break
    ratio = order[-1][1] / reference  # last over first forward, first over last backward
    passed = bool(math.isfinite(ratio) and 1.0 / max_drift <= ratio <= max_drift)
    return ratio, beyond, passed
