"""Plain minibatch SGD on an MLP, in place: the paper's training procedure (section 2.3).

``theta <- theta - lr * dC/dtheta`` with no momentum and no weight decay, the cost averaged over
the minibatch. Every buffer is allocated once per batch size; the learning rate and ``1/B`` are
folded into the top-layer gradient, so each weight update is one ``W -= dW`` (PERF.md).
The gradients are those of :func:`xavinit.network.backward`, which the tests check against finite
differences and against this step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xavinit.activations import Activation

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
        weights: Sequence[np.ndarray],
        biases: Sequence[np.ndarray],
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
        self._batch = 0
        self._grad_w = [np.empty_like(w) for w in self.weights]

    def _buffers(self, batch: int) -> None:
        """(Re)allocate the per-batch buffers: pre-activations, gradients, f'."""
        if batch == self._batch:
            return
        self._batch = batch
        self._s = [np.empty((batch, n), dtype=self.dtype) for n in self.widths[1:]]
        self._pre = [
            np.empty((batch, n), dtype=self.dtype) if self.activation.needs_preactivation else None
            for n in self.widths[1:-1]
        ]
        self._dz = [np.empty((batch, n), dtype=self.dtype) for n in self.widths[1:-1]]
        self._deriv = [np.empty((batch, n), dtype=self.dtype) for n in self.widths[1:-1]]
        self._rows = np.arange(batch)

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One SGD update on the minibatch ``(x, y)``; returns the minibatch's mean cost
        before the update (NaN or inf when the network diverged; the update still happens)."""
        batch = x.shape[0]
        self._buffers(batch)
        layers = len(self.weights)
        z = x
        hidden: list[np.ndarray] = [x]
        for k in range(layers):
            s = self._s[k]
            np.matmul(z, self.weights[k], out=s)
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
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        probs = logits
        picked = probs[self._rows, y]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.cost == "nll":
                cost = float(-np.mean(np.log(picked)))
                grad = probs
                grad[self._rows, y] -= 1.0  # dC/ds^L = (P - Y) / B
            else:
                grad = probs.copy()
                grad[self._rows, y] -= 1.0
                cost = float(0.5 * np.einsum("ij,ij->", grad, grad) / batch)
                # dC/ds_j = P_j (g_j - sum_k g_k P_k) with g = dC/dP.
                grad -= np.einsum("ij,ij->i", grad, probs)[:, None]
                grad *= probs
            grad *= lr / batch
            for k in range(layers - 1, -1, -1):
                below = None
                if k > 0:
                    below = self._dz[k - 1]
                    np.matmul(grad, self.weights[k].T, out=below)  # before W changes
                np.matmul(hidden[k].T, grad, out=self._grad_w[k])
                self.weights[k] -= self._grad_w[k]
                self.biases[k] -= grad.sum(axis=0)
                if below is not None:
                    deriv = self.activation.derivative(
                        self._pre[k - 1], hidden[k], out=self._deriv[k - 1]
                    )
                    below *= deriv
                    grad = below
        return cost
