"""Verdicts recomputed from the evidence a saved result holds, never read from it.

A result file says ``passed`` and, row by row, what passed; ``report`` shows them and CI jobs
gate on them. A hand-edited ``passed: true`` over a failing check would be believed. So each
command's verdict is recomputed here from the numbers the file carries (p-values, intervals,
statuses), by the same rules the command applied, and :func:`contradiction` names the first
verdict the evidence does not support, for the loader to refuse the file.

Rules, per command (the same functions the commands use):

- ``init``: the layers' checks re-judged as one family (:func:`xavinit.core.verification.judge`, Holm or
  Bonferroni at the recorded ``alpha``); ``passed`` is every check's, except for a ranking
  (``mode: rank``), which always passes.
- ``check``: ``trained`` re-decided over the run from each tensor's ``trained_p_value``
  (:data:`xavinit.core.stats.CORRECTIONS` at the recorded alpha), each tensor's ``matches`` from
  its verdict and ``expect``, ``passed`` from them (and False when nothing could be judged).
- ``gain``: each depth check passes when its ratio lies in its interval; ``passed`` is all.
- ``train``, ``propagate``: ``passed`` is every run's (no run diverged or overflowed);
  ``propagate --model``: each model's drift checks re-judged from its modules' variances.
- ``sweep``: ``passed`` is every run finished.
- ``train``, ``sweep``: a run's ``final_test_error`` is its curve's last test error, taken at
  its last update (None for a diverged run): the number Table 1 is made of is the one its
  learning curve shows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from xavinit.core.stats import CORRECTIONS
from xavinit.core.verification import judge


def contradiction(result: Any) -> str | None:
    """The first verdict of ``result`` that its own evidence contradicts, or None."""
    command = getattr(result, "command", "")
    rule = _RULES.get(command)
    return None if rule is None else rule(result)


def _init(result: Any) -> str | None:
    if result.mode == "rank":
        return None if result.passed else "passed is false, but a ranking always passes"
    correction = result.correction if result.correction in CORRECTIONS else "holm"
    layers = list(result.layers)
    judged = judge([dataclasses.replace(c, passed=True) for c in layers], result.alpha, correction)
    for saved, again in zip(layers, judged, strict=True):
        if saved.passed != again.passed:
            return (
                f"layer {saved.layer} ({saved.scheme}) says passed={saved.passed}, but its "
                f"p-values give {again.passed}"
            )
    expected = all(c.passed for c in judged)
    if result.passed != expected:
        return f"passed is {result.passed}, but its layers give {expected}"
    return None


def _check(result: Any) -> str | None:
    rows = list(result.tensors)
    tested = [
        (i, r.trained_p_value)
        for i, r in enumerate(rows)
        if r.verdict in ("init", "trained") and r.trained_p_value is not None
    ]
    correction = str(result.config.get("correction", "holm"))
    decide = CORRECTIONS.get(correction, CORRECTIONS["holm"])
    rejected = decide([p for _, p in tested], result.alpha) if tested else []
    for (index, _), trained in zip(tested, rejected, strict=True):
        verdict = "trained" if trained else "init"
        if rows[index].verdict != verdict:
            return (
                f"tensor {rows[index].name!r} says {rows[index].verdict}, but its p-value "
                f"{rows[index].trained_p_value:.3g} gives {verdict}"
            )
    expect = result.expect
    if expect is None:
        return None if result.passed else "passed is false, but nothing was expected"
    nothing_judged = bool(rows) and all(r.verdict == "unknown" for r in rows)
    for row in rows:
        if expect == "trained":
            meets = row.verdict not in ("init", "constant")
        elif expect == "init":
            meets = row.verdict != "trained"
        else:
            meets = bool(row.matches)
        meets = meets and not nothing_judged
        if row.matches is not None and row.matches != meets:
            return f"tensor {row.name!r} says matches={row.matches}, but its verdict gives {meets}"
    expected = all(r.matches is not False for r in rows) and not nothing_judged
    if result.passed != expected:
        return f"passed is {result.passed}, but its tensors give {expected}"
    return None


def _gain(result: Any) -> str | None:
    for check in result.depth_checks:
        low, high = check["interval"]
        ratio = check["variance_ratio"]
        passes = bool(math.isfinite(ratio) and low <= ratio <= high)
        if check["passed"] != passes:
            return (
                f"{check['activation']}'s depth check says passed={check['passed']}, but its "
                f"ratio {ratio:.4g} and interval [{low:.4g}, {high:.4g}] give {passes}"
            )
    expected = all(check["passed"] for check in result.depth_checks)
    if result.passed != expected:
        return f"passed is {result.passed}, but its depth checks give {expected}"
    return None


def _final_errors(runs: list[Any]) -> str | None:
    """The first run whose ``final_test_error`` is not the last point of its curve."""
    for index, run in enumerate(runs):
        last = run.curve[-1] if run.curve else None
        expected = None if run.diverged or last is None else last["test_error"]
        if run.final_test_error != expected:
            return (
                f"runs[{index}].final_test_error is {run.final_test_error}, but its curve "
                f"gives {expected}"
            )
        if run.diverged != (run.diverged_at is not None):
            return f"runs[{index}].diverged is {run.diverged}, but diverged_at is {run.diverged_at}"
        if last is not None and not run.diverged and last["update"] != run.updates:
            return (
                f"runs[{index}].updates is {run.updates}, but its curve ends at update "
                f"{last['update']}"
            )
    return None


def _runs(result: Any) -> str | None:
    runs = list(result.runs)
    if result.command in ("train", "sweep"):
        why = _final_errors(runs)
        if why is not None:
            return why
    if result.command == "sweep":
        expected = all(run.status == "finished" for run in runs)
        what = "its runs' statuses"
    elif result.command == "train":
        expected = all(not run.diverged for run in runs)
        what = "its runs (diverged or not)"
    else:
        expected = all(run.passed for run in runs)
        what = "its runs"
    if result.passed != expected:
        return f"passed is {result.passed}, but {what} give {expected}"
    return None


def _propagate(result: Any) -> str | None:
    """Propagate's runs, and each model's drift checks re-judged from its modules' variances
    (:func:`xavinit.core.modelprobe.drift` at the recorded ``max_drift``)."""
    models = list(getattr(result, "models", []) or [])
    if not models:
        return _runs(result)
    from xavinit.core.modelprobe import drift

    for run in models:
        names = [m.name for m in run.modules]
        for check in run.drift:
            from_top = check["quantity"] == "grad_var"
            values = [m.grad_var if from_top else m.var for m in run.modules]
            _, _, passed = drift(names, values, run.max_drift, from_top)
            if check["passed"] != passed:
                return (
                    f"{run.model}: the {check['quantity']} check says passed={check['passed']}, "
                    f"but its modules' variances give {passed}"
                )
        finite = all(math.isfinite(m.var) for m in run.modules)
        expected = all(c["passed"] for c in run.drift) and finite and bool(run.drift)
        if run.passed != expected:
            return f"{run.model}: passed is {run.passed}, but its drift checks give {expected}"
    expected = all(run.passed for run in [*result.runs, *models])
    if result.passed != expected:
        return f"passed is {result.passed}, but its models give {expected}"
    return None


_RULES = {
    "init": _init,
    "check": _check,
    "gain": _gain,
    "train": _runs,
    "propagate": _propagate,
    "sweep": _runs,
}
