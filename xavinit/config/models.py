"""Every command's configuration model, built from the declarations of
:mod:`xavinit.config.fields` (see :mod:`xavinit.config.base`).

A config file uses the long option names as keys (``layers``, ``scheme``, ``trials``; hyphens or
underscores); options given on the command line override it. Every error names its key path,
e.g. ``run.yaml: layers[2]: must be an integer >= 1, got -3``.

The annotations here are evaluated where they stand (no ``from __future__ import annotations``):
pydantic then takes each field's type as an object instead of compiling its text, which halves
the time of creating and building the models, paid by every run and every invalid option.
"""

import fnmatch
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from xavinit.commands import RESULT_COMMANDS
from xavinit.config.base import Config, Opt, Origin, set_derived
from xavinit.config.fields import (
    DATASET_HELP,
    DATASET_LAYERS,
    DEFAULT_SCHEMES,
    LAYERS_HELP,
    PAPER_DEPTH,
    PAPER_INPUTS,
    PAPER_LAYERS,
    PAPER_OUTPUTS,
    PAPER_WIDTH,
    SCHEMES,
    SHAPE_KEYS,
    Activations,
    ActivationsOption,
    BackendOption,
    BatchSizeOption,
    Choice,
    Correction,
    CostOption,
    Count,
    DatasetLayersOption,
    DepthOption,
    DeviceOption,
    DtypeOption,
    EvalEveryOption,
    Hidden,
    Layers,
    Path_,
    Patterns,
    PreprocessOption,
    Rate,
    Schemes,
    SchemesOption,
    SeedOption,
    TestSizeOption,
    TrackEveryOption,
    UpdatesOption,
    WidthOption,
    dataset_spec,
    file_path,
    hidden_widths,
    integer,
    known_schemes,
    positive_float,
    reject_bool,
    shape_given,
    strings,
)
from xavinit.core.placement import check_placement
from xavinit.errors import XavinitError
from xavinit.extras import install
from xavinit.limits import (
    KS_DISTANCE,
    KS_SAMPLE,
    MAX_LAYERS,
    VARIANCE_TOLERANCE,
)
from xavinit.resources import usable_cores
from xavinit.serialize import quote


class Placement(Config):
    """Options of the commands whose arrays may live on another backend (init draws on
    numpy's generators, and the rest works on the host); the rules are
    :func:`xavinit.core.backends.check_placement`'s."""

    backend: BackendOption = "numpy"
    device: DeviceOption = "cpu"

    @model_validator(mode="after")
    def _placement(self) -> "Placement":
        try:
            check_placement(self.backend, self.device)
        except ValueError as error:
            raise ValueError(f"device: {error}") from None
        return self


class Seeded(Config):
    """A config with a seed (every command that draws random numbers)."""

    seed: SeedOption = 0


class NetworkShape(Seeded):
    """A config with a whole network: ``--layers``, or ``--depth/--width/--inputs/--outputs``."""

    layers: Annotated[
        Layers, Opt(LAYERS_HELP, flags=("-l",), cli_type=str, default_text="1024,1000x5,10")
    ] = PAPER_LAYERS
    depth: DepthOption = None
    width: WidthOption = None
    inputs: Annotated[Count | None, Field(ge=1, exclude=True), Opt("Input width.")] = None
    outputs: Annotated[Count | None, Field(ge=1, exclude=True), Opt("Output width.")] = None

    @model_validator(mode="after")
    def _shape(self) -> "NetworkShape":
        if shape_given(self, SHAPE_KEYS, "layers" in self.model_fields_set):
            set_derived(
                self,
                layers=(
                    self.inputs or PAPER_INPUTS,
                    *hidden_widths(self.depth, self.width),
                    self.outputs or PAPER_OUTPUTS,
                ),
                depth=None,
                width=None,
                inputs=None,
                outputs=None,
            )
        return self


