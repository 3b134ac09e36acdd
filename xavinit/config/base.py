"""The config base: a config field carries its type, default, range and help, and the
command line, the YAML keys, validation and the config model all follow from it.

A config is a frozen pydantic model (``extra="forbid"``); a field that is also an option has an
:class:`Opt` in its ``Annotated`` metadata::

    trials: Annotated[int, Field(ge=1), Opt("Independent draws; report the mean and spread.")] = 1

From that one line ``xavinit.cli`` makes ``--trials`` (typer), a config file accepts ``trials:``,
``Config.from_mapping`` validates it, and errors name where the value came from
(``--trials: must be >= 1, got 0`` or ``run.yaml: trials: ...``). Checkpoints and the ``config``
recorded in a result go through the same validation (:meth:`Config.from_record`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from xavinit.errors import XavinitError
from xavinit.serialize import quote
from xavinit.specs import suggest

Origin = Callable[[str], str]
"""Names where an option's value came from, for messages: ``--trials`` or ``run.yaml: trials``."""


@dataclass(frozen=True)
class Opt:
    """What the command line and config files need to know about one config field.

    Args:
        help: One sentence for ``--help``; the default is appended from the field itself.
        flags: Short flags, e.g. ``("-s",)``.
        key: The option's name when it differs from the field's (``scheme`` sets ``schemes``).
        aliases: Further keys a config file may use for it.
        argument: A positional argument instead of an option.
        cli: False for a field that files and checkpoints may set but the command line does not.
        cli_type: The type typer parses into, when it differs from the field's (``str`` for
            ``--layers 1024,1000x5,10``); validation is the model's either way.
        default_text: How ``--help`` shows the default, when ``str(default)`` would not do.
        metavar: The placeholder ``--help`` shows for the value.
        writes: ``"file"`` or ``"folder"`` for an option naming something the command writes:
            its folder must exist before any work starts.
    """

    help: str
    flags: tuple[str, ...] = ()
    key: str | None = None
    aliases: tuple[str, ...] = ()
    argument: bool = False
    cli: bool = True
    cli_type: Any = None
    default_text: str | None = None
    metavar: str | None = None
    writes: str | None = None

    def but(self, **changes: Any) -> Opt:
        """The same option declared with ``changes`` (another default text, help or metavar),
        for a field that shares a declaration and differs in one detail."""
        return dataclasses.replace(self, **changes)


# --- error messages -------------------------------------------------------------------------


def _constraint(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    limits = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in limits:
        limit = next(iter(ctx.values()), "")
        return f"must be {limits[kind]} {limit}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be an integer"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a finite number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false (yes/no, on/off and 1/0 work too)"
    if kind == "string_type":
        return "must be a string"
    if kind in ("tuple_type", "list_type"):
        return "must be a list"
    message = str(error.get("msg", "is not valid"))
    return message[0].lower() + message[1:]


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    if error["type"] == "missing":
        return "is required"
    return f"{_constraint(error)}, got {quote(error.get('input'))}"


def _sub_path(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


# --- the base model -------------------------------------------------------------------------


@contextlib.contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    """Build a model's validator without pydantic's plugin loader: it scans the entry points of
    every installed distribution (tens of ms at start-up), and no plugin has business observing
    xavinit's own option models. ``typer`` builds its parameter adapters the same way."""
    previous = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = previous


class Config(BaseModel):
    """A command's fully resolved configuration: frozen, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=False, defer_build=True
    )

    command: ClassVar[str] = ""
    """The command this config belongs to."""
    numeric: ClassVar[bool] = False
    """Whether the command's work is matrix products (it then takes ``--threads``)."""

    @classmethod
    def options(cls) -> Iterator[tuple[str, Opt, Any]]:
        """``(field name, Opt, field info)`` for every field that is an option, in order; a
        field's last :class:`Opt` counts (``Annotated[SchemesOption, SCHEMES.but(...)]``)."""
        for name, info in cls.model_fields.items():
            opts = [meta for meta in info.metadata if isinstance(meta, Opt)]
            if opts:
                yield name, opts[-1], info

    @classmethod
    def option_key(cls, field: str) -> str:
        """The option's key for a field (``scheme`` for ``schemes``)."""
        for name, opt, _ in cls.options():
            if name == field:
                return opt.key or name
        return field

    @classmethod
    def accepted_keys(cls) -> dict[str, str]:
        """Every accepted key (option name, field name, alias) -> its field."""
        out: dict[str, str] = {}
        for name, opt, _ in cls.options():
            for key in (opt.key or name, name, *opt.aliases):
                out[key] = name
        for name in cls.model_fields:
            out.setdefault(name, name)
        return out

    @classmethod
    def _canonical(cls, mapping: Mapping[str, Any], origin: Origin) -> dict[str, Any]:
        keys = cls.accepted_keys()
        allowed = sorted({cls.option_key(f) for f in keys.values()})
        out: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for raw, value in mapping.items():
            key = str(raw).replace("-", "_")
            field = keys.get(key)
            if field is None:
                raise XavinitError(
                    f"{origin(key)}: unknown key{suggest(key, allowed)}; "
                    f"allowed keys: {', '.join(allowed)}"
                )
            if field in seen:
                raise XavinitError(f"{origin(key)}: given twice (also as {seen[field]!r})")
            seen[field] = key
            out[field] = value
        return out

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], origin: Origin | None = None) -> Any:
        """Validate and build from option names (or field names) to values.

        ``origin`` names where each key came from, for messages (default: the key itself).

        Raises:
            XavinitError: one line naming the first key that does not fit and what is allowed.
        """
        where: Origin = origin or (lambda key: key)
        data = cls._canonical(mapping, where)
        if not cls.__pydantic_complete__:
            with _without_pydantic_plugins():
                cls.model_rebuild()
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise XavinitError(cls._explain(error, where)) from None

    @classmethod
    def from_record(cls, record: Any, source: str) -> Any:
        """Validate a configuration recorded in a result or checkpoint (``source``: where)."""
        if not isinstance(record, Mapping):
            raise XavinitError(f"{source}: must be a mapping, got {quote(record)}")
        fields = cls.accepted_keys()  # a record names fields (schemes), not options (scheme)
        return cls.from_mapping(record, lambda key: f"{source}.{fields.get(key, key)}")

    @classmethod
    def _explain(cls, error: ValidationError, origin: Origin) -> str:
        first = error.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        message = _message(dict(first))
        if not loc:  # a model-level rule; its message starts with the key it is about
            key, sep, rest = message.partition(": ")
            field = cls.accepted_keys().get(key) if sep else None
            if field is not None:
                return f"{origin(cls.option_key(field))}: {rest}"
            return message
        head = origin(cls.option_key(str(loc[0])))
        rest = _sub_path(loc[1:])
        if message.startswith("["):  # a validator naming the item itself: layers[2]: ...
            return f"{head}{rest}{message}"
        return f"{head}{rest}: {message}"

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved configuration, as recorded in a result (and a checkpoint)."""
        return self.model_dump(mode="json")


def flag(key: str) -> str:
    """The command-line flag of an option key: ``batch_size`` -> ``--batch-size``."""
    return "--" + key.replace("_", "-")


def set_derived(model: BaseModel, **values: Any) -> None:
    """Set fields of a frozen model that its own after-validator derives from the others
    (``layers`` from ``--depth/--width``): the one place a frozen config is written to."""
    for name, value in values.items():
        object.__setattr__(model, name, value)
