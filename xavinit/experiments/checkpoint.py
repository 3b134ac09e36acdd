"""The training checkpoint format: the whole state of a ``train`` invocation in one ``.npz``.

Members: ``state`` (UTF-8 JSON bytes: ``format``, ``version``, ``xavinit_version``, ``config``,
``finished`` runs and the ``current`` run's :class:`RunState`) and ``W1..WL``, ``b1..bL``, the
current run's weights and biases. A checkpoint is input like any other: its config goes through
the same validation as options and config files, its runs and state through the result types'
strict validation, and its arrays are checked against the config before training resumes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xavinit._version import __version__
from xavinit.config import TrainConfig
from xavinit.core.backends import to_numpy
from xavinit.errors import XavinitError
from xavinit.fileio import NpzWriter, atomic_write, read_npz
from xavinit.loading import validate
from xavinit.results import Count, CurvePoint, LayerStats, Real, TrainRun
from xavinit.serialize import encode_nonfinite, plain, quote

CHECKPOINT_FORMAT = "xavinit-train-checkpoint"
CHECKPOINT_VERSION = 1
DOCUMENT_KEYS = ("format", "version", "xavinit_version", "config", "finished", "current")
"""The keys of the state record, each required; no other is allowed."""


@dataclass
class RunState:
    """A run in progress: everything a checkpoint must hold to continue it exactly."""

    scheme: str
    activation: str
    update: Count = 0
    curve: list[CurvePoint] = field(default_factory=list)
    layer_stats: list[LayerStats] = field(default_factory=list)
    cost_sum: Real = 0.0
    cost_count: Count = 0
    stream: dict[str, Any] = field(default_factory=dict)
    diverged_at: Count | None = None


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    config: TrainConfig
    finished: list[TrainRun]
    state: RunState
    weights: list[np.ndarray]
    biases: list[np.ndarray]


def save_checkpoint(
    path: str, config: TrainConfig, finished: list[TrainRun], state: RunState, sgd: Any
) -> None:
    """Write the whole state atomically: weights and biases as arrays, the rest as JSON."""
    document = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "xavinit_version": __version__,
        "config": config.to_dict(),
        "finished": [run.to_dict() for run in finished],
        "current": encode_nonfinite(asdict(state)),
    }
    payload = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path, "wb") as stream, NpzWriter(stream) as writer:
        writer.add("state", payload)
        for k, (w, b) in enumerate(zip(sgd.weights, sgd.biases, strict=True)):
            writer.add(f"W{k + 1}", to_numpy(w))
            writer.add(f"b{k + 1}", to_numpy(b))


def _document(arrays: dict[str, np.ndarray], path: str) -> dict[str, Any]:
    state = arrays.get("state")
    if state is None or state.dtype != np.uint8 or state.ndim != 1:
        raise XavinitError(f"{path}: not an xavinit training checkpoint (no state record)")
    try:
        document = json.loads(bytes(state).decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise XavinitError(f"{path}: damaged checkpoint state ({error})") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise XavinitError(f"{path}: not an xavinit training checkpoint")
    if document.get("version") != CHECKPOINT_VERSION:
        raise XavinitError(
            f"{path}: checkpoint version {document.get('version')!r} is not supported "
            f"(this xavinit reads version {CHECKPOINT_VERSION})"
        )
    for key in DOCUMENT_KEYS:
        if key not in document:
            raise XavinitError(f"{path}: checkpoint lacks {key!r}")
    unknown = [key for key in document if key not in DOCUMENT_KEYS]
    if unknown:
        raise XavinitError(
            f"{path}: unknown key {quote(unknown[0], 40)} in the checkpoint's state record; "
            f"it holds {', '.join(DOCUMENT_KEYS)}"
        )
    return document


def _unknown_key(given: Any, kept: Any, where: str) -> str | None:
    """The path of the first key of ``given`` (the JSON read) that ``kept`` (the same data after
    validation, as plain data) does not have: a field the format does not define."""
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                return f"{where}: unknown key {quote(key, 40)}"
            found = _unknown_key(value, kept[key], f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(given, list) and isinstance(kept, list):
        for index, (value, other) in enumerate(zip(given, kept, strict=False)):
            found = _unknown_key(value, other, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def _arrays(
    arrays: dict[str, np.ndarray], config: TrainConfig, path: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The weights and biases, checked: one pair per layer, shapes chained, config's dtype."""
    count = len(config.hidden) + 1
    dtype = np.dtype(config.dtype)
    names = {"state", *(f"{kind}{k}" for kind in "Wb" for k in range(1, count + 1))}
    extra = [name for name in arrays if name not in names]
    if extra:
        raise XavinitError(
            f"{path}: unknown array {quote(extra[0], 40)}; a checkpoint of {count} layers holds "
            f"state, W1..W{count} and b1..b{count}"
        )
    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    for k in range(1, count + 1):
        if f"W{k}" not in arrays or f"b{k}" not in arrays:
            raise XavinitError(f"{path}: lacks W{k} or b{k} for {count} layers")
        w, b = arrays[f"W{k}"], arrays[f"b{k}"]
        if w.dtype != dtype or b.dtype != dtype:
            raise XavinitError(f"{path}: W{k}/b{k} are {w.dtype}/{b.dtype}; config says {dtype}")
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise XavinitError(f"{path}: W{k} {w.shape} and b{k} {b.shape} do not fit together")
        if k > 1 and w.shape[0] != weights[-1].shape[1]:
            raise XavinitError(f"{path}: W{k} {w.shape} does not follow W{k - 1}")
        if k < count and w.shape[1] != config.hidden[k - 1]:
            raise XavinitError(
                f"{path}: W{k} has {w.shape[1]} units; config hidden[{k - 1}] is "
                f"{config.hidden[k - 1]}"
            )
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise XavinitError(f"{path}: W{k} or b{k} holds NaN or infinite values")
        weights.append(np.array(w))
        biases.append(np.array(b))
    return weights, biases