class InitConfig(NetworkShape):
    """What ``xavinit init`` does: sample and verify, or ``check`` weights from a file."""

    command = "init"
    numeric = True

    schemes: Annotated[
        Schemes,
        SCHEMES.but(default_text="standard and normalized; with --check, rank every known scheme"),
    ] = ()
    trials: Annotated[Count, Field(ge=1), Opt("Independent draws; report the mean and spread.")] = 1
    alpha: Annotated[
        Rate,
        Opt("Family-wise false-alarm rate over all layers and schemes."),
    ] = 0.01
    correction: Annotated[
        Correction,
        Opt("Multiple-testing correction: holm or bonferroni."),
    ] = "holm"
    dtype: DtypeOption = "float32"
    save: Annotated[
        Path_,
        Opt("Write the sampled weights (first trial) to FILE.npz.", metavar="FILE", writes="file"),
    ] = None
    check: Annotated[
        Path_,
        Opt(
            "Verify the 2-D arrays of a checkpoint (.npy, .npz or any format of 'xavinit "
            "check') instead of sampling; without --scheme, rank the known schemes for each.",
            metavar="FILE",
        ),
    ] = None
    keys: Annotated[
        Patterns,
        Opt(
            "With --check: array names or patterns (fc*) to verify, repeatable.",
            key="key",
            aliases=("keys",),
            default_text="every 2-D array",
        ),
    ] = ()
    layout: Annotated[
        str,
        BeforeValidator(Choice(("in-out", "out-in"))),
        Opt("With --check: in-out (fan_in, fan_out) or out-in (PyTorch)."),
    ] = "in-out"
    ks_sample: Annotated[
        Count, Field(ge=5), Opt("At most this many entries per matrix enter the KS test.")
    ] = KS_SAMPLE
    tolerance: Annotated[
        float,
        BeforeValidator(reject_bool),
        Field(ge=0.0, lt=1.0),
        Opt(
            "Relative deviation of Var[W] that does not matter: a check fails only when the "
            "variance is shown to be off by more (0 tests the exact formula)."
        ),
    ] = VARIANCE_TOLERANCE
    ks_distance: Annotated[
        float,
        BeforeValidator(reject_bool),
        Field(ge=0.0, lt=1.0),
        Opt(
            "Distance between the empirical and the scheme's CDF that does not matter: the "
            "distribution check fails only when it is shown to be larger."
        ),
    ] = KS_DISTANCE

    @model_validator(mode="after")
    def _modes(self) -> "InitConfig":
        if self.check is not None and self.save is not None:
            raise ValueError("save: --save writes sampled weights and cannot be used with --check")
        if self.check is None:
            for name in ("keys", "layout"):
                if getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"{self.option_key(name)}: applies only with --check FILE")
        if "schemes" not in self.model_fields_set:
            set_derived(self, schemes=() if self.check is not None else DEFAULT_SCHEMES)
        elif not self.schemes and self.check is None:
            raise ValueError("scheme: give at least one scheme")
        return self


class PropagateConfig(NetworkShape, Placement):
    """What ``xavinit propagate`` does: one network per (scheme, activation) at initialization."""

    command = "propagate"
    numeric = True

    schemes: SchemesOption = DEFAULT_SCHEMES
    activations: ActivationsOption = ("tanh",)
    batch: Annotated[
        Count,
        Field(ge=1),
        Opt("Examples pushed through the network (with --model, default 8)."),
    ] = 1000
    input: Annotated[
        str,
        BeforeValidator(Choice(("uniform", "normal"))),
        Opt(
            "Input distribution: uniform (U[-1,1], like scaled pixels) or normal; with --model "
            "also tokens:VOCAB (integer ids), default normal."
        ),
    ] = "uniform"
    backward: Annotated[
        str,
        BeforeValidator(Choice(("nll", "unit"))),
        Opt(
            "Top gradient: nll (softmax NLL on random labels, as in the paper) or unit "
            "(unit-variance noise)."
        ),
    ] = "nll"
    jacobian_samples: Annotated[
        Count,
        Field(ge=0),
        Opt("Examples whose layer Jacobians' singular values are computed (0: none)."),
    ] = 4
    bins: Annotated[Count, Field(ge=2), Opt("Histogram bins.")] = 41
    trials: Annotated[
        Count, Field(ge=1), Opt("Independent networks; report the mean and spread.")
    ] = 1
    dtype: DtypeOption = "float32"
    histograms: Annotated[
        bool, Opt("Show each layer's histogram in the terminal table (figures 6 and 7).")
    ] = False
    weights: Annotated[
        Path_,
        Opt(
            "Push through the dense layers of this checkpoint instead of drawn ones (its "
            "selected 2-D tensors, in file order).",
            metavar="FILE",
        ),
    ] = None
    keys: Annotated[
        Patterns,
        Opt(
            "With --weights: tensor names or globs, repeatable; a leading ! excludes.",
            key="key",
            aliases=("keys",),
            default_text="every 2-D tensor",
            metavar="PATTERN",
        ),
    ] = ()
    layout: Annotated[
        str,
        BeforeValidator(Choice(("auto", "in-out", "out-in"))),
        Opt("With --weights: auto (the format's), in-out or out-in."),
    ] = "auto"
    bias_var: Annotated[
        float,
        BeforeValidator(reject_bool),
        Field(ge=0.0, allow_inf_nan=False),
        Opt(
            "Variance of the biases, drawn N(0, VAR) at initialization (0: none, as in the "
            "paper); the predictions include them (Poole et al. 2016).",
            metavar="VAR",
        ),
    ] = 0.0

    @model_validator(mode="after")
    def _weights(self) -> "PropagateConfig":
        if self.weights is not None and self.bias_var != 0.0:
            raise ValueError(
                f"{self.option_key('bias_var')}: applies only to drawn networks, not --weights"
            )
        if self.weights is None:
            for name in ("keys", "layout"):
                if getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"{self.option_key(name)}: applies only with --weights FILE")
            return self
        if "schemes" in self.model_fields_set and self.schemes:
            raise ValueError("scheme: the weights come from --weights; give no --scheme")
        shape = [k for k in SHAPE_KEYS if k in self.model_fields_set]
        if shape:
            raise ValueError(f"{shape[0]}: the widths come from --weights")
        return self

    @model_validator(mode="after")
    def _samples(self) -> "PropagateConfig":
        if self.jacobian_samples > self.batch:
            raise ValueError(
                f"jacobian_samples: must be at most the batch size {self.batch}, "
                f"got {self.jacobian_samples}"
            )
        return self


