"""ONNX models with the ``onnx`` package: every stored tensor, its role and layout from the op
that uses it.

What is listed: every ``graph.initializer`` and ``graph.sparse_initializer``, and the output of
every ``Constant`` node (``value``, ``sparse_value``, ``value_float(s)``, ``value_int(s)``,
``value_string(s)``: many shipped models, silero-vad's and RapidOCR's among them, keep all their
weights there), in the main graph and in the subgraphs of ``If``/``Loop``/``Scan`` (``attribute.g``
and ``graphs``). A subgraph's tensors are named ``<node>/<attribute>/<name>`` (``If_0/else_branch/
conv.weight``) so that names stay unique; a name seen twice gets ``#2``.

Hints come from the op that consumes a tensor, followed through the ops that carry its values
to that consumer: ``Identity``, ``Cast``, ``Dropout``, ``DequantizeLinear`` (the int8 tensor is
listed, with a note), ``Transpose`` (the axes are permuted back: a ``MatMul`` fed by
``Transpose(W, perm=[1, 0])`` has ``W`` stored ``out-in``), ``Squeeze``/``Unsqueeze`` and a
``Reshape`` that only adds or drops axes of size 1; ``Slice``, ``Split``, ``Concat`` and ``Tile``
keep what each axis means (silero-vad slices and joins its LSTM's gates). Through ops that move
values to other axes (``Reshape`` to another shape, ``Expand``, ``Flatten``) the role is kept and
the layout is not; so is a weight's arithmetic with other stored tensors (``W * scale``). Per op,
in ONNX's own words (onnx.ai/onnx/operators):

- ``Gemm``: B is ``(K, N)``, ``(N, K)`` with ``transB`` (``out-in``, how PyTorch exports Linear);
  a weight as A is ``(M, K)`` (``out-in``: ``Y = W X``), ``(K, M)`` with ``transA``; C is its bias.
- ``MatMul`` (and ``MatMulInteger``, ``QLinearMatMul``, ``FusedMatMul``): the second input
  ``(..., K, N)`` is ``in-out``; a weight as the FIRST input ``(..., M, K)`` is ``out-in``.
- ``Conv`` (``ConvInteger``, ``QLinearConv``, ``DeformConv``) W ``(M, C/group, *kernel)``:
  ``out-in`` with its ``groups`` (no ``fan_axes``: the layout path divides ``M`` by the groups,
  a product of axes would not; given only when a Transpose leaves no layout to name).
  ``ConvTranspose`` W is ``(C, M/group, *kernel)`` with C the INPUT channels: ``fan_axes =
  ((0, 2, ...), (1, 2, ...))``, its layout ``out-in`` only in the sense "channels first" (a reader
  of ``layout`` alone gets PyTorch's reading, fan_in from axis 1). ``fan_axes`` counts whole
  axes: with ``groups`` > 1 its axis 0 holds every group's channels, and the per-unit fan_in is
  that side's product divided by ``groups``.
- ``LSTM``/``GRU``/``RNN`` (4, 3, 1 gates): W ``[directions, gates*hidden, input]`` and R
  ``[directions, gates*hidden, hidden]`` are ``recurrent``, ``out-in``, ``fan_axes = ((2,),
  (1,))`` (the directions are independent copies); B ``[directions, 2*gates*hidden]`` is a bias
  owned by R; initial states, sequence lengths and peepholes are ``other``.
- ``Einsum`` with one stored operand: its contracted letters are the input axes, the letters it
  shares with the output only are the output axes.
- ``Gather`` data of rank 2 is an embedding, the lookup ``one_hot(ids) @ table``: the gathered
  axis is the input (``fan_axes = ((0,), (1,))`` and ``out-in`` when rows are gathered, as
  PyTorch and Keras store tables).
- The scales, shifts and running statistics of ``LayerNormalization``, ``BatchNormalization``,
  ``InstanceNormalization``, ``GroupNormalization``, ``RMSNormalization``, and of ONNX Runtime's
  ``SimplifiedLayerNormalization``/``SkipLayerNormalization``, are norms; so is a vector
  multiplied into (and added to) an activation divided by a ``Sqrt`` (a LayerNorm or RMSNorm
  written out op by op).
- A vector as long as the outputs of a weight's op (``MatMul``, ``Gemm``, ``Conv``...), added to
  them, is that weight's bias (``owner``).
- A dense weight is ``attention`` when the graph says so: its outputs, through reshaping ops and
  arithmetic, meet another activation in a ``MatMul`` of two activations (``q k^T``, ``p v``), or
  it projects the output of such a ``MatMul`` reached through reshaping ops only (the output
  projection). Names play no part (the dynamo exporter calls ``q_proj.weight.T`` ``val_105``).

A tensor no weight op uses, whose every use is by a standard ONNX op (a causal mask added to
attention scores, a shape for ``Reshape``, the indices of a ``Gather``, a quantization scale), is
``other``; one used only by ops of other domains, or not at all, gets no hint.

External data (``model.onnx`` + ``model.onnx.data``, what exporters write above 2 GB) is checked
for every tensor when the model is opened, before anything is read: a location that leaves the
model's folder (``..``, an absolute path, a symlink out), a missing file, or an extent past the
end of its file is refused. Tensors are then memory-mapped from their file one at a time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.formats.base import TensorInfo, TensorSource, bfloat16_to_float32, require
from xavinit.resources import require_memory

STANDARD_DOMAINS = ("", "ai.onnx")
CONTROL_FLOW = ("If", "Loop", "Scan", "SequenceMap")
"""Ops that pass a tensor into a subgraph: a use there is not known to be a weight's or not."""

RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
NORM_INPUTS = {
    "LayerNormalization": (1, 2),
    "BatchNormalization": (1, 2, 3, 4),
    "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2),
    "RMSNormalization": (1,),
    "SimplifiedLayerNormalization": (1,),
    "SkipLayerNormalization": (2, 3),
    "SkipSimplifiedLayerNormalization": (2,),
}
"""Norm ops and which of their inputs are scales, shifts or running statistics."""

