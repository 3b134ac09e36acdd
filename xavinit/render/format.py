"""Number formatting shared by the human-readable renderers."""

from __future__ import annotations

import math
from typing import Any

from xavinit.results import VERDICTS


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
    """A number in a format ``spec`` (``.4f``, ``+.3f``, ``g``); a saved non-finite value
    (``"inf"``, ``"nan"``) as it is, '-' for missing."""
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return format(value, spec)


def sci(value: Any, digits: int = 3) -> str:
    """A variance in scientific notation with ``digits`` significant digits: 3.26e-04."""
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return f"{value:.{digits - 1}e}"


def fixed(value: Any) -> str:
    """A quantity near 1 (n·Var, a ratio): three decimals, scientific below 0.01."""
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return f"{value:.3f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2e}"


def pct(value: Any) -> str:
    """A relative error as a signed percentage: +0.15%."""
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


def layer_names(document: dict[str, Any]) -> str:
    """'1024-1000x5-10' from a config's layers."""
    widths = document.get("config", {}).get("layers") or []
    parts: list[str] = []
    for width in widths:
        if parts and parts[-1].split("x")[0] == str(width):
            head, _, times = parts[-1].partition("x")
            parts[-1] = f"{head}x{int(times or 1) + 1}"
        else:
            parts.append(str(width))
    return "-".join(parts)


def init_summary(document: dict[str, Any]) -> str:
    """One line: PASSED/FAILED and how many checks hold, for init results."""
    rows = document.get("layers", [])
    if document.get("mode") == "rank":
        verdicts = "; ".join(f"{r['array']}: {r['verdict']}" for r in document.get("rankings", []))
        return f"RANKED {len(rows)} matrices: {verdicts}"
    held = sum(1 for r in rows if r.get("passed"))
    word = "PASSED" if document.get("passed") else "FAILED"
    return (
        f"{word}: {held} of {len(rows)} matrices match their scheme "
        f"(family-wise alpha {document.get('alpha')}, {document.get('correction')})"
    )


BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    """Counts as a row of Unicode blocks, the tallest bin a full block: ' ▁▃█▃▁ '."""
    top = max(counts) if counts else 0
    if top <= 0:
        return " " * len(counts)
    steps = len(BLOCKS) - 1
    return "".join(BLOCKS[min(steps, math.ceil(c / top * steps))] for c in counts)


def propagate_summary(document: dict[str, Any]) -> str:
    """One line: PASSED/FAILED and the runs, for propagate results."""
    runs = document.get("runs", [])
    failed = [r for r in runs if not r.get("passed")]
    if failed:
        names = "; ".join(f"{r['scheme']}/{r['activation']}: {r.get('failure')}" for r in failed)
        return f"FAILED: {len(failed)} of {len(runs)} networks: {names}"
    return f"PASSED: {len(runs)} networks propagated with finite values"


def train_summary(document: dict[str, Any]) -> str:
    """One line: PASSED/FAILED and each run's final test error, for train results."""
    runs = document.get("runs", [])
    parts = []
    for run in runs:
        name = f"{run['scheme']}/{run['activation']}"
        if run.get("diverged"):
            parts.append(f"{name} diverged at update {run.get('diverged_at')}")
        else:
            parts.append(f"{name} test error {num(run.get('final_test_error'), 3)}")
    word = "PASSED" if document.get("passed") else "FAILED"
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


def check_summary(document: dict[str, Any]) -> str:
    """One line: the counts per verdict and, with ``--expect``, PASSED/FAILED."""
    counts = document.get("counts", {})
    total = len(document.get("tensors", []))
    parts = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if counts.get(v))
    noun = "tensor" if total == 1 else "tensors"
    head = f"{total} {noun}: {parts or 'none'}"
    expect = document.get("expect")
    if expect is None:
        return head
    failures = document.get("failures", [])
    if document.get("passed"):
        return f"PASSED --expect {expect}: {head}"
    shown = ", ".join(failures[:5]) + (
        f" and {len(failures) - 5} more" if len(failures) > 5 else ""
    )
    return f"FAILED --expect {expect}: {len(failures)} of {total} do not fit ({shown}); {head}"


def check_groups(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The tensors grouped by verdict, in :data:`VERDICTS`, empty groups left out."""
    tensors = document.get("tensors", [])
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for verdict in VERDICTS:
        rows = [t for t in tensors if t["verdict"] == verdict]
        if rows:
            groups.append((verdict, rows))
    return groups


def shape_text(shape: list[int]) -> str:
    """(3, 4) as '3x4', a scalar as '()'."""
    return "x".join(str(n) for n in shape) if shape else "()"


def fans_text(row: dict[str, Any]) -> str:
    """'fan_in→fan_out', or '-' without fans."""
    if row.get("fan_in") is None:
        return "-"
    return f"{row['fan_in']}→{row['fan_out']}"


def gain_summary(document: dict[str, Any]) -> str:
    """One line: the activations, and PASSED/FAILED over the depth checks when there are any."""
    gains = document.get("gains", [])
    checks = document.get("depth_checks", [])
    noun = "activation" if len(gains) == 1 else "activations"
    bias_var = document.get("config", {}).get("bias_var") or 0.0
    biases = (
        f"; fixed point, slope, χ1 and phase with biases N(0, {bias_var:g})" if bias_var else ""
    )
    if not checks:
        return f"gains of {len(gains)} {noun} (exact to 1e-10; --check confirms them){biases}"
    held = sum(1 for c in checks if c.get("passed"))
    word = "PASSED" if document.get("passed") else "FAILED"
    failed = [c["activation"] for c in checks if not c.get("passed")]
    tail = f": outside its interval: {', '.join(failed)}" if failed else ""
    return (
        f"{word}: {held} of {len(checks)} depth checks hold (depth {checks[0]['depth']}, width "
        f"{checks[0]['width']}, family-wise alpha {document.get('config', {}).get('alpha')})"
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
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    if abs(value) < 1e-12:
        return "0"
    return f"{value:+.{digits}f}"


def gain_names_note() -> str:
    """What ``gain=NAME`` accepts in a scheme spec, for the schemes listing."""
    from xavinit.core.activations import ACTIVATION_ALIASES, ACTIVATION_NAMES, TORCH_GAIN_NAMES

    others = [n for n in ACTIVATION_NAMES if n not in TORCH_GAIN_NAMES]
    return (
        "gain=NAME (e.g. normalized:gain=silu) takes PyTorch's calculate_gain for "
        f"{', '.join(TORCH_GAIN_NAMES)}, and the exact forward gain 1/sqrt(E[f(z)^2]) for "
        f"{', '.join(others)} (aliases {', '.join(ACTIVATION_ALIASES)}); see 'xavinit gain'."
    )
