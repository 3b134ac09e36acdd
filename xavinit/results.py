"""Result types (the result contract of DESIGN.md): every command's, typed and validated on load.

Every result document has ``schema_version``, ``xavinit_version``, ``command``, ``seed``,
``config`` and ``passed``, plus the command's payload. Field names are stable: add, never rename.

Results are frozen dataclasses, built by the experiments and turned into documents by
``to_dict()``; rows inside them (a curve point, a histogram, a ranking candidate) are typed
dicts. :func:`result_from_dict` and :func:`load_result` read a document back with every field's
type and range checked (pydantic, strict: ``"passed": "false"`` is refused, not read as true);
a field that does not fit is an error naming its path (``runs[0].curve[3].update``).
Non-finite floats are stored as ``"inf"``, ``"-inf"`` and ``"nan"`` (:mod:`xavinit.serialize`)
and read back as floats.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Interval, Len
from typing_extensions import NotRequired, TypedDict

from xavinit._version import __version__
from xavinit.commands import RESULT_COMMANDS
from xavinit.serialize import decode_nonfinite, plain

SCHEMA_VERSION = 1
KNOWN_SCHEMA_VERSIONS = (1,)


class _NonFinite:
    """Marker: the field reads ``"inf"``/``"-inf"``/``"nan"`` as floats (see serialize)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(decode_nonfinite, handler(source))


Real = Annotated[float, _NonFinite]
"""A float that may be non-finite."""
Probability = Annotated[float, Interval(ge=0.0, le=1.0)]
Fraction = Probability
Count = Annotated[int, Ge(0)]
Index = Annotated[int, Ge(1)]
"""A 1-based layer number or a width."""
Variance = Annotated[float, _NonFinite, Ge(0.0)]

Verdict = Literal["trained", "init", "constant", "unknown"]
"""``check``'s verdict on a tensor (see :mod:`xavinit.core.verdicts`)."""
VERDICTS: tuple[Verdict, ...] = typing.get_args(Verdict)
"""Every verdict, in the order they are counted and shown (what needs attention first)."""


class Histogram(TypedDict):
    """Bin ``edges`` (one more than ``counts``) and the count in each bin."""

    edges: list[Real]
    counts: list[Count]


class LayerHistogram(TypedDict):
    """A histogram of one hidden layer's activations (train's ``final_histograms``)."""

    layer: Index
    edges: list[Real]
    counts: list[Count]


class Candidate(TypedDict):
    """How well one known scheme explains a checked matrix (a row of a ranking)."""

    scheme: str
    score: Probability
    p_value: Probability | None
    ks_p_value: Probability | None
    expected_var: Variance
    rel_error: Real
    explains: bool
    known_as: str
    outside: NotRequired[Count]
    """Entries past the bound of a bounded law that is kept (at most a handful)."""


class CurvePoint(TypedDict):
    """One evaluation: mean minibatch cost since the previous point (None at 0), test error."""

    update: Count
    train_cost: Real | None
    test_error: Fraction


class LayerStats(TypedDict):
    """Per hidden layer on the 300 tracked test examples at one update (figures 2, 3, 9)."""

    update: Count
    layer: Index
    mean: Real
    std: Real
    p98: Real
    saturated_fraction: Fraction
    weight_grad_std: Real


class GainNames(TypedDict):
    """What ``gain=NAME`` accepts in a scheme spec: the activations that take PyTorch's
    ``calculate_gain`` (``torch``), those that take the exact forward gain ``1/sqrt(E[f(z)^2])``
    (``exact``), and the aliases of activation names."""

    torch: list[str]
    exact: list[str]
    aliases: list[str]


class SchemeRow(TypedDict):
    """One scheme of ``xavinit schemes``; numbers only when fans are given."""

    name: str
    aliases: list[str]
    distribution: str
    formula: str
    parameters: list[str]
    known_as: str
    source: str
    spec: NotRequired[str]
    fan_in: NotRequired[Index]
    fan_out: NotRequired[Index]
    variance: NotRequired[Variance]
    bound: NotRequired[Real | None]
    std: NotRequired[Real | None]


class GainRow(TypedDict):
    """One activation of ``xavinit gain`` (see :class:`xavinit.core.theory.GainTheory`)."""

    activation: str
    forward_gain: Real
    backward_gain: Real
    fixed_point_gain: Real
    chi1: Real
    torch_gain: Real | None
    mean: Real
    second_moment: Real
    torch_ratio: Real | None
    fixed_point_slope: Real
    phase: str
    correlation_fixed_point: Real
    depth_scale: Real
    nodes: Index
    bias_var: NotRequired[Real]