HANDLED_ELSEWHERE = (
    "QGemm", "FusedMatMul", "Attention", "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization", "EmbedLayerNormalization",
    "BiasGelu", "FastGelu", "BiasAdd", "MatMulNBits",
)  # fmt: skip
"""ONNX Runtime's (com.microsoft) ops this reader knows: their other inputs take no weight."""

CARRIERS = ("Identity", "Cast", "CastLike", "Dropout", "DequantizeLinear")
"""Ops whose first input reaches their output value for value (DequantizeLinear up to a scale)."""

KEEP_AXES = ("Slice", "Split", "Tile", "Concat")
"""Ops that cut, repeat or join a tensor along its axes: each axis keeps its meaning (a Slice of
the rows of ``(out, in)`` is still ``(out, in)``), only the sizes change."""

REARRANGERS = ("Expand", "Flatten", "Gather", "Reshape")
"""Ops that move a tensor's values to other axes: the role survives them, the layout does not."""

ARITHMETIC = ("Add", "Sub", "Mul", "Div")

RESHAPING = (
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Cast", "Split",
    "Slice", "Gather", "Concat", "Expand", "Tile", "Dropout", "Neg", "QuantizeLinear",
    "DequantizeLinear",
)  # fmt: skip
"""Ops that carry an activation's values to another shape (attention's heads are split,
transposed and joined by these)."""

ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Where", "Max", "Min")
"""Arithmetic that keeps an activation a projection's (a bias, a scale, rotary embeddings)."""

DENSE_OPS = (
    "Gemm", "QGemm", "MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "Einsum",
)  # fmt: skip
SMALL = 64
"""At most this many values of a shape or axes tensor are read to follow a Reshape/Unsqueeze."""

_PACKED_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2}
"""UINT4, INT4, FLOAT4E2M1, UINT2, INT2: several values per byte."""

_UNKNOWN_PACKING = (27, 28)
"""FLOAT6E2M3, FLOAT6E3M2: their external size is left to onnx to check."""

_SMALL_INTEGERS = {21: "uint8", 22: "int8", 25: "uint8", 26: "int8"}
"""UINT4, INT4, UINT2, INT2 are read as 8-bit integers (numpy's ``int4`` means int32)."""


@dataclass(frozen=True)
class _Flow:
    """A stored tensor as it reaches a value of the graph.

    ``axes[i]`` is the stored axis that is axis ``i`` of the value (None: an axis of size 1
    inserted on the way); ``axes`` None: the values were rearranged, the axes are not known.
    """

    entry: int
    axes: tuple[int | None, ...] | None
    shape: tuple[int, ...] | None  # -1: a size not known (after a Slice)
    via: tuple[str, ...] = ()

    def opaque(self, op: str) -> _Flow:
        return _Flow(self.entry, None, None, (*self.via, op))

    def resized(self, op: str) -> _Flow:
        """The same axes, sizes no longer known (a Slice, a Concat)."""
        if self.axes is None:
            return self.opaque(op)
        return _Flow(self.entry, self.axes, (-1,) * len(self.axes), (*self.via, op))

    def known(self) -> bool:
        return self.shape is not None and all(d >= 0 for d in self.shape)


@dataclass
class _Entry:
    """One listed tensor: where its values are."""

    name: str
    dims: tuple[int, ...]
    dtype: str
    tensor: Any = None  # a TensorProto (initializer, Constant value)
    sparse: Any = None  # a SparseTensorProto
    literal: np.ndarray | None = None  # a Constant's value_float(s)/value_int(s)/value_string(s)


@dataclass
class _Scope:
    """What is known of the values visible in one graph (a subgraph sees its parents')."""

    flows: dict[str, list[_Flow]] = field(default_factory=dict)
    linear: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    """output of a weight's op -> (the weight, its number of outputs when known)"""
    rsqrt: set[str] = field(default_factory=set)  # 1/sqrt(...) or sqrt(...)
    normalized: set[str] = field(default_factory=set)  # x / sqrt(...)
    scaled: set[str] = field(default_factory=set)  # norm scale * normalized
    sources: dict[str, frozenset[int]] = field(default_factory=dict)
    """activation -> the weights whose op output it is, through reshaping and arithmetic"""
    context: set[str] = field(default_factory=set)  # attention's output (probabilities @ v)

    def copy(self) -> _Scope:
        return _Scope(
            dict(self.flows), dict(self.linear), set(self.rsqrt), set(self.normalized),
            set(self.scaled), dict(self.sources), set(self.context),
        )  # fmt: skip


def _attr(node: Any, name: str, default: Any = None) -> Any:
    """An attribute's value (int, float, bytes, list), or ``default``."""
    for attribute in node.attribute:
        if attribute.name == name:
            if attribute.ints:
                return [int(i) for i in attribute.ints]
            if attribute.type == 2:  # INT
                return int(attribute.i)
            if attribute.type == 3:  # STRING
                return bytes(attribute.s)
            if attribute.type == 1:  # FLOAT
                return float(attribute.f)
            if attribute.type == 7:  # INTS, empty
                return []
            for field_name, kind in (("i", int), ("f", float), ("s", bytes)):  # no type: old files
                if attribute.type == 0 and attribute.HasField(field_name):
                    return kind(getattr(attribute, field_name))
    return default


def _text(value: Any) -> str:
    """A protobuf string field: ``bytes`` when the file's bytes are not UTF-8 (a corrupt name)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(node: Any, name: str, default: int) -> int:
    """An integer attribute, or ``default`` when it is absent or not an integer."""
    value = _attr(node, name, default)
    return value if isinstance(value, int) else default


def _dtype_name(onnx: Any, data_type: int) -> str:
    if data_type == onnx.TensorProto.BFLOAT16:
        return "bfloat16"
    if data_type in _SMALL_INTEGERS:
        return _SMALL_INTEGERS[data_type]
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type))
    except (KeyError, TypeError, ValueError):
        return f"ONNX type {data_type}"
    return "str" if dtype.kind in "OSU" else dtype.name


def _einsum_fans(equation: str, position: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Input and output axes of operand ``position`` of a two-operand einsum, or None."""
    text = equation.replace(" ", "")
    if "." in text:
        return None
    left, _, right = text.partition("->")
    operands = left.split(",")
    if len(operands) != 2 or not all(o.isalpha() for o in operands):
        return None
    if not right and "->" not in text:
        letters = "".join(operands)
        right = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    mine, other = operands[position], operands[1 - position]
    inputs = tuple(i for i, c in enumerate(mine) if c not in right)
    outputs = tuple(i for i, c in enumerate(mine) if c in right and c not in other)
    return (inputs, outputs) if inputs and outputs else None