def resolve_hidden(config: Any) -> None:
    """``layers`` or ``--depth/--width`` -> ``hidden`` (the paper's 5 x 1000 when neither)."""
    given = shape_given(config, ("depth", "width"), bool(config.layers))
    if config.layers:
        if "hidden" in config.model_fields_set and config.hidden != config.layers[1:-1]:
            raise ValueError("hidden: must be the hidden part of layers")
        set_derived(config, hidden=config.layers[1:-1])
    elif given:
        set_derived(
            config, hidden=hidden_widths(config.depth, config.width), depth=None, width=None
        )


class TrainConfig(Seeded, Placement):
    """What ``xavinit train`` does: one SGD run per (scheme, activation), one after another.

    ``layers`` is empty until the dataset is known: inputs and outputs follow the dataset, the
    hidden part comes from ``hidden`` (``--depth/--width``, default 5 x 1000) or from a full
    ``--layers`` that must match the dataset.
    """

    command = "train"
    numeric = True

    dataset: Annotated[str, BeforeValidator(dataset_spec), Opt(DATASET_HELP, flags=("-d",))] = (
        "shapeset"
    )
    layers: DatasetLayersOption = ()
    depth: DepthOption = None
    width: WidthOption = None
    hidden: Hidden = (PAPER_WIDTH,) * PAPER_DEPTH
    schemes: SchemesOption = DEFAULT_SCHEMES
    activations: ActivationsOption = ("tanh",)
    cost: CostOption = "nll"
    lr: Annotated[float, BeforeValidator(positive_float), Opt("Learning rate.")] = 0.03
    batch_size: BatchSizeOption = 10
    updates: UpdatesOption = 2000
    eval_every: EvalEveryOption = 500
    track_every: TrackEveryOption = 100
    test_size: TestSizeOption = None
    preprocess: PreprocessOption = "scale"
    checkpoint: Annotated[
        Path_,
        Opt(
            "Save the whole state to FILE.npz every --checkpoint-every updates and on Ctrl-C.",
            metavar="FILE",
            writes="file",
        ),
    ] = None
    checkpoint_every: Annotated[
        Count | None,
        Field(ge=1),
        Opt("Updates between checkpoints.", default_text="--eval-every"),
    ] = None
    dtype: DtypeOption = "float32"

    @model_validator(mode="after")
    def _hidden(self) -> "TrainConfig":
        resolve_hidden(self)
        return self


def _dataset_specs(specs: tuple[str, ...]) -> tuple[str, ...]:
    from xavinit.datasets import parse_dataset_spec

    if not specs:
        raise ValueError("give at least one dataset")
    for spec in specs:
        parse_dataset_spec(spec)
    return specs


