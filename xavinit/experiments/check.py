"""``xavinit check``: read checkpoints of any supported format and judge every tensor.

Config in, result out; numpy only. The files are read and their tensors judged by
:mod:`xavinit.experiments.examine`, the path ``init --check`` takes too; this module decides
what the run's ``--expect`` makes of the verdicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

from xavinit.config import CheckConfig
from xavinit.core.schemes import get_scheme
from xavinit.experiments import Progress
from xavinit.experiments.examine import Judged, examine_files, judge_run, tensor_check
from xavinit.formats.mapping import MAPPING_LABEL
from xavinit.limits import KS_SAMPLE
from xavinit.results import VERDICTS, CheckResult
from xavinit.text import printable


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
        XavinitError: bad input (see :func:`xavinit.experiments.examine.examine_files`).
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
    ks_sample: int = KS_SAMPLE,
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
