"""Keras files with ``h5py``: ``.keras`` (a zip of ``config.json`` and ``model.weights.h5``),
Keras 3 ``save_weights`` files (``x.weights.h5``: the same HDF5 tree without a config) and
legacy ``.h5`` (``model.save('x.h5')``, tf.keras ``save_weights('x.h5')``).

**Every dataset of the weights file is listed**, never dropped: the whole HDF5 tree is walked,
and a dataset the reader cannot place in the model still gets listed, under its HDF5 path and
without hints. Datasets are read one at a time (memory-mapped where the file stores them
contiguously, uncompressed).

Names
-----
A tensor's name is the chain of layer names from the model down to the layer that owns the
variable, then the variable's name::

    dense/kernel                                  a model's Dense layer
    lstm/lstm_cell/kernel                         an LSTM's cell
    bidirectional/forward_lstm/lstm_cell/bias     a Bidirectional's forward LSTM
    multi_head_attention/query/kernel             MultiHeadAttention's query projection
    time_distributed/dense/kernel                 the layer a TimeDistributed wraps
    sub/dense_1/kernel                            a layer of the nested model ``sub``

That is Keras' own ``variable.path`` wherever Keras builds a layer inside its parent (cells,
wrapped layers, attention projections, Sequential sub-models); a functional sub-model's
layers get the sub-model's name in front, which their Keras path lacks. In a ``.keras`` file
the layer names are the ``name`` attribute Keras 3 writes on each ``vars`` group (else the saved
key), and a variable's name comes from its position ``vars/<i>`` and the layer's class
(:data:`VARIABLES`, the order of each layer's ``save_own_variables``, optional variables such
as a bias decided by the layer's config). A layer of a class this reader does not know (a
custom layer, a preprocessing layer) lists ``<layer>/vars/<i>``; so does a known class whose
saved count fits none of its variable lists. The class of a layer comes from ``config.json``;
without one (``save_weights`` files), from the saved key (Keras keys list members by class:
``conv2d``, ``conv2d_1``), the key of a known attribute (an RNN's ``cell``, MultiHeadAttention's
``query_dense``) or a default layer name (``dense_3``), the variable count checked either way.
A legacy ``.h5`` stores the variable paths themselves (``weight_names``); they are used from the
top-level layer's name on (a Sequential model's paths start with the model's own name, which
names here never do), ``:0`` dropped, that name put in front where the path lacks it.
Optimizer state is listed too (``optimizer/vars/<i>``, legacy ``optimizer_weights/...``), role
``other``. Names are unique: a clash (only possible with hand-made files) falls back to the
HDF5 path of every tensor in it.

Hints (:class:`~xavinit.formats.base.TensorInfo`)
-------------------------------------------------
Keras stores kernels ``in-out``: Dense ``(in, out)``, Conv ``(*kernel, in/groups, out)``
(``groups`` from the config), DepthwiseConv ``(*kernel, in, multiplier)`` (``depthwise``),
SeparableConv a depthwise kernel and a pointwise ``(1.., in*multiplier, out)``, transposed
convs ``(*kernel, out, in)`` (said in ``note``). LSTM/GRU/SimpleRNN cells (inside RNN,
Bidirectional, StackedRNNCells too): ``kernel`` ``(in, gates*units)`` and ``recurrent_kernel``
``(units, gates*units)`` have role ``recurrent``, the bias (GRU ``reset_after``: ``(2,
3*units)``) belongs to the kernel. EinsumDense kernels get ``fan_axes`` from the layer's
``equation`` (role ``attention`` inside MultiHeadAttention and GroupedQueryAttention, whose
projections' axes are fixed: query/key/value ``(in, heads, dim)`` -> ``((0,), (1, 2))``, output
``(heads, dim, out)`` -> ``((0, 1), (2,))``). Norm layers' variables (moving statistics included)
are ``norm``. Quantized Dense, EinsumDense and Embedding layers (``model.quantize``: int8,
int4, float8, gptq) name their extra variables; integer kernels and the scales are ``other``.
:func:`keras_fans` gives Keras' own fans, which its default initializers use.

Hostile files: external links, external or virtual datasets are refused (nothing outside the
file is ever read); soft links are not followed (their targets inside the file are listed
where they live); hard-link cycles are visited once; nesting and object counts are bounded; a
dataset's declared size is checked against the bytes the file holds and against memory before
anything is allocated; ``config.json`` is only hints, so one that is too large, too deep or
malformed is ignored (every tensor's ``note`` says so) and the weights are still listed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.fileio import ZIP_EXPANSION_LIMIT, check_zip_sizes
from xavinit.formats.base import (
    NUMERIC_KINDS,
    TensorInfo,
    TensorSource,
    bfloat16_to_float32,
    check_extent,
    refuse_dtype,
    require,
)
from xavinit.resources import require_memory

MAX_DEPTH = 64
"""Deepest HDF5 group nesting walked (a Keras model nests a few levels per sub-model)."""

MAX_OBJECTS = 200_000
"""Most HDF5 groups and datasets walked (a 1000-layer model has a few thousand)."""

MAX_CONFIG_BYTES = 64 << 20
"""A ``config.json`` (or legacy ``model_config``) larger than this is ignored."""

MAX_CONFIG_DEPTH = 256
"""A config nested deeper than this (JSON levels) is ignored."""

_NAME_LIMIT = 256

VARIABLES: dict[str, tuple[tuple[str, str | None, bool], ...]] = {}
"""Each known layer class's variables in the order its ``save_own_variables`` numbers them
(``vars/0``, ``vars/1``...): ``(name, config flag, default)``; a variable with a flag is saved
only when the layer's config has the flag true (``use_bias``...). Read from Keras 3.15's
sources: ``Layer.save_own_variables`` saves ``_trainable_variables + _non_trainable_variables``
in creation order; Dense, EinsumDense, Embedding and the convolutions save their own list."""

_KERNEL_BIAS = (("kernel", None, True), ("bias", "use_bias", True))
_CELL = (("kernel", None, True), ("recurrent_kernel", None, True), ("bias", "use_bias", True))
for _rank in ("1D", "2D", "3D"):
    VARIABLES[f"Conv{_rank}"] = _KERNEL_BIAS
    VARIABLES[f"Conv{_rank}Transpose"] = _KERNEL_BIAS
    VARIABLES[f"DepthwiseConv{_rank}"] = _KERNEL_BIAS
    VARIABLES[f"SeparableConv{_rank}"] = (
        ("depthwise_kernel", None, True),
        ("pointwise_kernel", None, True),
        ("bias", "use_bias", True),
    )
VARIABLES.update(
    {
        "Dense": _KERNEL_BIAS,
        "EinsumDense": (("kernel", None, True), ("bias", "bias_axes", False)),
        "Embedding": (("embeddings", None, True),),
        "BatchNormalization": (
            ("gamma", "scale", True),
            ("beta", "center", True),
            ("moving_mean", None, True),
            ("moving_variance", None, True),
            ("moving_stddev", "renorm", False),
            ("renorm_mean", "renorm", False),
            ("renorm_stddev", "renorm", False),
        ),
        "LayerNormalization": (("gamma", "scale", True), ("beta", "center", True)),
        "GroupNormalization": (("gamma", "scale", True), ("beta", "center", True)),
        "RMSNormalization": (("scale", None, True),),
        "LSTMCell": _CELL,
        "GRUCell": _CELL,
        "SimpleRNNCell": _CELL,
        "ConvLSTMCell": _CELL,
    }
)

_QUANTIZED = {
    # Dense and EinsumDense ``variable_serialization_spec`` per quantization mode (Keras 3.15);
    # a flag starting with ``~`` is not in the config (decided by the saved count).
    "int8": (("kernel", None, True), ("bias", "use_bias", True), ("kernel_scale", None, True)),
    "int4": (
        ("kernel", None, True),
        ("bias", "use_bias", True),
        ("kernel_scale", None, True),
        ("kernel_zero", "~subchannel", False),
        ("g_idx", "~subchannel", False),
    ),
    "float8": (
        ("kernel", None, True),
        ("bias", "use_bias", True),
        *(
            (name, None, True)
            for name in (
                "inputs_scale",
                "inputs_amax_history",
                "kernel_scale",
                "kernel_amax_history",
                "outputs_grad_scale",
                "outputs_grad_amax_history",
            )
        ),
    ),
    "gptq": (
        ("bias", "use_bias", True),
        ("quantized_kernel", None, True),
        ("kernel_scale", None, True),
        ("kernel_zero", "~subchannel", False),
        ("g_idx", "~subchannel", False),
    ),
}
_QUANTIZED_EMBEDDING = {
    "int8": (("embeddings", None, True), ("embeddings_scale", None, True)),
    "int4": (
        ("embeddings", None, True),
        ("embeddings_scale", None, True),
        ("embeddings_zero", "~subchannel", False),
        ("g_idx", "~subchannel", False),
    ),
}

NORMS = ("LayerNormalization", "BatchNormalization", "GroupNormalization", "RMSNormalization")
RNN_CELLS = {
    "LSTM": "LSTMCell",
    "GRU": "GRUCell",
    "SimpleRNN": "SimpleRNNCell",
    "ConvLSTM1D": "ConvLSTMCell",
    "ConvLSTM2D": "ConvLSTMCell",
    "ConvLSTM3D": "ConvLSTMCell",
}
"""Recurrent layers whose ``cell`` Keras builds itself (its class is not in the config)."""

GATES = {
    "LSTMCell": "4 gates (i, f, c, o)",
    "GRUCell": "3 gates (z, r, h)",
    "ConvLSTMCell": "4 gates (i, f, c, o)",
}
_GATE_COUNT = {"LSTMCell": 4, "GRUCell": 3, "ConvLSTMCell": 4, "SimpleRNNCell": 1}
ATTENTION = ("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention")
_PROJECTIONS = {
    # saved attribute key (v3) or layer name (legacy) -> the projection's place
    "query_dense": "query",
    "key_dense": "key",
    "value_dense": "value",
    "gate_dense": "gate",
    "output_dense": "output",
    "query": "query",
    "key": "key",
    "value": "value",
    "gate": "gate",
    "attention_output": "output",
}
_MODELS = ("Functional", "Sequential", "Model")


def snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: ``DepthwiseConv2D`` -> ``depthwise_conv2d``."""
    name = re.sub(r"\W+", "", name)
    intermediate = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


