"""Reading files' tensors and judging them, shared by ``xavinit check`` and ``init --check``.

Each file is opened by its reader (:mod:`xavinit.formats`), its tensors described
(:mod:`xavinit.core.roles`) and read one at a time; each is examined
(:func:`xavinit.core.verdicts.examine`) and dropped before the next is read, so memory holds one
tensor, except that small ones (at most :data:`xavinit.core.verdicts.BATCH_ENTRIES` entries)
are examined a batch at a time (:class:`xavinit.core.verdicts.Batch`: up to 64, in file order,
the same results). The verdicts are then decided over the whole run (:func:`judge_run`, after
:func:`xavinit.core.verdicts.decide`), and each judged tensor becomes a row of ``check``'s
result (:func:`tensor_check`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from xavinit.core.roles import Tensor, describe, select_names
from xavinit.core.schemes import Scheme, get_scheme
from xavinit.core.streams import spectrum_rng
from xavinit.core.verdicts import (
    Batch,
    Examined,
    decide,
    describe_p,
    examine,
    judge_expected,
    known_as_of,
    runner_up,
    trained_p_value,
)
from xavinit.core.verification import DEFAULT_TOLERANCE, Tolerance
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.formats import open_tensors
from xavinit.formats.base import NUMERIC_KINDS, Workspace, refuse_dtype
from xavinit.formats.mapping import MappingSource
from xavinit.results import Candidate, InitCheck, TensorCheck, Verdict
from xavinit.text import printable

Selector = Callable[[list[Tensor], str], tuple[list[Tensor], list[str]]]
"""``(tensors, file) -> (chosen, skipped names)``: a command's own choice among the keyed."""


@dataclass(frozen=True)
class Judged:
    """One tensor after the run-wide decision: its verdict and its expected-scheme checks."""

    examined: Examined
    verdict: Verdict
    expected: list[InitCheck | None]


def _numeric(dtype: str) -> bool:
    if dtype == "bfloat16":
        return True
    try:
        return np.dtype(dtype).kind in NUMERIC_KINDS
    except TypeError:
        return False


def select_roles(tensors: Sequence[Tensor], patterns: Sequence[str]) -> list[Tensor]:
    """The tensors whose role the patterns select (globs over role names, ``!`` excludes)."""
    chosen = set(select_names(sorted({t.role for t in tensors}), patterns))
    return [t for t in tensors if t.role in chosen]


def examine_files(
    files: Sequence[str | Mapping[str, Any]],
    *,
    keys: Sequence[str],
    layout: str | Sequence[str],
    alpha: float,
    ks_sample: int,
    seed: int,
    expected: Sequence[Scheme] = (),
    rank: bool = True,
    select: Selector | None = None,
    progress: Progress | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    roles: Sequence[str] = (),
    allow_infinite: bool = False,
    best_checks: bool = True,
) -> tuple[list[Examined], list[str]]:
    """Open every file, choose its tensors and examine them one at a time, small ones a batch
    at a time (``best_checks`` False: no full check of each best candidate, which only
    ``init --check`` reports).

    Returns:
        the examined tensors in file order and the names ``select`` skipped.

    Raises:
        XavinitError: an unreadable file, keys that match nothing, a selected tensor that is
            not numeric (bool, complex, strings), NaN weights.
    """
    examined: list[Examined] = []
    skipped: list[str] = []
    workspace = Workspace()
    for item in files:
        opened = MappingSource(item) if isinstance(item, Mapping) else open_tensors(item)
        with opened as source:
            file = source.path
            described = describe(source.tensors, layout)
            if not described:
                raise XavinitError(f"{file}: the file holds no tensors; nothing to check")
            names = set(select_names([t.name for t in described], keys))
            chosen = select_roles([t for t in described if t.name in names], roles)
            if not chosen:
                listed = ", ".join(f"{t.name} ({t.role})" for t in described[:20])
                more = f" and {len(described) - 20} more" if len(described) > 20 else ""
                asked = " ".join([*(f"--key {k}" for k in keys), *(f"--role {r}" for r in roles)])
                raise XavinitError(f"{file}: no tensor matches {asked}; tensors: {listed}{more}")
            if select is not None:
                chosen, passed_over = select(chosen, file)
                skipped += passed_over
            for tensor in chosen:
                if not _numeric(tensor.dtype):
                    raise refuse_dtype(file, tensor.name, tensor.dtype)
            infos = {info.name: info for info in source.tensors}
            options: dict[str, Any] = dict(
                file=file, alpha=alpha, ks_sample=ks_sample, expected=expected, rank=rank,
                tolerance=tolerance, allow_infinite=allow_infinite, best_check=best_checks,
            )  # fmt: skip
            batch = Batch(**options)
            for position, tensor in enumerate(chosen):
                if progress is not None:
                    progress(position, len(chosen), f"{file}: {tensor.name}")
                try:
                    array, fill = source.read_lazily(infos[tensor.name], workspace)
                except XavinitError:
                    batch.finish()  # an earlier tensor's refusal comes first (file order)
                    raise
                rng = functools.partial(spectrum_rng, seed, tensor.name)
                if fill is None and Batch.takes(array):
                    if workspace.holds(array):
                        array = array.copy()  # the next read reuses the workspace
                    batch.add(tensor, array, rng)
                    if batch.full:
                        examined += batch.finish()
                else:
                    examined += batch.finish()  # in file order
                    with contextlib.nullcontext() if fill is None else fill:
                        examined.append(examine(tensor, array, rng=rng, fill=fill, **options))
                del array
            examined += batch.finish()
    return examined, skipped