def _comma_items(value: Any) -> list[Any]:
    """A list from a YAML list, a single value, or a comma-separated string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",")]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _learning_rates(value: Any) -> tuple[float, ...]:
    rates: list[float] = []
    for position, item in enumerate(_comma_items(value)):
        try:
            rates.append(positive_float(item))
        except ValueError:
            raise ValueError(
                f"[{position}]: must be a positive number, got {quote(item)}"
            ) from None
    if not rates:
        raise ValueError("give at least one learning rate")
    return tuple(dict.fromkeys(rates))


def _seeds(value: Any) -> tuple[int, ...]:
    items = _comma_items(value)
    seeds = tuple(integer(s, f"[{i}]: ", minimum=0) for i, s in enumerate(items))
    if not seeds:
        raise ValueError("give at least one seed, e.g. 0,1,2")
    return tuple(dict.fromkeys(seeds))


def _folder(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a folder path, got {quote(value)}")
    return value


def _address(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError(f"must be a scheduler address like tcp://HOST:8786, got {quote(value)}")
    return value.strip()


class SweepConfig(Placement):
    """What ``xavinit sweep`` does: one ``train`` run per grid point, resumable, in parallel.

    The grid is datasets x activations x schemes x learning rates x seeds; every point is one
    training run with the shared settings (layers, batch size, cost, updates, evaluation).
    ``updates`` and ``select_at`` are multiples of ``eval_every`` and ``track_every``, so that a
    run stopped there and extended later is identical to one trained with the larger budget.
    """

    command = "sweep"

    dir: Annotated[
        str,
        BeforeValidator(_folder),
        Opt(
            "Folder of the sweep: its grid, one checkpoint and result per run, and a manifest "
            "(created when missing; run again to resume or extend).",
            metavar="DIR",
            writes="folder",
        ),
    ]
    datasets: Annotated[
        tuple[str, ...],
        BeforeValidator(strings),
        AfterValidator(_dataset_specs),
        Opt(DATASET_HELP + " Repeatable.", flags=("-d",), key="dataset", aliases=("datasets",)),
    ] = ("shapeset",)
    layers: Annotated[
        DatasetLayersOption,
        DATASET_LAYERS.but(
            help=DATASET_LAYERS.help + " One dataset only; use --depth/--width for several.",
            default_text="each dataset's inputs, 1000x5, its classes",
        ),
    ] = ()
    depth: DepthOption = None
    width: WidthOption = None
    hidden: Hidden = (PAPER_WIDTH,) * PAPER_DEPTH
    schemes: SchemesOption = DEFAULT_SCHEMES
    activations: ActivationsOption = ("softsign", "tanh", "sigmoid")
    lrs: Annotated[
        tuple[float, ...],
        BeforeValidator(_learning_rates),
        Opt(
            "Learning rate, repeatable; each model's is chosen on validation error.",
            key="lr",
            aliases=("lrs",),
        ),
    ] = (0.01, 0.03, 0.1)
    seeds: Annotated[
        tuple[int, ...],
        BeforeValidator(_seeds),
        Opt(
            "Seeds, comma-separated (each seeds a run's weights and data): 0,1,2.",
            cli_type=str,
            aliases=("seed",),
            default_text="0",
        ),
    ] = (0,)
    cost: CostOption = "nll"
    batch_size: BatchSizeOption = 10
    updates: UpdatesOption = 2000
    select_at: Annotated[
        Count | None,
        Field(ge=1),
        Opt(
            "Choose each model's learning rate on validation error after this many updates; "
            "only the chosen rate then trains on to --updates.",
            default_text="at --updates",
        ),
    ] = None
    eval_every: EvalEveryOption = 500
    track_every: TrackEveryOption = 100
    test_size: TestSizeOption = None
    preprocess: PreprocessOption = "scale"
    dtype: DtypeOption = "float32"
    workers: Annotated[
        Count | None,
        Field(ge=1),
        Opt("Local worker processes, one BLAS thread each.", default_text="the usable cores"),
    ] = None
    scheduler: Annotated[
        str | None,
        BeforeValidator(_address),
        Opt(
            "Send the runs to the Dask cluster at this address, e.g. tcp://HOST:8786 "
            f"({install('cluster')}).",
            metavar="ADDRESS",
        ),
    ] = None
    retries: Annotated[
        Count,
        Field(ge=0),
        Opt("Retries of a run whose worker died, each from the run's last checkpoint."),
    ] = 2

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin | None = None) -> Any:
        """As :meth:`Config.from_mapping`, with a usage line when no folder is given."""
        if mapping.get("dir") in (None, ""):
            raise XavinitError(
                "give --dir DIR, the folder that holds the sweep: xavinit sweep --dir runs/ ..."
            )
        return super().from_mapping(mapping, origin)

    @model_validator(mode="after")
    def _grid(self) -> "SweepConfig":
        resolve_hidden(self)
        if self.layers and len(self.datasets) > 1:
            raise ValueError(
                "layers: fixes the inputs and outputs of one dataset; give --depth/--width "
                "for several datasets"
            )
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("workers: give --workers or --scheduler, not both")
        if self.workers is None and self.scheduler is None:
            set_derived(self, workers=usable_cores())
        if self.select_at is not None and self.select_at > self.updates:
            raise ValueError(
                f"select_at: must be at most --updates {self.updates}, got {self.select_at}"
            )
        for name in ("updates", "select_at"):
            value = getattr(self, name)
            for step in ("eval_every", "track_every"):
                if value is not None and value % getattr(self, step):
                    raise ValueError(
                        f"{name}: must be a multiple of --{step.replace('_', '-')} "
                        f"({getattr(self, step)}) so that runs can be extended exactly, "
                        f"got {value}"
                    )
        return self


class ReportConfig(Config):
    """What ``xavinit report`` reads and writes."""

    command = "report"

    files: Annotated[
        tuple[str, ...],
        BeforeValidator(strings),
        Field(min_length=1),
        Opt(
            "Result files written by init, propagate or train with --output (.json or .yaml).",
            argument=True,
            metavar="RESULT...",
        ),
    ]
    paper: Annotated[
        bool,
        Opt("Put the paper's reference values (Table 1, the Jacobian's 0.5 and 0.8) beside ours."),
    ] = False
    plots: Annotated[
        Path_,
        Opt(
            "Write every figure as PNG and SVG into this folder (needs matplotlib).",
            metavar="DIR",
            writes="folder",
        ),
    ] = None

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin | None = None) -> Any:
        """As :meth:`Config.from_mapping`, with a usage line when no file is given."""
        if not mapping.get("files"):
            raise XavinitError("give at least one result file: xavinit report RESULT.json ...")
        return super().from_mapping(mapping, origin)


class SchemesConfig(Config):
    """What ``xavinit schemes`` lists: every scheme, or one spec, with numbers for given fans."""

    command = "schemes"

    spec: Annotated[
        str | None,
        Opt("One scheme spec to show, e.g. 'he-normal:mode=fan_out'.", argument=True),
    ] = None
    fan_in: Annotated[Count | None, Field(ge=1), Opt("Show numbers for this fan_in.")] = None
    fan_out: Annotated[Count | None, Field(ge=1), Opt("... and this fan_out.")] = None

    @model_validator(mode="after")
    def _fans(self) -> "SchemesConfig":
        if (self.fan_in is None) != (self.fan_out is None):
            raise ValueError("fan_in: give both --fan-in and --fan-out, or neither")
        if self.spec is not None:
            known_schemes((self.spec,))
        return self


def _expectation(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be trained, init or a scheme spec, got {quote(value)}")
    text = value.strip()
    if text.lower() in ("trained", "init"):
        return text.lower()
    try:
        known_schemes((text,))
    except XavinitError as error:
        raise ValueError(f"give trained, init or a scheme spec; {error}") from None
    return text


def _layouts(value: Any) -> Any:
    """``auto``/``in-out``/``out-in`` and ``GLOB=LAYOUT`` items, normalised."""
    from xavinit.core.roles import parse_layouts

    items = strings(value)
    try:
        rules = parse_layouts(items)
    except ValueError as error:
        raise ValueError(str(error)) from None
    return tuple(value if pattern == "*" else f"{pattern}={value}" for pattern, value in rules)


def _role_patterns(value: Any) -> Any:
    """Role names or globs, a leading ``!`` excluding; each must match a role."""
    from xavinit.formats.base import ROLES

    items = strings(value)
    for item in items:
        pattern = item[1:] if item.startswith("!") else item
        if not fnmatch.filter(ROLES, pattern.strip().lower()):
            raise ValueError(f"{quote(item)} matches no role; roles: {', '.join(ROLES)}")
    return tuple(item.strip().lower() for item in items)


class CheckConfig(Seeded):
    """What ``xavinit check`` reads and judges: every tensor of one or more checkpoints."""

    command = "check"

    files: Annotated[
        tuple[str, ...],
        BeforeValidator(strings),
        Field(min_length=1),
        Opt(
            "Checkpoints: .npy, .npz, .safetensors, PyTorch .pt/.pth/.bin (TorchScript and "
            "legacy pickles too), Keras .keras/.h5, ONNX .onnx (the format is read from the "
            "content).",
            argument=True,
            metavar="FILE...",
        ),
    ]
    expect: Annotated[
        str | None,
        BeforeValidator(_expectation),
        Opt(
            "Exit 1 unless every selected tensor fits: a scheme spec, 'trained' (none still "
            "looks fresh) or 'init' (none looks trained).",
            metavar="SPEC|trained|init",
            default_text="report only",
        ),
    ] = None
    keys: Annotated[
        Patterns,
        Opt(
            "Tensor names or globs to check, repeatable; a leading ! excludes ('!emb*').",
            key="key",
            aliases=("keys",),
            default_text="every tensor",
            metavar="PATTERN",
        ),
    ] = ()
    roles: Annotated[
        tuple[str, ...],
        BeforeValidator(_role_patterns),
        Opt(
            "Roles to check, repeatable (dense, conv, embedding, attention, recurrent, bias, "
            "norm, other); a leading ! excludes ('!norm').",
            key="role",
            aliases=("roles",),
            default_text="every role",
            metavar="ROLE",
        ),
    ] = ()
    layout: Annotated[
        tuple[str, ...],
        BeforeValidator(_layouts),
        Opt(
            "Weight layout: auto (the format's: PyTorch and safetensors out-in unless a bias "
            "or a known (in, out) layer says otherwise, Keras in-out, ONNX from the op), "
            "in-out or out-in for every tensor, or GLOB=LAYOUT for some; repeatable.",
            metavar="LAYOUT|GLOB=LAYOUT",
        ),
    ] = ("auto",)
    alpha: Annotated[
        Rate,
        Opt("Family-wise rate of calling any fresh tensor trained (or failing --expect SPEC)."),
    ] = 0.01
    correction: Annotated[
        Correction,
        Opt("Multiple-testing correction over the tensors: holm or bonferroni."),
    ] = "holm"
    ks_sample: Annotated[
        Count, Field(ge=5), Opt("At most this many entries per tensor enter the KS tests.")
    ] = KS_SAMPLE

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin | None = None) -> Any:
        """As :meth:`Config.from_mapping`, with a usage line when no file is given."""
        if not mapping.get("files"):
            raise XavinitError("give at least one checkpoint: xavinit check FILE ...")
        return super().from_mapping(mapping, origin)


class GainConfig(Seeded):
    """What ``xavinit gain`` computes: exact gains per activation, and optionally checks them on
    a deep network (``check``)."""

    command = "gain"

    activations: Annotated[
        Activations,
        Opt(
            "Activations, e.g. tanh gelu 'elu:alpha=0.5'.",
            argument=True,
            key="activation",
            aliases=("activations",),
            metavar="ACTIVATION...",
        ),
    ] = ()
    check: Annotated[
        bool,
        Opt(
            "Confirm each gain on one deep network: the activation variance ratio, last hidden "
            "layer over the first, against a Monte-Carlo interval of the finite-width theory."
        ),
    ] = False
    depth: Annotated[
        Count,
        Field(ge=2, le=MAX_LAYERS - 2),
        Opt("With --check: hidden layers of the network."),
    ] = 50
    width: Annotated[Count, Field(ge=10), Opt("With --check: units per hidden layer.")] = 500
    gain_scale: Annotated[
        float,
        BeforeValidator(positive_float),
        Opt(
            "With --check: build the network at this multiple of each computed gain (0.8, a "
            "gain 20% too small, makes the check fail)."
        ),
    ] = 1.0
    alpha: Annotated[
        Rate,
        Opt("With --check: family-wise false-alarm rate over the activations checked."),
    ] = 0.01
    bias_var: Annotated[
        float,
        BeforeValidator(reject_bool),
        Field(ge=0.0, lt=1.0),
        Opt(
            "Variance of the biases (Poole et al. 2016): the fixed point, its slope, chi1 and "
            "the phase at the gain that puts q* at 1 with biases N(0, VAR) (0: none).",
            metavar="VAR",
        ),
    ] = 0.0

    @model_validator(mode="after")
    def _all_and_check(self) -> "GainConfig":
        if not self.activations:
            from xavinit.core.activations import ACTIVATION_NAMES

            set_derived(self, activations=ACTIVATION_NAMES)
        if not self.check:
            for name in ("depth", "width", "gain_scale", "alpha"):
                if getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"{self.option_key(name)}: applies only with --check")
        return self


CONFIG_TYPES: dict[str, type[Config]] = {
    command.name: globals()[command.config] for command in RESULT_COMMANDS if command.config
}
"""Each command's config model, named in :data:`xavinit.commands.COMMANDS`."""


