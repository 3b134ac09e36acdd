"""Forward and backward passes of a fully connected softmax network, as pure functions.

Convention (Glorot and Bengio, 2010, row vectors; batch rows are examples): layer ``k`` (1-based,
``k = 1..L``) is the ``k``-th weight matrix ``W^k`` of shape ``(fan_in, fan_out) = (n_{k-1}, n_k)``
and computes

    s^k = z^{k-1} W^k + b^k,    z^k = f(s^k) for k < L,    P = softmax(s^L),

with ``z^0 = x``. In code, lists are 0-based: ``weights[i]`` is ``W^{i+1}``, ``cache.z[i]`` is
``z^i`` (the input of ``weights[i]``) and ``grads.ds[i]`` is ``dC/ds^{i+1}``.

Backward (the chain rule, next to the forward it inverts):

    dC/dW^k = (z^{k-1})^T dC/ds^k,   dC/db^k = sum_rows dC/ds^k,
    dC/ds^{k-1} = (dC/ds^k (W^k)^T) * f'(s^{k-1}).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from xavinit.core.activations import Activation
from xavinit.core.backends import ops_for
from xavinit.core.stats import CHUNK
from xavinit.errors import XavinitError

__all__ = [
    "COSTS",
    "Buffers",
    "Cost",
    "ForwardCache",
    "Gradients",
    "Observer",
    "backward",
    "forward",
    "nll_cost",
    "quadratic_cost",
    "softmax",
]

Array = np.ndarray
Cost = Literal["nll", "quadratic"]
COSTS: tuple[str, ...] = ("nll", "quadratic")
"""Cost names accepted by :func:`backward`."""


@dataclass(frozen=True)
class ForwardCache:
    """What :func:`forward` keeps for :func:`backward` and for activation statistics.

    Attributes:
        z: ``(z^0 = x, z^1, ..., z^{L-1})``: the input and the hidden post-activations;
            ``z[i]`` has shape ``(batch, n_i)`` and is the input of ``weights[i]``.
        s: ``(s^1, ..., s^{L-1})``: hidden pre-activations, each ``None`` unless the activation
            needs it for its derivative (gelu).
        logits: Output pre-activations ``s^L``, shape ``(batch, n_L)``.
        probs: ``softmax(s^L)``, shape ``(batch, n_L)``.
    """

    z: tuple[Array, ...]
    s: tuple[Array | None, ...]
    logits: Array
    probs: Array

    @property
    def hidden(self) -> tuple[Array, ...]:
        """Hidden post-activations ``(z^1, ..., z^{L-1})``."""
        return self.z[1:]


@dataclass(frozen=True)
class Gradients:
    """Gradients of the cost; every tuple has one entry per layer, 0-based.

    Attributes:
        ds: ``ds[i] = dC/ds^{i+1}``, shape ``(batch, n_{i+1})``.
        dw: ``dw[i] = dC/dW^{i+1}``, shape ``(n_i, n_{i+1})``.
        db: ``db[i] = dC/db^{i+1}``, shape ``(n_{i+1},)``.
    """

    ds: tuple[Array, ...]
    dw: tuple[Array, ...]
    db: tuple[Array, ...]


class Buffers:
    """numpy arrays that :func:`forward` and :func:`backward` write their outputs into (and
    :func:`xavinit.core.measure.measure_network` its drawn weights and inputs), kept
    from one call to the next: a run that pushes many networks of one shape through (propagate's
    trials and schemes) fills the same memory again instead of a fresh multi-MB array per
    product, which the allocator hands back to the system and page-faults in again (6% of a
    propagate run). What a call returns lives in these arrays until the next call with them.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, int], np.ndarray] = {}

    def get(self, role: str, layer: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The array for ``role`` at ``layer``, made (uninitialised) on first use or when its
        shape or dtype changed."""
        array = self._arrays.get((role, layer))
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.empty(shape, dtype=dtype)
            self._arrays[(role, layer)] = array
        return array


class Observer(Protocol):
    """Shown every array a pass makes, chunk by chunk while each chunk is in cache: ``piece``
    is ``array``'s flat C-order entries from ``start``, :data:`xavinit.core.stats.CHUNK` of them
    (fewer at the end), in order. ``role`` is ``"activation"`` (``z^{k+1}`` of a hidden layer,
    the logits ``s^L`` at the top), ``"ds"`` (``dC/ds^{k+1}``, once final) or ``"dw"``
    (``dC/dW^{k+1}``); ``layer`` is ``k``, 0-based. numpy arrays only."""

    def __call__(
        self, role: str, layer: int, array: np.ndarray, start: int, piece: np.ndarray
    ) -> None: ...


def _pieces(array: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, view)`` of each :data:`~xavinit.core.stats.CHUNK` of a C-contiguous array."""
    flat = array.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        yield start, flat[start : start + CHUNK]


def _show(observe: Observer | None, role: str, layer: int, array: Array) -> None:
    """Show ``array`` (made whole already) to ``observe``, chunk by chunk."""
    if observe is not None:
        flat = np.ravel(array, order="C")
        for start, piece in _pieces(flat):
            observe(role, layer, flat, start, piece)


def _fused(observe: Observer | None, array: Array) -> bool:
    """Whether an in-place step on ``array`` can run chunk by chunk, each chunk shown to
    ``observe`` right after it (numpy, C-contiguous: its chunks are views)."""
    return observe is not None and isinstance(array, np.ndarray) and array.flags.c_contiguous


def _product(a: Array, b: Array, buffers: Buffers | None, role: str, layer: int) -> Array:
    """``a @ b``, into ``buffers``' array for ``(role, layer)`` when given (numpy only)."""
    if buffers is None or not isinstance(a, np.ndarray):
        return a @ b
    out = buffers.get(role, layer, (a.shape[0], b.shape[1]), np.result_type(a, b))
    return np.matmul(a, b, out=out)


def _host(a: Array) -> Array:
    """numpy input as an array (lists, scalars); torch and cupy arrays as they are."""
    return np.asarray(a) if ops_for(a) is np else a


def _cast(a: Array, dtype: object) -> Array:
    """``a`` in ``dtype``, no copy when it already is (any backend)."""
    a = _host(a)
    return a if a.dtype == dtype else array_namespace(a).astype(a, dtype)


def softmax(logits: Array, out: Array | None = None) -> Array:
    """Return ``P_j = exp(s_j - max s) / sum_k exp(s_k - max s)`` along the last axis.

    Args:
        logits: Shape ``(batch, classes)``, any backend's array.
        out: Optional output array (may be ``logits``).
    """
    logits = _host(logits)
    xp, ops = array_namespace(logits), ops_for(logits)
    shift = xp.max(logits, axis=-1, keepdims=True)
    out = ops.subtract(logits, shift, out=out)
    ops.exp(out, out=out)
    out /= xp.sum(out, axis=-1, keepdims=True)
    return out


def forward(
    x: Array,
    weights: Sequence[Array],
    biases: Sequence[Array] | None,
    activation: Activation,
    buffers: Buffers | None = None,
    observe: Observer | None = None,
) -> ForwardCache:
    """Run ``s^k = z^{k-1} W^k + b^k``, ``z^k = f(s^k)`` (hidden), ``P = softmax(s^L)``.

    Arrays may be numpy, torch or cupy (all of one backend, :mod:`xavinit.core.backends`).
    The dtype is ``x``'s when floating, float32 otherwise; weights and biases are cast to it
    (no copy when they already match). Hidden pre-activations are overwritten in place by
    ``f`` unless ``activation.needs_preactivation``.

    Args:
        x: Inputs, shape ``(batch, n_0)``.
        weights: ``L`` matrices, ``weights[i]`` of shape ``(n_i, n_{i+1})``.
        biases: ``L`` vectors of shape ``(n_{i+1},)``, or ``None`` for zero biases.
        activation: Hidden activation ``f``.
        buffers: Optional :class:`Buffers` for the products (numpy arrays only); the result
            is then valid until the next call with them.
        observe: Optional :class:`Observer` shown each hidden ``z^k`` and the logits; ``f``
            is then applied chunk by chunk (it is elementwise: the same numbers), each chunk
            shown while it is in cache.

    Example:
        >>> from xavinit.core.activations import get_activation
        >>> w = [np.ones((3, 4)), np.ones((4, 2))]
        >>> forward(np.zeros((5, 3)), w, None, get_activation("tanh")).probs.shape
        (5, 2)
    """
    x = _host(x)
    xp = array_namespace(x)
    dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float32
    z = _cast(x, dtype)
    _check_shapes(z, weights, biases)
    zs: list[Array] = [z]
    ss: list[Array | None] = []
    n_layers = len(weights)
    s = z
    for i, w in enumerate(weights):
        s = _product(z, _cast(w, dtype), buffers, "s", i)
        if biases is not None:
            s += _cast(biases[i], dtype)
        if i == n_layers - 1:
            _show(observe, "activation", i, s)
            break
        if activation.needs_preactivation:
            ss.append(s)
            z = activation.forward(s)
            _show(observe, "activation", i, z)
        elif _fused(observe, s):
            assert observe is not None
            ss.append(None)
            for start, piece in _pieces(s):
                done = activation.forward(piece, out=piece)
                if done is not piece:
                    piece[...] = done
                observe("activation", i, s, start, piece)
            z = s
        else:
            ss.append(None)
            z = activation.forward(s, out=s)
            _show(observe, "activation", i, z)
        zs.append(z)
    return ForwardCache(z=tuple(zs), s=tuple(ss), logits=s, probs=softmax(s))


def _check_shapes(x: Array, weights: Sequence[Array], biases: Sequence[Array] | None) -> None:
    if len(weights) == 0:
        raise XavinitError("a network needs at least one weight matrix")
    if x.ndim != 2:
        raise XavinitError(f"inputs must have shape (batch, n_0), got {x.shape}")
    if biases is not None and len(biases) != len(weights):
        raise XavinitError(f"got {len(weights)} weight matrices but {len(biases)} biases")
    fan = x.shape[1]
    for i, w in enumerate(weights):
        shape = tuple(_host(w).shape)
        if len(shape) != 2 or shape[0] != fan:
            raise XavinitError(f"weights[{i}]: expected shape ({fan}, fan_out), got {shape}")
        fan = shape[1]
        if biases is not None and tuple(_host(biases[i]).shape) != (fan,):
            got = tuple(_host(biases[i]).shape)
            raise XavinitError(f"biases[{i}]: expected shape ({fan},), got {got}")


def _targets(labels: Array, like: Array) -> Array:
    """One-hot matrix (``like``'s shape, dtype and device) for integer labels of shape
    ``(batch,)``; 2-D targets pass through."""
    labels = _host(labels)
    xp, shape = array_namespace(like), tuple(like.shape)
    if labels.ndim == 2:
        if tuple(labels.shape) != shape:
            raise XavinitError(f"targets must have shape {shape}, got {tuple(labels.shape)}")
        return _cast(labels, like.dtype)
    if tuple(labels.shape) != (shape[0],) or not xp.isdtype(labels.dtype, "integral"):
        raise XavinitError(
            f"labels must be integers of shape ({shape[0]},) or targets of shape {shape}"
        )
    if shape[0] and (int(xp.min(labels)) < 0 or int(xp.max(labels)) >= shape[1]):
        raise XavinitError(f"labels must lie in 0..{shape[1] - 1}")
    onehot = xp.zeros(shape, dtype=like.dtype, device=device_of(like))
    onehot[xp.arange(shape[0], device=device_of(like)), labels] = 1.0
    return onehot


def nll_cost(logits: Array, labels: Array) -> float:
    """Return ``C = -(1/B) sum_b sum_j y_bj log softmax(s_b)_j`` (the paper's ``-log P(y|x)``).

    Computed stably as ``logsumexp(s_b) - s_b[y_b]`` for integer labels.

    Args:
        logits: ``s^L``, shape ``(batch, classes)``.
        labels: Integer classes, shape ``(batch,)``, or target distributions ``(batch, classes)``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = _targets(labels, logits)
    shift = logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(logits - shift).sum(axis=1, keepdims=True)) + shift
    return float(-(y * (logits - log_z)).sum() / logits.shape[0])


def quadratic_cost(logits: Array, labels: Array) -> float:
    """Return ``C = (1/B) sum_b 0.5 ||softmax(s_b) - y_b||^2`` (the paper's figure 5).

    Args:
        logits: ``s^L``, shape ``(batch, classes)``.
        labels: Integer classes, shape ``(batch,)``, or targets ``(batch, classes)``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    diff = softmax(logits) - _targets(labels, logits)
    return float(0.5 * np.einsum("ij,ij->", diff, diff) / logits.shape[0])


def _output_grad(cache: ForwardCache, labels: Array, cost: str) -> Array:
    p = cache.probs
    batch = p.shape[0]
    g = p - _targets(labels, p)  # NLL: dC/ds^L = (P - Y)/B
    if cost == "quadratic":
        # dC/dP = (P - Y)/B; dC/ds_j = P_j (dC/dP_j - sum_k dC/dP_k P_k).
        g -= ops_for(p).einsum("ij,ij->i", g, p)[:, None]
        g *= p
    g /= batch
    return g


def backward(
    cache: ForwardCache,
    weights: Sequence[Array],
    activation: Activation,
    labels: Array | None = None,
    output_grad: Array | None = None,
    cost: Cost = "nll",
    bias_gradients: bool = True,
    buffers: Buffers | None = None,
    observe: Observer | None = None,
) -> Gradients:
    """Back-propagate ``dC/ds^L`` through the network of :func:`forward`.

    ``dC/ds^L`` is ``(P - Y)/B`` for ``cost="nll"``, ``P * (G - <G, P>)`` with
    ``G = (P - Y)/B`` for ``cost="quadratic"``, or ``output_grad`` itself when given (the
    cost is then ``C = sum(output_grad * s^L)``, not averaged). Then, going down,
    ``dW^k = (z^{k-1})^T ds^k``, ``db^k = sum_rows ds^k`` and
    ``ds^{k-1} = (ds^k (W^k)^T) f'(s^{k-1})``, the last product in place.

    Args:
        cache: Result of :func:`forward` with the same weights and activation.
        weights: ``L`` matrices, ``weights[i]`` of shape ``(n_i, n_{i+1})``.
        activation: Hidden activation ``f``.
        labels: Integer classes ``(batch,)`` or targets ``(batch, n_L)``; exclusive with
            ``output_grad``.
        output_grad: ``dC/ds^L``, shape ``(batch, n_L)``, e.g. unit-variance noise.
        cost: ``"nll"`` or ``"quadratic"``; ignored with ``output_grad``.
        bias_gradients: False skips ``db`` (left as empty arrays) when only ``ds`` and
            ``dW`` are wanted.
        buffers: Optional :class:`Buffers` for the products and ``f'`` (numpy arrays only);
            the result is then valid until the next call with them.
        observe: Optional :class:`Observer` shown each final ``ds`` and each ``dW``; the
            product by ``f'`` then runs chunk by chunk (elementwise: the same numbers), each
            chunk shown while it is in cache.

    Returns:
        Gradients with ``ds[i] = dC/ds^{i+1}``, ``dw[i] = dC/dW^{i+1}``, ``db[i] = dC/db^{i+1}``.
    """
    if cost not in COSTS:
        raise XavinitError(f"unknown cost {cost!r}; valid: {', '.join(COSTS)}")
    if (labels is None) == (output_grad is None):
        raise XavinitError("give exactly one of labels and output_grad")
    if len(weights) != len(cache.z):
        raise XavinitError(f"cache has {len(cache.z)} layers, got {len(weights)} weight matrices")
    dtype = cache.logits.dtype
    xp, ops = array_namespace(cache.logits), ops_for(cache.logits)
    if output_grad is not None:
        ds = xp.astype(_host(output_grad), dtype, copy=True)
        if ds.shape != cache.logits.shape:
            raise XavinitError(
                f"output_grad: expected shape {tuple(cache.logits.shape)}, got {tuple(ds.shape)}"
            )
    elif labels is not None:
        ds = _output_grad(cache, labels, cost)

    n_layers = len(weights)
    ds_all: list[Array] = [ds] * n_layers
    dw_all: list[Array] = [ds] * n_layers
    db_all: list[Array] = [xp.empty((0,), dtype=dtype, device=device_of(ds))] * n_layers
    skip_derivative = activation.name == "linear"
    buf: Array | None = None
    _show(observe, "ds", n_layers - 1, ds)
    for i in range(n_layers - 1, -1, -1):
        w = _cast(weights[i], dtype)
        ds_all[i] = ds
        dw_all[i] = _product(cache.z[i].T, ds, buffers, "dw", i)
        _show(observe, "dw", i, dw_all[i])
        if bias_gradients:
            db_all[i] = xp.sum(ds, axis=0)
        if i == 0:
            break
        ds = _product(ds, w.T, buffers, "ds", i - 1)  # dC/dz^i, then times f'(s^i) in place
        if skip_derivative:
            _show(observe, "ds", i - 1, ds)
            continue
        z, s = cache.z[i], cache.s[i - 1]
        if buffers is not None and isinstance(z, np.ndarray):
            buf = buffers.get("derivative", 0, z.shape, z.dtype)
        elif buf is None or buf.shape != z.shape or buf.dtype != z.dtype:
            buf = ops.empty_like(z)
        if _fused(observe, ds) and all(_fused(observe, a) for a in (z, buf, s) if a is not None):
            assert observe is not None
            z_flat, buf_flat = z.reshape(-1), buf.reshape(-1)
            s_flat = None if s is None else s.reshape(-1)
            for start, piece in _pieces(ds):
                end = start + piece.size
                piece *= activation.derivative(
                    None if s_flat is None else s_flat[start:end],
                    z_flat[start:end],
                    out=buf_flat[start:end],
                )
                observe("ds", i - 1, ds, start, piece)
        else:
            ds *= activation.derivative(s, z, out=buf)
            _show(observe, "ds", i - 1, ds)
    return Gradients(ds=tuple(ds_all), dw=tuple(dw_all), db=tuple(db_all))
