"""Result dataclasses and their dictionaries (the result contract of DESIGN.md).

Every result document has ``schema_version``, ``xavinit_version``, ``command``, ``seed``,
``config`` and ``passed``, plus the command's payload. Field names are stable: add, never rename.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xavinit import __version__
from xavinit.errors import XavinitError

SCHEMA_VERSION = 1
KNOWN_SCHEMA_VERSIONS = (1,)


@dataclass(frozen=True)
class InitCheck:
    """The verification of one weight matrix under one scheme (one row of ``init``'s ``layers``).

    ``observed_var`` is the mean of squares (the variance about the hypothesised mean 0);
    ``p_value`` tests it against ``expected_var``; ``ks_p_value`` tests the whole distribution;
    ``passed`` is the verdict after the family-wise correction over the run.
    """

    scheme: str
    layer: int
    fan_in: int
    fan_out: int
    distribution: str
    expected_var: float
    observed_var: float
    rel_error: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    passed: bool
    bound: float | None = None
    std: float | None = None
    ks_statistic: float | None = None
    ks_p_value: float | None = None
    support_ok: bool | None = None
    observed_mean: float = 0.0
    observed_min: float = 0.0
    observed_max: float = 0.0
    fan_in_var: float = 0.0
    fan_out_var: float = 0.0
    expected_fan_in_var: float = 0.0
    expected_fan_out_var: float = 0.0
    count: int = 0
    ks_sample_size: int = 0
    kurtosis: float | None = None
    check: str = "iid"
    orthogonality_error: float | None = None
    orthogonality_tolerance: float | None = None
    trials: int = 1
    observed_var_std: float | None = None
    trial_observed_vars: list[float] = field(default_factory=list)
    array: str | None = None
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ranking:
    """How well each known scheme explains one matrix of a checked file (best first)."""

    array: str
    fan_in: int
    fan_out: int
    best: str
    verdict: str
    candidates: list[dict[str, Any]]


@dataclass(frozen=True)
class InitResult:
    """The result of ``xavinit init`` (sampling, ``--check`` with a scheme, or a ranking)."""

    seed: int
    config: dict[str, Any]
    passed: bool
    layers: list[InitCheck]
    alpha: float
    correction: str
    mode: str = "sample"
    rankings: list[Ranking] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    saved: str | None = None
    command: str = "init"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (non-finite floats become strings)."""
        return _document(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InitResult:
        """Rebuild from a document written by :meth:`to_dict`."""
        body = dict(data)
        body["layers"] = [InitCheck(**row) for row in body.get("layers", [])]
        body["rankings"] = [Ranking(**row) for row in body.get("rankings", [])]
        return cls(**body)


@dataclass(frozen=True)
class PropagateLayer:
    """One layer of a ``propagate`` run: measurement, then the two kinds of prediction.

    Hidden layers describe ``z^k = f(s^k)``; the output layer the logits ``s^L``.
    ``backprop_var`` is Var[dC_n/ds^k] per example; ``weight_grad_var`` is Var[dC/dW^k] for the
    batch-mean cost. ``predicted_*`` come from mean field (Gauss-Hermite quadrature),
    ``linear_*`` from the paper's linear regime (eq. 5-7).
    """

    layer: int
    fan_in: int
    fan_out: int
    kind: str
    activation_mean: float
    activation_var: float
    activation_std: float
    activation_p2: float
    activation_p98: float
    saturated_fraction: float | None
    backprop_var: float
    weight_grad_var: float
    jacobian_sv_mean: float | None
    jacobian_sv_ratio: float | None
    histogram: dict[str, list[Any]]
    backprop_histogram: dict[str, list[Any]]
    weight_var: float
    predicted_preactivation_var: float
    predicted_activation_var: float
    predicted_activation_mean: float
    predicted_backprop_var: float
    predicted_weight_grad_var: float
    linear_activation_var: float
    linear_backprop_var: float
    linear_weight_grad_var: float
    spread: dict[str, float] = field(default_factory=dict)
    weight_grad_histogram: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PropagateRun:
    """One (scheme, activation) network: its layers and summary ratios (first / last hidden)."""

    scheme: str
    activation: str
    layers: list[PropagateLayer]
    passed: bool
    backprop_var_ratio: float | None = None
    activation_var_ratio: float | None = None
    weight_grad_var_ratio: float | None = None
    input_second_moment: float | None = None
    overflow_layer: int | None = None
    failure: str | None = None


@dataclass(frozen=True)
class PropagateResult:
    """The result of ``xavinit propagate``."""

    seed: int
    config: dict[str, Any]
    passed: bool
    runs: list[PropagateRun]
    command: str = "propagate"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (non-finite floats become strings)."""
        return _document(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PropagateResult:
        """Rebuild from a document written by :meth:`to_dict`."""
        body = dict(data)
        body["runs"] = [
            PropagateRun(**{**run, "layers": [PropagateLayer(**row) for row in run["layers"]]})
            for run in body.get("runs", [])
        ]
        return cls(**body)


@dataclass(frozen=True)
class TrainRun:
    """One (scheme, activation) training run.

    ``curve`` rows: ``update``, ``train_cost`` (mean minibatch cost since the previous row;
    None at update 0) and ``test_error``. ``layer_stats`` rows: ``update``, ``layer``, ``mean``,
    ``std``, ``p98``, ``saturated_fraction`` of the hidden activations on the 300 tracked test
    examples, and ``weight_grad_std``, the std of dC/dW of that layer (figure 9).
    """

    scheme: str
    activation: str
    updates: int
    final_test_error: float | None
    curve: list[dict[str, Any]]
    layer_stats: list[dict[str, Any]]
    diverged: bool = False
    diverged_at: int | None = None
    lr: float | None = None
    final_histograms: list[dict[str, Any]] = field(default_factory=list)
    final_valid_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run as a JSON-ready dict."""
        return _finite(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainRun:
        """Rebuild from :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class TrainResult:
    """The result of ``xavinit train``; ``passed`` is False when a run diverged."""

    seed: int
    config: dict[str, Any]
    passed: bool
    runs: list[TrainRun]
    dataset: str = ""
    command: str = "train"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document."""
        return _document(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Rebuild from a document written by :meth:`to_dict`."""
        body = dict(data)
        body["runs"] = [TrainRun.from_dict(run) for run in body.get("runs", [])]
        return cls(**body)


RESULT_TYPES: dict[str, Any] = {
    "init": InitResult,
    "propagate": PropagateResult,
    "train": TrainResult,
}


def _document(result: Any) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    head = {k: data.pop(k) for k in ("schema_version", "xavinit_version", "command")}
    return _finite({**head, **data})


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def result_from_dict(data: Any, source: str = "result") -> Any:
    """Validate a result document and rebuild its dataclass.

    Raises:
        XavinitError: not a result, an unknown command or an unknown ``schema_version``.
    """
    if not isinstance(data, dict) or "command" not in data or "schema_version" not in data:
        raise XavinitError(f"{source}: not an xavinit result (no 'command' and 'schema_version')")
    version = data["schema_version"]
    if version not in KNOWN_SCHEMA_VERSIONS:
        raise XavinitError(
            f"{source}: schema_version {version!r} is not known to xavinit {__version__} "
            f"(known: {', '.join(map(str, KNOWN_SCHEMA_VERSIONS))}); upgrade xavinit"
        )
    kind = RESULT_TYPES.get(data["command"])
    if kind is None:
        raise XavinitError(
            f"{source}: unknown command {data['command']!r}; known: {', '.join(RESULT_TYPES)}"
        )
    try:
        return kind.from_dict(data)
    except TypeError as error:
        raise XavinitError(f"{source}: malformed {data['command']} result ({error})") from None


def load_result(path: str | Path) -> Any:
    """Read a result saved with ``--output FILE.json`` or ``.yaml`` back into its dataclass."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XavinitError(f"result file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise XavinitError(f"cannot read result file {str(path)!r}: {error}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        from xavinit.config import parse_yaml_text

        data = parse_yaml_text(text, str(path))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise XavinitError(
                f"{path}: malformed JSON at line {error.lineno}: {error.msg}"
            ) from None
    return result_from_dict(data, str(path))