def _layout_of(fan: tuple[tuple[int, ...], tuple[int, ...]], ndim: int) -> str | None:
    """``out-in``/``in-out`` from stored fan axes: which end holds the output channels."""
    ins, outs = fan
    if not ins or not outs:
        return None
    if ndim == 2:
        if (ins, outs) == ((0,), (1,)):
            return "in-out"
        return "out-in" if (ins, outs) == ((1,), (0,)) else None
    if outs[0] == 0 and ins[0] == 1:
        return "out-in"
    if outs[0] == ndim - 1 and ins[0] == ndim - 2:
        return "in-out"
    return None


class _Reader:
    """Lists the tensors of a model and what the ops that use them say."""

    def __init__(self, onnx: Any, path: str) -> None:
        self.onnx = onnx
        self.path = path
        self.entries: list[_Entry] = []
        self.hints: dict[int, dict[str, Any]] = {}
        self.uses: dict[int, set[str]] = {}
        self.attention: set[int] = set()
        """Dense weights found to be attention's: their outputs meet in an activation-by-
        activation MatMul (q k^T, p v), or they project that MatMul's output."""
        self._names: set[str] = set()

    # --- listing ----------------------------------------------------------------------------

    def _add(self, prefix: str, name: str, entry: _Entry) -> int:
        base = prefix + (_text(name) or f"unnamed_{len(self.entries)}")
        unique, count = base, 1
        while unique in self._names:
            count += 1
            unique = f"{base}#{count}"
        self._names.add(unique)
        entry.name = unique
        if any(d < 0 for d in entry.dims):
            raise XavinitError(
                f"{self.path}: tensor {unique!r} has a negative dimension {entry.dims}"
            )
        self.entries.append(entry)
        return len(self.entries) - 1

    def _tensor_entry(self, tensor: Any) -> _Entry:
        dims = tuple(int(d) for d in tensor.dims)
        return _Entry("", dims, _dtype_name(self.onnx, tensor.data_type), tensor=tensor)

    def _sparse_entry(self, sparse: Any) -> _Entry:
        dims = tuple(int(d) for d in sparse.dims)
        return _Entry("", dims, _dtype_name(self.onnx, sparse.values.data_type), sparse=sparse)

    def _constant(self, node: Any, prefix: str) -> int | None:
        if not node.output or not node.output[0]:
            return None
        out = node.output[0]
        for attribute in node.attribute:
            name = attribute.name
            if name == "value":
                return self._add(prefix, out, self._tensor_entry(attribute.t))
            if name == "sparse_value":
                return self._add(prefix, out, self._sparse_entry(attribute.sparse_tensor))
            literal: np.ndarray | None = None
            if name == "value_float":
                literal = np.array(attribute.f, dtype=np.float32)
            elif name == "value_floats":
                literal = np.array(list(attribute.floats), dtype=np.float32)
            elif name == "value_int":
                literal = np.array(attribute.i, dtype=np.int64)
            elif name == "value_ints":
                literal = np.array(list(attribute.ints), dtype=np.int64)
            elif name == "value_string":
                literal = np.array(attribute.s.decode("utf-8", "replace"))
            elif name == "value_strings":
                literal = np.array([s.decode("utf-8", "replace") for s in attribute.strings])
            if literal is not None:
                kind = "str" if literal.dtype.kind in "OSU" else literal.dtype.name
                return self._add(prefix, out, _Entry("", literal.shape, kind, literal=literal))
        return None  # ref_attr_name: a function's attribute, not a stored tensor

    def _small_ints(self, scope: _Scope, name: str) -> list[int] | None:
        """The values of a small stored integer tensor (a shape, axes), or None."""
        flows = scope.flows.get(name, [])
        if len(flows) != 1 or flows[0].axes is None:
            return None
        entry = self.entries[flows[0].entry]
        if math.prod(entry.dims) > SMALL or entry.dtype not in ("int64", "int32"):
            return None
        if entry.literal is not None:
            return [int(v) for v in entry.literal.reshape(-1)]
        tensor = entry.tensor
        if tensor is None or tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            return None
        try:
            values = self.onnx.numpy_helper.to_array(tensor)
        except Exception:  # a corrupt tensor: the load says so; here it is just not followed
            return None
        return [int(v) for v in np.asarray(values).reshape(-1)]

    # --- hints ------------------------------------------------------------------------------

    def _hint(self, index: int, **values: Any) -> None:
        old = self.hints.get(index)
        if old is None or (
            old.get("layout") is None
            and values.get("layout") is not None
            and old.get("role") == values.get("role")
        ):
            self.hints[index] = values

    def _quantized(self, index: int, flow: _Flow, op: str) -> str:
        dtype = self.entries[index].dtype
        if dtype.startswith(("int", "uint")):
            scaler = "DequantizeLinear" if "DequantizeLinear" in flow.via else op
            return f"stored as {dtype}: quantization steps, scaled by {scaler}"
        return ""

    def _weight(
        self,
        flows: list[_Flow],
        op: str,
        role: str,
        fan: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
        layout: str | None = None,
        groups: int | None = None,
        note: str = "",
        fan_if_unlaid: bool = False,
    ) -> None:
        """Hint the stored tensors behind a weight input; ``fan`` and ``layout`` in the op's
        view of its input, mapped back to the stored axes. ``fan_if_unlaid``: give ``fan_axes``
        only where no layout can be given (a grouped Conv's fans need its groups, which the
        layout path divides by and a product of axes does not)."""
        for flow in flows:
            entry = self.entries[flow.entry]
            notes = [note, self._quantized(flow.entry, flow, op)]
            if flow.axes is None:
                through = ", ".join(v for v in flow.via if v not in CARRIERS) or "reshaping ops"
                notes.append(f"reaches {op} through {through}: its layout is not known")
                self._hint(
                    flow.entry, role=role, groups=groups, note="; ".join(n for n in notes if n)
                )
                continue
            rank = len(flow.axes)
            stored: tuple[tuple[int, ...], tuple[int, ...]] | None = None
            if fan is not None:
                mapped = tuple(
                    tuple(a for a in (flow.axes[i] for i in side if 0 <= i < rank) if a is not None)
                    for side in fan
                )
                stored = (mapped[0], mapped[1]) if mapped[0] and mapped[1] else None
            chosen = layout
            if flow.axes != tuple(range(len(entry.dims))):
                chosen = _layout_of(stored, len(entry.dims)) if stored is not None else None
                if "Transpose" in flow.via:
                    notes.append(f"{op} reads it through a Transpose")
            if fan_if_unlaid and chosen is not None:
                stored = None
            self._hint(
                flow.entry, role=role, layout=chosen, groups=groups, fan_axes=stored,
                note="; ".join(n for n in notes if n),
            )  # fmt: skip

    def _owned(self, flows: list[_Flow], owner: int | None, role: str = "bias") -> None:
        for flow in flows:
            if flow.entry != owner:
                self._hint(flow.entry, role=role, owner=owner)

    # --- walking ----------------------------------------------------------------------------

    def walk(self, graph: Any, prefix: str, outer: _Scope) -> None:
        scope = outer.copy()
        for value in graph.input:  # a body's inputs hide the outer values of the same name
            scope.flows.pop(value.name, None)
        for tensor in graph.initializer:
            index = self._add(prefix, tensor.name, self._tensor_entry(tensor))
            self._source(scope, tensor.name, index)
        for sparse in graph.sparse_initializer:
            index = self._add(prefix, sparse.values.name, self._sparse_entry(sparse))
            self._source(scope, sparse.values.name, index)
        for position, node in enumerate(graph.node):
            if node.op_type == "Constant" and node.domain in STANDARD_DOMAINS:
                constant = self._constant(node, prefix)
                if constant is not None:
                    self._source(scope, node.output[0], constant)
                continue
            label = node.name or f"{node.op_type}_{position}"
            for attribute in node.attribute:
                if attribute.type == self.onnx.AttributeProto.GRAPH:
                    self.walk(attribute.g, f"{prefix}{label}/{attribute.name}/", scope)
                elif attribute.type == self.onnx.AttributeProto.GRAPHS:
                    for number, sub in enumerate(attribute.graphs):
                        self.walk(sub, f"{prefix}{label}/{attribute.name}[{number}]/", scope)
            self._node(node, scope)

    def _source(self, scope: _Scope, name: str, index: int) -> None:
        dims = self.entries[index].dims
        scope.flows[name] = [_Flow(index, tuple(range(len(dims))), dims)]

    def _node(self, node: Any, scope: _Scope) -> None:
        op = node.op_type
        inputs = list(node.input)
        outputs = list(node.output) or [""]  # a node without outputs: nothing to carry on

        def flows(i: int) -> list[_Flow]:
            return scope.flows.get(inputs[i], []) if i < len(inputs) and inputs[i] else []

        def stored(i: int) -> bool:
            return bool(flows(i))

        done: set[int] = set()  # inputs this rule accounted for (hinted or carried on)
        made: dict[str, list[_Flow]] = {}

        def weight(i: int, *args: Any, **kwargs: Any) -> None:
            self._weight(flows(i), op, *args, **kwargs)
            done.add(i)

        def owner_of(i: int) -> int | None:
            found = flows(i)
            return found[0].entry if found else None

        def linear_out(weight_input: int, axes: tuple[int, ...], times: int = 1) -> None:
            """Record the op's output as this weight's, with its width (the size of ``axes``)."""
            found = flows(weight_input)
            if not found or not outputs:
                return
            shape = found[0].shape
            width = None
            if (
                found[0].known()
                and shape is not None
                and all(-len(shape) <= a < len(shape) for a in axes)
            ):
                width = math.prod(shape[a] for a in axes) * times
            scope.linear[outputs[0]] = (found[0].entry, width)
            scope.sources[outputs[0]] = frozenset(f.entry for f in found)
            if op in DENSE_OPS and any(
                value in scope.context
                for j, value in enumerate(inputs)
                if j != weight_input and value
            ):
                self.attention.update(f.entry for f in found)  # the output projection

        if op in CARRIERS and stored(0):
            made[outputs[0]] = [replace(f, via=(*f.via, op)) for f in flows(0)]
            done.add(0)
        elif op in CARRIERS and inputs and outputs:
            if inputs[0] in scope.linear:
                scope.linear[outputs[0]] = scope.linear[inputs[0]]
            if inputs[0] in scope.normalized:
                scope.normalized.add(outputs[0])
        elif op == "Transpose" and stored(0):
            perm = _attr(node, "perm")
            perm = perm if isinstance(perm, list) else None
            made[outputs[0]] = [self._transpose(f, perm) for f in flows(0)]
            done.add(0)
        elif op in ("Squeeze", "Unsqueeze") and stored(0):
            axes = _attr(node, "axes")
            axes = axes if isinstance(axes, list) else None
            if axes is None and len(inputs) > 1 and inputs[1]:
                axes = self._small_ints(scope, inputs[1])
            made[outputs[0]] = [self._squeeze(f, op, axes) for f in flows(0)]
            done.add(0)
        elif op == "Reshape" and stored(0):
            target = self._small_ints(scope, inputs[1]) if len(inputs) > 1 else None
            zero = bool(_int(node, "allowzero", 0))
            made[outputs[0]] = [self._reshape(f, target, zero) for f in flows(0)]
            done.add(0)
        elif op == "Gather" and stored(0) and all(len(f.shape or ()) == 2 for f in flows(0)):
            axis = _int(node, "axis", 0) % 2
            for flow in flows(0):  # a lookup one_hot @ table: the gathered axis is the input
                rows = flow.axes[axis] if flow.axes is not None else None
                cols = flow.axes[1 - axis] if flow.axes is not None else None
                self._hint(
                    flow.entry, role="embedding",
                    layout={0: "out-in", 1: "in-out"}.get(rows) if rows is not None else None,
                    fan_axes=((rows,), (cols,)) if rows is not None and cols is not None else None,
                    note=self._quantized(flow.entry, flow, op),
                )  # fmt: skip
            done.add(0)
        elif op == "Concat" and all(stored(i) for i in range(len(inputs)) if inputs[i]):
            made[outputs[0]] = [f.resized(op) for i in range(len(inputs)) for f in flows(i)]
            done.update(range(len(inputs)))
        elif op in KEEP_AXES and op != "Concat" and stored(0):
            for out in outputs:
                made[out] = [f.resized(op) for f in flows(0)]
            done.add(0)
        elif op in REARRANGERS and stored(0):
            for out in outputs:
                made[out] = [f.opaque(op) for f in flows(0)]
            done.add(0)
        elif op in ARITHMETIC:
            self._arithmetic(node, scope, flows, made, done)
        elif op in ("Sqrt", "Reciprocal") and inputs and outputs:
            if op == "Sqrt" or inputs[0] in scope.rsqrt:
                scope.rsqrt.add(outputs[0])
        elif op in ("Gemm", "QGemm"):
            a, b, c = (0, 3, 6) if op == "QGemm" else (0, 1, 2)
            if stored(b):
                trans = _int(node, "transB", 0)
                weight(
                    b,
                    "dense",
                    ((1,), (0,)) if trans else ((0,), (1,)),
                    "out-in" if trans else "in-out",
                )
                linear_out(b, (0,) if trans else (1,))
            elif stored(a):
                trans = _int(node, "transA", 0)
                weight(
                    a, "dense", ((0,), (1,)) if trans else ((1,), (0,)),
                    "in-out" if trans else "out-in", note=f"the weight is {op}'s A: Y = W X",
                )  # fmt: skip
                linear_out(a, (1,) if trans else (0,))
            if stored(c) and (stored(a) or stored(b)):
                self._owned(flows(c), owner_of(b) if stored(b) else owner_of(a))
                done.add(c)
        elif op in ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul"):
            a, b = (0, 3) if op == "QLinearMatMul" else (0, 1)
            trans_a = bool(_int(node, "transA", 0)) if op == "FusedMatMul" else False
            trans_b = bool(_int(node, "transB", 0)) if op == "FusedMatMul" else False
            if stored(b):
                rank = len(flows(b)[0].shape or (0, 0))
                if rank >= 2:
                    k, n = (rank - 1, rank - 2) if trans_b else (rank - 2, rank - 1)
                    weight(b, "dense", ((k,), (n,)), "out-in" if trans_b else "in-out")
                    linear_out(b, (n,))
                else:
                    weight(b, "dense")
            elif stored(a):
                rank = len(flows(a)[0].shape or (0, 0))
                if rank >= 2:
                    k, m = (rank - 2, rank - 1) if trans_a else (rank - 1, rank - 2)
                    weight(
                        a, "dense", ((k,), (m,)), "in-out" if trans_a else "out-in",
                        note=f"the weight is {op}'s first input: Y = W X",
                    )  # fmt: skip
                    linear_out(a, (m,))
                else:
                    weight(a, "dense")
        elif op in ("Conv", "ConvInteger", "QLinearConv", "DeformConv", "ConvTranspose"):
            w, bias = {"QLinearConv": (3, 8), "DeformConv": (1, 3)}.get(op, (1, 2))
            if stored(w):
                rank = len(flows(w)[0].shape or (0, 0))
                kernel = tuple(range(2, rank))
                groups = max(1, _int(node, "group", 1))
                if op == "ConvTranspose":
                    weight(
                        w, "conv", ((0, *kernel), (1, *kernel)), "out-in", groups,
                        note=(
                            "ConvTranspose W is (in, out/groups, *kernel): fan_in from axis 0"
                            + (f" divided by its {groups} groups" if groups > 1 else "")
                            + "; PyTorch's default init takes fan_in from axis 1"
                        ),
                    )  # fmt: skip
                    linear_out(w, (1,), groups)
                else:
                    weight(
                        w, "conv", ((1, *kernel), (0, *kernel)), "out-in", groups,
                        fan_if_unlaid=True,
                    )  # fmt: skip
                    linear_out(w, (0,))
                if op != "ConvInteger" and stored(bias):
                    self._owned(flows(bias), owner_of(w))
                    done.add(bias)
        elif op in RECURRENT_GATES:
            gates = RECURRENT_GATES[op]
            hidden = _int(node, "hidden_size", 0)
            units = f" of {hidden} units" if hidden > 0 else ""
            note = f"{op}: {gates} gate{'s' if gates > 1 else ''}{units} stacked along its outputs"
            for i in (1, 2):
                if stored(i):
                    weight(i, "recurrent", ((2,), (1,)), "out-in", note=note)
            if stored(3):
                self._owned(flows(3), owner_of(2) if stored(2) else owner_of(1))
                done.add(3)
        elif op == "Einsum":
            equation = _attr(node, "equation", b"")
            equation = equation.decode("utf-8", "replace") if isinstance(equation, bytes) else ""
            if len(inputs) == 2 and stored(0) != stored(1):
                i = 0 if stored(0) else 1
                fan = _einsum_fans(equation, i)
                rank = len(flows(i)[0].shape or ())
                layout = _layout_of(fan, rank) if fan is not None else None
                weight(i, "dense", fan, layout)
                if fan is not None:
                    linear_out(i, fan[1])
        elif op == "Attention" and node.domain == "com.microsoft" and stored(1):
            weight(1, "attention", ((0,), (1,)), "in-out", note="packed q, k, v (in, 3 hidden)")
            linear_out(1, (1,))
            if stored(2):
                self._owned(flows(2), owner_of(1))
                done.add(2)
        elif op in NORM_INPUTS:
            for i in NORM_INPUTS[op]:
                if stored(i):
                    self._owned(flows(i), None, role="norm")
                    done.add(i)
            if op == "SkipLayerNormalization" and stored(4):
                found = scope.linear.get(inputs[0]) or scope.linear.get(inputs[1])
                self._owned(flows(4), found[0] if found else None)
                done.add(4)
        elif op == "EmbedLayerNormalization":
            for i in (2, 3, 4):
                if stored(i):
                    weight(i, "embedding", ((0,), (1,)), "out-in")
            for i in (5, 6):
                if stored(i):
                    self._owned(flows(i), None, role="norm")
                    done.add(i)
        elif op in ("BiasGelu", "FastGelu", "BiasAdd") and stored(1):
            found = scope.linear.get(inputs[0]) if inputs else None
            if found is not None:
                self._owned(flows(1), found[0])
                done.add(1)
        elif op == "MatMulNBits" and stored(1):
            bits, k, n = _int(node, "bits", 4), _int(node, "K", 0), _int(node, "N", 0)
            for flow in flows(1):
                self._hint(
                    flow.entry, role="other",
                    note=f"packed {bits}-bit weight of a ({k}, {n}) MatMulNBits: bytes, not values",
                )  # fmt: skip
            done.add(1)

        self._trace_attention(
            node, scope, inputs, outputs, any(stored(i) for i in range(len(inputs)))
        )
        known = node.domain in STANDARD_DOMAINS or op in HANDLED_ELSEWHERE
        kind = "plain" if known and op not in CONTROL_FLOW else "unknown"
        for i in range(len(inputs)):
            if i not in done:
                for flow in flows(i):
                    self.uses.setdefault(flow.entry, set()).add(kind)
        for out in outputs:
            if not out:
                continue
            if out in made:
                scope.flows[out] = made[out]
            else:
                scope.flows.pop(out, None)

    def _trace_attention(
        self, node: Any, scope: _Scope, inputs: list[str], outputs: list[str], weighted: bool
    ) -> None:
        """Follow projections' outputs to attention: a MatMul (or Einsum) of two activations is
        ``q k^T`` or ``p v``; the projections feeding it are attention's, and so is the one its
        output reaches through reshaping ops only."""
        op = node.op_type
        if outputs[0] in scope.sources:  # set by the weight's own op
            return
        found: set[int] = set()
        for value in inputs:
            if value:
                found |= scope.sources.get(value, frozenset())
        if op in ("MatMul", "Einsum") and not weighted:
            self.attention |= found
            scope.context.add(outputs[0])
        elif op in RESHAPING or op in ELEMENTWISE:
            for out in outputs:
                if found and out:
                    scope.sources[out] = frozenset(found)
                if op in RESHAPING and out and any(v in scope.context for v in inputs if v):
                    scope.context.add(out)

    def _arithmetic(
        self, node: Any, scope: _Scope, flows: Any, made: dict[str, list[_Flow]], done: set[int]
    ) -> None:
        op = node.op_type
        inputs, outputs = list(node.input), list(node.output)
        if len(inputs) != 2 or not outputs:
            return
        left, right = flows(0), flows(1)
        out = outputs[0]
        if left and right:  # constant arithmetic: the larger operand carries on (W * scale)

            def size(found: list[_Flow]) -> int:
                return max((math.prod(f.shape) for f in found if f.known() and f.shape), default=0)

            main = 0 if size(left) >= size(right) else 1
            carried = left if main == 0 else right
            shapes = [f.shape for f in left + right if f.known()]
            keep = len(shapes) == len(left) + len(right)
            if keep:
                try:
                    keep = all(np.broadcast_shapes(*shapes) == f.shape for f in carried)
                except ValueError:
                    keep = False
            made[out] = [replace(f, via=(*f.via, op)) if keep else f.opaque(op) for f in carried]
            done.add(main)
            return
        if not left and not right:  # two activations
            if op in ("Mul", "Div"):
                for value in inputs[: 1 if op == "Div" else 2]:
                    if value in scope.linear:
                        scope.linear[out] = scope.linear[value]
                        break
                if inputs[1] in scope.rsqrt or (op == "Mul" and inputs[0] in scope.rsqrt):
                    scope.normalized.add(out)
            return
        i = 0 if left else 1
        value = inputs[1 - i]
        found = left or right

        def vector(flow: _Flow) -> bool:
            shape = flow.shape if flow.shape is not None else self.entries[flow.entry].dims
            return sum(1 for d in shape if d != 1) <= 1

        def fits(width: int | None) -> bool:
            """A vector as long as the op's outputs (unknown width: any vector of 2 or more)."""
            for flow in found:
                if not vector(flow):
                    return False
                shape = flow.shape if flow.known() else self.entries[flow.entry].dims
                size = math.prod(shape or ())
                if (width is None and size < 2) or (width is not None and size != width):
                    return False
            return True

        if op == "Add" and value in scope.linear and fits(scope.linear[value][1]):
            self._owned(found, scope.linear[value][0])
            scope.linear[out] = scope.linear[value]
            done.add(i)
        elif op == "Add" and value in scope.scaled and fits(None):
            self._owned(found, None, role="norm")
            done.add(i)
        elif op == "Mul" and value in scope.normalized and fits(None):
            self._owned(found, None, role="norm")
            scope.scaled.add(out)
            done.add(i)
        elif op in ("Mul", "Div") and i == 1 and value in scope.linear:
            scope.linear[out] = scope.linear[value]  # the weight's output, scaled
        elif op == "Mul" and value in scope.linear:
            scope.linear[out] = scope.linear[value]
        elif op == "Div" and i == 0 and value in scope.rsqrt:
            scope.rsqrt.add(out)  # 1 / sqrt(...)
        if op in ("Mul", "Div") and value in scope.normalized and out not in scope.scaled:
            scope.normalized.add(out)  # x / sqrt(...) * constant, still normalized

    @staticmethod
    def _transpose(flow: _Flow, perm: list[int] | None) -> _Flow:
        if flow.axes is None or flow.shape is None:
            return flow.opaque("Transpose")
        rank = len(flow.axes)
        order = perm if perm is not None else list(range(rank))[::-1]
        if sorted(order) != list(range(rank)):
            return flow.opaque("Transpose")
        return _Flow(
            flow.entry, tuple(flow.axes[p] for p in order), tuple(flow.shape[p] for p in order),
            (*flow.via, "Transpose"),
        )  # fmt: skip

    @staticmethod
    def _squeeze(flow: _Flow, op: str, axes: list[int] | None) -> _Flow:
        if flow.axes is None or flow.shape is None:
            return flow.opaque(op)
        rank = len(flow.shape)
        if op == "Unsqueeze":
            if not axes:
                return flow.opaque(op)
            total = rank + len(axes)
            inserted = {a % total for a in axes}
            if len(inserted) != len(axes):
                return flow.opaque(op)
            old_axes, old_shape = iter(flow.axes), iter(flow.shape)
            new_axes: list[int | None] = []
            new_shape: list[int] = []
            for position in range(total):
                if position in inserted:
                    new_axes.append(None)
                    new_shape.append(1)
                else:
                    new_axes.append(next(old_axes))
                    new_shape.append(next(old_shape))
            return _Flow(flow.entry, tuple(new_axes), tuple(new_shape), (*flow.via, op))
        removed = (
            {a % rank for a in axes} if axes else {i for i, d in enumerate(flow.shape) if d == 1}
        )
        if rank == 0 or any(flow.shape[i] != 1 for i in removed):
            return flow.opaque(op)
        keep = [i for i in range(rank) if i not in removed]
        return _Flow(
            flow.entry, tuple(flow.axes[i] for i in keep), tuple(flow.shape[i] for i in keep),
            (*flow.via, op),
        )  # fmt: skip

    @staticmethod
    def _reshape(flow: _Flow, target: list[int] | None, allowzero: bool) -> _Flow:
        """A Reshape that only adds or drops axes of size 1 keeps the axes; any other is opaque."""
        if flow.axes is None or flow.shape is None or target is None:
            return flow.opaque("Reshape")
        shape = list(target)
        for i, d in enumerate(shape):
            if d == 0 and not allowzero:
                if i >= len(flow.shape):
                    return flow.opaque("Reshape")
                shape[i] = flow.shape[i]
        total = math.prod(flow.shape)
        if shape.count(-1) == 1:
            known = math.prod(d for d in shape if d != -1)
            if known == 0 or total % known:
                return flow.opaque("Reshape")
            shape[shape.index(-1)] = total // known
        if any(d < 0 for d in shape) or math.prod(shape) != total:
            return flow.opaque("Reshape")
        kept = [(a, d) for a, d in zip(flow.axes, flow.shape, strict=True) if d != 1]
        if [d for d in shape if d != 1] != [d for _, d in kept]:
            return flow.opaque("Reshape")
        source = iter(kept)
        axes = tuple(None if d == 1 else next(source)[0] for d in shape)
        return _Flow(flow.entry, axes, tuple(shape), (*flow.via, "Reshape"))


