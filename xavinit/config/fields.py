"""The field types of the config models, their validators and help texts, and the options
several commands share, each declared once (``SchemesOption``, ``DepthOption``, ...).

A validator raises ``ValueError`` with a message that starts lower-case and ends with what was
given (``must be one of holm, bonferroni, got 'x'``); :class:`xavinit.config.base.Config` puts
the option's name in front of it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from xavinit.config.base import Opt
from xavinit.core.placement import BACKENDS, parse_device
from xavinit.extras import install
from xavinit.limits import MAX_LAYERS
from xavinit.serialize import quote

PAPER_LAYERS = (1024, 1000, 1000, 1000, 1000, 1000, 10)
"""The paper's network: 32x32 inputs, five hidden layers of 1000, ten outputs."""
PAPER_DEPTH, PAPER_WIDTH, PAPER_INPUTS, PAPER_OUTPUTS = 5, 1000, 1024, 10

DTYPES = ("float32", "float64")
DEFAULT_SCHEMES = ("standard", "normalized")

SHAPE_KEYS = ("depth", "width", "inputs", "outputs")
"""The keys that set the layers instead of ``layers``: one form replaces the other."""


# --- validators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """Validator: one of ``values``, case-insensitive, with ``_`` and ``-`` alike."""

    values: tuple[str, ...]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            wanted = value.strip().lower().replace("_", "-")
            for allowed in self.values:
                if allowed.replace("_", "-") == wanted:
                    return allowed
        raise ValueError(f"must be one of {', '.join(self.values)}, got {quote(value)}")


def reject_bool(value: Any) -> Any:
    """Validator: a number field never takes true/false (pydantic would read them as 1/0)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    return value


def strings(value: Any) -> Any:
    """Validator: a string or a list of strings, as a tuple without repeats."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise ValueError(f"must be a string or a list of strings, got {quote(value)}")
    return tuple(dict.fromkeys(items))


def patterns(value: Any) -> Any:
    """Validator: names or globs (a leading ``!`` excluding), none of them empty."""
    items = strings(value)
    for position, item in enumerate(items):
        if not item.removeprefix("!").strip():
            raise ValueError(f"[{position}]: must be a name or a glob, got {quote(item)}")
    return items


