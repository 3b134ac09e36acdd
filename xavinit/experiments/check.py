"""``xavinit check``: read checkpoints of any supported format and judge every tensor.

Config in, result out; numpy only. Each file is opened by its reader (:mod:`xavinit.formats`),
its tensors described (:mod:`xavinit.core.roles`) and read one at a time; each is examined
(:func:`xavinit.core.verdicts.examine`) and dropped before the next is read, so memory holds one
tensor. The verdicts are then decided over the whole run (:func:`xavinit.core.verdicts.decide`).
``init --check`` goes through :func:`examine_files` too: one path for both commands.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any, cast

from xavinit.config import CheckConfig
from xavinit.core.checks import DEFAULT_TOLERANCE, Tolerance
from xavinit.core.roles import Tensor, describe, select_names
from xavinit.core.schemes import Scheme, get_scheme
from xavinit.core.streams import spectrum_rng
from xavinit.core.verdicts import (
    Examined,
    decide,
    describe_p,
    examine,
    judge_expected,
    known_as_of,
    runner_up,
    trained_p_value,
)
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.formats import open_tensors
from xavinit.formats.base import NUMERIC_KINDS, Workspace, refuse_dtype
from xavinit.formats.mapping import MAPPING_LABEL, MappingSource
from xavinit.limits import CHECK_KS_SAMPLE
from xavinit.results import VERDICTS, Candidate, CheckResult, InitCheck, TensorCheck, Verdict
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
    import numpy as np

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
    """Open every file, choose its tensors and examine them one at a time (``best_checks``
    False: no full check of each best candidate, which only ``init --check`` reports).

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
            for position, tensor in enumerate(chosen):
                if progress is not None:
                    progress(position, len(chosen), f"{file}: {tensor.name}")
                array, fill = source.read_lazily(infos[tensor.name], workspace)
                with contextlib.nullcontext() if fill is None else fill:
                    examined.append(
                        examine(
                            tensor, array, file=file, alpha=alpha, ks_sample=ks_sample,
                            rng=spectrum_rng(seed, tensor.name), expected=expected, rank=rank,
                            tolerance=tolerance, allow_infinite=allow_infinite, fill=fill,
                            best_check=best_checks,
                        )
                    )  # fmt: skip
                del array
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


def _reason(judged: Judged) -> str:
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
        known = known_as(item.tensor, str(best["scheme"]))
        alias = f" ({known})" if known and ":" not in str(best["scheme"]) else ""
        second = runner_up(rows)
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
        runner_up=runner_up(item.candidates) if best is not None else None,
        top_singular_ratio=item.top_singular_ratio,
        reason=_reason(judged),
        count=item.count,
        observed_mean=item.observed_mean,
        groups=tensor.groups,
        owner=None if tensor.owner is None else printable(tensor.owner),
        law_p_value=item.law_p,
        spectral_p_value=item.spectral_p,
        trained_p_value=trained_p_value(item),
        known_as=known_as(tensor, scheme) if scheme is not None else "",
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


def meets(judged: Judged, expect: str | None) -> bool | None:
    """Whether a tensor meets ``expect`` (None without one)."""
    if expect is None:
        return None
    if expect == "trained":
        return judged.verdict not in ("init", "constant")
    if expect == "init":
        return judged.verdict != "trained"
    check = judged.expected[0] if judged.expected else None
    return bool(check is not None and check.passed)


def run_check(
    config: CheckConfig,
    progress: Progress | None = None,
    *,
    sources: Sequence[str | Mapping[str, Any]] | None = None,
) -> CheckResult:
    """Judge every selected tensor of every file; ``passed`` follows ``config.expect`` (and is
    False when ``expect`` is given but no selected tensor could be judged).

    ``sources`` replaces ``config.files`` with in-memory mappings (:func:`check_weights`).

    Raises:
        XavinitError: bad input (see :func:`examine_files`).
    """
    expect = config.expect
    schemes = [] if expect in (None, "trained", "init") else [get_scheme(str(expect))]
    examined, _ = examine_files(
        list(sources) if sources is not None else list(config.files), keys=config.keys,
        layout=config.layout, alpha=config.alpha, ks_sample=config.ks_sample, seed=config.seed,
        expected=schemes, progress=progress, roles=config.roles, allow_infinite=True,
        best_checks=False,
    )  # fmt: skip
    judged = judge_run(examined, config.alpha, config.correction)
    rows = [tensor_check(j, meets(j, expect)) for j in judged]
    if expect is not None and rows and all(r.verdict == "unknown" for r in rows):
        # nothing could be judged (integers, empty or too small tensors): not a pass
        rows = [dataclasses.replace(r, matches=False) for r in rows]
    failures = [f"{r.file}:{r.name}" for r in rows if r.matches is False]
    counts: dict[str, int] = {
        verdict: sum(r.verdict == verdict for r in rows) for verdict in VERDICTS
    }
    if progress is not None:
        progress(len(rows), len(rows), "done")
    return CheckResult(
        seed=config.seed,
        config=config.to_dict(),
        passed=not failures,
        tensors=rows,
        files=[printable(f) for f in config.files],
        alpha=config.alpha,
        expect=expect,
        counts=counts,
        failures=failures,
    )


def check_weights(
    source: str | PathLike[str] | Mapping[str, Any],
    expect: str | None = None,
    layout: str | Sequence[str] = "auto",
    *,
    keys: Sequence[str] = (),
    roles: Sequence[str] = (),
    alpha: float = 0.01,
    seed: int = 0,
    ks_sample: int = CHECK_KS_SAMPLE,
) -> CheckResult:
    """Check a checkpoint file, or a mapping of names to arrays, tensor by tensor.

    Args:
        source: a path of any supported format, or a mapping such as ``model.state_dict()``;
            values may be anything with ``__array__`` or ``__dlpack__`` (torch tensors, JAX
            arrays), read without importing their framework.
        expect: None (report), ``"trained"``, ``"init"`` or a scheme spec; ``result.passed``
            says whether every selected tensor meets it.
        layout: ``auto``, ``in-out``, ``out-in``, or a list of those and ``GLOB=LAYOUT``
            items (see ``xavinit check --help``).
        keys: globs of tensor names; a leading ``!`` excludes.
        roles: globs of roles (``dense``, ``conv``...); a leading ``!`` excludes.

    Returns:
        the :class:`~xavinit.results.CheckResult` that ``xavinit check -f json`` prints.

    Raises:
        XavinitError: a bad argument or an unreadable source (one line).

    Example:
        >>> result = check_weights("model.safetensors", expect="trained")  # doctest: +SKIP
        >>> assert result.passed, result.failures  # doctest: +SKIP
    """
    in_memory = isinstance(source, Mapping)
    values: dict[str, Any] = {
        "files": [MAPPING_LABEL if in_memory else str(source)],
        "expect": expect,
        "layout": layout,
        "keys": list(keys),
        "roles": list(roles),
        "alpha": alpha,
        "seed": seed,
        "ks_sample": ks_sample,
    }
    config = CheckConfig.from_mapping(values)
    return run_check(config, sources=[source] if in_memory else None)  # type: ignore[list-item]
