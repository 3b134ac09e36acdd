"""The grid: its points, their runs' folders and ``train`` configurations, what a later grid may
not change, and the settings ``DIR/grid.yaml`` keeps.

Every option of ``train`` is one of three kinds (:data:`GRID_AXES`, :data:`PASSED`,
:data:`SET_PER_RUN`), read from the config models' fields, so that a new ``train`` option
reaches every run of a sweep that has it too, and resume compares it.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from dataclasses import astuple, dataclass
from typing import Any, get_origin

from xavinit.config import SweepConfig, TrainConfig
from xavinit.config.base import flag
from xavinit.config.fields import PAPER_WIDTH
from xavinit.errors import XavinitError

GRID_FILE = "grid.yaml"

GRID_AXES = {
    "dataset": "datasets",
    "activations": "activations",
    "schemes": "schemes",
    "lr": "lrs",
    "seed": "seeds",
}
"""The train options a run takes from its grid point, each with the sweep option that lists
their values, in :class:`Point`'s order (datasets outermost, seeds innermost)."""
SET_PER_RUN = frozenset({"updates", "checkpoint", "checkpoint_every"})
"""The train options the sweep sets for each run itself: its target (``--select-at`` or
``--updates``), and its checkpoint in the run's folder, written at every evaluation."""
PASSED = tuple(
    name
    for name in TrainConfig.model_fields
    if name in SweepConfig.model_fields and name not in GRID_AXES and name not in SET_PER_RUN
)
"""The train options a sweep has too, passed to every run by name (train's order)."""
HOW_IT_RUNS = frozenset({"dir", "workers", "scheduler", "retries", "backend", "device"})
"""The sweep options that say where and how the runs execute, not what they compute: neither
part of the grid nor compared when a run resumes (a sweep may resume elsewhere)."""
NETWORK_FORMS = ("layers", "depth", "width")
"""The forms that give the hidden widths: a run is compared on ``hidden``, which they resolve
to (its inputs and outputs follow its dataset), and the grid keeps one of them."""
COMPARED = (
    *GRID_AXES,
    *(name for name in PASSED if name not in HOW_IT_RUNS and name not in NETWORK_FORMS),
)
"""A run's recorded settings that a later grid may not change (``updates`` may grow)."""
GRID_KEYS = tuple(
    name
    for name, info in SweepConfig.model_fields.items()
    if name not in HOW_IT_RUNS and not info.exclude
)
"""The sweep's recorded fields that make the grid (``DIR/grid.yaml``), in the config's order
(``depth`` and ``width`` are recorded as the ``hidden`` they resolve to)."""
COMBINED_OPTIONS = {"hidden": "--depth/--width (or --layers)"}
"""A compared setting given by more than one option, named by all of them."""


@dataclass(frozen=True)
class Point:
    """One grid point: one training run."""

    dataset: str
    activation: str
    scheme: str
    lr: float
    seed: int

    @property
    def model(self) -> tuple[str, str, str]:
        """The model this run is a trial of: (dataset, activation, scheme)."""
        return (self.dataset, self.activation, self.scheme)


def grid_points(config: SweepConfig) -> list[Point]:
    """Every point of the grid, datasets outermost and seeds innermost."""
    axes = [getattr(config, name) for name in GRID_AXES.values()]
    return [Point(*values) for values in itertools.product(*axes)]


def _slug(text: str) -> str:
    """A file-name-safe form of ``text``; a hash of the text is added when it had to change."""
    slug = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "x"
    if slug == text:
        return slug
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def run_id(point: Point) -> str:
    """The run's folder name: ``shapeset_tanh_normalized_lr0.03_seed0`` (a dataset path or an
    unusual spec adds a short hash, so two points never share a folder)."""
    kind, _, path = point.dataset.partition(":")
    dataset = _slug(kind.strip().lower())
    if path.strip():
        dataset += "-" + hashlib.sha256(path.strip().encode("utf-8")).hexdigest()[:8]
    return "_".join(
        [
            dataset,
            _slug(point.activation),
            _slug(point.scheme),
            f"lr{point.lr!r}",
            f"seed{point.seed}",
        ]
    )


def train_mapping(
    config: SweepConfig, point: Point, updates: int, checkpoint: str
) -> dict[str, Any]:
    """The ``train`` configuration of one run, trained to ``updates``, checkpointing at every
    evaluation into ``checkpoint``: the sweep's own value of each of :data:`PASSED`, the point's
    of each grid axis (a list of one for an option that takes several), and
    :data:`SET_PER_RUN`."""
    mapping: dict[str, Any] = {name: getattr(config, name) for name in PASSED}
    for name, value in zip(GRID_AXES, astuple(point), strict=True):
        several = get_origin(TrainConfig.model_fields[name].annotation) is tuple
        mapping[name] = [value] if several else value
    mapping.update(updates=updates, checkpoint=checkpoint, checkpoint_every=config.eval_every)
    return mapping


def changed_setting(recorded: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """The first of :data:`COMPARED` in which two train configurations differ, or None."""
    for key in COMPARED:
        if recorded.get(key) != wanted.get(key):
            return key
    return None


def option_of(setting: str) -> str:
    """The sweep option that sets a compared setting of a run: ``--scheme`` for ``schemes``,
    ``--seeds`` for ``seed``."""
    if setting in COMBINED_OPTIONS:
        return COMBINED_OPTIONS[setting]
    return flag(SweepConfig.option_key(GRID_AXES.get(setting, setting)))


def check_unchanged(run: str, recorded: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse a grid that changes a setting of run ``run`` trained with ``recorded``.

    Raises:
        XavinitError: naming the option, the recorded value and the grid's.
    """
    setting = changed_setting(recorded, wanted)
    if setting is not None:
        raise XavinitError(
            f"{option_of(setting)}: run {run} was trained with {setting} "
            f"{shown(recorded.get(setting))}, the grid now says {shown(wanted.get(setting))}; "
            "only --updates may change for runs already trained (or use another --dir)"
        )


def grid_settings(config: SweepConfig) -> dict[str, Any]:
    """The grid's settings alone, keyed by option name (what ``DIR/grid.yaml`` holds, a config
    file that options override). The network is written as ``layers`` when they were given,
    else as ``depth`` and ``width``, else (unequal widths) as ``hidden``."""
    record = config.to_dict()
    out: dict[str, Any] = {}
    for name in GRID_KEYS:
        if name == "layers":
            hidden = record["hidden"]
            if record["layers"]:
                out["layers"] = record["layers"]
            elif len(set(hidden)) <= 1:
                out["depth"], out["width"] = len(hidden), hidden[0] if hidden else PAPER_WIDTH
            else:
                out["hidden"] = hidden
        elif name != "hidden":
            out[config.option_key(name)] = record[name]
    return out


def shown(value: Any) -> str:
    """A recorded value as messages show it: lists comma-separated, floats exactly."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)
