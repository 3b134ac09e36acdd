"""``xavinit check`` held to the truth on real models: transformers (BERT, GPT-2, Llama, ViT,
ResNet, ConvNeXt, MobileNet V1/V2, EfficientNet), torch.nn layers at their defaults and Keras 3
layers, each freshly built and saved as PyTorch ``.pt``, ``.safetensors``, ONNX, ``.keras`` and
legacy ``.h5``.

The truth of every tensor (role, fans, law) comes from ``realmodels.py``, which derives it from
each library's own init code (cited there), never from xavinit. Per (model, format), for every
tensor of the file:

- present: check reports every tensor of the file, no more (Keras names are the variables'
  ``path``, or in a legacy ``.h5`` the layer's group then the path);
- shape as stored, ``observed_var`` the tensor's own mean of squares (the reader read the bytes);
- role, and fans in xavinit's per-unit convention (``realmodels`` docstring); where the format
  does not store a conv's ``groups`` (``.pt``, ``.safetensors``) the ``groups = 1`` reading of
  ``fan_out`` is accepted too, and an RNN bias may take either gate matrix's fans;
- verdict: ``constant`` for a constant truth, ``init`` for a drawn one, ``constant`` or ``init``
  for Keras' LSTM bias (constant blocks), ``unknown`` for an exporter's integer index and
  otherwise accepted only below 32 entries, ``trained`` never;
- law, for an ``init`` verdict: the named scheme's family (uniform, normal, truncated normal with
  its cut, orthogonal) is the truth's wherever the two are told apart at this size (their KS
  distance at equal variance times sqrt(N) at least ``SEPARATION``; orthogonal vs i.i.d. when
  both matrix sides reach 8), and its expected variance is the truth's within ``VARIANCE_SE``
  standard errors (relative SE ``sqrt((kurtosis - 1) / N)``). Whether the name is fan-based
  (``standard``) or a fitted fan-free law (``uniform:a=...``) of the same family and variance is
  not asserted: check's own variance test rejects an exact fan-based law for 1% of tensors at
  alpha 0.01, so the name would hang on the seed.

Each failure message lists every mismatching tensor of the file at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import realmodels as rm
from realmodels import ANY, Family, Truth

import xavinit

pytestmark = pytest.mark.filterwarnings(
    # keras' torch backend converting for model.save; not ours to fix
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

CASES = [(model, fmt) for model in rm.BUILDERS for fmt in rm.FORMATS[model]]

_UNIFORM = {
    "standard", "default", "torch-linear", "normalized", "xavier-uniform", "glorot-uniform",
    "he-uniform", "kaiming-uniform", "lecun-uniform", "uniform",
}  # fmt: skip
_NORMAL = {
    "xavier-normal",
    "glorot-normal-plain",
    "he-normal",
    "kaiming-normal",
    "lecun-normal",
    "normal",
}
_TRUNCATED_AT_2 = {
    "glorot-normal-truncated", "glorot-normal", "xavier-normal-truncated", "he-normal-truncated",
    "lecun-normal-truncated", "truncated-normal",
}  # fmt: skip


def scheme_family(spec: str) -> Family:
    """The distribution a scheme spec of check's result names (``uniform:a=0.05``,
    ``trunc-normal:std=0.02,a=-0.04,b=0.04``, ``he-normal:mode=fan_out``...)."""
    name, _, rest = spec.partition(":")
    params = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
    if name == "orthogonal":
        return Family("orthogonal")
    if name == "trunc-normal":
        std = float(params.get("std", 1.0))
        low, high = float(params.get("a", -2.0)), float(params.get("b", 2.0))
        return Family("truncated", min(-low, high) / std)
    if name == "variance-scaling":
        distribution = params.get("distribution", "normal")
        if distribution == "uniform":
            return Family("uniform")
        return (
            Family("truncated", 2.0) if distribution.startswith("truncated") else Family("normal")
        )
    if name in _UNIFORM:
        return Family("uniform")
    if name in _NORMAL:
        return Family("normal")
    if name in _TRUNCATED_AT_2:
        return Family("truncated", 2.0)
    scheme = xavinit.get_scheme(spec)  # a scheme added since: its own statement of its law
    if scheme.distribution == "uniform":
        return Family("uniform")
    if scheme.distribution.startswith("truncated"):
        return Family("truncated", float(scheme.truncation))
    if scheme.distribution == "orthogonal":
        return Family("orthogonal")
    return Family("normal")


def _effective(count: int) -> int:
    return min(count, rm.KS_SAMPLE)


def law_mismatches(truth: Truth, row: Any) -> list[str]:
    """The law checks of one ``init`` tensor (see the module docstring)."""
    spec = row.scheme
    if spec is None:
        return ["scheme: an init verdict names no scheme"]
    problems: list[str] = []
    count = truth.count
    truth_family = truth.family()
    assert truth_family is not None
    got = scheme_family(str(spec))
    rows, cols = truth.matrix_shape()
    one_orthogonal = (truth_family.name == "orthogonal") != (got.name == "orthogonal")
    if one_orthogonal and min(rows, cols) >= rm.ORTHOGONAL_MIN_SIDE:
        problems.append(
            f"family: expected {truth.law.describe()}, got {spec} ({got.label()}); a {rows}x{cols} "
            "orthogonal matrix is told from an i.i.d. one exactly"
        )
    else:
        as_marginal = {"orthogonal": Family("normal")}
        a = as_marginal.get(truth_family.name, truth_family)
        b = as_marginal.get(got.name, got)
        distance = rm.ks_distance(a, b)
        if distance * math.sqrt(_effective(count)) >= rm.SEPARATION:
            problems.append(
                f"family: expected {a.label()} ({truth.law.describe()}), got {spec} ({b.label()}); "
                f"KS distance {distance:.4f} at N={count} (sqrt(N) D = "
                f"{distance * math.sqrt(_effective(count)):.1f} >= {rm.SEPARATION})"
            )
    expected_var = row.expected_var
    true_var = truth.variance()
    se = math.sqrt((truth.kurtosis() - 1.0) / count)
    if expected_var is None:
        problems.append("expected_var: None for an init verdict")
    elif abs(expected_var / true_var - 1.0) > rm.VARIANCE_SE * se:
        problems.append(
            f"expected_var: expected {true_var:.6g} ({truth.law.describe()}), got {expected_var:.6g} "
            f"from {spec} ({expected_var / true_var - 1.0:+.1%}, {rm.VARIANCE_SE:g} SE = "
            f"{rm.VARIANCE_SE * se:.1%})"
        )
    return problems


FIXED_VERDICTS = {"init", "constant"}
"""A deterministic, non-constant fresh tensor made of constant blocks (Keras' LSTM bias: zeros,
the forget gate's block at one) is no draw from a law: ``constant`` (xavinit/core/verdicts.py calls
equal blocks of constants constant) or ``init``, never ``trained`` or ``unknown``."""


def verdicts_allowed(truth: Truth) -> set[str]:
    kind = truth.law.kind
    if kind == "constant":
        allowed = {"constant"}
    elif kind == "index":
        allowed = {"unknown"}  # integers: an index or a counter (docs/check.md)
    elif kind == "fixed":
        allowed = set(FIXED_VERDICTS)
    else:
        allowed = {"init"}
    if truth.count < rm.MIN_ENTRIES:
        allowed.add("unknown")
    return allowed


def _close(a: float, b: float, rel: float = 1e-5) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-30)


def tensor_mismatches(truth: Truth, row: Any, array: np.ndarray, fmt: str) -> list[str]:
    """Every field of one row of check's result that contradicts the truth."""
    problems: list[str] = []
    if tuple(row.shape) != truth.shape:
        problems.append(f"shape: expected {list(truth.shape)}, got {list(row.shape)}")
    mean_square = float(np.mean(np.asarray(array, dtype=np.float64) ** 2)) if array.size else 0.0
    if row.observed_var is not None and not _close(row.observed_var, mean_square):
        problems.append(
            f"observed_var: the tensor's mean square is {mean_square:.6g}, got {row.observed_var:.6g}"
        )
    if row.role not in truth.roles:
        problems.append(f"role: expected {'|'.join(truth.roles)}, got {row.role}")
    if truth.also_fans:
        accepted_pairs = [(truth.fan_in, truth.fan_out), *truth.also_fans]
        if (row.fan_in, row.fan_out) not in accepted_pairs:
            shown = " or ".join(f"{a}->{b}" for a, b in accepted_pairs)
            problems.append(f"fans: expected {shown}, got {row.fan_in}->{row.fan_out}")
    else:
        if truth.fan_in != ANY and row.fan_in != truth.fan_in:
            problems.append(f"fan_in: expected {truth.fan_in}, got {row.fan_in}")
        if truth.fan_out != ANY:
            accepted = {truth.fan_out}
            if fmt in rm.GROUPLESS_FORMATS and truth.fan_out_without_groups is not None:
                accepted.add(truth.fan_out_without_groups)
            if row.fan_out not in accepted:
                shown = " or ".join(str(a) for a in sorted(accepted, key=str))
                problems.append(f"fan_out: expected {shown}, got {row.fan_out}")
    allowed = verdicts_allowed(truth)
    if row.verdict not in allowed:
        why = f"{truth.law.describe()}, {truth.count} entries"
        problems.append(
            f"verdict: expected {'|'.join(sorted(allowed))} ({why}), got {row.verdict} ({row.reason})"
        )
        return problems
    if row.verdict == "constant" and truth.law.kind == "constant":
        value = float(np.asarray(truth.law.scale, dtype=array.dtype))
        if row.observed_mean is None or not _close(row.observed_mean, value, 1e-6):
            problems.append(
                f"observed_mean: expected the constant {value:g}, got {row.observed_mean}"
            )
    if row.verdict == "init" and truth.law.kind in rm.RANDOM_KINDS:
        problems += law_mismatches(truth, row)
    return problems


