"""What every dataset provides: a training stream with a resumable position, and fixed splits.

Images are flattened to rows of float32 in the network's input layout ``(count, inputs)``;
labels are int64 class indices ``(count,)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xavinit.core.streams import shuffle_rng
from xavinit.errors import XavinitError
from xavinit.serialize import quote

STATE_KEYS = ("epoch", "position", "order", "rng")
"""What :meth:`ArrayStream.state` holds, and all a state given to ``restore`` may hold."""


def _whole(value: Any, what: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise XavinitError(f"{what} must be an integer, got {quote(value, 40)}")
    if value < low or (high is not None and value > high):
        top = "" if high is None else f" and <= {high}"
        raise XavinitError(f"{what} must be >= {low}{top}, got {value}")
    return int(value)


@dataclass(frozen=True)
class Split:
    """A fixed set of examples: ``x`` float32 ``(count, inputs)``, ``y`` int64 ``(count,)``."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, count: int) -> Split:
        """The first ``count`` examples (a view)."""
        return Split(self.x[:count], self.y[:count])


class TrainStream(Protocol):
    """An endless, deterministic source of training minibatches.

    ``state()`` returns a JSON-able dict (position, RNG state); a stream rebuilt from the same
    dataset and given ``restore(state)`` continues with exactly the batches the original would
    have produced next.
    """

    def next_batch(self, size: int) -> tuple[np.ndarray, np.ndarray]: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


@dataclass
class Dataset:
    """A dataset ready for training: its shape, a training stream and fixed splits."""

    name: str
    inputs: int
    classes: int
    train: TrainStream
    valid: Split | None
    test: Split
    image_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()


class ArrayStream:
    """Minibatches drawn from finite arrays, reshuffled each epoch with a seeded generator.

    The state is the epoch, the position inside it and the generator's state, so a restored
    stream yields the same batches as an uninterrupted one.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.x, self.y = x, y
        self._rng = shuffle_rng(seed)
        self._epoch = 0
        self._position = 0
        self._order = self._rng.permutation(len(y))

    def next_batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``size`` examples, continuing into the next shuffled epoch as needed."""
        parts: list[np.ndarray] = []
        needed = size
        while needed:
            if self._position == len(self._order):
                self._epoch += 1
                self._position = 0
                self._order = self._rng.permutation(len(self.y))
            take = min(needed, len(self._order) - self._position)
            parts.append(self._order[self._position : self._position + take])
            self._position += take
            needed -= take
        index = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return self.x[index], self.y[index]

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self._epoch,
            "position": self._position,
            "order": self._order.tolist(),
            "rng": self._rng.bit_generator.state,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of a stream over the same arrays.

        Raises:
            XavinitError: a key it does not hold or lacks, an epoch or position out of range,
                an order that is not a permutation of the examples, a generator state that
                does not fit.
        """
        if not isinstance(state, dict):
            raise XavinitError(f"must be a mapping of {', '.join(STATE_KEYS)}")
        unknown = [key for key in state if key not in STATE_KEYS]
        missing = [key for key in STATE_KEYS if key not in state]
        if unknown or missing:
            problem = f"unknown key {quote(unknown[0], 40)}" if unknown else f"lacks {missing[0]!r}"
            raise XavinitError(f"{problem}; an array stream's state holds {', '.join(STATE_KEYS)}")
        count = len(self.y)
        order = state["order"]
        if not (
            isinstance(order, list)
            and len(order) == count
            and all(type(i) is int for i in order)
            and np.array_equal(np.sort(np.asarray(order, dtype=np.int64)), np.arange(count))
        ):
            raise XavinitError(f"order must be a permutation of the {count} training examples")
        epoch = _whole(state["epoch"], "epoch", 0)
        position = _whole(state["position"], "position", 0, count)
        generator = type(self._rng.bit_generator)()
        try:
            generator.state = state["rng"]
        except (TypeError, ValueError, KeyError, OverflowError):
            raise XavinitError(f"rng is not a {type(generator).__name__} generator state") from None
        self._epoch, self._position = epoch, position
        self._order = np.asarray(order, dtype=np.int64)
        self._rng.bit_generator.state = generator.state