def config_type(command: str) -> type[Config]:
    """The config model of a command."""
    return CONFIG_TYPES[command]


# --- propagate --model ------------------------------------------------------------------------

DEFAULT_MAX_DRIFT = 10.0
"""``propagate --model --max-drift``: an order of magnitude between the first and the last
measured module. A well-initialized stack keeps both variances within a few times their first
value (mean field: a constant; finite width adds ``O(depth/width)``); the failures it is meant
to catch drift by orders of magnitude (std 1 in a 20-layer MLP of width 64 multiplies the
variance by 32 per layer) or by the depth of a residual stack (unscaled branches: variance
grows about linearly in the number of blocks)."""


def _model_input(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("normal", "uniform"):
            return text
        head, sep, vocab = text.partition(":")
        if head == "tokens" and sep and vocab.isdigit() and int(vocab) >= 1:
            return f"tokens:{int(vocab)}"
    raise ValueError(
        f"must be normal, uniform or tokens:VOCAB (e.g. tokens:1000), got {quote(value)}"
    )


def _input_shape(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()] if value.strip() else []
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"must be sizes like 3,224,224, got {quote(value)}")
    return tuple(integer(v, f"[{i}]: ") for i, v in enumerate(value))


def _model_args(value: Any) -> Any:
    items = strings(value)
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"must be key=value with a Python name as key, got {quote(item)}")
    return items