def load_checkpoint(path: str) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        XavinitError: missing, corrupt or not an xavinit training checkpoint, or any field,
        array or shape that does not fit (named).
    """
    arrays = read_npz(path, "checkpoint", expected="an xavinit training checkpoint (.npz)")
    document = _document(arrays, path)
    config = TrainConfig.from_record(document["config"], f"{path}: config")
    if not isinstance(document["finished"], list):
        raise XavinitError(f"{path}: finished: must be a list")
    finished = [
        validate(TrainRun, run, path, f"finished[{i}]")
        for i, run in enumerate(document["finished"])
    ]
    state = validate(RunState, document["current"], path, "current")
    unknown = _unknown_key(document["current"], plain(state), "current") or next(
        (
            found
            for i, (given, run) in enumerate(zip(document["finished"], finished, strict=True))
            if (found := _unknown_key(given, run.to_dict(), f"finished[{i}]")) is not None
        ),
        None,
    )
    if unknown is not None:
        raise XavinitError(f"{path}: {unknown}; the checkpoint format does not define it")
    if state.update > config.updates:
        raise XavinitError(
            f"{path}: current.update {state.update} is beyond the config's {config.updates} updates"
        )
    weights, biases = _arrays(arrays, config, path)
    return Checkpoint(config, finished, state, weights, biases)


def peek_checkpoint(path: str) -> tuple[TrainConfig, RunState]:
    """A checkpoint's configuration and its current run's state, without reading its arrays.

    Raises:
        XavinitError: as :func:`load_checkpoint`, for the state record.
    """
    arrays = read_npz(
        path, "checkpoint", ("state",), expected="an xavinit training checkpoint (.npz)"
    )
    document = _document(arrays, path)
    config = TrainConfig.from_record(document["config"], f"{path}: config")
    state = validate(RunState, document["current"], f"{path}: current")
    return config, state
