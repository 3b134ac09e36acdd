"""The sweep's folder: the names of its files, and ``DIR/manifest.json``, every run's status,
updates, retries, worker, wall time, the validation error its learning rate was chosen on and
the SHA-256 of the result files the sweep wrote; a run's result held to its other records.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from xavinit.errors import XavinitError
from xavinit.experiments.sweep.grid import shown
from xavinit.fileio import atomic_write
from xavinit.loading import validate
from xavinit.results import Count, Fraction, Real, TrainRun
from xavinit.serialize import parse_json_text, plain, quote, read_text, to_json

MANIFEST_FORMAT = "xavinit-sweep-manifest"
MANIFEST_VERSION = 1
MANIFEST_FILE, RUNS_FOLDER = "manifest.json", "runs"
CHECKPOINT_FILE, RESULT_FILE, ATTEMPTS_FILE = "checkpoint.npz", "result.json", "attempts.json"
SELECTION_FILE = "selection.json"
STATUSES = ("queued", "active", "finished", "diverged", "failed", "interrupted")


class Selection(TypedDict):
    """The validation error a run had when its model's learning rate was chosen."""

    at: Count
    valid_error: Fraction | None


@dataclass
class RunRecord:
    """One run in the manifest."""

    dataset: str
    activation: str
    scheme: str
    lr: Real
    seed: Count
    status: str = "queued"
    updates: Count = 0
    target: Count = 0
    retries: Count = 0
    worker: str | None = None
    wall_seconds: Real = 0.0
    selection: Selection | None = None
    error: str | None = None
    result_sha256: str | None = None
    """SHA-256 of ``result.json`` as this sweep last read or wrote it..."""
    result_at: Count | None = None
    """...when it held this many updates (a result of other updates is a newer one)."""
    selection_sha256: str | None = None
    """SHA-256 of ``selection.json`` as this sweep wrote it."""


@dataclass
class Manifest:
    """``DIR/manifest.json``: every run the folder has seen, by id."""

    format: str
    version: int
    runs: dict[str, RunRecord] = field(default_factory=dict)


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path`` (empty when the file does not exist).

    Raises:
        XavinitError: unreadable, not JSON, not a sweep manifest, or a field that does not fit.
    """
    if not path.exists():
        return Manifest(MANIFEST_FORMAT, MANIFEST_VERSION)
    data = parse_json_text(read_text(str(path), "sweep manifest"), str(path))
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise XavinitError(f"{path}: not an xavinit sweep manifest")
    if data.get("version") != MANIFEST_VERSION:
        raise XavinitError(
            f"{path}: manifest version {quote(data.get('version'), 40)} is not supported "
            f"(this xavinit reads version {MANIFEST_VERSION})"
        )
    manifest: Manifest = validate(Manifest, data, str(path))
    for run_key, record in manifest.runs.items():
        if record.status not in STATUSES:
            raise XavinitError(
                f"{path}: runs.{run_key}.status: must be one of {', '.join(STATUSES)}, "
                f"got {quote(record.status, 40)}"
            )
    return manifest


def same_history(path: Path, trained: TrainRun, other: Path, record: Any) -> None:
    """Hold a run's result to another record of the same training (its checkpoint's state, or
    its result at another update): up to the update both reach, their curves and tracked
    statistics are the same rows.

    Raises:
        XavinitError: the first row where they differ, named by its path in ``path``.
    """
    reach = min(trained.updates, record.updates if hasattr(record, "updates") else record.update)
    for name in ("curve", "layer_stats"):
        mine = [plain(row) for row in getattr(trained, name) if row["update"] <= reach]
        theirs = [plain(row) for row in getattr(record, name) if row["update"] <= reach]
        for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                key = next((k for k in a if a.get(k) != b.get(k)), "")
                raise XavinitError(
                    f"{path}: runs[0].{name}[{index}].{key} is {shown(a.get(key))}, but "
                    f"{other.name} recorded {shown(b.get(key))} for the same training; "
                    "refused (edited or damaged)"
                )
        if len(mine) != len(theirs):
            raise XavinitError(
                f"{path}: runs[0].{name} has {len(mine)} rows up to update {reach}, but "
                f"{other.name} recorded {len(theirs)} for the same training; refused (edited "
                "or damaged)"
            )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise XavinitError(f"cannot read {str(path)!r}: {error.strerror or error}") from None


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    with atomic_write(path) as stream:
        stream.write(to_json(asdict(manifest)))