class PropagateModelConfig(Seeded):
    """What ``xavinit propagate --model`` does: push a batch through the user's own model."""

    command = "propagate"
    numeric = True

    model: Annotated[
        str,
        BeforeValidator(file_path),
        Opt(
            "Measure your own model instead of an MLP: package.module:callable (a factory in "
            "your code, imported from the current folder or PYTHONPATH), a torch.export "
            "archive (.pt2) or an ONNX file (.onnx, forward only).",
            metavar="SPEC",
        ),
    ]
    model_args: Annotated[
        tuple[str, ...],
        BeforeValidator(_model_args),
        Opt(
            "With --model FACTORY: a keyword argument of the factory, key=value, repeatable.",
            key="model_arg",
            aliases=("model_args",),
            default_text="none",
            metavar="KEY=VALUE",
        ),
    ] = ()
    input_shape: Annotated[
        tuple[int, ...] | None,
        BeforeValidator(_input_shape),
        Opt(
            "With --model: one example's shape without the batch, e.g. 3,224,224 or 128 (tokens).",
            cli_type=str,
            default_text="the shape the .pt2 or ONNX graph declares",
        ),
    ] = None
    batch: Annotated[Count, Field(ge=1)] = 8
    input: Annotated[str, BeforeValidator(_model_input)] = "normal"
    depth_of: Annotated[
        str,
        BeforeValidator(Choice(("block", "leaf"))),
        Opt(
            "With --model: measure every leaf module, or every repeated block (a residual "
            "layer, a transformer layer; leaves when the model has none)."
        ),
    ] = "block"
    max_drift: Annotated[
        float,
        BeforeValidator(positive_float),
        Field(gt=1.0),
        Opt(
            "With --model: exit 1 when the activation or gradient variance of the last "
            "measured module differs from the first's by more than this factor."
        ),
    ] = DEFAULT_MAX_DRIFT


def config_of(command: str, record: Mapping[str, Any]) -> type[Config]:
    """The config model of a command's recorded configuration (``propagate --model`` has its
    own)."""
    if command == "propagate" and isinstance(record, Mapping) and "model" in record:
        return PropagateModelConfig
    return config_type(command)
