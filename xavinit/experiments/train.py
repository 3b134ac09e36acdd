"""``xavinit train``: the paper's training experiments (section 2.3), tracked per layer.

One SGD run per (scheme, activation), one after another, each on the same data stream: plain
SGD on minibatches (default 10), the NLL cost, biases started at 0. Every ``track_every``
updates the per-layer statistics behind the paper's figures 2, 3, 4 and 9 are measured on a
fixed set of 300 test examples; every ``eval_every`` updates the test error (figures 11, 12).

A checkpoint holds the whole state (weights, the data stream's position and generator, the
tracked history and the finished runs), so a resumed run ends bit-identical to an
uninterrupted one.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from array_api_compat import array_namespace

from xavinit.config import TrainConfig
from xavinit.core.activations import Activation, get_activation
from xavinit.core.backends import Backend, get_backend, to_numpy
from xavinit.core.network import Cost, backward, forward
from xavinit.core.schemes import get_scheme
from xavinit.core.sgd import SGD
from xavinit.core.streams import layer_rng
from xavinit.datasets.base import Dataset, Split
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.experiments.checkpoint import Checkpoint, RunState, save_checkpoint
from xavinit.resources import blas_thread_count, require_memory
from xavinit.results import LayerHistogram, LayerStats, TrainResult, TrainRun

TRACKED_EXAMPLES = 300
"""The paper measures activation statistics on a fixed set of 300 test examples."""

EVAL_CHUNK = 1000

DEVICE_BLOCK = 250
"""Minibatches generated and copied to a device at once (numpy's backend takes one at a time):
the host reads a block's costs back once, never one update's."""

DEVICE_BLOCK_ROWS = 2500
"""At most this many examples in a block (250 batches of 10, 19 of 128, one of a batch this
large or larger): a block and the prefetched one hold at most two such blocks, so their memory
stays bounded whatever the batch size."""


@dataclass(frozen=True)
class Examples:
    """A split's examples on the backend's device: ``x`` ``(count, inputs)``, ``y`` ``(count,)``."""

    x: Any
    y: Any

    def __len__(self) -> int:
        return int(self.y.shape[0])


def on_device(split: Split, backend: Backend, dtype: np.dtype) -> Split | Examples:
    """``split`` in ``dtype`` (the run's, so that a float64 run is measured in float64), copied
    to the backend's device once; numpy's float32 split is ``split`` itself."""
    x = split.x.astype(dtype, copy=False)
    if backend.is_numpy:
        return split if x is split.x else Examples(x, split.y)
    return Examples(backend.asarray(x), backend.asarray(split.y))


class BatchFeed:
    """The training stream's minibatches on the backend's device, generated in blocks.

    A block never crosses an update at which the loop reads the state (tracking, evaluation,
    checkpoint). On a device the next block is drawn and its copy issued while the device still
    runs the current one (:meth:`prefetch`); :meth:`position` is then the stream's state before
    that block, so a checkpoint always records the first batch not yet trained on.
    """

    def __init__(self, dataset: Dataset, batch: int, backend: Backend, dtype: np.dtype) -> None:
        self.dataset, self.batch, self.backend = dataset, batch, backend
        self.block = (
            1 if backend.is_numpy else max(1, min(DEVICE_BLOCK, DEVICE_BLOCK_ROWS // batch))
        )
        self.dtype = dtype  # a device's matmul(out=) does not promote float32 inputs as numpy's
        self._current: list[tuple[Any, Any]] = []
        self._pending: tuple[dict[str, Any], list[tuple[Any, Any]]] | None = None

    def _draw(self, count: int) -> list[tuple[Any, Any]]:
        asarray = self.backend.asarray
        parts = [self.dataset.train.next_batch(self.batch) for _ in range(count)]
        if self.backend.is_numpy:
            return parts
        xs = asarray(np.concatenate([x for x, _ in parts]).astype(self.dtype, copy=False))
        ys = asarray(np.concatenate([y for _, y in parts]))
        rows = range(0, count * self.batch, self.batch)
        return [(xs[r : r + self.batch], ys[r : r + self.batch]) for r in rows]

    def fill(self, limit: int) -> int:
        """Make the next block of at most ``limit`` batches current (the prefetched one, drawn
        with the same limit, when there is one); returns its size."""
        if self._pending is not None:
            self._current, self._pending = self._pending[1], None
        else:
            self._current = self._draw(max(1, min(self.block, limit)))
        return len(self._current)

    def prefetch(self, limit: int) -> None:
        """Draw the block after the current one now, on a device only (numpy has nothing to
        overlap)."""
        if self.block > 1 and limit > 0:
            before = self.dataset.train.state()
            self._pending = (before, self._draw(min(self.block, limit)))

    def position(self) -> dict[str, Any]:
        """The stream's state at the first batch not yet trained on."""
        return self._pending[0] if self._pending is not None else self.dataset.train.state()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._current)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, raised between two updates, after the whole state at that update
    was written to ``checkpoint`` (atomically) when there is one.

    ``update`` of ``updates``: where the run stood; ``run`` of ``runs``: which (scheme,
    activation) run, 1-based, and ``label`` its name.
    """

    def __init__(
        self,
        checkpoint: str | None,
        update: int = 0,
        updates: int = 0,
        run: int = 1,
        runs: int = 1,
        label: str = "",
    ) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.update, self.updates, self.run, self.runs, self.label = (
            update, updates, run, runs, label
        )  # fmt: skip


def resolve_layers(config: TrainConfig, dataset: Dataset) -> tuple[int, ...]:
    """Inputs and outputs follow the dataset; a full ``--layers`` must agree with it."""
    layers = (dataset.inputs, *config.hidden, dataset.classes)
    if config.layers and config.layers != layers:
        raise XavinitError(
            f"--layers: {dataset.name} needs {dataset.inputs} inputs and {dataset.classes} "
            f"outputs, got {','.join(map(str, config.layers))}; give e.g. "
            f"--layers {dataset.inputs},1000x5,{dataset.classes} or --depth/--width"
        )
    return layers


def check_memory(layers: tuple[int, ...], batch: int, itemsize: int) -> None:
    """Refuse a network whose weights, gradients and activations would not fit in memory.

    SGD holds each weight matrix and its gradient, plus a batch's activations and gradients per
    layer (at least the 1000 examples an evaluation chunk takes).
    """
    weights = sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=False))
    rows = max(batch, EVAL_CHUNK)
    need = itemsize * (2 * weights + 2 * rows * sum(layers))
    require_memory(need, f"a {'-'.join(map(str, layers))} network ({itemsize * 8}-bit)")


def test_error(
    weights: list[Any], biases: list[Any], act: Activation, split: Split | Examples
) -> float:
    """Fraction of ``split`` misclassified by the argmax of the network's output (on the
    weights' backend; one count read back per chunk of 1000)."""
    xp = array_namespace(split.x)
    wrong = 0
    for start in range(0, len(split), EVAL_CHUNK):
        x = split.x[start : start + EVAL_CHUNK]
        with np.errstate(all="ignore"):
            logits = forward(x, weights, biases, act).logits
        misses = xp.argmax(logits, axis=1) != split.y[start : start + EVAL_CHUNK]
        wrong += int(xp.sum(xp.astype(misses, xp.int64)))
    return wrong / len(split)


def layer_statistics(
    update: int,
    weights: list[Any],
    biases: list[Any],
    act: Activation,
    tracked: Split | Examples,
    cost: str,
) -> list[LayerStats]:
    """Per hidden layer on the tracked examples: mean, std, 98th percentile and saturation of
    the activations (figures 2, 3), and the std of dC/dW^k of the mean cost (figure 9).

    The passes run on the weights' backend; the activations and weight gradients are read back
    (only here, at ``--track-every``) and summarised in float64 on the host."""
    with np.errstate(all="ignore"):
        cache = forward(tracked.x, weights, biases, act)
        # TrainConfig.from_mapping only accepts "nll" or "quadratic".
        grads = backward(cache, weights, act, labels=tracked.y, cost=cast(Cost, cost))
    rows: list[LayerStats] = []
    for k, hidden in enumerate(cache.hidden):
        z = to_numpy(hidden)
        values = z.astype(np.float64)
        rows.append(
            {
                "update": update,
                "layer": k + 1,
                "mean": float(values.mean()),
                "std": float(values.std()),
                "p98": float(np.percentile(values, 98.0)),
                "saturated_fraction": float(np.count_nonzero(act.saturated(z))) / z.size,
                "weight_grad_std": float(to_numpy(grads.dw[k]).astype(np.float64).std()),
            }
        )
    return rows


def final_histograms(
    weights: list[Any],
    biases: list[Any],
    act: Activation,
    tracked: Split | Examples,
    bins: int = 41,
) -> list[LayerHistogram]:
    """Activation histograms per hidden layer on the tracked examples (the paper's figure 4)."""
    with np.errstate(all="ignore"):
        hidden = forward(tracked.x, weights, biases, act).hidden
    out: list[LayerHistogram] = []
    for k, z in enumerate(map(to_numpy, hidden)):
        limits = act.limits
        if limits is not None and all(map(math.isfinite, limits)):
            edges = np.linspace(limits[0], limits[1], bins + 1)
        else:
            lo, hi = float(z.min()), float(z.max())
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        counts, _ = np.histogram(z, bins=edges)
        out.append({"layer": k + 1, "edges": edges.tolist(), "counts": counts.astype(int).tolist()})
    return out


@contextmanager
def deferred_interrupt(escalate: bool = False) -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C into a flag checked between updates, so no update is left half done; with
    ``escalate`` a second Ctrl-C raises KeyboardInterrupt at once."""
    requested = {"flag": False}

    def handler(signum: int, frame: Any) -> None:
        if escalate and requested["flag"]:
            raise KeyboardInterrupt
        requested["flag"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C cannot be caught here
        yield lambda: False
        return
    try:
        yield lambda: requested["flag"]
    finally:
        signal.signal(signal.SIGINT, previous)


def load_training_data(config: TrainConfig) -> Dataset:
    """The dataset of ``config.dataset`` (never downloaded)."""
    from xavinit.datasets import load_dataset

    return load_dataset(config.dataset, config.preprocess, config.seed)


def run_train(
    config: TrainConfig,
    progress: Progress | None = None,
    resume: Checkpoint | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    dataset: Dataset | None = None,
) -> TrainResult:
    """Train one network per (scheme, activation); a diverged run stops and is marked.

    Args:
        config: what to train.
        progress: called as updates advance.
        resume: a loaded checkpoint to continue from (bit-identical to an uninterrupted run);
            ``config.updates`` may exceed the checkpoint's, which extends its runs.
        stop: polled between updates; when it returns True the run stops as on Ctrl-C.
        dataset: ``config.dataset`` already loaded, its training stream at its start (a caller
            that trains many runs on the same data loads it once); loaded here when None.

    Raises:
        Interrupted: on Ctrl-C or ``stop()``, after writing ``config.checkpoint`` when one is
        set.
    """
    if dataset is None:
        dataset = load_training_data(config)
    layers = resolve_layers(config, dataset)
    check_memory(layers, config.batch_size, np.dtype(config.dtype).itemsize)
    backend = get_backend(config.backend, config.device)
    backend.activate(blas_thread_count())
    test = dataset.test if config.test_size is None else dataset.test.head(config.test_size)
    dtype = np.dtype(config.dtype)
    tracked = dataset.test.head(min(TRACKED_EXAMPLES, len(dataset.test)))
    splits = Splits(
        test=on_device(test, backend, dtype),
        tracked=on_device(tracked, backend, dtype),
        valid=None
        if dataset.valid is None
        else on_device(dataset.valid.head(len(test)), backend, dtype),
    )
    initial_stream = dataset.train.state()
    pairs = [(s, a) for a in config.activations for s in config.schemes]
    finished: list[TrainRun] = list(resume.finished) if resume else []
    total = config.updates * len(pairs)
    with deferred_interrupt() as signalled:
        interrupted = signalled if stop is None else (lambda: signalled() or stop())
        for index, (spec, act_spec) in enumerate(pairs):
            if index < len(finished):
                continue
            scheme, act = get_scheme(spec), get_activation(act_spec)
            if resume is not None and index == len(resume.finished):
                state = resume.state
                weights, biases = resume.weights, resume.biases
                try:
                    dataset.train.restore(state.stream)
                except XavinitError as error:
                    where = config.checkpoint or "the checkpoint"
                    raise XavinitError(f"{where}: current.stream: {error}") from None
            else:
                state = RunState(scheme=spec, activation=act_spec)
                weights = [
                    scheme.sample(
                        (layers[k], layers[k + 1]), layer_rng(config.seed, 0, k + 1), dtype=dtype
                    )
                    for k in range(len(layers) - 1)
                ]
                biases = [np.zeros(n, dtype=dtype) for n in layers[1:]]
                dataset.train.restore(initial_stream)
            sgd = SGD(
                [backend.asarray(w) for w in weights],
                [backend.asarray(b) for b in biases],
                act,
                config.cost,
            )
            feed = BatchFeed(dataset, config.batch_size, backend, dtype)
            _train_one(
                config, feed, sgd, state, splits, interrupted, finished, progress, index, total
            )
            finished.append(_finish(config, state, sgd, splits))
        if progress is not None:
            progress(total, total, "done")
    return TrainResult(
        seed=config.seed,
        config={**config.to_dict(), "layers": list(layers)},
        passed=all(not run.diverged for run in finished),
        runs=finished,
        dataset=dataset.name,
    )


@dataclass(frozen=True)
class Splits:
    """The fixed examples a run is measured on, on its backend's device."""

    test: Split | Examples
    tracked: Split | Examples
    valid: Split | Examples | None


def _next_boundary(update: int, config: TrainConfig, checkpoint_every: int) -> int:
    """The first update after ``update`` at which the loop tracks, evaluates or checkpoints."""
    periods = [config.track_every, config.eval_every]
    if config.checkpoint:
        periods.append(checkpoint_every)
    return min(config.updates, *((update // p + 1) * p for p in periods))


def _evaluate(state: RunState, sgd: SGD, test: Split | Examples) -> None:
    mean_cost = state.cost_sum / state.cost_count if state.cost_count else None
    state.curve.append(
        {
            "update": state.update,
            "train_cost": mean_cost,
            "test_error": test_error(sgd.weights, sgd.biases, sgd.activation, test),
        }
    )
    state.cost_sum, state.cost_count = 0.0, 0


def _train_one(
    config: TrainConfig,
    feed: BatchFeed,
    sgd: SGD,
    state: RunState,
    splits: Splits,
    interrupted: Callable[[], bool],
    finished: list[TrainRun],
    progress: Progress | None,
    index: int,
    total: int,
) -> None:
    """Run SGD from ``state.update`` to ``config.updates``, tracking, evaluating, checkpointing.

    Updates run in blocks (one at a time on numpy); a block's costs are read back at its end,
    so a diverged run stops at the block's end with ``diverged_at`` its first non-finite cost.
    """
    act = sgd.activation
    test, tracked = splits.test, splits.tracked
    checkpoint_every = config.checkpoint_every or config.eval_every
    label = f"{state.scheme} / {state.activation}"
    if state.update == 0 and not state.curve:
        state.layer_stats += layer_statistics(0, sgd.weights, sgd.biases, act, tracked, config.cost)
        _evaluate(state, sgd, test)
    while state.update < config.updates:
        count = feed.fill(_next_boundary(state.update, config, checkpoint_every) - state.update)
        costs = [sgd.step(x, y, config.lr) for x, y in feed]
        after = state.update + count
        if after < config.updates:  # drawn while the device runs this block
            feed.prefetch(_next_boundary(after, config, checkpoint_every) - after)
        for cost in feed.backend.to_floats(costs):
            state.update += 1
            if not math.isfinite(cost):
                state.diverged_at = state.update
                return
            state.cost_sum += cost
            state.cost_count += 1
        if state.update % config.track_every == 0 or state.update == config.updates:
            state.layer_stats += layer_statistics(
                state.update, sgd.weights, sgd.biases, act, tracked, config.cost
            )
        if state.update % config.eval_every == 0 or state.update == config.updates:
            _evaluate(state, sgd, test)
            if progress is not None:
                last = state.curve[-1]
                progress(
                    index * config.updates + state.update,
                    total,
                    f"{label}: cost {last['train_cost']:.3f}, test error {last['test_error']:.3f}",
                )
        elif progress is not None and state.update // 50 != (state.update - count) // 50:
            progress(index * config.updates + state.update, total, label)
        stopping = interrupted()
        if config.checkpoint and (stopping or state.update % checkpoint_every == 0):
            state.stream = feed.position()
            save_checkpoint(config.checkpoint, config, finished, state, sgd)
        if stopping:
            runs = total // config.updates
            raise Interrupted(
                config.checkpoint, state.update, config.updates, index + 1, runs, label
            )


def _finish(config: TrainConfig, state: RunState, sgd: SGD, splits: Splits) -> TrainRun:
    diverged = state.diverged_at is not None
    final_error = None if diverged else state.curve[-1]["test_error"]
    return TrainRun(
        scheme=state.scheme,
        scheme_name=get_scheme(state.scheme).name,
        activation=state.activation,
        updates=state.update,
        final_test_error=final_error,
        curve=state.curve,
        layer_stats=state.layer_stats,
        diverged=diverged,
        diverged_at=state.diverged_at,
        lr=config.lr,
        final_histograms=[]
        if diverged
        else final_histograms(sgd.weights, sgd.biases, sgd.activation, splits.tracked),
        final_valid_error=(
            None
            if diverged or splits.valid is None
            else test_error(sgd.weights, sgd.biases, sgd.activation, splits.valid)
        ),
    )