def judge_run(examined: Sequence[Examined], alpha: float, correction: str) -> list[Judged]:
    """The verdict of every tensor, decided over the whole run."""
    trained = decide(examined, alpha, correction)
    expected = judge_expected(examined, alpha, correction)
    judged = []
    for item, is_trained, checks in zip(examined, trained, expected, strict=True):
        if item.status == "test":
            verdict: Verdict = "trained" if is_trained else "init"
        else:  # constant or unknown (an unranked tensor is only ever judged by init --check)
            verdict = cast(Verdict, item.status)
        judged.append(Judged(item, verdict, checks))
    return judged


def known_as(tensor: Tensor, scheme: str) -> str:
    """Who uses a scheme by default, for this tensor's role."""
    if scheme == "standard" and tensor.role == "conv":
        return "PyTorch's nn.Conv default"
    if scheme == "standard" and tensor.role == "bias":
        return "PyTorch's default bias"
    if scheme == "standard" and tensor.role == "recurrent":
        return "PyTorch's nn.LSTM/GRU/RNN default"
    return known_as_of(get_scheme(scheme))


def outliers_text(item: Examined) -> str:
    """``2 entries lie outside the law (up to 98 std)``, or empty."""
    if not item.outliers:
        return ""
    peak = f" (up to {item.outlier_peak:.3g} std)" if item.outlier_peak is not None else ""
    entries = "entry lies" if item.outliers == 1 else "entries lie"
    return f"{item.outliers} {entries} far outside the law{peak}, set aside"


def _outside_text(row: Mapping[str, object]) -> str:
    outside = int(row.get("outside", 0) or 0)  # type: ignore[call-overload]
    if not outside:
        return ""
    entries = "entry lies" if outside == 1 else "entries lie"
    return f"{outside} {entries} past its bound"


def _reason(judged: Judged, second: str | None, known: str) -> str:
    """The row's reason; for an ``init`` verdict ``second`` is the runner-up and ``known`` who
    uses the best scheme (:func:`known_as`), as the row has them."""
    item = judged.examined
    notes = [item.tensor.note] if item.tensor.note else []
    if outliers_text(item):
        notes.insert(0, outliers_text(item))
    if judged.verdict in ("constant", "unknown"):
        return "; ".join([item.reason, *notes])
    rows = item.candidates
    best = rows[0] if rows else None
    parts: list[str] = []
    if judged.verdict == "trained":
        ratio = item.top_singular_ratio
        tests = {
            "spectrum": item.spectral_p,
            "law": item.law_p,
            "rows": item.row_p,
            "columns": item.column_p,
            "correlation": item.correlation_p,
        }
        decisive = min((k for k, p in tests.items() if p is not None), key=lambda k: tests[k])  # type: ignore[arg-type, return-value]
        p_text = describe_p(tests[decisive])
        if decisive == "spectrum":
            parts.append(f"top singular value {ratio:.3g}x the Bai-Yin edge ({p_text})")
        elif decisive in ("rows", "columns"):
            parts.append(f"its {decisive}' sums of squares spread unlike i.i.d. entries ({p_text})")
        elif decisive == "correlation":
            parts.append(f"its rows' inner products are unlike those of i.i.d. entries ({p_text})")
        else:
            closest = f"; closest {best['scheme']}" if best is not None else ""
            parts.append(f"no candidate law fits ({p_text}{closest})")
    elif best is not None:
        alias = f" ({known})" if known and ":" not in str(best["scheme"]) else ""
        parts.append(f"{best['scheme']}{alias}, {describe_p(float(best['score']))}")  # type: ignore[arg-type]
        if second is not None:
            score = next(float(r["score"]) for r in rows if r["scheme"] == second)  # type: ignore[arg-type]
            parts.append(f"runner-up {second}, {describe_p(score)}")
        if _outside_text(best):
            parts.append(_outside_text(best))
        if item.tensor.role == "bias" and str(best["scheme"]) == "standard":
            parts.append(f"U(+-1/sqrt({item.tensor.fan_in})), the bias of its weight's fan_in")
        if item.top_singular_ratio is not None:
            parts.append(f"top singular value {item.top_singular_ratio:.3g}x the edge")
    return "; ".join(parts + notes)


def tensor_check(judged: Judged, matches: bool | None) -> TensorCheck:
    """One row of ``check``'s result."""
    item = judged.examined
    tensor = item.tensor
    best = item.candidates[0] if item.candidates and judged.verdict == "init" else None
    scheme = str(best["scheme"]) if best is not None else None
    second = runner_up(item.candidates) if best is not None else None
    known = known_as(tensor, scheme) if scheme is not None else ""
    return TensorCheck(
        file=printable(item.file),
        name=printable(tensor.name),
        role=tensor.role,
        shape=list(tensor.shape),
        dtype=tensor.dtype,
        layout=tensor.layout,
        fan_in=tensor.fan_in,
        fan_out=tensor.fan_out,
        verdict=judged.verdict,
        scheme=scheme,
        expected_var=float(best["expected_var"]) if best is not None else None,  # type: ignore[arg-type]
        observed_var=item.observed_var,
        p_value=float(best["score"]) if best is not None else None,  # type: ignore[arg-type]
        runner_up=second,
        top_singular_ratio=item.top_singular_ratio,
        reason=_reason(judged, second, known),
        count=item.count,
        observed_mean=item.observed_mean,
        groups=tensor.groups,
        owner=None if tensor.owner is None else printable(tensor.owner),
        law_p_value=item.law_p,
        spectral_p_value=item.spectral_p,
        trained_p_value=trained_p_value(item),
        known_as=known,
        note=tensor.note,
        matches=matches,
        candidates=cast(list[Candidate], item.candidates),
        outliers=item.outliers,
        outlier_peak=item.outlier_peak,
        row_spread_p_value=item.row_p,
        column_spread_p_value=item.column_p,
        correlation_p_value=item.correlation_p,
        spectral_steps=item.spectral_steps,
    )