def _name_forms(truth_name: str, fmt: str) -> tuple[str, ...]:
    """The names a file of this format may give a tensor: its own, and for a legacy ``.h5``
    the layer's group before a Keras variable path (``dense/dense/kernel``)."""
    if fmt == "h5":
        return (truth_name, f"{truth_name.split('/')[0]}/{truth_name}")
    return (truth_name,)


def compare(
    result: Any, truths: dict[str, Truth], arrays: dict[str, np.ndarray], fmt: str
) -> list[str]:
    """Every mismatch between check's result for one file and the file's truths."""
    rows = {row.name: row for row in result.tensors}
    mismatches: list[str] = []
    used: set[str] = set()
    for name, truth in truths.items():
        found = [form for form in _name_forms(name, fmt) if form in rows]
        if not found:
            mismatches.append(
                f"{name}: missing from check's result ({truth.law.describe()}, shape {list(truth.shape)})"
            )
            continue
        row = rows[found[0]]
        used.add(found[0])
        mismatches += [
            f"{name}: {problem}" for problem in tensor_mismatches(truth, row, arrays[name], fmt)
        ]
    for extra in sorted(set(rows) - used):
        mismatches.append(f"{extra}: in check's result but not a tensor of the file")
    return mismatches


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Any]:
    """``(model, format) -> (path, truths, arrays)``, each model built once and saved once."""
    directory = tmp_path_factory.mktemp("realmodels")
    cache: dict[tuple[str, str], Any] = {}

    def get(model: str, fmt: str) -> Any:
        if (model, fmt) not in cache:
            cache[(model, fmt)] = rm.save(rm.build(model), fmt, directory / model)
        return cache[(model, fmt)]

    return get


