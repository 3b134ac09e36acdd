"""Plain minibatch SGD on an MLP, in place: the paper's training procedure (section 2.3).

``theta <- theta - lr * dC/dtheta`` with no momentum and no weight decay, the cost averaged over
the minibatch. Every buffer is allocated once per batch size; the learning rate and ``1/B`` are
folded into the top-layer gradient, so each weight update is one ``W -= dW`` (PERF.md).
The gradients are those of :func:`xavinit.network.backward`, which the tests check against finite
differences and against this step.

The arrays may be numpy, torch or cupy (:mod:`xavinit.backends`): the step is written against the
array API namespace plus numpy's ``out=`` kernels, and never reads a value back to the host, so a
GPU runs updates back to back; :meth:`SGD.step` returns the cost as a 0-d array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from xavinit.activations import Activation
from xavinit.backends import ops_for

COSTS = ("nll", "quadratic")


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
                ops.matmul(hidden[k].T, grad, out=self._grad_w[k])
                self.weights[k] -= self._grad_w[k]
                self.biases[k] -= xp.sum(grad, axis=0)
                if below is not None:
                    deriv = self.activation.derivative(
                        self._pre[k - 1], hidden[k], out=self._deriv[k - 1]
                    )
                    below *= deriv
                    grad = below
        return cost
