"""Every command's configuration: options declared once (see :mod:`xavinit.options`).

A config file uses the long option names as keys (``layers``, ``scheme``, ``trials``; hyphens or
underscores); options given on the command line override it. Every error names its key path,
e.g. ``run.yaml: layers[2]: must be an integer >= 1, got -3``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from xavinit.errors import XavinitError
from xavinit.limits import KS_SAMPLE, MAX_LAYERS
from xavinit.options import (
    Choice,
    Config,
    Opt,
    Origin,
    file_path,
    integer,
    positive_float,
    reject_bool,
    resolved,
    strings,
)
from xavinit.serialize import parse_yaml_text, quote, read_text

PAPER_LAYERS = (1024, 1000, 1000, 1000, 1000, 1000, 10)
"""The paper's network: 32x32 inputs, five hidden layers of 1000, ten outputs."""
PAPER_DEPTH, PAPER_WIDTH, PAPER_INPUTS, PAPER_OUTPUTS = 5, 1000, 1024, 10

DTYPES = ("float32", "float64")
DEFAULT_SCHEMES = ("standard", "normalized")


# --- validators ---------------------------------------------------------------------------


def parse_layers(value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """Layer widths from ``"1024,1000x5,10"`` or a list of integers (input, hidden..., output).

    ``AxK`` repeats width A K times. At least two widths (one weight matrix), each >= 1.
    """
    if isinstance(value, str):
        items: list[Any] = []
        text = value.strip()
        if not text:
            raise ValueError("is empty; give widths like 1024,1000x5,10")
        for position, token in enumerate(text.split(",")):
            width, sep, times = token.strip().partition("x")
            count = integer(times if sep else "1", f"[{position}]: repeat count ")
            if count > MAX_LAYERS:
                raise ValueError(f"at most {MAX_LAYERS} layers, got a repeat of {count}")
            items.extend([width] * count)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"must be widths like 1024,1000x5,10 or a list, got {quote(value)}")
    widths = tuple(integer(w, f"[{i}]: ") for i, w in enumerate(items))
    if allow_empty and not widths:
        return ()
    if len(widths) < 2:
        raise ValueError(f"needs at least two widths (inputs and outputs), got {quote(value)}")
    if len(widths) > MAX_LAYERS:
        raise ValueError(f"at most {MAX_LAYERS} layers, got {len(widths)}")
    return widths


