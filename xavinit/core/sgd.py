"""Plain minibatch SGD on an MLP, in place: the paper's training procedure (section 2.3).

``theta <- theta - lr * dC/dtheta`` with no momentum and no weight decay, the cost averaged over
the minibatch. Every buffer is allocated once per batch size; the learning rate and ``1/B`` are
folded into the top-layer gradient, so each weight update is one ``W -= dW`` (PERF.md).
The gradients are those of :func:`xavinit.core.network.backward`, which the tests check against finite
differences and against this step.

The arrays may be numpy, torch or cupy (:mod:`xavinit.core.backends`): the step is written against the
array API namespace plus numpy's ``out=`` kernels, and never reads a value back to the host, so a
GPU runs updates back to back; :meth:`SGD.step` returns the cost as a 0-d array.

Fused update (numpy, scipy installed): ``W <- W - Z^T dS`` is one BLAS call, ``gemm`` with
``alpha = -1`` and ``beta = 1`` writing into ``W`` (``scipy.linalg.blas``), instead of a product
into a zeroed buffer and a second pass over ``W``. While the batch (the product's inner
dimension) fits one of the BLAS kernel's K blocks, both forms round ``W - sum_b z_b dS_b`` once
after the same sum, so they give the same bits; past it (float32 above 400, float64 above 384
with OpenBLAS on AVX-512) they do not. So the fused form is used only for batches up to
:data:`FUSED_MAX_BATCH`, and only after the first step at that batch size computed both forms and
found them equal in every layer; otherwise every update is the split form. Without scipy the
split form runs: the results are the same bits either way. PyTorch's ``addmm_`` (MKL) differs from
its split form in the last bit, so the torch backend keeps the split form.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from xavinit.core.activations import Activation
from xavinit.core.backends import ops_for

COSTS = ("nll", "quadratic")

FUSED_MAX_BATCH = 256
"""Largest batch that may use the fused ``gemm`` update (module docstring): below the K block of
OpenBLAS's gemm kernels on the CPUs it targets (it was measured identical up to 384 here)."""


def _fused_gemm(weight: Any) -> Any:
    """``scipy.linalg.blas.sgemm``/``dgemm`` for a C-ordered float32/float64 numpy ``weight``;
    None when scipy is missing or the array is anything else (the split update runs). scipy
    may bring a BLAS of its own: hold it (:func:`_hold_scipy_blas`) before the first call."""
    if type(weight) is not np.ndarray or not weight.flags.c_contiguous:
        return None
    if weight.dtype not in (np.float32, np.float64):
        return None
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    return blas.sgemm if weight.dtype == np.float32 else blas.dgemm


def _hold_scipy_blas() -> None:
    """Hold the BLAS libraries that scipy loaded beside numpy's (a wheel's own OpenBLAS, in
    ``scipy.libs`` or inside the package) to :func:`xavinit.resources.side_blas_threads` of
    numpy's thread count: idle OpenBLAS threads spin, and two pools of spinning threads on
    too few cores slow a small-batch step several times over (PERF.md). Where scipy and numpy
    share one BLAS (conda, a system library) nothing is changed."""
    import scipy
    from threadpoolctl import ThreadpoolController

    from xavinit.resources import side_blas_threads

    package = os.path.realpath(os.path.dirname(scipy.__file__))  # threadpoolctl's are real
    own = (package + os.sep, package + ".libs" + os.sep)
    blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    scipys = [c for c in blas if c.filepath.startswith(own)]
    others = [c.num_threads for c in blas if not c.filepath.startswith(own)]
    if scipys and others:
        threads = side_blas_threads(min(others))
        for controller in scipys:
            controller.set_num_threads(threads)


