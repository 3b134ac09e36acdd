"""Number formatting and one-line summaries shared by the renderers for people; the summaries
take the typed result (:mod:`xavinit.results`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xavinit.results import (
    VERDICTS,
    CheckResult,
    GainResult,
    InitResult,
    PropagateResult,
    Result,
    SchemesResult,
    TensorCheck,
    TrainResult,
    Verdict,
)
from xavinit.serialize import encode_nonfinite


def num(value: Any, digits: int = 4) -> str:
    """A compact number: 0.333, 3.255e-04, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == 0 or not math.isfinite(value):
        return str(value)
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def decimals(value: Any, spec: str) -> str:
    """A number in a format ``spec`` (``.4f``, ``+.3f``, ``g``); a non-finite value as it is
    saved (``inf``, ``-inf``, ``nan``), '-' for missing."""
    value = encode_nonfinite(value)
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return format(value, spec)


def sci(value: Any, digits: int = 3) -> str:
    """A variance in scientific notation with ``digits`` significant digits: 3.26e-04."""
    value = encode_nonfinite(value)
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return f"{value:.{digits - 1}e}"


def fixed(value: Any) -> str:
    """A quantity near 1 (n·Var, a ratio): three decimals, scientific below 0.01."""
    value = encode_nonfinite(value)
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return f"{value:.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2e}"


def pct(value: Any) -> str:
    """A relative error as a signed percentage: +0.15% ('-' when missing or not finite)."""
    value = encode_nonfinite(value)
    if value is None or isinstance(value, str):
        return "-"
    return f"{100 * value:+.2f}%"


def pval(value: Any) -> str:
    """A p-value: 0.42, 3e-05, <1e-300."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.2g}"


def widths_text(widths: Sequence[Any]) -> str:
    """'1024-1000x5-10' from a network's widths (input, hidden..., output)."""
    parts: list[str] = []
    for width in widths:
        if parts and parts[-1].split("x")[0] == str(width):
            head, _, times = parts[-1].partition("x")
            parts[-1] = f"{head}x{int(times or 1) + 1}"
        else:
            parts.append(str(width))
    return "-".join(parts)


def layer_names(result: Result) -> str:
    """'1024-1000x5-10' from a result's configured ``layers`` ('' when it has none)."""
    widths = result.config.get("layers")
    return widths_text(widths if isinstance(widths, list | tuple) else [])


def init_summary(result: InitResult) -> str:
    """One line: PASSED/FAILED and how many checks hold, for init results."""
    rows = result.layers
    if result.mode == "rank":
        verdicts = "; ".join(f"{r.array}: {r.verdict}" for r in result.rankings)
        return f"RANKED {len(rows)} matrices: {verdicts}"
    held = sum(1 for r in rows if r.passed)
    word = "PASSED" if result.passed else "FAILED"
    return (
        f"{word}: {held} of {len(rows)} matrices match their scheme "
        f"(family-wise alpha {result.alpha}, {result.correction})"
    )


BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    """Counts as a row of Unicode blocks, the tallest bin a full block: ' ▁▃█▃▁ '."""
    top = max(counts) if counts else 0
    if top <= 0:
        return " " * len(counts)
    steps = len(BLOCKS) - 1
    return "".join(BLOCKS[min(steps, math.ceil(c / top * steps))] for c in counts)


def propagate_summary(result: PropagateResult) -> str:
    """One line: PASSED/FAILED and the runs, for propagate results."""
    runs = result.runs
    failed = [r for r in runs if not r.passed]
    if failed:
        names = "; ".join(f"{r.scheme}/{r.activation}: {r.failure}" for r in failed)
        return f"FAILED: {len(failed)} of {len(runs)} networks: {names}"
    return f"PASSED: {len(runs)} networks propagated with finite values"


def train_summary(result: TrainResult) -> str:
    """One line: PASSED/FAILED and each run's final test error, for train results."""
    parts = []
    for run in result.runs:
        name = f"{run.scheme}/{run.activation}"
        if run.diverged:
            parts.append(f"{name} diverged at update {run.diverged_at}")
        else:
            parts.append(f"{name} test error {num(run.final_test_error, 3)}")
    word = "PASSED" if result.passed else "FAILED"
    return f"{word}: " + "; ".join(parts)