_KNOWN = (*VARIABLES, *RNN_CELLS, "RNN", "StackedRNNCells", "Bidirectional", "TimeDistributed",
          *ATTENTION, *_MODELS)  # fmt: skip
_BY_SNAKE = {snake_case(kind): kind for kind in _KNOWN}


def keras_fans(
    shape: Sequence[int],
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
) -> tuple[int, int]:
    """``(fan_in, fan_out)`` as Keras computes them for its variance-scaling initializers
    (glorot, he, lecun): ``compute_fans`` in ``keras/src/initializers/random_initializers.py``
    (Keras 3.15), restated here.

    - with ``input_axes`` and ``output_axes`` (Keras 3.15's EinsumDense passes its kernel's,
      MultiHeadAttention's projections included): the products of the shape over those axes;
    - a scalar: ``(1, 1)``; a vector ``(n,)``: ``(n, n)``; a matrix ``(a, b)``: ``(a, b)``;
    - more axes, read as a conv kernel ``(*kernel, in, out)``: with the receptive field
      ``rf = prod(shape[:-2])``, ``(shape[-2] * rf, shape[-1] * rf)``. Keras applies this to
      any >2-D kernel: to grouped and depthwise kernels (whose per-unit fans differ, see
      :mod:`xavinit.core.roles`), to transposed convs ``(*kernel, out, in)`` (fans swapped), and to
      attention kernels drawn by Keras versions whose EinsumDense passed no axes.
    """
    dims = [int(n) for n in shape]
    if input_axes is not None and output_axes is not None:
        return math.prod(dims[a] for a in input_axes), math.prod(dims[a] for a in output_axes)
    if not dims:
        return 1, 1
    if len(dims) == 1:
        return dims[0], dims[0]
    if len(dims) == 2:
        return dims[0], dims[1]
    field = math.prod(dims[:-2])
    return dims[-2] * field, dims[-1] * field