def file_path(value: Any) -> Any:
    """Validator: a non-empty path, as a string."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a file path, got {quote(value)}")
    return value


def positive_float(value: Any) -> Any:
    """Validator: a finite number > 0."""
    reject_bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a positive number, got {quote(value)}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"must be a positive number, got {quote(value)}")
    return number


INTEGER = re.compile(r"[+-]?\d+")


def integer(value: Any, where: str = "", minimum: int = 1) -> int:
    """An integer >= ``minimum`` from an int, an integral float or a string of digits."""
    number: Any = value
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        raise ValueError(f"{where}must be an integer >= {minimum}, got {quote(number)}")
    return number


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
            if not width.strip() or (sep and not times.strip()):
                raise ValueError(
                    f"[{position}]: {quote(token.strip())} is not a width or AxK (width A, "
                    "K times); give widths like 1024,1000x5,10"
                )
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


def _layers_or_none(value: Any) -> tuple[int, ...]:
    return parse_layers(value, allow_empty=True)


def _widths(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of widths, got {quote(value)}")
    return tuple(integer(w, f"[{i}]: ") for i, w in enumerate(value))


def known_schemes(specs: tuple[str, ...]) -> tuple[str, ...]:
    """Validator: every spec parses (:func:`get_scheme` caches the parsed scheme, so the
    command's own ``get_scheme`` does not parse it again)."""
    from xavinit.core.schemes import get_scheme

    for spec in specs:
        get_scheme(spec)
    return specs


def known_activations(specs: tuple[str, ...]) -> tuple[str, ...]:
    """Validator: every spec names an activation (parsed once, as :func:`known_schemes`)."""
    from xavinit.core.activations import get_activation

    for spec in specs:
        get_activation(spec)
    return specs


def dataset_spec(value: Any) -> Any:
    """Validator: a dataset spec's text (parsed where the dataset is read)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a dataset spec like shapeset, got {quote(value)}")
    return value.strip()


def hidden_widths(depth: int | None, width: int | None) -> tuple[int, ...]:
    """``--depth/--width`` -> the hidden widths; the paper's 5 layers of 1000 fill in the one
    not given."""
    return (width or PAPER_WIDTH,) * (PAPER_DEPTH if depth is None else depth)


def shape_given(config: Any, keys: tuple[str, ...], layers_given: bool) -> list[str]:
    """The ``keys`` (``--depth``, ``--width``, ...) given on ``config``; refused beside a
    ``layers`` given too, since the two forms say the same thing."""
    given = [key for key in keys if getattr(config, key) is not None]
    if given and layers_given:
        raise ValueError(f"layers: cannot be combined with {given[0]}; give one form")
    return given


# --- field types ----------------------------------------------------------------------------

Count = Annotated[int, BeforeValidator(reject_bool)]
Layers = Annotated[tuple[int, ...], BeforeValidator(parse_layers)]
DatasetLayers = Annotated[tuple[int, ...], BeforeValidator(_layers_or_none)]
"""Full widths, or none: the dataset's inputs and classes fill them in."""
Hidden = Annotated[tuple[int, ...], BeforeValidator(_widths)]
Schemes = Annotated[tuple[str, ...], BeforeValidator(strings), AfterValidator(known_schemes)]
Activations = Annotated[
    tuple[str, ...], BeforeValidator(strings), AfterValidator(known_activations)
]
Patterns = Annotated[tuple[str, ...], BeforeValidator(patterns)]
Path_ = Annotated[str | None, BeforeValidator(file_path)]
Dtype = Annotated[str, BeforeValidator(Choice(DTYPES))]
Rate = Annotated[float, BeforeValidator(reject_bool), Field(gt=0.0, lt=1.0)]
"""A probability strictly between 0 and 1 (a family-wise false-alarm rate)."""
Correction = Annotated[str, BeforeValidator(Choice(("holm", "bonferroni")))]
BackendName = Annotated[str, BeforeValidator(Choice(BACKENDS))]
Device = Annotated[str, BeforeValidator(parse_device)]

# --- help texts -----------------------------------------------------------------------------

LAYERS_HELP = "Widths input,hidden...,output; AxK repeats A K times."
TRAIN_LAYERS_HELP = "Full widths input,hidden...,output; they must match the dataset."
DATASET_HELP = "shapeset (generated), mnist:PATH, cifar10:PATH, npz:PATH or digits."
SCHEME_HELP = (
    "Scheme spec, repeatable: standard, normalized, he-normal:mode=fan_out, "
    "normalized:gain=tanh, variance-scaling:scale=2,distribution=normal ... "
    "(see 'xavinit schemes')."
)
ACTIVATION_HELP = (
    "Hidden activation, repeatable: tanh, sigmoid, softsign, relu, leaky-relu[:slope=0.01], "
    "linear, selu, gelu, elu[:alpha=1], silu, mish, softplus, hardtanh, relu6, erf."
)
"""Every name of :data:`xavinit.core.activations.ACTIVATION_NAMES` (a test holds them
together), written out so that ``--help`` imports no numeric code."""
SEED_HELP = "Seed of every random draw."
DTYPE_HELP = "Floating-point type of weights and activations: float32 or float64."

# --- options several commands share, each declared once ------------------------------------

SCHEMES = Opt(SCHEME_HELP, flags=("-s",), key="scheme", aliases=("schemes",))
SchemesOption = Annotated[Schemes, SCHEMES]
ActivationsOption = Annotated[
    Activations, Opt(ACTIVATION_HELP, flags=("-a",), key="activation", aliases=("activations",))
]
DtypeOption = Annotated[Dtype, Opt(DTYPE_HELP)]
SeedOption = Annotated[Count, Field(ge=0), Opt(SEED_HELP)]
DepthOption = Annotated[
    Count | None, Field(ge=0, le=MAX_LAYERS, exclude=True), Opt("Hidden layers (with --width).")
]
WidthOption = Annotated[
    Count | None, Field(ge=1, exclude=True), Opt("Units per hidden layer (with --depth).")
]
DATASET_LAYERS = Opt(
    TRAIN_LAYERS_HELP,
    flags=("-l",),
    cli_type=str,
    default_text="the dataset's inputs, 1000x5, its classes",
)
DatasetLayersOption = Annotated[DatasetLayers, DATASET_LAYERS]
BackendOption = Annotated[
    BackendName,
    Opt(
        "Array library: numpy (the fastest on a CPU), torch or cupy "
        f"({install('torch')} or {install('cupy')}); see docs/backends.md."
    ),
]
DeviceOption = Annotated[
    Device,
    Opt("Where the arrays live: cpu, cuda or cuda:N (cuda needs --backend torch or cupy)."),
]

# the training options train and sweep share
CostOption = Annotated[
    str, BeforeValidator(Choice(("nll", "quadratic"))), Opt("Cost: nll or quadratic.")
]
BatchSizeOption = Annotated[Count, Field(ge=1), Opt("Minibatch size (the paper's is 10).")]
UpdatesOption = Annotated[Count, Field(ge=0), Opt("SGD updates per run.")]
EvalEveryOption = Annotated[Count, Field(ge=1), Opt("Updates between test-error evaluations.")]
TrackEveryOption = Annotated[
    Count, Field(ge=1), Opt("Updates between per-layer statistics on 300 test examples.")
]
TestSizeOption = Annotated[
    Count | None, Field(ge=1), Opt("Evaluate on the first N test examples.", default_text="all")
]
PreprocessOption = Annotated[
    str,
    BeforeValidator(Choice(("scale", "standardize"))),
    Opt("File datasets: scale (to [-1,1]) or standardize."),
]