def series(values: list[Any]) -> str:
    """A sparkline of a series of numbers scaled between its min and max (None skipped)."""
    numbers = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not numbers:
        return ""
    lo, hi = min(numbers), max(numbers)
    steps = len(BLOCKS) - 2
    out = []
    for v in values:
        if not isinstance(v, int | float) or not math.isfinite(v):
            out.append(" ")
            continue
        level = 0 if hi == lo else round((v - lo) / (hi - lo) * steps)
        out.append(BLOCKS[1 + level])
    return "".join(out)


def check_summary(result: CheckResult) -> str:
    """One line: the counts per verdict and, with ``--expect``, PASSED/FAILED."""
    counts = result.counts
    total = len(result.tensors)
    parts = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v))
    noun = "tensor" if total == 1 else "tensors"
    head = f"{total} {noun}: {parts or 'none'}"
    expect = result.expect
    if expect is None:
        return head
    failures = result.failures
    if result.passed:
        return f"PASSED --expect {expect}: {head}"
    shown = ", ".join(failures[:5]) + (
        f" and {len(failures) - 5} more" if len(failures) > 5 else ""
    )
    return f"FAILED --expect {expect}: {len(failures)} of {total} do not fit ({shown}); {head}"


def check_groups(result: CheckResult) -> list[tuple[Verdict, list[TensorCheck]]]:
    """The tensors grouped by verdict, in :data:`VERDICTS`, empty groups left out."""
    groups: list[tuple[Verdict, list[TensorCheck]]] = []
    for verdict in VERDICTS:
        rows = [t for t in result.tensors if t.verdict == verdict]
        if rows:
            groups.append((verdict, rows))
    return groups


def shape_text(shape: list[int]) -> str:
    """(3, 4) as '3x4', a scalar as '()'."""
    return "x".join(str(n) for n in shape) if shape else "()"


def fans_text(row: TensorCheck) -> str:
    """'fan_in→fan_out', or '-' without fans."""
    if row.fan_in is None:
        return "-"
    return f"{row.fan_in}→{row.fan_out}"


def gain_summary(result: GainResult) -> str:
    """One line: the activations, and PASSED/FAILED over the depth checks when there are any."""
    gains = result.gains
    checks = result.depth_checks
    noun = "activation" if len(gains) == 1 else "activations"
    bias_var = result.config.get("bias_var") or 0.0
    biases = (
        f"; fixed point, slope, χ1 and phase with biases N(0, {bias_var:g})" if bias_var else ""
    )
    if not checks:
        return f"gains of {len(gains)} {noun} (exact to 1e-10; --check confirms them){biases}"
    held = sum(1 for c in checks if c["passed"])
    word = "PASSED" if result.passed else "FAILED"
    failed = [c["activation"] for c in checks if not c["passed"]]
    tail = f": outside its interval: {', '.join(failed)}" if failed else ""
    return (
        f"{word}: {held} of {len(checks)} depth checks hold (depth {checks[0]['depth']}, width "
        f"{checks[0]['width']}, family-wise alpha {result.config.get('alpha')})"
        f"{biases}{tail}"
    )


def depth_scale_text(value: Any) -> str:
    """A depth scale: 'inf' at the edge of chaos, else one decimal."""
    if value is None:
        return "-"
    if isinstance(value, str) or not math.isfinite(value):
        return "∞"
    return f"{value:.1f}"


def signed(value: Any, digits: int = 4) -> str:
    """A signed fixed-point number, quadrature noise below 1e-12 shown as 0: +0.3989, 0."""
    value = encode_nonfinite(value)
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    if abs(value) < 1e-12:
        return "0"
    return f"{value:+.{digits}f}"


def gain_names_note(result: SchemesResult) -> str:
    """What ``gain=NAME`` accepts in a scheme spec, for the schemes listing ('' when the result
    does not say: one spec, or a result saved before :attr:`SchemesResult.gain_names`)."""
    names = result.gain_names
    if names is None:
        return ""
    return (
        "gain=NAME (e.g. normalized:gain=silu) takes PyTorch's calculate_gain for "
        f"{', '.join(names['torch'])}, and the exact forward gain 1/sqrt(E[f(z)^2]) for "
        f"{', '.join(names['exact'])} (aliases {', '.join(names['aliases'])}); see 'xavinit gain'."
    )