class DepthCheck(TypedDict):
    """One ``gain --check``: the activation variance ratio of the last hidden layer over the
    first of one network at ``gain`` (one example, so the ratio of the variances over units),
    and the interval where the finite-width theory puts it: the smallest and largest of
    ``replicas`` Monte-Carlo draws of the same ratio at the computed gain."""

    activation: str
    depth: Index
    width: Index
    gain: Real
    variance_ratio: Real
    interval: Annotated[list[Real], Len(2, 2)]
    passed: bool
    scheme: str
    median_ratio: Real
    replicas: Index
    variances: list[Real]


HEAD_KEYS = ("schema_version", "xavinit_version", "command")
"""The keys every result document starts with, in this order (the contract's)."""


class _Document:
    """What every result has: ``to_dict()`` with the contract's keys first."""

    def fields(self) -> dict[str, Any]:
        """The document's top level before any copy: :data:`HEAD_KEYS`, then every other field
        in declaration order, the values the result's own objects."""
        values = vars(self)
        rest = {key: value for key, value in values.items() if key not in HEAD_KEYS}
        return {**{key: values[key] for key in HEAD_KEYS}, **rest}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready document (non-finite floats become strings)."""
        return plain(self.fields())


def document_is_fields(result: Any) -> bool:
    """Whether ``result.to_dict()`` is ``plain(result.fields())``, so a writer may write the
    fields themselves (not ``propagate``'s, which leaves out an empty ``models``)."""
    return type(result).to_dict is _Document.to_dict


@dataclass(frozen=True)
class InitCheck:
    """The verification of one weight matrix under one scheme (one row of ``init``'s ``layers``).

    ``observed_var`` is the mean of squares (the variance about the hypothesised mean 0);
    ``p_value`` tests it against ``expected_var`` exactly and ``ks_p_value`` the whole
    distribution (point nulls, reported). The verdict uses the interval nulls:
    ``variance_interval_p`` tests whether the variance is off by more than ``tolerance``
    (relative), ``ks_interval_p`` whether the CDF is off by more than ``ks_distance``;
    ``passed`` is the verdict after the family-wise correction over the run.
    """

    scheme: str
    layer: Index
    fan_in: Index
    fan_out: Index
    distribution: str
    expected_var: Variance
    observed_var: Variance
    rel_error: Real
    ci_low: Real | None
    ci_high: Real | None
    p_value: Probability | None
    passed: bool
    bound: Real | None = None
    std: Real | None = None
    ks_statistic: Real | None = None
    ks_p_value: Probability | None = None
    support_ok: bool | None = None
    observed_mean: Real = 0.0
    observed_min: Real = 0.0
    observed_max: Real = 0.0
    fan_in_var: Real = 0.0
    fan_out_var: Real = 0.0
    expected_fan_in_var: Real = 0.0
    expected_fan_out_var: Real = 0.0
    count: Count = 0
    ks_sample_size: Count = 0
    kurtosis: Real | None = None
    check: str = "iid"
    orthogonality_error: Real | None = None
    orthogonality_tolerance: Real | None = None
    trials: Index = 1
    observed_var_std: Real | None = None
    trial_observed_vars: list[Real] = field(default_factory=list)
    array: str | None = None
    failures: list[str] = field(default_factory=list)
    tolerance: Fraction | None = None
    variance_interval_p: Probability | None = None
    ks_distance: Fraction | None = None
    ks_interval_p: Probability | None = None


@dataclass(frozen=True)
class Ranking:
    """How well each known scheme explains one matrix of a checked file (best first)."""

    array: str
    fan_in: Index
    fan_out: Index
    best: str
    verdict: str
    candidates: list[Candidate]


@dataclass(frozen=True)
class InitResult(_Document):
    """The result of ``xavinit init`` (sampling, ``--check`` with a scheme, or a ranking)."""

    seed: Count
    config: dict[str, Any]
    passed: bool
    layers: list[InitCheck]
    alpha: Probability
    correction: str
    mode: str = "sample"
    rankings: list[Ranking] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    saved: str | None = None
    scheme_descriptions: dict[str, str] = field(default_factory=dict)
    """Each scheme of ``layers`` (by its spec as written there) in one line: its distribution
    and variance (:meth:`xavinit.core.schemes.Scheme.describe`); empty in results saved before
    it was added."""
    scheme_names: dict[str, str] = field(default_factory=dict)
    """Each scheme of ``layers`` (by its spec) to its canonical name, aliases resolved
    (``normalized`` for ``xavier-uniform``), as propagate's and train's runs record it in
    ``scheme_name``; empty in results saved before it was added."""
    command: str = "init"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


@dataclass(frozen=True)
class PropagateLayer:
    """One layer of a ``propagate`` run: measurement, then the two kinds of prediction.

    Hidden layers describe ``z^k = f(s^k)``; the output layer the logits ``s^L``.
    ``backprop_var`` is Var[dC_n/ds^k] per example; ``weight_grad_var`` is Var[dC/dW^k] for the
    batch-mean cost. ``predicted_*`` come from mean field (Gauss-Hermite quadrature),
    ``linear_*`` from the paper's linear regime (eq. 5-7), ``None`` where that regime does not
    apply to the activation (the run's ``prediction_notes`` says why). Both weight-gradient
    predictions carry the cross-example term of the batch mean.
    """

    layer: Index
    fan_in: Index
    fan_out: Index
    kind: str
    activation_mean: Real
    activation_var: Real
    activation_std: Real
    activation_p2: Real
    activation_p98: Real
    saturated_fraction: Fraction | None
    backprop_var: Real
    weight_grad_var: Real
    jacobian_sv_mean: Real | None
    jacobian_sv_ratio: Real | None
    histogram: Histogram
    backprop_histogram: Histogram
    weight_var: Real
    predicted_preactivation_var: Real
    predicted_activation_var: Real
    predicted_activation_mean: Real
    predicted_backprop_var: Real
    predicted_weight_grad_var: Real
    linear_activation_var: Real | None
    linear_backprop_var: Real | None
    linear_weight_grad_var: Real | None
    spread: dict[str, Real] = field(default_factory=dict)
    weight_grad_histogram: Histogram | dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PropagateRun:
    """One (scheme, activation) network: its layers and summary ratios (first / last hidden).

    ``input_cross_moment`` and ``top_cross_moment`` are ``E[a_b a_b']`` over pairs of examples
    of the inputs and of the top gradient (the correlation of the output errors), measured and
    averaged over trials, as the weight-gradient predictions use them; ``prediction_notes``
    maps each prediction field that is not exact beyond finite width to the reason.
    ``scheme_name`` is the canonical name of the scheme ``scheme`` spells (its preset, aliases
    resolved: ``normalized`` for ``xavier-uniform``); None for a stack read from a file and in
    results saved before the field existed.
    """

    scheme: str
    activation: str
    layers: list[PropagateLayer]
    passed: bool
    backprop_var_ratio: Real | None = None
    activation_var_ratio: Real | None = None
    weight_grad_var_ratio: Real | None = None
    input_second_moment: Real | None = None
    overflow_layer: Index | None = None
    failure: str | None = None
    input_cross_moment: Real | None = None
    top_cross_moment: Real | None = None
    prediction_notes: dict[str, str] = field(default_factory=dict)
    scheme_name: str | None = None


@dataclass(frozen=True)
class PropagateResult(_Document):
    """The result of ``xavinit propagate``."""

    seed: Count
    config: dict[str, Any]
    passed: bool
    runs: list[PropagateRun]
    command: str = "propagate"
    models: list[ModelRun] = field(default_factory=list)
    """``propagate --model``: one run per model (``runs`` is then empty)."""
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The document; ``models`` only when there are any (an MLP run's is as it was)."""
        data = super().to_dict()
        if not self.models:
            data.pop("models")
        return data


@dataclass(frozen=True)
class TrainRun:
    """One (scheme, activation) training run.

    ``curve`` rows: ``update``, ``train_cost`` (mean minibatch cost since the previous row;
    None at update 0) and ``test_error``. ``layer_stats`` rows: ``update``, ``layer``, ``mean``,
    ``std``, ``p98``, ``saturated_fraction`` of the hidden activations on the 300 tracked test
    examples, and ``weight_grad_std``, the std of dC/dW of that layer (figure 9).
    ``scheme_name`` is the canonical name of the scheme ``scheme`` spells (its preset, aliases
    resolved); None in results saved before the field existed.
    """

    scheme: str
    activation: str
    updates: Count
    final_test_error: Fraction | None
    curve: list[CurvePoint]
    layer_stats: list[LayerStats]
    diverged: bool = False
    diverged_at: Count | None = None
    lr: Real | None = None
    final_histograms: list[LayerHistogram] = field(default_factory=list)
    final_valid_error: Fraction | None = None
    scheme_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run as a JSON-ready dict."""
        return plain(self)  # type: ignore[no-any-return,unused-ignore]


@dataclass(frozen=True)
class TrainResult(_Document):
    """The result of ``xavinit train``; ``passed`` is False when a run diverged."""

    seed: Count
    config: dict[str, Any]
    passed: bool
    runs: list[TrainRun]
    dataset: str = ""
    command: str = "train"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


class SweepEntry(TypedDict):
    """One model of a sweep's table (a cell of Table 1): the learning rate chosen on validation
    error, and the test error at that rate over the seeds."""

    dataset: str
    activation: str
    scheme: str
    lr: Real | None
    validation_error: Fraction | None
    test_error_mean: Fraction | None
    test_error_std: Real | None
    seeds: Count
    updates: Count
    selected_at: Count


@dataclass(frozen=True)
class SweepRun(TrainRun):
    """One grid point of a sweep: train's run fields, the point, and how it ran.

    ``status`` is finished, diverged or failed; ``wall_seconds`` sums every invocation that
    trained it; ``worker`` is where it last ran; ``retries`` counts restarts after a worker
    died; ``selection_valid_error`` is its validation error when the learning rate was chosen.
    """

    id: str = ""
    dataset: str = ""
    seed: Count = 0
    status: str = "finished"
    wall_seconds: Real = 0.0
    worker: str | None = None
    retries: Count = 0
    selection_valid_error: Fraction | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepResult(_Document):
    """The result of ``xavinit sweep``: every run of the grid and the Table 1 of the runs.

    ``passed`` is False when a run diverged or failed. ``trained_updates`` counts the SGD
    updates this invocation performed (0 when every run was already done).
    """

    seed: Count
    config: dict[str, Any]
    passed: bool
    runs: list[SweepRun]
    table: list[SweepEntry]
    trained_updates: Count = 0
    command: str = "sweep"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


@dataclass(frozen=True)
class SchemesResult(_Document):
    """The result of ``xavinit schemes``: every scheme (or one spec) with its formula."""

    config: dict[str, Any]
    schemes: list[SchemeRow]
    passed: bool = True
    gain_names: GainNames | None = None
    """The listing of every scheme says what ``gain=NAME`` accepts; None for one spec (and in
    results saved before it was added)."""
    command: str = "schemes"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


@dataclass(frozen=True)
class ReportResult(_Document):
    """The result of ``xavinit report``: every included result document, in command order,
    each with the ``file`` it came from; ``passed`` when all of them passed."""

    config: dict[str, Any]
    passed: bool
    paper: bool = False
    plots: list[str] = field(default_factory=list)
    plots_note: str | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)
    command: str = "report"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


@dataclass(frozen=True)
class TensorCheck:
    """The verdict on one tensor of a checked file (one row of ``check``'s ``tensors``).

    ``verdict`` is ``constant``, ``init``, ``trained`` or ``unknown``; ``scheme`` the best
    candidate law of an ``init`` tensor (None otherwise) with its ``p_value`` and the
    ``runner_up``; ``top_singular_ratio`` the largest singular value over the Bai-Yin edge
    ``sqrt(m2) (sqrt(n) + sqrt(p))`` (the Lanczos estimate the test uses, after
    ``spectral_steps`` steps); ``reason`` one line saying why. ``outliers``: entries set aside
    as far outside every law (``outlier_peak`` the largest, in std); ``row_spread_p_value`` and
    ``column_spread_p_value``: the tests that rows and columns are alike;
    ``correlation_p_value``: that rows are uncorrelated.
    """

    file: str
    name: str
    role: str
    shape: list[Count]
    dtype: str
    layout: str
    fan_in: Index | None
    fan_out: Index | None
    verdict: Verdict
    scheme: str | None
    expected_var: Variance | None
    observed_var: Variance | None
    p_value: Probability | None
    runner_up: str | None
    top_singular_ratio: Real | None
    reason: str
    count: Count = 0
    observed_mean: Real | None = None
    groups: int | None = None
    owner: str | None = None
    law_p_value: Probability | None = None
    spectral_p_value: Probability | None = None
    trained_p_value: Probability | None = None
    known_as: str = ""
    note: str = ""
    matches: bool | None = None
    candidates: list[Candidate] = field(default_factory=list)
    outliers: Count = 0
    outlier_peak: Real | None = None
    row_spread_p_value: Probability | None = None
    column_spread_p_value: Probability | None = None
    correlation_p_value: Probability | None = None
    spectral_steps: Count | None = None


@dataclass(frozen=True)
class CheckResult(_Document):
    """The result of ``xavinit check``: a verdict per tensor of every file.

    ``passed`` follows ``expect``: every selected tensor fits the scheme, none looks fresh
    (``trained``: an ``init`` or ``constant`` tensor fails) or none looks trained (``init``);
    without ``expect`` it is True. ``counts`` has the number of tensors per verdict;
    ``failures`` the names (``file:name``) that do not meet ``expect``.
    """

    seed: Count
    config: dict[str, Any]
    passed: bool
    tensors: list[TensorCheck]
    files: list[str]
    alpha: Probability
    expect: str | None = None
    counts: dict[str, Count] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    command: str = "check"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


@dataclass(frozen=True)
class GainResult(_Document):
    """The result of ``xavinit gain``: the gains of each activation and, with ``--check``, the
    depth checks; ``passed`` is False when a check's ratio falls outside its interval."""

    seed: Count
    config: dict[str, Any]
    passed: bool
    gains: list[GainRow]
    depth_checks: list[DepthCheck] = field(default_factory=list)
    command: str = "gain"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__


class ModelParam(TypedDict):
    """One parameter of a measured module: its mean square ``E[theta^2]`` and the variance of
    its gradient for the batch-mean cost (None when no gradient reached it)."""

    name: str
    shape: list[Count]
    weight_var: Real
    grad_var: Real | None


@dataclass(frozen=True)
class ModelModule:
    """One measured module of ``propagate --model`` (a leaf or a block), in network order.

    ``mean`` and ``var`` are over every entry of the output; ``channel_sq_mean`` and
    ``channel_var`` the signal propagation plot's average channel squared mean and average
    channel variance over ``channel_axis`` (Brock, De and Smith 2021). ``grad_var`` is the
    variance of the per-example gradient at the output, ``grad_ratio_to_top`` its ratio to the
    top module's; ``branch_var`` and ``skip_var`` are ``Var[y - x]`` and ``Var[x]`` of a block
    whose input ``x`` and output ``y`` have one shape. ``predicted_var`` (and
    ``predicted_mean``) is the mean-field prediction for a Linear or Conv output
    (``fan_in E[W^2] E[x^2] + E[b^2]``, from the measured ``input_second_moment`` and
    ``weight_var``) or for a known activation applied to one (``theory_from`` names it).
    """

    index: Index
    name: str
    type: str
    kind: str
    shape: list[Count]
    channel_axis: Count
    mean: Real
    var: Real
    channel_sq_mean: Real
    channel_var: Real
    saturated_fraction: Fraction | None = None
    activation: str | None = None
    grad_var: Real | None = None
    grad_ratio_to_top: Real | None = None
    params: list[ModelParam] = field(default_factory=list)
    branch_var: Real | None = None
    skip_var: Real | None = None
    fan_in: Index | None = None
    weight_var: Real | None = None
    bias_var: Real | None = None
    input_second_moment: Real | None = None
    predicted_var: Real | None = None
    predicted_mean: Real | None = None
    theory_from: str | None = None


class ModelDrift(TypedDict):
    """The drift of one quantity between the first and the last measured module.

    ``activation_var``: ``var`` of the last over the first; ``grad_var``: the first's (nearest
    the input) over the last's (the top). ``passed`` when the ratio lies within
    ``[1/max_drift, max_drift]``; ``beyond_from`` names the module where it first leaves that
    band (from the first module for activations, from the top for gradients)."""

    quantity: str
    first: str
    last: str
    ratio: Real | None
    beyond_from: str | None
    passed: bool


@dataclass(frozen=True)
class ModelRun:
    """One model of ``propagate --model``: every measured module and the drift verdict.

    ``backward`` is ``measured`` or why it is unavailable (an ONNX model); ``notes`` say what
    the reader should know (a fallback from blocks to leaves, the GELU approximation).
    """

    model: str
    source: str
    depth_of: str
    batch: Index
    input: str
    input_shape: list[Count]
    parameters: Count
    max_drift: Real
    passed: bool
    modules: list[ModelModule]
    drift: list[ModelDrift]
    backward: str = "measured"
    top_grad_var: Real | None = None
    failure: str | None = None
    notes: list[str] = field(default_factory=list)


Result = (
    InitResult
    | PropagateResult
    | TrainResult
    | SchemesResult
    | ReportResult
    | SweepResult
    | CheckResult
    | GainResult
)
"""Any command's result."""

RESULT_TYPES: dict[str, type[Any]] = {
    command.name: globals()[command.result] for command in RESULT_COMMANDS if command.result
}
"""Each command's result type, by the document's ``command``."""
