"""``xavinit init``: sample every layer under every scheme and verify it, or check a file.

Config in, result out; numpy only. Each (trial, layer) draw uses its own generator,
:func:`xavinit.core.streams.layer_rng`, so a layer's weights do not depend on which other layers or
schemes are in the run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import numpy as np

from xavinit.config import InitConfig
from xavinit.core.roles import Tensor
from xavinit.core.schemes import OBSERVED_PIECE, Scheme, get_scheme
from xavinit.core.streams import layer_rng
from xavinit.core.verdicts import judge_expected
from xavinit.core.verification import (
    Tolerance,
    assess_iid,
    assess_orthogonal,
    draw_and_measure,
    judge,
)
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.experiments.examine import Judged, examine_files, judge_run, known_as, tensor_check
from xavinit.fileio import NpzWriter, atomic_write
from xavinit.resources import require_memory
from xavinit.results import Candidate, InitCheck, InitResult, Ranking


def check_memory(config: InitConfig, schemes: list[Scheme]) -> None:
    """Refuse a request whose largest matrix would not fit in available memory.

    One matrix is held at a time (plus a Gram block or QR workspace for orthogonal, counted as
    three matrices), so the largest layer decides.
    """
    itemsize = np.dtype(config.dtype).itemsize
    factor = 3 if any(not s.iid for s in schemes) else 1
    widths = config.layers
    layer, need = max(
        ((k + 1, widths[k] * widths[k + 1] * itemsize * factor) for k in range(len(widths) - 1)),
        key=lambda pair: pair[1],
    )
    require_memory(need, f"layer {layer} ({widths[layer - 1]} x {widths[layer]}, {config.dtype})")


def run_init(config: InitConfig, progress: Progress | None = None) -> InitResult:
    """Sample and verify (``config.check`` unset) or verify a file's matrices.

    Raises:
        XavinitError: bad input (unreadable file, NaN weights, too large a request).
    """
    if config.check is not None:
        return _run_check(config, progress)
    schemes = [get_scheme(spec) for spec in config.schemes]
    check_memory(config, schemes)
    total = (len(config.layers) - 1) * len(schemes) * config.trials
    dtype = np.dtype(config.dtype)
    if config.save is not None:
        with atomic_write(config.save, "wb") as stream, NpzWriter(stream) as writer:
            checks = _sample_all(config, schemes, dtype, progress, total, writer)
    else:
        checks = _sample_all(config, schemes, dtype, progress, total, None)
    judged = judge(checks, config.alpha, config.correction)
    descriptions, names = _schemes_of(judged)
    return InitResult(
        seed=config.seed,
        config=config.to_dict(),
        passed=all(c.passed for c in judged),
        layers=judged,
        alpha=config.alpha,
        correction=config.correction,
        mode="sample",
        saved=config.save,
        scheme_descriptions=descriptions,
        scheme_names=names,
    )


def _sample_all(
    config: InitConfig,
    schemes: list[Scheme],
    dtype: np.dtype,
    progress: Progress | None,
    total: int,
    writer: NpzWriter | None,
) -> list[InitCheck]:
    widths = config.layers
    checks: list[InitCheck] = []
    done = 0
    buffer: np.ndarray | None = None
    largest = max(widths[k] * widths[k + 1] for k in range(len(widths) - 1))
    iid = any(scheme.iid for scheme in schemes)  # the i.i.d. draws' scans share one buffer
    widened = np.empty(min(OBSERVED_PIECE, largest) if iid else 0, dtype=np.float64)
    for scheme in schemes:
        for index in range(len(widths) - 1):
            fan_in, fan_out = widths[index], widths[index + 1]
            if buffer is None or buffer.size < fan_in * fan_out:
                buffer = None  # release the old one before allocating
                buffer = np.empty(fan_in * fan_out, dtype=dtype)
            weights = buffer[: fan_in * fan_out].reshape(fan_in, fan_out)
            found = []
            kept = []
            for trial in range(config.trials):
                if progress is not None:
                    progress(done, total, f"{scheme.spec} layer {index + 1}")
                rng = layer_rng(config.seed, trial, index + 1)
                if scheme.iid:  # measured piece by piece as it is drawn, while in cache
                    found.append(
                        draw_and_measure(scheme, weights, rng, config.ks_sample, widened=widened)
                    )
                else:
                    scheme.sample((fan_in, fan_out), rng, out=weights)
                    kept.append(weights.copy() if config.trials > 1 else weights)
                if writer is not None and trial == 0:
                    writer.add(f"{scheme.spec}/layer{index + 1}", weights)
                done += 1
            if scheme.iid:
                check = assess_iid(
                    scheme, fan_in, fan_out, found, config.alpha, dtype, layer=index + 1,
                    tolerance=_tolerance(config),
                )  # fmt: skip
            else:
                check = assess_orthogonal(scheme, kept, layer=index + 1)
            checks.append(check)
    if progress is not None:
        progress(total, total, "done")
    return checks


def _tolerance(config: InitConfig) -> Tolerance:
    return Tolerance(variance=config.tolerance, ks_distance=config.ks_distance)


def _select_matrices(
    tensors: list[Tensor], file: str, keyed: bool
) -> tuple[list[Tensor], list[str]]:
    """init checks 2-D matrices: without --key the others are skipped, with --key refused."""
    for tensor in tensors:
        if keyed and len(tensor.shape) != 2:
            raise XavinitError(
                f"{file}: array {tensor.name!r} has shape {tensor.shape}; expected a 2-D weight "
                "matrix"
            )
        if len(tensor.shape) == 2 and tensor.size == 0:
            raise XavinitError(f"{file}: array {tensor.name!r} is empty")
    chosen = [t for t in tensors if len(t.shape) == 2]
    if not chosen:
        names = ", ".join(t.name for t in tensors) or "none"
        raise XavinitError(f"{file}: holds no 2-D weight matrix (arrays: {names})")
    return chosen, [t.name for t in tensors if len(t.shape) != 2]


def _run_check(config: InitConfig, progress: Progress | None) -> InitResult:
    """Verify the matrices of a file under given schemes, or rank the schemes for each.

    The same path as ``xavinit check`` (:func:`xavinit.experiments.examine.examine_files`): the
    file is read by its format's reader, each matrix examined once, and the verdicts decided
    over the run; init reports them as its ``layers`` and ``rankings``.
    """
    assert config.check is not None
    schemes = [get_scheme(spec) for spec in config.schemes]
    examined, skipped = examine_files(
        [config.check], keys=config.keys, layout=config.layout, alpha=config.alpha,
        ks_sample=config.ks_sample, seed=config.seed, expected=schemes, rank=not schemes,
        select=lambda tensors, file: _select_matrices(tensors, file, bool(config.keys)),
        progress=progress, tolerance=_tolerance(config),
    )  # fmt: skip
    checks: list[InitCheck] = []
    rankings: list[Ranking] = []
    if schemes:
        expected = judge_expected(examined, config.alpha, config.correction)
        for position, per_scheme in enumerate(expected):
            checks += [replace(c, layer=position + 1) for c in per_scheme if c is not None]
        passed = all(c.passed for c in checks)
    else:
        for position, judged in enumerate(judge_run(examined, config.alpha, config.correction)):
            item = judged.examined
            tensor = item.tensor
            if item.best is not None:
                checks.append(replace(item.best, layer=position + 1))
            rankings.append(
                Ranking(
                    array=tensor.name,
                    fan_in=tensor.fan_in or 1,
                    fan_out=tensor.fan_out or 1,
                    best=str(item.candidates[0]["scheme"]) if item.candidates else "-",
                    verdict=_verdict(judged),
                    candidates=cast(list[Candidate], item.candidates),
                )
            )
        passed = True
    if progress is not None:
        progress(len(examined), len(examined), "done")
    descriptions, names = _schemes_of(checks)
    return InitResult(
        seed=config.seed,
        config=config.to_dict(),
        passed=passed,
        layers=checks,
        alpha=config.alpha,
        correction=config.correction,
        mode="check" if schemes else "rank",
        rankings=rankings,
        skipped=skipped,
        scheme_descriptions=descriptions,
        scheme_names=names,
    )


def _schemes_of(checks: list[InitCheck]) -> tuple[dict[str, str], dict[str, str]]:
    """The result's ``scheme_descriptions`` (each scheme of ``checks`` by its spec, in one line:
    distribution, variance) and ``scheme_names`` (its canonical name)."""
    schemes = {spec: get_scheme(spec) for spec in dict.fromkeys(c.scheme for c in checks)}
    descriptions = {spec: scheme.describe() for spec, scheme in schemes.items()}
    return descriptions, {spec: scheme.name for spec, scheme in schemes.items()}


def _verdict(judged: Judged) -> str:
    """The ranking's verdict line, from ``check``'s verdict on the same matrix."""
    item = judged.examined
    if judged.verdict in ("constant", "unknown"):
        return f"{judged.verdict}: {item.reason}"
    if judged.verdict == "trained":
        return f"looks trained: {tensor_check(judged, None).reason}"
    top = item.candidates[0]
    name = str(top["scheme"])
    known = known_as(item.tensor, name)
    alias = f", i.e. {known}" if known else ""
    if top["explains"] and not get_scheme(name).fan_free:
        return f"looks like {name}{alias}"
    if top["explains"]:
        return f"no known scheme explains it; it fits the fan-free {name}"
    return f"no known scheme explains it; closest is {name}{alias}"