def _widths(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of widths, got {quote(value)}")
    return tuple(integer(w, f"[{i}]: ") for i, w in enumerate(value))


def _schemes(specs: tuple[str, ...]) -> tuple[str, ...]:
    from xavinit.schemes import get_scheme

    for spec in specs:
        get_scheme(spec)
    return specs


def _activations(specs: tuple[str, ...]) -> tuple[str, ...]:
    from xavinit.activations import get_activation

    for spec in specs:
        get_activation(spec)
    return specs


def _dataset(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a dataset spec like shapeset, got {quote(value)}")
    return value.strip()


Count = Annotated[int, BeforeValidator(reject_bool)]
Layers = Annotated[tuple[int, ...], BeforeValidator(parse_layers)]
Schemes = Annotated[tuple[str, ...], BeforeValidator(strings), AfterValidator(_schemes)]
Activations = Annotated[tuple[str, ...], BeforeValidator(strings), AfterValidator(_activations)]
Path_ = Annotated[str | None, BeforeValidator(file_path)]
Dtype = Annotated[str, BeforeValidator(Choice(DTYPES))]

LAYERS_HELP = "Widths input,hidden...,output; AxK repeats A K times."
SCHEME_HELP = (
    "Scheme spec, repeatable: standard, normalized, he-normal:mode=fan_out, "
    "normalized:gain=tanh, variance-scaling:scale=2,distribution=normal ... "
    "(see 'xavinit schemes')."
)
ACTIVATION_HELP = (
    "Hidden activation, repeatable: tanh, sigmoid, softsign, relu, leaky-relu[:slope=0.01], "
    "linear, selu, gelu, elu[:alpha=1], silu, mish, softplus, hardtanh, relu6, erf."
)
SEED_HELP = "Seed of every random draw."
DTYPE_HELP = "Floating-point type of weights and activations: float32 or float64."


class Seeded(Config):
    """A config with a seed (every command that draws random numbers)."""

    seed: Annotated[Count, Field(ge=0), Opt(SEED_HELP)] = 0


class Network(Seeded):
    """A config with a whole network: ``--layers``, or ``--depth/--width/--inputs/--outputs``."""

    layers: Annotated[
        Layers, Opt(LAYERS_HELP, flags=("-l",), cli_type=str, default_text="1024,1000x5,10")
    ] = PAPER_LAYERS
    depth: Annotated[
        Count | None, Field(ge=0, le=MAX_LAYERS, exclude=True), Opt("Hidden layers (with --width).")
    ] = None
    width: Annotated[
        Count | None, Field(ge=1, exclude=True), Opt("Units per hidden layer (with --depth).")
    ] = None
    inputs: Annotated[Count | None, Field(ge=1, exclude=True), Opt("Input width.")] = None
    outputs: Annotated[Count | None, Field(ge=1, exclude=True), Opt("Output width.")] = None

    @model_validator(mode="after")
    def _shape(self) -> Network:
        shape = {k: getattr(self, k) for k in ("depth", "width", "inputs", "outputs")}
        given = [k for k, v in shape.items() if v is not None]
        if not given:
            return self
        if "layers" in self.model_fields_set:
            raise ValueError(f"layers: cannot be combined with {given[0]}; give one form")
        depth = PAPER_DEPTH if shape["depth"] is None else shape["depth"]
        width = shape["width"] or PAPER_WIDTH
        resolved(
            self,
            layers=(
                shape["inputs"] or PAPER_INPUTS,
                *([width] * depth),
                shape["outputs"] or PAPER_OUTPUTS,
            ),
            depth=None,
            width=None,
            inputs=None,
            outputs=None,
        )
        return self


SHAPE_KEYS = ("depth", "width", "inputs", "outputs")
"""The keys that set the layers instead of ``layers``: one form replaces the other."""


class InitConfig(Network):
    """What ``xavinit init`` does: sample and verify, or ``check`` weights from a file."""

    command = "init"

    schemes: Annotated[
        Schemes,
        Opt(
            SCHEME_HELP,
            flags=("-s",),
            key="scheme",
            aliases=("schemes",),
            default_text="standard and normalized; with --check, rank every known scheme",
        ),
    ] = ()
    trials: Annotated[Count, Field(ge=1), Opt("Independent draws; report the mean and spread.")] = 1
    alpha: Annotated[
        float,
        BeforeValidator(reject_bool),
        Field(gt=0.0, lt=1.0),
        Opt("Family-wise false-alarm rate over all layers and schemes."),
    ] = 0.01
    correction: Annotated[
        str,
        BeforeValidator(Choice(("holm", "bonferroni"))),
        Opt("Multiple-testing correction: holm or bonferroni."),
    ] = "holm"
    dtype: Annotated[Dtype, Opt(DTYPE_HELP)] = "float32"
    save: Annotated[
        Path_, Opt("Write the sampled weights (first trial) to FILE.npz.", metavar="FILE")
    ] = None
    check: Annotated[
        Path_,
        Opt(
            "Verify the 2-D arrays of a .npy/.npz file instead of sampling; without --scheme, "
            "rank the known schemes for each.",
            metavar="FILE",
        ),
    ] = None
    keys: Annotated[
        tuple[str, ...],
        BeforeValidator(strings),
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

    @model_validator(mode="after")
    def _modes(self) -> InitConfig:
        if self.check is not None and self.save is not None:
            raise ValueError("save: --save writes sampled weights and cannot be used with --check")
        if self.check is None:
            for name in ("keys", "layout"):
                if getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"{self.option_key(name)}: applies only with --check FILE")
        if "schemes" not in self.model_fields_set:
            resolved(self, schemes=() if self.check is not None else DEFAULT_SCHEMES)
        elif not self.schemes and self.check is None:
            raise ValueError("scheme: give at least one scheme")
        return self


class PropagateConfig(Network):
    """What ``xavinit propagate`` does: one network per (scheme, activation) at initialization."""

    command = "propagate"

    schemes: Annotated[
        Schemes, Opt(SCHEME_HELP, flags=("-s",), key="scheme", aliases=("schemes",))
    ] = DEFAULT_SCHEMES
    activations: Annotated[
        Activations,
        Opt(ACTIVATION_HELP, flags=("-a",), key="activation", aliases=("activations",)),
    ] = ("tanh",)
    batch: Annotated[Count, Field(ge=1), Opt("Examples pushed through the network.")] = 1000
    input: Annotated[
        str,
        BeforeValidator(Choice(("uniform", "normal"))),
        Opt("Input distribution: uniform (U[-1,1], like scaled pixels) or normal."),
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
    dtype: Annotated[Dtype, Opt(DTYPE_HELP)] = "float32"
    histograms: Annotated[
        bool, Opt("Show each layer's histogram in the terminal table (figures 6 and 7).")
    ] = False

    @model_validator(mode="after")
    def _samples(self) -> PropagateConfig:
        if self.jacobian_samples > self.batch:
            raise ValueError(
                f"jacobian_samples: must be at most the batch size {self.batch}, "
                f"got {self.jacobian_samples}"
            )
        return self


class TrainConfig(Seeded):
    """What ``xavinit train`` does: one SGD run per (scheme, activation), one after another.

    ``layers`` is empty until the dataset is known: inputs and outputs follow the dataset, the
    hidden part comes from ``hidden`` (``--depth/--width``, default 5 x 1000) or from a full
    ``--layers`` that must match the dataset.
    """

    command = "train"

    dataset: Annotated[
        str,
        BeforeValidator(_dataset),
        Opt(
            "shapeset (generated), mnist:PATH, cifar10:PATH, npz:PATH or digits.",
            flags=("-d",),
        ),
    ] = "shapeset"
    layers: Annotated[
        tuple[int, ...],
        BeforeValidator(lambda v: parse_layers(v, allow_empty=True)),
        Opt(
            "Full widths input,hidden...,output; they must match the dataset.",
            flags=("-l",),
            cli_type=str,
            default_text="the dataset's inputs, 1000x5, its classes",
        ),
    ] = ()
    depth: Annotated[
        Count | None, Field(ge=0, le=MAX_LAYERS, exclude=True), Opt("Hidden layers (with --width).")
    ] = None
    width: Annotated[
        Count | None, Field(ge=1, exclude=True), Opt("Units per hidden layer (with --depth).")
    ] = None
    hidden: Annotated[
        tuple[int, ...],
        BeforeValidator(_widths),
    ] = (PAPER_WIDTH,) * PAPER_DEPTH
    schemes: Annotated[
        Schemes, Opt(SCHEME_HELP, flags=("-s",), key="scheme", aliases=("schemes",))
    ] = DEFAULT_SCHEMES
    activations: Annotated[
        Activations,
        Opt(ACTIVATION_HELP, flags=("-a",), key="activation", aliases=("activations",)),
    ] = ("tanh",)
    cost: Annotated[
        str, BeforeValidator(Choice(("nll", "quadratic"))), Opt("Cost: nll or quadratic.")
    ] = "nll"
    lr: Annotated[float, BeforeValidator(positive_float), Opt("Learning rate.")] = 0.03
    batch_size: Annotated[Count, Field(ge=1), Opt("Minibatch size (the paper's is 10).")] = 10
    updates: Annotated[Count, Field(ge=0), Opt("SGD updates per run.")] = 2000
    eval_every: Annotated[Count, Field(ge=1), Opt("Updates between test-error evaluations.")] = 500
    track_every: Annotated[
        Count, Field(ge=1), Opt("Updates between per-layer statistics on 300 test examples.")
    ] = 100
    test_size: Annotated[
        Count | None,
        Field(ge=1),
        Opt("Evaluate on the first N test examples.", default_text="all"),
    ] = None
    preprocess: Annotated[
        str,
        BeforeValidator(Choice(("scale", "standardize"))),
        Opt("File datasets: scale (to [-1,1]) or standardize."),
    ] = "scale"
    checkpoint: Annotated[
        Path_,
        Opt(
            "Save the whole state to FILE.npz every --checkpoint-every updates and on Ctrl-C.",
            metavar="FILE",
        ),
    ] = None
    checkpoint_every: Annotated[
        Count | None,
        Field(ge=1),
        Opt("Updates between checkpoints.", default_text="--eval-every"),
    ] = None
    dtype: Annotated[Dtype, Opt(DTYPE_HELP)] = "float32"

    @model_validator(mode="after")
    def _hidden(self) -> TrainConfig:
        shape = [k for k in ("depth", "width") if getattr(self, k) is not None]
        if self.layers and shape:
            raise ValueError(f"layers: cannot be combined with {shape[0]}; give one form")
        if self.layers:
            if "hidden" in self.model_fields_set and self.hidden != self.layers[1:-1]:
                raise ValueError("hidden: must be the hidden part of layers")
            resolved(self, hidden=self.layers[1:-1])
        elif shape:
            depth = PAPER_DEPTH if self.depth is None else self.depth
            resolved(self, hidden=(self.width or PAPER_WIDTH,) * depth, depth=None, width=None)
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
            "Write every figure as PNG and SVG into this folder (needs matplotlib).", metavar="DIR"
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
    def _fans(self) -> SchemesConfig:
        if (self.fan_in is None) != (self.fan_out is None):
            raise ValueError("fan_in: give both --fan-in and --fan-out, or neither")
        if self.spec is not None:
            _schemes((self.spec,))
        return self


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
        Count, Field(ge=2, le=MAX_LAYERS), Opt("With --check: hidden layers of the network.")
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
        float,
        BeforeValidator(reject_bool),
        Field(gt=0.0, lt=1.0),
        Opt("With --check: family-wise false-alarm rate over the activations checked."),
    ] = 0.01

    @model_validator(mode="after")
    def _all_and_check(self) -> GainConfig:
        if not self.activations:
            from xavinit.activations import ACTIVATION_NAMES

            resolved(self, activations=ACTIVATION_NAMES)
        if not self.check:
            for name in ("depth", "width", "gain_scale", "alpha"):
                if getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"{self.option_key(name)}: applies only with --check")
        return self


CONFIG_TYPES: dict[str, type[Config]] = {
    c.command: c
    for c in (InitConfig, PropagateConfig, TrainConfig, ReportConfig, SchemesConfig, GainConfig)
}


def config_type(command: str) -> type[Config]:
    """The config model of a command."""
    return CONFIG_TYPES[command]


# --- config files and the command line ------------------------------------------------------


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of option names to values (``yaml.safe_load`` only).

    Raises:
        XavinitError: missing or unreadable file, malformed YAML, or a top level that is not a
        mapping.
    """
    text = read_text(str(path), "config file")
    data = parse_yaml_text(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise XavinitError(
            f"{path}: the top level must be a mapping of option names to values, "
            f"got {type(data).__name__}"
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def merge_options(
    file_values: Mapping[str, Any], cli_values: Mapping[str, Any], file_label: str
) -> tuple[dict[str, Any], Origin]:
    """Merge config-file values with explicitly given options (options win).

    Returns the merged mapping and a function naming where a key came from, for messages:
    ``--trials`` for an option, ``run.yaml: trials`` for a file key.
    """
    merged = dict(file_values)
    given = {k: v for k, v in cli_values.items() if v is not None and v != ()}
    if "layers" in given:
        for key in SHAPE_KEYS:
            merged.pop(key, None)
    if any(k in given for k in SHAPE_KEYS):
        merged.pop("layers", None)
    merged.update(given)

    def origin(key: str) -> str:
        if key in given:
            return "--" + key.replace("_", "-")
        return f"{file_label}: {key}"

    return merged, origin