_EQUATION = re.compile(
    r"(?:\.\.\.)?([a-zA-Z]*)(?:\.\.\.)?,([a-zA-Z]+)->(?:\.\.\.)?([a-zA-Z]*)(?:\.\.\.)?"
)


def einsum_fan_axes(
    equation: str, ndim: int
) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] | None:
    """``((input axes, output axes), shared axes)`` of an EinsumDense kernel from its equation.

    ``"abc,cde->abde"``: the kernel ``cde``; ``c`` is only in the input subscripts (an input
    axis), ``d`` and ``e`` only in the output's (output axes): ``((0,), (1, 2))``. A kernel
    letter in both the input and the output indexes independent copies (in neither list; they
    are returned as ``shared``). None: not an equation of an ``ndim``-axis kernel.
    """
    match = _EQUATION.fullmatch(equation.replace(" ", ""))
    if match is None or len(match.group(2)) != ndim:
        return None
    inputs, kernel, outputs = set(match.group(1)), match.group(2), set(match.group(3))
    into = tuple(i for i, c in enumerate(kernel) if c in inputs and c not in outputs)
    out = tuple(i for i, c in enumerate(kernel) if c in outputs and c not in inputs)
    shared = tuple(i for i, c in enumerate(kernel) if c in inputs and c in outputs)
    return (into, out), shared


# --- reading an untrusted config --------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A usable layer name: a short string without ``/`` (else None)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and 0 < len(value) <= _NAME_LIMIT and "/" not in value:
        return value
    return None


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Iterator[Any] = iter(node.values())
        elif isinstance(node, list):
            children = iter(node)
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_CONFIG_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_config(raw: bytes | str) -> tuple[dict[str, Any] | None, str]:
    """A model config from JSON text: ``(config, "")``, or ``(None, why it is ignored)``."""
    if len(raw) > MAX_CONFIG_BYTES:
        return None, f"larger than {MAX_CONFIG_BYTES >> 20} MiB"
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        config = json.loads(text)
    except RecursionError:
        return None, f"nested deeper than {MAX_CONFIG_DEPTH} levels"
    except (ValueError, UnicodeDecodeError):
        return None, "not valid JSON"
    if _depth(config) > MAX_CONFIG_DEPTH:
        return None, f"nested deeper than {MAX_CONFIG_DEPTH} levels"
    if not isinstance(config, dict):
        return None, "not a JSON object"
    return config, ""


@dataclass
class _Layer:
    """What the reader knows of one saved layer (or model, cell, projection)."""

    kind: str | None
    config: dict[str, Any]
    label: str
    parent: _Layer | None = None
    slot: str = ""
    guessed: bool = False

    @property
    def labels(self) -> list[str]:
        chain: list[str] = []
        node: _Layer | None = self
        while node is not None and node.parent is not None:
            chain.append(node.label)
            node = node.parent
        return chain[::-1]


def _node(item: Any, label: str | None = None, parent: _Layer | None = None) -> _Layer:
    """A layer from a config item ``{class_name, config}``."""
    item = _dict(item)
    config = _dict(item.get("config"))
    kind = item.get("class_name") if isinstance(item.get("class_name"), str) else None
    name = _text(config.get("name")) or _text(item.get("name")) or label or "?"
    return _Layer(kind, config, label or name, parent)


def _sublayers(config: dict[str, Any], key: str = "layers") -> list[dict[str, Any]]:
    items = config.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _item_name(item: dict[str, Any]) -> str | None:
    return _text(_dict(item.get("config")).get("name")) or _text(item.get("name"))


