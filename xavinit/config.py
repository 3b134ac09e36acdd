"""Configurations: YAML files and command-line options -> frozen, validated dataclasses.

A config file uses the long option names as keys (``layers``, ``scheme``, ``trials``; hyphens or
underscores); options given on the command line override it. Every error names its key path,
e.g. ``run.yaml: layers[2]: must be a positive integer, got -3``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from xavinit.checks import KS_SAMPLE
from xavinit.errors import XavinitError
from xavinit.schemes import get_scheme

PAPER_LAYERS = (1024, 1000, 1000, 1000, 1000, 1000, 10)
"""The paper's network: 32x32 inputs, five hidden layers of 1000, ten outputs."""

MAX_LAYERS = 10_000

Origin = Callable[[str], str]


def _fail(where: str, message: str) -> XavinitError:
    return XavinitError(f"{where}: {message}")


def positive_int(value: Any, where: str, *, minimum: int = 1) -> int:
    """An integer >= minimum; rejects bools, fractions and strings that are not integers."""
    if isinstance(value, bool):
        raise _fail(where, f"must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise _fail(where, f"must be an integer >= {minimum}, got {value!r}")
        value = int(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < minimum:
        raise _fail(where, f"must be an integer >= {minimum}, got {value!r}")
    return value


def probability(value: Any, where: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(where, f"must be a number between 0 and 1, got {value!r}") from None
    if isinstance(value, bool) or not 0.0 < number < 1.0:
        raise _fail(where, f"must be a number between 0 and 1 (exclusive), got {value!r}")
    return number


def choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed`` (case-insensitive, '_' and '-' alike)."""
    text = str(value).strip().lower().replace("_", "-")
    normalized = {a.replace("_", "-"): a for a in allowed}
    if text not in normalized:
        raise _fail(where, f"must be one of {', '.join(allowed)}, got {value!r}")
    return normalized[text]


def string_list(value: Any, where: str) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise _fail(where, f"must be a string or a list of strings, got {value!r}")
    return tuple(items)


def parse_layers(value: Any, where: str = "--layers") -> tuple[int, ...]:
    """Layer widths from ``"1024,1000x5,10"`` or a list of integers (input, hidden..., output).

    ``AxK`` repeats width A K times. At least two widths (one weight matrix), each >= 1.
    """
    if isinstance(value, str):
        items: list[Any] = []
        text = value.strip()
        if not text:
            raise _fail(where, "is empty; give widths like 1024,1000x5,10")
        for position, token in enumerate(text.split(",")):
            token = token.strip()
            width, sep, times = token.partition("x")
            times = times if sep else "1"
            count = positive_int(times, f"{where}[{position}] repeat count")
            if count > MAX_LAYERS:
                raise _fail(where, f"at most {MAX_LAYERS} layers, got a repeat of {count}")
            items.extend([width] * count)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise _fail(where, f"must be widths like 1024,1000x5,10 or a list, got {value!r}")
    widths = tuple(positive_int(w, f"{where}[{i}]") for i, w in enumerate(items))
    if len(widths) < 2:
        raise _fail(where, f"needs at least two widths (inputs and outputs), got {value!r}")
    if len(widths) > MAX_LAYERS:
        raise _fail(where, f"at most {MAX_LAYERS} layers, got {len(widths)}")
    return widths


def layers_from_shape(depth: int, width: int, inputs: int, outputs: int) -> tuple[int, ...]:
    """``inputs, width x depth, outputs``: the ``--depth/--width/--inputs/--outputs`` form."""
    return (inputs, *([width] * depth), outputs)


def resolve_layers(mapping: Mapping[str, Any], origin: Origin) -> tuple[int, ...]:
    """Layers from ``layers``, or from ``depth``/``width``/``inputs``/``outputs`` (paper defaults)."""
    shape_keys = ("depth", "width", "inputs", "outputs")
    given = [k for k in shape_keys if mapping.get(k) is not None]
    if mapping.get("layers") is not None:
        if given:
            raise XavinitError(
                f"{origin('layers')} and {origin(given[0])} both set the layers; give one form"
            )
        return parse_layers(mapping["layers"], origin("layers"))
    depth = positive_int(mapping.get("depth", 5), origin("depth"), minimum=0)
    if depth > MAX_LAYERS:
        raise _fail(origin("depth"), f"at most {MAX_LAYERS}, got {depth}")
    width = positive_int(mapping.get("width", 1000), origin("width"))
    inputs = positive_int(mapping.get("inputs", 1024), origin("inputs"))
    outputs = positive_int(mapping.get("outputs", 10), origin("outputs"))
    return layers_from_shape(depth, width, inputs, outputs)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of option names to values (``yaml.safe_load`` only).

    Raises:
        XavinitError: missing or unreadable file, malformed YAML, or a top level that is not a
        mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XavinitError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise XavinitError(f"cannot read config file {str(path)!r}: {error}") from None
    data = parse_yaml_text(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise XavinitError(
            f"{path}: the top level must be a mapping of option names to values, "
            f"got {type(data).__name__}"
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse_yaml_text(text: str, source: str) -> Any:
    """``yaml.safe_load`` with a one-line error naming the file, line and problem."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "malformed YAML"
        raise XavinitError(f"{source}: malformed YAML{at}: {problem}") from None


def dump_yaml(data: Any) -> str:
    """A result document as block-style YAML, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


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
        for key in ("depth", "width", "inputs", "outputs"):
            merged.pop(key, None)
    if any(k in given for k in ("depth", "width", "inputs", "outputs")):
        merged.pop("layers", None)
    merged.update(given)

    def origin(key: str) -> str:
        if key in given:
            return "--" + key.replace("_", "-")
        return f"{file_label}: {key}"

    return merged, origin


def check_keys(mapping: Mapping[str, Any], allowed: set[str], origin: Origin) -> None:
    """Reject keys that no option of the command has, suggesting the closest."""
    import difflib

    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise XavinitError(
                f"{origin(key)}: unknown key{hint}; allowed keys: {', '.join(sorted(allowed))}"
            )


class _Resolved:
    """What every config has: its fully resolved fields as a plain dict."""

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved configuration, as recorded in a result (and a checkpoint)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class InitConfig(_Resolved):
    """What ``xavinit init`` does: sample and verify, or ``check`` weights from a file."""

    layers: tuple[int, ...] = PAPER_LAYERS
    schemes: tuple[str, ...] = ("standard", "normalized")
    seed: int = 0
    alpha: float = 0.01
    correction: str = "holm"
    trials: int = 1
    dtype: str = "float32"
    save: str | None = None
    check: str | None = None
    keys: tuple[str, ...] = ()
    layout: str = "in-out"
    ks_sample: int = KS_SAMPLE

    OPTION_KEYS = frozenset(
        {
            "layers", "depth", "width", "inputs", "outputs", "scheme", "schemes", "seed",
            "alpha", "correction", "trials", "dtype", "save", "check", "key", "keys", "layout",
            "ks_sample",
        }
    )  # fmt: skip

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin = lambda k: k) -> InitConfig:
        """Validate and build; ``origin`` names where each key came from, for messages."""
        check_keys(mapping, set(cls.OPTION_KEYS), origin)
        check = mapping.get("check")
        if check is not None and mapping.get("save") is not None:
            raise XavinitError(
                f"{origin('save')}: --save writes sampled weights and cannot be used with --check"
            )
        if check is None:
            for key in ("key", "keys", "layout"):
                if mapping.get(key) is not None:
                    raise XavinitError(f"{origin(key)}: applies only with --check FILE")
        schemes = _schemes(mapping, origin, () if check is not None else cls.schemes)
        if check is None and not schemes:
            raise XavinitError(f"{origin('scheme')}: give at least one scheme")
        keys_value = mapping.get("key", mapping.get("keys"))
        return cls(
            layers=resolve_layers(mapping, origin),
            schemes=schemes,
            seed=positive_int(mapping.get("seed", 0), origin("seed"), minimum=0),
            alpha=probability(mapping.get("alpha", cls.alpha), origin("alpha")),
            correction=choice(
                mapping.get("correction", cls.correction),
                origin("correction"),
                ("holm", "bonferroni"),
            ),
            trials=positive_int(mapping.get("trials", 1), origin("trials")),
            dtype=choice(mapping.get("dtype", cls.dtype), origin("dtype"), ("float32", "float64")),
            save=_optional_path(mapping.get("save"), origin("save")),
            check=_optional_path(check, origin("check")),
            keys=string_list(keys_value, origin("key")) if keys_value is not None else (),
            layout=choice(
                mapping.get("layout", cls.layout), origin("layout"), ("in-out", "out-in")
            ),
            ks_sample=positive_int(
                mapping.get("ks_sample", cls.ks_sample), origin("ks_sample"), minimum=5
            ),
        )


def _optional_path(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value).strip():
        raise _fail(where, f"must be a file path, got {value!r}")
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _schemes(
    mapping: Mapping[str, Any], origin: Origin, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = mapping.get("scheme", mapping.get("schemes"))
    schemes = string_list(value, origin("scheme")) if value is not None else default
    for spec in schemes:
        try:
            get_scheme(spec)
        except XavinitError as error:
            raise XavinitError(f"{origin('scheme')}: {error}") from None
    return tuple(dict.fromkeys(schemes))


def _activations(mapping: Mapping[str, Any], origin: Origin) -> tuple[str, ...]:
    from xavinit.activations import get_activation

    value = mapping.get("activation", mapping.get("activations"))
    names = string_list(value, origin("activation")) if value is not None else ("tanh",)
    for spec in names:
        try:
            get_activation(spec)
        except XavinitError as error:
            raise XavinitError(f"{origin('activation')}: {error}") from None
    return tuple(dict.fromkeys(names))


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _fail(where, f"must be true or false, got {value!r}")


@dataclass(frozen=True)
class PropagateConfig(_Resolved):
    """What ``xavinit propagate`` does: one network per (scheme, activation) at initialization."""

    layers: tuple[int, ...] = PAPER_LAYERS
    schemes: tuple[str, ...] = ("standard", "normalized")
    activations: tuple[str, ...] = ("tanh",)
    batch: int = 1000
    input: str = "uniform"
    backward: str = "nll"
    jacobian_samples: int = 4
    bins: int = 41
    trials: int = 1
    seed: int = 0
    dtype: str = "float32"
    histograms: bool = False

    OPTION_KEYS = frozenset(
        {
            "layers", "depth", "width", "inputs", "outputs", "scheme", "schemes", "activation",
            "activations", "batch", "input", "backward", "jacobian_samples", "bins", "trials",
            "seed", "dtype", "histograms",
        }
    )  # fmt: skip

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], origin: Origin = lambda k: k
    ) -> PropagateConfig:
        """Validate and build; ``origin`` names where each key came from, for messages."""
        check_keys(mapping, set(cls.OPTION_KEYS), origin)
        batch = positive_int(mapping.get("batch", cls.batch), origin("batch"))
        samples = positive_int(
            mapping.get("jacobian_samples", cls.jacobian_samples),
            origin("jacobian_samples"),
            minimum=0,
        )
        if samples > batch:
            raise _fail(
                origin("jacobian_samples"), f"must be at most the batch size {batch}, got {samples}"
            )
        return cls(
            layers=resolve_layers(mapping, origin),
            schemes=_schemes(mapping, origin, cls.schemes),
            activations=_activations(mapping, origin),
            batch=batch,
            input=choice(mapping.get("input", cls.input), origin("input"), ("uniform", "normal")),
            backward=choice(
                mapping.get("backward", cls.backward), origin("backward"), ("nll", "unit")
            ),
            jacobian_samples=samples,
            bins=positive_int(mapping.get("bins", cls.bins), origin("bins"), minimum=2),
            trials=positive_int(mapping.get("trials", 1), origin("trials")),
            seed=positive_int(mapping.get("seed", 0), origin("seed"), minimum=0),
            dtype=choice(mapping.get("dtype", cls.dtype), origin("dtype"), ("float32", "float64")),
            histograms=_boolean(mapping.get("histograms", False), origin("histograms")),
        )


def _positive_float(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(where, f"must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise _fail(where, f"must be a positive number, got {value!r}")
    return number


@dataclass(frozen=True)
class TrainConfig(_Resolved):
    """What ``xavinit train`` does: one SGD run per (scheme, activation), one after another.

    ``layers`` is empty until the dataset is known: inputs and outputs follow the dataset, the
    hidden part comes from ``hidden`` (``--depth/--width``, default 5 x 1000) or from a full
    ``--layers`` that must match the dataset.
    """

    dataset: str = "shapeset"
    hidden: tuple[int, ...] = (1000,) * 5
    layers: tuple[int, ...] = ()
    schemes: tuple[str, ...] = ("standard", "normalized")
    activations: tuple[str, ...] = ("tanh",)
    cost: str = "nll"
    lr: float = 0.03
    batch_size: int = 10
    updates: int = 2000
    eval_every: int = 500
    track_every: int = 100
    test_size: int | None = None
    preprocess: str = "scale"
    checkpoint: str | None = None
    checkpoint_every: int | None = None
    seed: int = 0
    dtype: str = "float32"

    OPTION_KEYS = frozenset(
        {
            "dataset", "layers", "depth", "width", "scheme", "schemes", "activation",
            "activations", "cost", "lr", "batch_size", "updates", "eval_every", "track_every",
            "test_size", "preprocess", "checkpoint", "checkpoint_every", "seed", "dtype",
        }
    )  # fmt: skip

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin = lambda k: k) -> TrainConfig:
        """Validate and build; ``origin`` names where each key came from, for messages."""
        check_keys(mapping, set(cls.OPTION_KEYS), origin)
        dataset = mapping.get("dataset", cls.dataset)
        if not isinstance(dataset, str) or not dataset.strip():
            raise _fail(origin("dataset"), f"must be a dataset spec like shapeset, got {dataset!r}")
        layers: tuple[int, ...] = ()
        hidden = cls.hidden
        if mapping.get("layers") is not None:
            if mapping.get("depth") is not None or mapping.get("width") is not None:
                raise XavinitError(
                    f"{origin('layers')} and --depth/--width both set the layers; give one form"
                )
            layers = parse_layers(mapping["layers"], origin("layers"))
            hidden = layers[1:-1]
        else:
            depth = positive_int(mapping.get("depth", 5), origin("depth"), minimum=0)
            width = positive_int(mapping.get("width", 1000), origin("width"))
            hidden = (width,) * depth
        updates = positive_int(mapping.get("updates", cls.updates), origin("updates"), minimum=0)
        eval_every = positive_int(mapping.get("eval_every", cls.eval_every), origin("eval_every"))
        checkpoint_every = mapping.get("checkpoint_every")
        test_size = mapping.get("test_size")
        return cls(
            dataset=dataset.strip(),
            hidden=hidden,
            layers=layers,
            schemes=_schemes(mapping, origin, cls.schemes),
            activations=_activations(mapping, origin),
            cost=choice(mapping.get("cost", cls.cost), origin("cost"), ("nll", "quadratic")),
            lr=_positive_float(mapping.get("lr", cls.lr), origin("lr")),
            batch_size=positive_int(
                mapping.get("batch_size", cls.batch_size), origin("batch_size")
            ),
            updates=updates,
            eval_every=eval_every,
            track_every=positive_int(
                mapping.get("track_every", cls.track_every), origin("track_every")
            ),
            test_size=None if test_size is None else positive_int(test_size, origin("test_size")),
            preprocess=choice(
                mapping.get("preprocess", cls.preprocess),
                origin("preprocess"),
                ("scale", "standardize"),
            ),
            checkpoint=_optional_path(mapping.get("checkpoint"), origin("checkpoint")),
            checkpoint_every=(
                None
                if checkpoint_every is None
                else positive_int(checkpoint_every, origin("checkpoint_every"))
            ),
            seed=positive_int(mapping.get("seed", 0), origin("seed"), minimum=0),
            dtype=choice(mapping.get("dtype", cls.dtype), origin("dtype"), ("float32", "float64")),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` (a checkpoint's copy)."""
        body = dict(data)
        for key in ("hidden", "layers", "schemes", "activations"):
            body[key] = tuple(body[key])
        return cls(**body)


@dataclass(frozen=True)
class ReportConfig(_Resolved):
    """What ``xavinit report`` reads and writes."""

    files: tuple[str, ...] = ()
    paper: bool = False
    plots: str | None = None

    OPTION_KEYS = frozenset({"files", "paper", "plots"})

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin = lambda k: k) -> ReportConfig:
        """Validate and build; ``origin`` names where each key came from, for messages."""
        check_keys(mapping, set(cls.OPTION_KEYS), origin)
        files = string_list(mapping.get("files", ()), origin("files"))
        if not files:
            raise XavinitError("give at least one result file: xavinit report RESULT.json ...")
        return cls(
            files=files,
            paper=_boolean(mapping.get("paper", False), origin("paper")),
            plots=_optional_path(mapping.get("plots"), origin("plots")),
        )