class SGD:
    """An MLP's parameters and the buffers of its SGD step.

    Args:
        weights: ``L`` matrices ``(n_{k-1}, n_k)``, updated in place.
        biases: ``L`` vectors ``(n_k,)``, updated in place.
        activation: the hidden activation; the output layer is a softmax.
        cost: ``"nll"`` (``-log P(y|x)``) or ``"quadratic"`` (``0.5 ||P - onehot(y)||^2``).
    """

    def __init__(
        self,
        weights: Sequence[Any],
        biases: Sequence[Any],
        activation: Activation,
        cost: str = "nll",
    ) -> None:
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, got {cost!r}")
        self.weights = list(weights)
        self.biases = list(biases)
        self.activation = activation
        self.cost = cost
        self.dtype = self.weights[0].dtype
        self.widths = [self.weights[0].shape[0], *(w.shape[1] for w in self.weights)]
        self.xp, self.ops = array_namespace(self.weights[0]), ops_for(self.weights[0])
        self.device = device_of(self.weights[0])
        self._batch = 0
        self._grad_w = [self.ops.empty_like(w) for w in self.weights]
        gemms = {_fused_gemm(w) for w in self.weights}
        self._gemm: Any = gemms.pop() if len(gemms) == 1 else None
        if self._gemm is not None:
            _hold_scipy_blas()
        self._fused: bool | None = False
        """Whether the fused update runs at this batch size: None until the first step at it
        compared both forms."""

    def _buffers(self, batch: int) -> None:
        """(Re)allocate the per-batch buffers: pre-activations, gradients, f'."""
        if batch == self._batch:
            return
        self._batch = batch

        def empty(n: int) -> Any:
            return self.xp.empty((batch, n), dtype=self.dtype, device=self.device)

        self._s = [empty(n) for n in self.widths[1:]]
        self._pre = [
            empty(n) if self.activation.needs_preactivation else None for n in self.widths[1:-1]
        ]
        self._dz = [empty(n) for n in self.widths[1:-1]]
        self._deriv = [empty(n) for n in self.widths[1:-1]]
        self._rows = self.xp.arange(batch, device=self.device)
        fits = self._gemm is not None and batch <= FUSED_MAX_BATCH
        self._fused = None if fits else False

    def step(self, x: Any, y: Any, lr: float) -> Any:
        """One SGD update on the minibatch ``(x, y)`` (arrays of the weights' backend); returns
        the minibatch's mean cost before the update as a 0-d array, NaN or inf when the network
        diverged (the update still happens). ``float(cost)`` reads it back to the host."""
        xp, ops = self.xp, self.ops
        batch = x.shape[0]
        self._buffers(batch)
        layers = len(self.weights)
        z = x
        hidden: list[Any] = [x]
        for k in range(layers):
            s = self._s[k]
            ops.matmul(z, self.weights[k], out=s)
            s += self.biases[k]
            if k == layers - 1:
                break
            pre = self._pre[k]
            if pre is not None:
                pre[...] = s
            z = self.activation.forward(s, out=s)
            hidden.append(z)
        logits = self._s[-1]
        # Softmax in place: P = exp(s - max s) / sum exp(s - max s).
        logits -= xp.max(logits, axis=1, keepdims=True)
        ops.exp(logits, out=logits)
        logits /= xp.sum(logits, axis=1, keepdims=True)
        probs = logits
        picked = probs[self._rows, y]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.cost == "nll":
                cost = -xp.mean(xp.log(picked))
                grad = probs
                grad[self._rows, y] -= 1.0  # dC/ds^L = (P - Y) / B
            else:
                grad = xp.asarray(probs, copy=True)
                grad[self._rows, y] -= 1.0
                cost = 0.5 * ops.einsum("ij,ij->", grad, grad) / batch
                # dC/ds_j = P_j (g_j - sum_k g_k P_k) with g = dC/dP.
                grad -= ops.einsum("ij,ij->i", grad, probs)[:, None]
                grad *= probs
            grad *= lr / batch
            for k in range(layers - 1, -1, -1):
                below = None
                if k > 0:
                    below = self._dz[k - 1]
                    ops.matmul(grad, self.weights[k].T, out=below)  # before W changes
                self._update(k, hidden[k], grad)
                self.biases[k] -= xp.sum(grad, axis=0)
                if below is not None:
                    deriv = self.activation.derivative(
                        self._pre[k - 1], hidden[k], out=self._deriv[k - 1]
                    )
                    below *= deriv
                    grad = below
            if self._fused is None:
                self._fused = True  # every layer gave the split form's bits
        return cost

    def _update(self, k: int, inputs: Any, grad: Any) -> None:
        """``W_k -= Z^T dS`` (``grad`` already holds ``lr / B``): split, fused, or on the first
        step at a batch size both, keeping the split result (see the module docstring)."""
        weight, product = self.weights[k], self._grad_w[k]
        if self._fused is False or inputs.dtype != weight.dtype:
            self.ops.matmul(inputs.T, grad, out=product)
            weight -= product
            return
        if self._fused is None:
            self.ops.matmul(inputs.T, grad, out=product)
            np.subtract(weight, product, out=product)  # the split form's new W
        # Fortran order: W^T <- W^T - dS^T Z, in place (``overwrite_c`` on an F-ordered W^T).
        out = self._gemm(-1.0, grad.T, inputs.T, beta=1.0, c=weight.T, trans_b=1, overwrite_c=1)
        if out.ctypes.data != weight.ctypes.data:  # a copy was made: W was not updated
            weight[...] = out.T
        if self._fused is None and not np.array_equal(weight, product):
            weight[...] = product
            self._fused = False