def _by_saved_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The keys Keras 3 saves a list of layers under (by class, in order: ``conv2d``,
    ``conv2d_1``...) mapped to their config items."""
    keys: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for item in items:
        if not isinstance(item.get("class_name"), str):
            continue
        base = snake_case(item["class_name"])
        count = seen.get(base, -1) + 1
        seen[base] = count
        keys.setdefault(base if count == 0 else f"{base}_{count}", item)
    return keys


def _guess(name: str | None) -> str | None:
    """A known class from a saved key or a default layer name (``conv2d_3`` -> ``Conv2D``)."""
    if not name:
        return None
    base = re.sub(r"_\d+$", "", name)
    return _BY_SNAKE.get(base) or _BY_SNAKE.get(name)


def _wrapped(parent: _Layer, key: str) -> dict[str, Any] | None:
    """The config item of a layer a wrapper holds (Bidirectional's directions, TimeDistributed's
    layer, an RNN's cell), by the saved key or legacy name."""
    config = parent.config
    if parent.kind == "Bidirectional":
        backward = key == "backward_layer" or key.startswith("backward_")
        if backward and isinstance(config.get("backward_layer"), dict):
            return _dict(config["backward_layer"])
        if backward or key == "forward_layer" or key.startswith("forward_"):
            return _dict(config.get("layer"))
    if parent.kind == "RNN" and isinstance(config.get("cell"), dict):
        return _dict(config["cell"])
    if key == "layer" and isinstance(config.get("layer"), dict):
        return _dict(config["layer"])
    return None


def _projection(attention: _Layer) -> dict[str, Any]:
    """The config of an attention layer's EinsumDense projection (built by the layer itself):
    a bias where the layer has ``use_bias``, its dtype policy."""
    if attention.guessed:
        return {}
    bias = attention.config.get("use_bias", True) is not False
    return {"dtype": attention.config.get("dtype"), "bias_axes": "" if bias else None}


def _child(parent: _Layer, key: str, name: str | None, container: str | None) -> _Layer:
    """The layer saved under ``key`` (an attribute of ``parent``, or a member of its list
    attribute ``container``), named ``name`` by Keras when the file says."""
    kind = parent.kind
    if container is None:
        if kind in RNN_CELLS and key == "cell":
            return _Layer(
                RNN_CELLS[kind], parent.config, name or key, parent, guessed=parent.guessed
            )
        if kind in ATTENTION and key.lstrip("_") in _PROJECTIONS:
            slot = _PROJECTIONS[key.lstrip("_")]
            return _Layer("EinsumDense", _projection(parent), name or slot, parent, slot=slot,
                          guessed=parent.guessed)  # fmt: skip
        item = _wrapped(parent, key)
        if item:
            layer = _node(item, name or _item_name(item) or key, parent)
            layer.label = name or layer.label
            return layer
    else:
        key_items = "cells" if kind == "StackedRNNCells" else "layers"
        items = _sublayers(parent.config, key_items) if container == key_items else []
        if items:
            named = {_item_name(item): item for item in items}
            item = named.get(name) if name else None
            if item is None:
                item = _by_saved_key(items).get(key)
            if item is not None:
                return _node(item, name or _item_name(item), parent)
        guessed = _guess(key)
        if guessed is not None:
            return _Layer(guessed, {}, name or key, parent, guessed=True)
    return _Layer(_guess(name), {}, name or key, parent, guessed=True)


def _legacy_child(parent: _Layer, name: str) -> _Layer:
    """The sublayer ``name`` of ``parent`` in a legacy weight path (``lstm/lstm_cell/kernel``)."""
    kind = parent.kind
    if kind in RNN_CELLS:
        return _Layer(RNN_CELLS[kind], parent.config, name, parent, guessed=parent.guessed)
    if kind in ATTENTION and name in _PROJECTIONS:
        return _Layer("EinsumDense", _projection(parent), name, parent, slot=_PROJECTIONS[name],
                      guessed=parent.guessed)  # fmt: skip
    for key in ("layers", "cells"):
        for item in _sublayers(parent.config, key):
            if _item_name(item) == name:
                return _node(item, name, parent)
    wrapped = _wrapped(parent, name)
    if wrapped:
        return _node(wrapped, name, parent)
    return _Layer(_guess(name), {}, name, parent, guessed=True)


# --- which variable is which ------------------------------------------------------------------


def _quantization(config: dict[str, Any]) -> str | None:
    """The quantization mode of a layer's dtype policy (Keras 3.15 writes ``{"class_name":
    "QuantizedDTypePolicy", "config": {"mode": "int8", ...}}``; earlier, ``int8_from_float32``)."""
    policy = config.get("dtype")
    mode: Any = None
    name: Any = policy
    if isinstance(policy, dict):
        inner = _dict(policy.get("config"))
        mode, name = inner.get("mode"), inner.get("name")
    if mode is None and isinstance(name, str) and "_from_" in name:
        mode = name.split("_from_")[0]
    return mode if isinstance(mode, str) and mode in _QUANTIZED else None


def _spec(layer: _Layer) -> tuple[tuple[str, str | None, bool], ...] | None:
    kind = layer.kind or ""
    mode = _quantization(layer.config)
    if mode is not None and kind in ("Dense", "EinsumDense"):
        spec = _QUANTIZED[mode]
        if kind == "EinsumDense":
            spec = tuple((n, "bias_axes" if f == "use_bias" else f, d) for n, f, d in spec)
        return spec
    if mode is not None and kind == "Embedding":
        return _QUANTIZED_EMBEDDING.get(mode)
    return VARIABLES.get(kind)


def _flag(config: dict[str, Any], flag: str, default: bool) -> bool | None:
    if flag.startswith("~") or flag not in config:
        return None if flag.startswith("~") or not config else default
    value = config[flag]
    if flag == "bias_axes":
        return value is not None
    return bool(value) if isinstance(value, (bool, int)) else default


def variable_names(layer: _Layer, shapes: Sequence[tuple[int, ...]]) -> list[str] | None:
    """The names of a layer's saved variables ``vars/0..n-1`` (shapes ``shapes``), or None when
    the class is unknown or no list of its variables fits what was saved."""
    spec = _spec(layer)
    if spec is None:
        return None
    flags = sorted({f for _, f, _ in spec if f is not None})
    known = {f: _flag(layer.config, f, d) for _, f, d in spec if f is not None}
    fitting: list[list[str]] = []
    for values in itertools.product((True, False), repeat=len(flags)):
        chosen = dict(zip(flags, values, strict=True))
        if any(known[f] is not None and known[f] != chosen[f] for f in flags):
            continue
        names = [n for n, f, _ in spec if f is None or chosen[f]]
        if len(names) == len(shapes) and names not in fitting and _plausible(names, shapes):
            fitting.append(names)
    if len(fitting) != 1 and layer.config and not layer.guessed:
        # The config's flags and the file disagree: try every list (a hand-edited config).
        for values in itertools.product((True, False), repeat=len(flags)):
            chosen = dict(zip(flags, values, strict=True))
            names = [n for n, f, _ in spec if f is None or chosen[f]]
            if len(names) == len(shapes) and names not in fitting and _plausible(names, shapes):
                fitting.append(names)
    return fitting[0] if len(fitting) == 1 else None


def _plausible(names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> bool:
    """Kernels have two axes or more, embeddings two."""
    for name, shape in zip(names, shapes, strict=True):
        if name.endswith("kernel") and name != "quantized_kernel" and len(shape) < 2:
            return False
        if name == "embeddings" and len(shape) != 2:
            return False
    return True


@dataclass
class _Hints:
    role: str | None = None
    groups: int | None = None
    depthwise: bool = False
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    notes: list[str] = field(default_factory=list)
    owner: str | None = None
    """The variable of the same layer a bias belongs to."""


def _units(config: dict[str, Any], key: str) -> int | None:
    value = config.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def hints(layer: _Layer | None, variable: str, shape: tuple[int, ...]) -> _Hints:
    """Role, groups, fan axes and notes of one variable from its layer's class and config."""
    if layer is None or layer.kind is None:
        return _Hints()
    kind, config = layer.kind, layer.config
    if kind == "optimizer":
        return _Hints(
            "other", notes=[f"optimizer state ({layer.label}), not a weight of the model"]
        )
    if kind in NORMS:
        return _Hints("norm")
    if kind not in VARIABLES:
        return _Hints()
    mode = _quantization(config) if kind in ("Dense", "EinsumDense", "Embedding") else None
    if variable == "bias":
        owner = "pointwise_kernel" if kind.startswith("SeparableConv") else "kernel"
        found = _Hints("bias", owner=owner)
        if kind == "GRUCell" and len(shape) == 2 and shape[0] == 2:
            found.notes.append(
                "GRU reset_after bias: row 0 the input bias, row 1 the recurrent bias"
            )
        return found
    if mode is not None and (mode != "float8" or variable not in ("kernel",)):
        if variable in ("kernel", "embeddings", "quantized_kernel"):
            return _Hints("other", notes=[f"{mode}-quantized: integer codes, not drawn weights"])
        return _Hints("other", notes=[f"{mode} quantization state"])
    if kind in _GATE_COUNT and variable in ("kernel", "recurrent_kernel"):
        conv = kind == "ConvLSTMCell"
        found = _Hints("conv" if conv else "recurrent")
        gates = _GATE_COUNT[kind]
        if gates > 1 and shape and shape[-1] % gates == 0:
            found.notes.append(
                f"{kind.removesuffix('Cell')}: {GATES[kind]} of {shape[-1] // gates} "
                f"{'filters' if conv else 'units'} side by side on the last axis"
            )
        return found
    if kind == "EinsumDense":
        return _einsum_hints(layer, shape)
    if kind == "Embedding":
        return _Hints("embedding")
    if kind == "Dense":
        return _Hints("dense")
    if kind.startswith("DepthwiseConv") or variable == "depthwise_kernel":
        return _Hints("conv", depthwise=True)
    if kind.startswith("Conv") and kind.endswith("Transpose"):
        return _Hints(
            "conv",
            notes=[
                "transposed conv kernel (*kernel, out, in): the last axis is the layer's input "
                "channels, the one before its output channels"
            ],
        )
    if kind.startswith(("Conv", "SeparableConv")):
        if variable != "kernel":
            return _Hints("conv", groups=1)
        groups = _units(config, "groups")
        return _Hints("conv", groups=groups or (None if layer.guessed else 1))
    return _Hints()


def _einsum_hints(layer: _Layer, shape: tuple[int, ...]) -> _Hints:
    ndim = len(shape)
    if layer.slot:
        found = _Hints("attention")
        if ndim >= 3 and layer.slot == "output":
            found.fan_axes = ((0, 1), tuple(range(2, ndim)))
        elif ndim >= 2 and layer.slot != "output":
            found.fan_axes = ((0,), tuple(range(1, ndim)))
        return found
    found = _Hints("dense")
    equation = layer.config.get("equation")
    parsed = einsum_fan_axes(equation, ndim) if isinstance(equation, str) else None
    if parsed is not None:
        found.fan_axes, shared = parsed
        if shared:
            found.notes.append(
                f"axes {list(shared)} of {equation!r} are in the input and the output: "
                "independent copies here; Keras' initializer counts them as output axes"
            )
    return found


# --- the reader -------------------------------------------------------------------------------


@dataclass
class _Entry:
    path: str
    """The dataset's HDF5 path (its ``key``)."""
    name: str
    dataset: Any
    layer: _Layer | None = None
    variable: str = ""
    group: str = ""
    """The HDF5 path of the layer's ``vars`` group (or legacy layer group), to find owners."""


def _natural(key: str) -> tuple[str, int, str]:
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    assert match is not None
    return match.group(1), int(match.group(2)) if match.group(2) else -1, key


_FIRST = ("layers", "forward_layer", "backward_layer", "query_dense", "key_dense",
          "value_dense", "gate_dense", "output_dense")  # fmt: skip


def _saveable_order(key: str) -> tuple[int, str]:
    """Keras saves a model's ``layers`` first, then attributes by name, private ones last; a
    Bidirectional's directions and an attention layer's projections are put in their order."""
    bare = key.lstrip("_")
    if bare in _FIRST:
        return _FIRST.index(bare), ""
    return len(_FIRST), f"~{key}" if key.startswith("_") else key


class KerasSource(TensorSource):
    """Every variable of a ``.keras`` or Keras ``.h5`` file, layer by layer."""

    format = "keras"

    def __init__(self, path: str, zipped: bool) -> None:
        super().__init__(path)
        self._h5py = require("h5py", "Keras files")
        self._folder: str | None = None
        self._file: Any = None
        self._config_note = ""
        config: dict[str, Any] | None = None
        weights_path = path
        try:
            if zipped:
                weights_path, config = self._unzip(path)
            self._file = self._h5py.File(weights_path, "r")
            self._size = os.path.getsize(weights_path)
            self._weights_path = weights_path
        except XavinitError:
            self.close()
            raise
        except (OSError, ValueError, KeyError, EOFError, zlib.error, zipfile.BadZipFile) as error:
            self.close()
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise XavinitError(f"{path}: not a readable Keras file ({first})") from None
        try:
            self.tensors = self._list(config, zipped)
        except XavinitError:
            self.close()
            raise
        except Exception as error:  # a hostile file: whatever h5py raises is one line
            self.close()
            raise XavinitError(
                f"{path}: not a readable Keras file ({type(error).__name__})"
            ) from None

    # -- opening -------------------------------------------------------------------------------

    def _unzip(self, path: str) -> tuple[str, dict[str, Any] | None]:
        """Extract ``model.weights.h5`` (h5py needs a real file) and parse ``config.json``."""
        with zipfile.ZipFile(path) as archive:
            check_zip_sizes(archive, "weights", path)
            config: dict[str, Any] | None = None
            try:
                member = archive.getinfo("config.json")
            except KeyError:
                self._config_note = "the archive has no config.json"
            else:
                if member.file_size > MAX_CONFIG_BYTES:
                    self._config_note = f"config.json larger than {MAX_CONFIG_BYTES >> 20} MiB"
                else:
                    config, why = parse_config(archive.read(member))
                    if config is None:
                        self._config_note = f"config.json {why}"
            self._folder = tempfile.mkdtemp(prefix="xavinit-keras-")
            target = os.path.join(self._folder, "model.weights.h5")
            with archive.open("model.weights.h5") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        return target, config

    # -- walking the HDF5 tree -----------------------------------------------------------------

    def _children(self, group: Any, where: str) -> list[tuple[str, Any]]:
        """A group's hard-linked members; soft links are skipped, external links refused."""
        h5py = self._h5py
        found = []
        for key in group:
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise XavinitError(
                    f"{self.path}: HDF5 external link {where}{key} points into another file "
                    f"({link.filename!r}); xavinit reads only the file it is given"
                )
            if not isinstance(link, h5py.HardLink):
                continue  # a soft link: its target, if inside the file, is listed where it is
            found.append((key, group[key]))
        return found

    def _datasets(self) -> dict[str, Any]:
        """Every dataset of the file by HDF5 path, each object once, walked without recursion."""
        h5py = self._h5py
        datasets: dict[str, Any] = {}
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[Any, str, int]] = [(self._file, "/", 0)]
        count = 0
        while stack:
            group, where, depth = stack.pop()
            for key, obj in sorted(self._children(group, where), reverse=True):
                info = h5py.h5o.get_info(obj.id)
                identity = (info.fileno, info.addr)
                if identity in seen:
                    continue
                seen.add(identity)
                count += 1
                if count > MAX_OBJECTS:
                    raise XavinitError(
                        f"{self.path}: more than {MAX_OBJECTS} HDF5 objects; not a Keras file "
                        "xavinit reads"
                    )
                path = f"{where}{key}"
                if isinstance(obj, h5py.Dataset):
                    self._check_dataset(obj, path)
                    datasets[path] = obj
                elif isinstance(obj, h5py.Group):
                    if depth + 1 > MAX_DEPTH:
                        raise XavinitError(
                            f"{self.path}: HDF5 groups nested deeper than {MAX_DEPTH} levels "
                            f"at {path}; not a Keras file xavinit reads"
                        )
                    stack.append((obj, f"{path}/", depth + 1))
        return dict(sorted(datasets.items()))

    def _check_dataset(self, dataset: Any, path: str) -> None:
        if dataset.is_virtual:
            raise XavinitError(
                f"{self.path}: dataset {path} is an HDF5 virtual dataset (its data lives in "
                "other files); xavinit reads only the file it is given"
            )
        if dataset.external:
            raise XavinitError(
                f"{self.path}: dataset {path} keeps its data in an external file; xavinit "
                "reads only the file it is given"
            )

    def _vars(self, group: Any) -> Any:
        """The ``vars`` group of a Keras 3 saveable, when it is one (a hard link)."""
        if "vars" not in group:
            return None
        link = group.get("vars", getlink=True)
        if not isinstance(link, self._h5py.HardLink):
            return None
        found = group["vars"]
        return found if isinstance(found, self._h5py.Group) else None

    def _attr(self, obj: Any, key: str) -> Any:
        try:
            return obj.attrs.get(key)
        except Exception:  # an attribute of a type h5py cannot read is no hint
            return None

    def _strings(self, obj: Any, key: str) -> list[str]:
        value = self._attr(obj, key)
        if value is None:
            return []
        try:
            items = list(np.atleast_1d(np.asarray(value)).ravel())
        except Exception:
            return []
        out = []
        for item in items:
            if isinstance(item, bytes):
                item = item.decode("utf-8", "replace")
            if isinstance(item, str):
                out.append(item)
        return out

    # -- listing -------------------------------------------------------------------------------

    def _list(self, config: dict[str, Any] | None, zipped: bool) -> list[TensorInfo]:
        h5 = self._file
        datasets = self._datasets()
        if not zipped and "model_config" in h5.attrs:
            raw = self._attr(h5, "model_config")
            if isinstance(raw, (bytes, str)):
                config, why = parse_config(raw)
                if config is None:
                    self._config_note = f"model_config {why}"
            else:
                self._config_note = "model_config is not text"
        legacy = "model_weights" in h5 or "layer_names" in h5.attrs
        entries = self._legacy(datasets, config) if legacy else self._v3(datasets, config)
        placed = {entry.path for entry in entries}
        for path, dataset in datasets.items():
            if path not in placed:
                entries.append(_Entry(path, path.lstrip("/"), dataset))
        return self._infos(entries)

    def _v3(self, datasets: dict[str, Any], config: dict[str, Any] | None) -> list[_Entry]:
        """Keras 3: ``layers/<key>/vars/<i>``, sublayers under their attribute keys."""
        root = _node(config, "") if config is not None else _Layer(None, {}, "")
        root.parent = None
        entries: list[_Entry] = []
        seen: set[tuple[int, int]] = set()
        # (group, HDF5 path, the layer it is (or whose list attribute it is), list attribute)
        stack: list[tuple[Any, str, _Layer, str | None, int]] = [(self._file, "/", root, None, 0)]
        while stack:
            group, where, layer, container, depth = stack.pop()
            info = self._h5py.h5o.get_info(group.id)
            if (info.fileno, info.addr) in seen or depth > MAX_DEPTH:
                continue
            seen.add((info.fileno, info.addr))
            children = [(k, g) for k, g in self._children(group, where) if k != "vars"]
            children = [(k, g) for k, g in children if isinstance(g, self._h5py.Group)]
            if container is None:
                own = self._vars(group)
                if own is not None:
                    entries += self._own(own, f"{where}vars", layer, datasets)
                children.sort(key=lambda kv: _saveable_order(kv[0]))
            else:
                children.sort(key=lambda kv: _natural(kv[0]))
            pending: list[tuple[Any, str, _Layer, str | None, int]] = []
            for key, child in children:
                path = f"{where}{key}/"
                own = self._vars(child)
                if own is None:  # a list (or dict) attribute of ``layer``
                    pending.append((child, path, layer, container or key, depth + 1))
                    continue
                name = _text(self._attr(own, "name"))
                if layer is root and container is None and key == "optimizer":
                    sub = _Layer("optimizer", {}, name or "optimizer", root)
                else:
                    sub = _child(layer, key, name, container)
                pending.append((child, path, sub, None, depth + 1))
            if container is not None or layer.kind in _MODELS or layer is root:
                pending = self._in_config_order(pending, layer)
            stack.extend(reversed(pending))
        return entries

    def _in_config_order(self, pending: list[Any], layer: _Layer) -> list[Any]:
        """A model's layers in its config's order (the order ``model.weights`` follows)."""
        order: dict[str, int] = {}
        for key in ("layers", "cells"):
            for position, item in enumerate(_sublayers(layer.config, key)):
                name = _item_name(item)
                if name is not None:
                    order.setdefault(name, position)
        if not order:
            return pending

        def rank(item: Any) -> tuple[int, int]:
            sub = item[2]
            return (0, order[sub.label]) if item[3] is None and sub.label in order else (1, 0)

        return sorted(pending, key=rank)

    def _own(self, own: Any, where: str, layer: _Layer, datasets: dict[str, Any]) -> list[_Entry]:
        members = [(key, datasets[f"{where}/{key}"]) for key in own if f"{where}/{key}" in datasets]
        members.sort(key=lambda kv: (0, int(kv[0]), "") if kv[0].isdigit() else (1, 0, kv[0]))
        numbered = [key for key, _ in members] == [str(i) for i in range(len(members))]
        shapes = [tuple(d.shape or ()) for _, d in members]
        names = variable_names(layer, shapes) if numbered else None
        prefix = layer.labels if layer.parent is not None else [layer.label or "model"]
        if layer.kind == "optimizer":
            prefix = ["optimizer"]
        entries = []
        for position, (key, dataset) in enumerate(members):
            variable = names[position] if names else f"vars/{key}"
            entries.append(
                _Entry(
                    f"{where}/{key}",
                    "/".join([*prefix, variable]),
                    dataset,
                    layer if (names or layer.kind in NORMS or layer.kind == "optimizer") else None,
                    variable,
                    where,
                )
            )
        return entries

    def _legacy(self, datasets: dict[str, Any], config: dict[str, Any] | None) -> list[_Entry]:
        """Legacy HDF5: ``model_weights/<layer>/<weight path>`` named by ``weight_names``."""
        h5 = self._file
        top = "/model_weights/" if "model_weights" in h5 else "/"
        root_group = h5["model_weights"] if top != "/" else h5
        model = _node(config, "") if config is not None else _Layer(None, {}, "")
        model.parent = None
        layers = {_item_name(item): item for item in _sublayers(model.config)}
        order = [n for n in self._strings(root_group, "layer_names") if _text(n) is not None]
        entries: list[_Entry] = []
        placed: set[str] = set()
        for layer_name in dict.fromkeys(order):
            group_path = f"{top}{layer_name}/"
            group = root_group.get(layer_name)
            named = self._strings(group, "weight_names") if group is not None else []
            ordered = [f"{group_path}{w}" for w in named]
            ordered += [p for p in datasets if p.startswith(group_path)]
            ordered = [p for p in dict.fromkeys(ordered) if p in datasets and p not in placed]
            placed.update(ordered)
            item = layers.get(layer_name)
            owner = (
                _node(item, layer_name, model) if item is not None
                else _Layer(_guess(layer_name), {}, layer_name, model, guessed=True)
            )  # fmt: skip
            for path in ordered:
                rest = [p.removesuffix(":0") for p in path[len(group_path) :].split("/")]
                if layer_name in rest[:-1]:  # a Sequential's paths start with its own name
                    rest = rest[rest.index(layer_name) :]
                elif layer_name != "top_level_model_weights":
                    rest.insert(0, layer_name)
                current = owner
                for part in rest[1:-1]:
                    current = _legacy_child(current, part)
                name = "/".join(rest)
                known = current.kind is not None and (
                    current.kind in NORMS or rest[-1] in {n for n, _, _ in _spec(current) or ()}
                )
                entries.append(
                    _Entry(
                        path,
                        name,
                        datasets[path],
                        current if known else None,
                        rest[-1],
                        path.rsplit("/", 1)[0],
                    )
                )
        for path, dataset in datasets.items():
            if path.startswith("/optimizer_weights/"):
                parts = path.split("/")
                optimizer = _Layer("optimizer", {}, parts[2] if len(parts) > 3 else "optimizer")
                entries.append(_Entry(path, path.lstrip("/"), dataset, optimizer, "", ""))
        return entries

    # -- describing ----------------------------------------------------------------------------

    def _infos(self, entries: list[_Entry]) -> list[TensorInfo]:
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry.name] = counts.get(entry.name, 0) + 1
        for entry in entries:
            if counts[entry.name] > 1:
                entry.name = entry.path.lstrip("/")
        taken: set[str] = set()
        for entry in entries:
            base, suffix = entry.name, 1
            while entry.name in taken:
                suffix += 1
                entry.name = f"{base}#{suffix}"
            taken.add(entry.name)
        by_variable = {(entry.group, entry.variable): entry.name for entry in entries}
        infos = []
        for entry in entries:
            shape = tuple(int(n) for n in (entry.dataset.shape or ()))
            found = hints(entry.layer, entry.variable, shape)
            notes = [*found.notes]
            if self._config_note:
                notes.append(f"{self._config_note}: ignored, layer classes guessed from the file")
            owner = by_variable.get((entry.group, found.owner)) if found.owner else None
            infos.append(
                TensorInfo(
                    entry.name,
                    shape,
                    self._dtype(entry.dataset),
                    layout="in-out",
                    role=found.role,
                    groups=found.groups,
                    owner=owner,
                    key=entry.path,
                    depthwise=found.depthwise,
                    fan_axes=found.fan_axes,
                    note="; ".join(notes),
                )
            )
        return infos

    def _dtype(self, dataset: Any) -> str:
        """numpy's name of a dataset's element type; ``bfloat16`` as Keras marks it; ``str``,
        ``compound``, ``opaque``, ``reference``, ``empty`` for what is not a number."""
        h5py = self._h5py
        dtype = dataset.dtype
        if dataset.shape is None:
            return "empty"
        if dtype.kind == "V" and dtype.itemsize == 2 and not dtype.fields:
            marker = self._attr(dataset, "dtype")
            if marker in ("bfloat16", b"bfloat16"):
                return "bfloat16"
        if dtype.fields:
            return "compound"
        if dtype.kind in "SU" or h5py.check_string_dtype(dtype) is not None:
            return "str"
        if dtype.kind == "O":
            return "reference" if h5py.check_ref_dtype(dtype) is not None else "object"
        if dtype.kind == "V":
            return "opaque"
        return str(dtype.name)

    # -- reading -------------------------------------------------------------------------------

    def _plan(self, info: TensorInfo) -> tuple[Any, np.dtype, int | None]:
        """The dataset, the type its bytes are read as, and where they start in the weights
        file when stored there contiguous (else None); the declared size checked against the
        bytes the file holds first, so nothing is allocated for an absurd shape.
        """
        try:
            dataset = self._file[info.key]
        except Exception:
            raise XavinitError(f"{self.path}: tensor {info.name!r} is not in the file") from None
        if info.dtype != "bfloat16" and dataset.dtype.kind not in NUMERIC_KINDS:
            raise refuse_dtype(self.path, info.name, info.dtype)
        dtype = np.dtype("<u2") if info.dtype == "bfloat16" else dataset.dtype
        needed = math.prod(info.shape) * dtype.itemsize
        if needed == 0:
            return dataset, dtype, None
        try:
            stored = int(dataset.id.get_storage_size())
            filtered = bool(dataset.compression) or bool(getattr(dataset, "_filters", None))
            offset = None if filtered or dataset.chunks else dataset.id.get_offset()
        except Exception as error:
            raise self._unreadable(info, error) from None
        if filtered:
            if needed > stored * ZIP_EXPANSION_LIMIT + (1 << 20):
                raise XavinitError(
                    f"{self.path}: tensor {info.name!r} declares {needed} bytes from {stored} "
                    "compressed in the file (a decompression bomb or a corrupt file)"
                )
        else:
            check_extent(self.path, info.name, needed, stored)
        if offset is not None:
            check_extent(self.path, info.name, int(offset) + needed, self._size)
        return dataset, dtype, None if offset is None else int(offset)

    def _unreadable(self, info: TensorInfo, error: Exception) -> XavinitError:
        return XavinitError(
            f"{self.path}: tensor {info.name!r} is unreadable ({type(error).__name__}); "
            "the file is truncated or corrupt"
        )

    def contiguous(self, info: TensorInfo) -> int | None:
        """Where a float32, float16 or bfloat16 tensor's little-endian bytes start in the
        ``.h5`` file itself (None in a ``.keras``, whose weights are an extracted copy)."""
        _, dtype, offset = self._plan(info)
        little = {"float32": "<f4", "float16": "<f2", "bfloat16": "<u2"}.get(info.dtype)
        if self._folder is not None or offset is None or dtype.str != little:
            return None
        return offset

    def read(self, info: TensorInfo, workspace: Any = None) -> np.ndarray:
        self._plan(info)  # refuse an absurd size before a workspace is grown for it
        return super().read(info, workspace)

    def load(self, info: TensorInfo) -> np.ndarray:
        dataset, dtype, offset = self._plan(info)
        try:
            if not info.size:
                array = np.zeros(info.shape, dtype=dtype)
            elif offset is not None:
                mapped = np.memmap(self._weights_path, dtype=dtype, mode="r", offset=offset,
                                   shape=info.shape or (1,))  # fmt: skip
                array = mapped.reshape(info.shape) if not info.shape else mapped
            else:
                require_memory(info.size * dtype.itemsize, f"reading {info.name!r} of {self.path}")
                array = np.empty(info.shape, dtype=dataset.dtype)
                dataset.read_direct(array)
                array = array.view(dtype) if dtype != dataset.dtype else array
        except XavinitError:
            raise
        except Exception as error:
            raise self._unreadable(info, error) from None
        if info.dtype == "bfloat16":
            return bfloat16_to_float32(array)
        return array

    def close(self) -> None:
        handle = getattr(self, "_file", None)
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()
            self._file = None
        if getattr(self, "_folder", None) is not None:
            shutil.rmtree(str(self._folder), ignore_errors=True)
            self._folder = None
