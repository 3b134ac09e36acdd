"""``xavinit init``: sample every layer under every scheme and verify it, or check a file.

Config in, result out; numpy only. Each (trial, layer) draw uses its own generator,
:func:`xavinit.streams.layer_rng`, so a layer's weights do not depend on which other layers or
schemes are in the run.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np

from xavinit.checks import (
    Tolerance,
    assess_iid,
    assess_orthogonal,
    judge,
    measure,
    rank_schemes,
)
from xavinit.config import InitConfig
from xavinit.experiments import Progress
from xavinit.fileio import NpzWriter, atomic_write, load_weight_arrays
from xavinit.resources import require_memory
from xavinit.results import Candidate, InitCheck, InitResult, Ranking
from xavinit.schemes import PRESETS, Scheme, get_scheme
from xavinit.streams import layer_rng


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
    return InitResult(
        seed=config.seed,
        config=config.to_dict(),
        passed=all(c.passed for c in judged),
        layers=judged,
        alpha=config.alpha,
        correction=config.correction,
        mode="sample",
        saved=config.save,
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
                scheme.sample(
                    (fan_in, fan_out), layer_rng(config.seed, trial, index + 1), out=weights
                )
                if writer is not None and trial == 0:
                    writer.add(f"{scheme.spec}/layer{index + 1}", weights)
                if scheme.iid:
                    found.append(measure(weights, config.ks_sample))
                else:
                    kept.append(weights.copy() if config.trials > 1 else weights)
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


def _run_check(config: InitConfig, progress: Progress | None) -> InitResult:
    """Verify the matrices of a ``.npy``/``.npz`` file under given schemes, or rank schemes."""
    assert config.check is not None
    arrays, skipped = load_weight_arrays(config.check, config.keys)
    schemes = [get_scheme(spec) for spec in config.schemes]
    checks: list[InitCheck] = []
    rankings: list[Ranking] = []
    total = len(arrays)
    for position, (name, array) in enumerate(arrays):
        if progress is not None:
            progress(position, total, name)
        fan_in, fan_out = array.shape if config.layout == "in-out" else array.shape[::-1]
        label = f"{config.check}:{name}"
        found = measure(array, config.ks_sample, name=label)
        if not schemes:
            candidates, best = rank_schemes(array, fan_in, fan_out, found, config.alpha, name)
            checks.append(dataclasses.replace(best, layer=position + 1))
            top = candidates[0]
            constant = found.moments.minimum == found.moments.maximum
            rankings.append(
                Ranking(
                    array=name,
                    fan_in=fan_in,
                    fan_out=fan_out,
                    best=str(top["scheme"]),
                    verdict=_constant(found.moments.minimum) if constant else _verdict(top),
                    candidates=cast(list[Candidate], candidates),
                )
            )
            continue
        for scheme in schemes:
            if scheme.iid:
                check = assess_iid(
                    scheme, fan_in, fan_out, [found], config.alpha, array.dtype,
                    layer=position + 1, array=name, tolerance=_tolerance(config),
                )  # fmt: skip
            else:
                oriented = array if config.layout == "in-out" else array.T
                check = assess_orthogonal(
                    scheme, [oriented], layer=position + 1, array=name, name=label
                )
            checks.append(check)
    if progress is not None:
        progress(total, total, "done")
    if schemes:
        checks = judge(checks, config.alpha, config.correction)
        passed = all(c.passed for c in checks)
    else:
        passed = True
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
    )


def _constant(value: float) -> str:
    return f"constant: every entry is {value:.6g}; no random scheme explains it"


def _verdict(top: dict[str, object]) -> str:
    name = str(top["scheme"])
    known = PRESETS[name].known_as
    alias = f", i.e. {known}" if known else ""
    if top["explains"]:
        return f"looks like {name}{alias}"
    return f"no known scheme explains it; closest is {name}{alias}"