@pytest.mark.parametrize("model", list(rm.BUILDERS))
def test_truth_matches_the_library(model: str) -> None:
    """The derived truth describes what the library really drew (no xavinit involved)."""
    built = rm.build(model)
    problems = [
        f"{name}: {problem}"
        for name, truth in built.truths.items()
        for problem in rm.truth_deviations(truth, built.arrays[name])
    ]
    assert not problems, f"{model}: the truth contradicts the drawn tensors:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(("model", "fmt"), CASES, ids=[f"{m}-{f}" for m, f in CASES])
def test_check_tells_the_truth(model: str, fmt: str, saved: Callable[[str, str], Any]) -> None:
    path, truths, arrays = saved(model, fmt)
    try:
        result = xavinit.check_weights(Path(path))
    except xavinit.XavinitError as error:
        pytest.fail(f"{model}/{fmt}: check refused the file: {error}")
    mismatches = compare(result, truths, arrays, fmt)
    assert not mismatches, (
        f"{model}/{fmt}: {len(mismatches)} mismatches over {len(truths)} tensors:\n"
        + "\n".join(mismatches)
    )


def test_onnx_truths_cover_every_stored_tensor(saved: Callable[[str, str], Any]) -> None:
    """The ONNX truths name exactly the file's initializers and Constant nodes (the test above
    then asks check for all of them)."""
    import onnx

    for model in [m for m in rm.BUILDERS if "onnx" in rm.FORMATS[m]]:
        path, truths, _ = saved(model, "onnx")
        graph = onnx.load(str(path)).graph
        names = {init.name for init in graph.initializer}
        names |= {node.output[0] for node in graph.node if node.op_type == "Constant"}
        assert names == set(truths), (model, sorted(names ^ set(truths)))


def test_trained_weights_are_called_trained(tmp_path: Path) -> None:
    """An MLP after 300 Adam steps on a structured task: every weight matrix ``trained``."""
    from safetensors.torch import save_file

    path = tmp_path / "trained.safetensors"
    save_file(rm.train_mlp(steps=300), str(path))
    result = xavinit.check_weights(path)
    wrong = [
        f"{row.name}: {row.verdict} ({row.reason})"
        for row in result.tensors
        if len(row.shape) == 2 and row.verdict != "trained"
    ]
    matrices = [row for row in result.tensors if len(row.shape) == 2]
    assert len(matrices) == 3, [row.name for row in result.tensors]
    assert not wrong, "trained weight matrices not called trained:\n" + "\n".join(wrong)