class OnnxSource(TensorSource):
    """Every stored tensor of an ONNX model (initializers, Constant nodes, subgraphs), in graph
    order."""

    format = "onnx"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        onnx = require("onnx", "ONNX models")
        self._onnx = onnx
        try:
            model = onnx.load(path, load_external_data=False)
        except Exception as error:  # protobuf's DecodeError and friends: any failure is corrupt
            detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise XavinitError(f"{path}: not a readable ONNX model ({detail})") from None
        graph = model.graph
        if not graph.node and not graph.initializer and not graph.sparse_initializer:
            raise XavinitError(f"{path}: not a readable ONNX model (no graph)")
        self._model = model  # the protos the entries point into
        self._folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        reader = _Reader(onnx, path)
        try:
            reader.walk(graph, "", _Scope())
        except XavinitError:
            raise
        except (TypeError, ValueError, AttributeError, IndexError, RecursionError) as error:
            detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise XavinitError(f"{path}: not a readable ONNX model ({detail})") from None
        if not reader.entries:
            raise XavinitError(
                f"{path}: the ONNX model holds no weight tensors (no initializers and no "
                "Constant nodes in its graph or its subgraphs)"
            )
        self._entries = reader.entries
        self._extents: dict[int, tuple[str, int, int]] = {}
        for entry in self._entries:  # every external reference checked before anything is read
            for tensor in self._protos(entry):
                if tensor.data_location == onnx.TensorProto.EXTERNAL:
                    self._extents[id(tensor)] = self._check_external(entry.name, tensor)
        names = [entry.name for entry in self._entries]
        self.tensors = []
        for index, entry in enumerate(self._entries):
            hint = reader.hints.get(index, {})
            role = hint.get("role")
            if role == "dense" and index in reader.attention:
                role = "attention"
            if role is None and reader.uses.get(index) == {"plain"}:
                role = "other"  # used, and only by ops that take no weight: masks, shapes
            owner = hint.get("owner")
            self.tensors.append(
                TensorInfo(
                    entry.name,
                    entry.dims,
                    entry.dtype,
                    layout=hint.get("layout"),
                    role=role,
                    groups=hint.get("groups"),
                    owner=names[owner] if owner is not None else None,
                    key=index,
                    fan_axes=hint.get("fan_axes"),
                    note=hint.get("note", ""),
                )
            )

    @staticmethod
    def _protos(entry: _Entry) -> list[Any]:
        if entry.tensor is not None:
            return [entry.tensor]
        if entry.sparse is not None:
            return [entry.sparse.values, entry.sparse.indices]
        return []

    def _nbytes(self, name: str, tensor: Any) -> int | None:
        """Bytes a tensor's values take in its external file (None: a type whose packing this
        reader does not know; onnx decodes it, and refuses it when the bytes do not fit)."""
        count = math.prod(int(d) for d in tensor.dims)
        if tensor.data_type in _PACKED_BITS:
            return -(-count * _PACKED_BITS[tensor.data_type] // 8)
        if tensor.data_type == self._onnx.TensorProto.STRING:
            raise XavinitError(
                f"{self.path}: tensor {name!r}: strings stored as external data are not supported"
            )
        if tensor.data_type in _UNKNOWN_PACKING:
            return None
        try:
            itemsize = np.dtype(
                self._onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
            ).itemsize
        except (KeyError, TypeError, ValueError):
            return None
        return count * itemsize

    def _check_external(self, name: str, tensor: Any) -> tuple[str, int, int]:
        """``(file, offset, bytes)`` of an external tensor, refused when it leaves the folder,
        is missing or runs past the end of its file."""
        entries = {_text(e.key): _text(e.value) for e in tensor.external_data}
        location = entries.get("location", "")
        target = os.path.realpath(os.path.join(self._folder, location))
        if (
            not location
            or os.path.isabs(location)
            or os.path.commonpath([target, self._folder]) != self._folder
        ):
            raise XavinitError(
                f"{self.path}: tensor {name!r}: external data location {location!r} "
                "leaves the model's folder; refused"
            )
        if not os.path.isfile(target):
            raise XavinitError(
                f"{self.path}: tensor {name!r}: external data file {location!r} is missing"
            )
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError:
            raise XavinitError(f"{self.path}: tensor {name!r}: bad external data offsets") from None
        needed = self._nbytes(name, tensor)
        size = os.path.getsize(target)
        if offset < 0 or (length is not None and needed is not None and length < needed):
            raise XavinitError(
                f"{self.path}: tensor {name!r}: external data of {length} bytes at offset "
                f"{offset} cannot hold its {needed} bytes"
            )
        span = needed if needed is not None else length if length is not None else size - offset
        if offset + max(span, length or 0) > size:
            raise XavinitError(
                f"{self.path}: tensor {name!r}: external data runs past the end of "
                f"{location!r} ({size} bytes)"
            )
        return target, offset, span

    def _array(self, name: str, tensor: Any) -> np.ndarray:
        """The values of one TensorProto: memory-mapped when external, else decoded."""
        onnx = self._onnx
        dims = tuple(int(d) for d in tensor.dims)
        extent = self._extents.get(id(tensor))
        try:
            if extent is not None:
                target, offset, needed = extent
                if tensor.data_type == onnx.TensorProto.BFLOAT16:
                    return bfloat16_to_float32(self._map(target, offset, "<u2", dims))
                dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type))
                if dtype.kind in "biufc" and tensor.data_type not in _PACKED_BITS:
                    return self._map(target, offset, dtype.newbyteorder("<"), dims)
                require_memory(needed, f"{self.path}: tensor {name!r}")
                with open(target, "rb") as stream:  # float8, 4-bit: decoded by onnx
                    stream.seek(offset)
                    raw = stream.read(needed)
                copy = onnx.TensorProto()
                copy.CopyFrom(tensor)
                del copy.external_data[:]
                copy.data_location = onnx.TensorProto.DEFAULT
                copy.raw_data = raw
                tensor = copy
            array = np.asarray(onnx.numpy_helper.to_array(tensor))
        except XavinitError:
            raise
        except Exception as error:  # truncated raw data, a bad type: corrupt input
            detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise XavinitError(f"{self.path}: tensor {name!r} is unreadable ({detail})") from None
        if tensor.data_type == onnx.TensorProto.BFLOAT16:
            array = array.astype(np.float32)
        elif tensor.data_type in _SMALL_INTEGERS:
            array = array.astype(_SMALL_INTEGERS[tensor.data_type])
        return array

    @staticmethod
    def _map(target: str, offset: int, dtype: Any, dims: tuple[int, ...]) -> np.ndarray:
        count = math.prod(dims)
        if count == 0:
            return np.zeros(dims, dtype=dtype)
        return np.memmap(target, dtype=dtype, mode="r", offset=offset, shape=(count,)).reshape(dims)

    def _dense(self, entry: _Entry) -> np.ndarray:
        """A sparse tensor made dense: ``values`` at ``indices`` (linear, or one row per value)."""
        sparse = entry.sparse
        values = self._array(entry.name, sparse.values).reshape(-1)
        indices = self._array(entry.name, sparse.indices).astype(np.int64)
        dims = entry.dims
        count = math.prod(dims)
        require_memory(count * values.dtype.itemsize, f"{self.path}: sparse tensor {entry.name!r}")
        if indices.ndim == 2 and indices.shape == (values.size, len(dims)):
            bounds = np.array(dims, dtype=np.int64)
            if indices.size and ((indices < 0).any() or (indices >= bounds).any()):
                raise XavinitError(
                    f"{self.path}: sparse tensor {entry.name!r} has indices out of range"
                )
            linear = np.ravel_multi_index(indices.T, dims) if indices.size else indices[:, 0]
        elif indices.ndim == 1 and indices.size == values.size:
            linear = indices
            if linear.size and (linear.min() < 0 or linear.max() >= count):
                raise XavinitError(
                    f"{self.path}: sparse tensor {entry.name!r} has indices out of range"
                )
        else:
            raise XavinitError(
                f"{self.path}: sparse tensor {entry.name!r}: indices of shape {indices.shape} do "
                f"not fit {values.size} values"
            )
        dense = np.zeros(count, dtype=values.dtype)
        dense[linear] = values
        return dense.reshape(dims)

    def load(self, info: TensorInfo) -> np.ndarray:
        entry = self._entries[info.key]
        if entry.literal is not None:
            array = entry.literal
        elif entry.sparse is not None:
            array = self._dense(entry)
        else:
            array = self._array(entry.name, entry.tensor)
        if tuple(array.shape) != info.shape:
            raise XavinitError(
                f"{self.path}: tensor {info.name!r} holds the wrong number of values"
            )
        return array
