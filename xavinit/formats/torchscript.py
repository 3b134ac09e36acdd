"""TorchScript archives (``torch.jit.save`` of ``torch.jit.script`` or ``torch.jit.trace``)
without importing torch and without running anything from the file.

The archive is a zip: ``<name>/data.pkl`` pickles the module objects (each an instance of a
``__torch__.*`` class whose state is a dict of its parameters, buffers, submodules and other
attributes), ``<name>/data/<key>`` holds their storages; ``<name>/constants.pkl`` pickles a tuple
of the code's constants (the weights of a ``torch.jit.freeze``-d module live there), with their
storages under ``<name>/constants/<key>``; ``<name>/code/`` holds the TorchScript source of each
class. ``traced_inputs.pkl`` (the example inputs of ``torch.jit.trace``, whose storages torch
writes empty), ``extra/`` files and the ``.debug_pkl`` source maps are not read.

The pickles go through an allow-list unpickler (:data:`ALLOWED`), each global replaced by a
function or class of xavinit's that only records:

- ``__torch__.*`` (module and object classes): a :class:`ScriptObject` placeholder that keeps the
  class name and the state ``BUILD`` gives it; it has no other behaviour;
- ``collections.OrderedDict`` (the empty hooks of each tensor), ``torch._utils._rebuild_tensor_v2``
  and the storage types (``torch.FloatStorage``...), as for a ``torch.save`` checkpoint;
- ``torch.jit._pickle.build_intlist``, ``build_doublelist``, ``build_boollist``,
  ``build_tensorlist`` and ``restore_type_tag``: each returns the value it is given.

Anything else (``os.system``, ``builtins.eval``, ``torch.nn.Linear``, a quantized tensor's
``torch._utils._rebuild_qtensor``) is refused by name before the pickle calls anything.

Tensors are named by their attribute path, as ``model.state_dict()`` names them
(``encoder.layers.0.linear1.weight``), in pickle order; tensors inside an attribute's list or
dict (an LSTM's ``_flat_weights``) are named by their position (``x.0``) and left out only where
they are the very same view of the same storage as a module attribute already listed (the LSTM
lists each weight twice). Constants follow as ``constants.<i>``.

Role hints come from the class that owns a tensor: ``Linear`` -> dense, ``Conv*d`` and
``ConvTranspose*d`` -> conv (``groups`` from the module's state, else from its class's source:
the ``groups : Final[int] = N`` declaration of a scripted module or the groups argument of the
``torch._convolution`` call of a traced one), ``Embedding`` -> embedding, ``LSTM``/``GRU``/``RNN``
(and their cells) ``weight_ih``/``weight_hh`` -> recurrent with their biases owned by
``weight_hh``, ``BatchNorm*``/``LayerNorm``/``GroupNorm``/``InstanceNorm*`` -> norm,
``MultiheadAttention`` ``in_proj_weight`` and ``out_proj.weight`` -> attention. A constant is
``other`` unless the code passes it as the weight of ``torch.linear``, ``torch.conv*d``,
``torch._convolution`` or ``torch.embedding`` (a frozen module), whose bias argument it then owns.
The source is only searched with regular expressions, never run.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from xavinit.formats.base import TensorInfo
from xavinit.formats.torch import (
    STORAGES,
    TensorRef,
    TooLarge,
    TorchSource,
    TorchUnpickler,
    Walk,
    dtype_name,
    load_pickle,
    refusal_message,
    unique,
    unpickle_errors,
)

JIT_HELPERS = (
    "build_intlist",
    "build_doublelist",
    "build_boollist",
    "build_tensorlist",
    "restore_type_tag",
)

ALLOWED = (
    "__torch__.*",
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    *(f"torch.jit._pickle.{name}" for name in JIT_HELPERS),
    *(f"torch.{name}" for name in STORAGES),
)
"""Every global a TorchScript archive's pickles may name (``__torch__.*``: any class under it,
as a placeholder); anything else is refused."""

MAX_CLASSES = 100_000
"""At most this many distinct ``__torch__`` classes in one archive."""

MAX_CODE = 64 * 1024 * 1024
"""At most this many bytes of TorchScript source are searched for hints (more: no hints)."""

TORCHSCRIPT_ALLOWS = (
    "a TorchScript archive may name only __torch__ classes, OrderedDict, "
    "torch._utils._rebuild_tensor_v2, torch.jit._pickle helpers and the storage types"
)


class ScriptObject:
    """A TorchScript object as its pickle describes it: its class name and its state.

    Subclassed once per ``__torch__`` class name (the unpickler needs a class); it records the
    state ``BUILD`` hands it and does nothing else.
    """

    class_name: str = ""
    state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> ScriptObject:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.class_name}>"


def _same(value: Any, *_: Any) -> Any:
    return value


class _ScriptUnpickler(TorchUnpickler):
    """:data:`ALLOWED`, each resolved to a recording function or a :class:`ScriptObject`."""

    def __init__(self, stream: Any, folder: str, classes: dict[str, type]) -> None:
        super().__init__(stream, folder)
        self.classes = classes

    def resolve(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            full = f"{module}.{name}"
            made = self.classes.get(full)
            if made is None:
                if len(self.classes) >= MAX_CLASSES:
                    raise TooLarge(f"more than {MAX_CLASSES} TorchScript classes")
                made = type("ScriptObject", (ScriptObject,), {"class_name": full})
                self.classes[full] = made
            return made
        if module == "torch.jit._pickle" and name in JIT_HELPERS:
            return _same
        if module == "torch._utils" and name != "_rebuild_tensor_v2":
            return None
        if module == "torch" and name not in STORAGES:
            return None
        return super().resolve(module, name)


@dataclass
class _Entry:
    """A tensor found in the pickle, with the object that holds it."""

    name: str
    ref: TensorRef
    owner: ScriptObject | None  # the module whose attribute it is (None: inside a container)
    attribute: str
    parent: ScriptObject | None  # the module holding ``owner``
    slot: str  # the attribute of ``parent`` that is ``owner``


def _identity(ref: TensorRef) -> tuple[Any, ...]:
    storage = ref.storage
    return (storage.folder, storage.key, storage.dtype, ref.offset, ref.shape, ref.strides)


class _Finder:
    """Walks the unpickled objects and lists their tensors by attribute path."""

    def __init__(self) -> None:
        self.walk = Walk()
        self.found: list[_Entry] = []

    def module(
        self, obj: ScriptObject, prefix: str, parent: ScriptObject | None, slot: str
    ) -> None:
        if not self.walk.enter(obj):
            return
        state = obj.state
        if isinstance(state, dict):
            for key, value in state.items():
                name = f"{prefix}{key}"
                if isinstance(value, TensorRef):
                    self.walk.enter(value)
                    self.walk.leave(value)
                    self.found.append(_Entry(name, value, obj, str(key), parent, slot))
                elif isinstance(value, ScriptObject):
                    self.module(value, f"{name}.", obj, str(key))
                else:
                    self.nested(value, name)
        elif state is not None:
            self.nested(state, prefix[:-1] or "state")
        self.walk.leave(obj)

    def nested(self, value: Any, name: str) -> None:
        if isinstance(value, TensorRef):
            self.walk.enter(value)
            self.walk.leave(value)
            self.found.append(_Entry(name, value, None, "", None, ""))
        elif isinstance(value, ScriptObject):
            self.module(value, f"{name}.", None, "")
        elif isinstance(value, dict | list | tuple) and self.walk.enter(value):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                self.nested(item, f"{name}.{key}")
            self.walk.leave(value)


def _tensors(root: Any) -> list[_Entry]:
    """data.pkl's tensors, container aliases of module attributes left out."""
    finder = _Finder()
    if isinstance(root, ScriptObject):
        finder.module(root, "", None, "")
    else:
        finder.nested(root, "state")
    attributes = {_identity(e.ref) for e in finder.found if e.owner is not None}
    return [e for e in finder.found if e.owner is not None or _identity(e.ref) not in attributes]


def _unique_names(entries: list[_Entry]) -> None:
    taken: set[str] = set()
    for entry in entries:
        entry.name = unique(entry.name, taken)
        taken.add(entry.name)


def _constants(value: Any) -> list[_Entry]:
    finder = _Finder()
    finder.nested(value, "constants")
    return finder.found


# --- hints from class names and from the source ----------------------------------------------

LINEAR = frozenset({"Linear", "NonDynamicallyQuantizableLinear", "LazyLinear"})
CONV = re.compile(r"^(Lazy)?Conv(Transpose)?[123]d$")
EMBEDDING = frozenset({"Embedding", "EmbeddingBag"})
RNN = frozenset({"LSTM", "GRU", "RNN"})
CELLS = frozenset({"LSTMCell", "GRUCell", "RNNCell"})
NORM = re.compile(
    r"^((Lazy)?BatchNorm[123]d|SyncBatchNorm|LayerNorm|GroupNorm|(Lazy)?InstanceNorm[123]d|RMSNorm)$"
)
RNN_WEIGHT = re.compile(r"^weight_(ih|hh)_l(\d+)(_reverse)?$")
RNN_PROJECTION = re.compile(r"^weight_hr_l(\d+)(_reverse)?$")
RNN_BIAS = re.compile(r"^bias_(ih|hh)_l(\d+)(_reverse)?$")
RECURRENT_AXES = ((1,), (0,))
"""PyTorch's stacked gate matrices ``(gates * hidden, input)``: axis 1 meets the input."""

ATTENTION_BIAS_NOTE = (
    "MultiheadAttention's bias_k/bias_v: PyTorch draws it xavier_normal over (1, 1, E), "
    "std 1/sqrt(E)"
)
TRANSPOSE_NOTE = (
    "ConvTranspose weight (in, out/groups, *kernel): fans read as PyTorch's init reads them "
    "(axis 1 as the input)"
)


def _base(class_name: str) -> str:
    return class_name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Hint:
    """What the class owning a tensor says about it."""

    role: str | None = None
    owner: str | None = None
    groups: int | None = None
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    note: str = ""


CALL = re.compile(r"\btorch\.(linear|conv[123]d|conv_transpose[123]d|_convolution|embedding)\(")
GROUPS_ARGUMENT = {"_convolution": 8, "conv": 6, "conv_transpose": 6}
FINAL_GROUPS = re.compile(r"^\s+groups\s*:\s*Final\[int\]\s*=\s*(\d+)\s*$", re.M)
CONSTANT = re.compile(r"^CONSTANTS\.c(\d+)$")


def _arguments(line: str, start: int) -> list[str] | None:
    """The top-level arguments of the call whose ``(`` ends at ``start`` (one line)."""
    depth, begin, out = 0, start, []
    for index in range(start, len(line)):
        char = line[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                out.append(line[begin:index].strip())
                return out
            depth -= 1
        elif char == "," and depth == 0:
            out.append(line[begin:index].strip())
            begin = index + 1
    return None


def calls(text: str) -> Iterator[tuple[str, list[str]]]:
    """``(op, arguments)`` of each ``torch.linear/conv*/_convolution/embedding`` call."""
    for line in text.splitlines():
        for match in CALL.finditer(line):
            arguments = _arguments(line, match.end())
            if arguments is not None:
                yield match.group(1), arguments


def _groups_argument(op: str, arguments: list[str]) -> int | None:
    """The groups a convolution call passes (None: not a convolution, or not a literal)."""
    kind = "conv_transpose" if op.startswith("conv_transpose") else op
    kind = "conv" if re.fullmatch(r"conv[123]d", kind) else kind
    position = GROUPS_ARGUMENT.get(kind)
    if position is None:
        return None
    for argument in arguments:
        if argument.replace(" ", "").startswith("groups="):
            value = argument.partition("=")[2].strip()
            return int(value) if value.isdigit() else None
    if len(arguments) <= position:
        return 1 if kind != "_convolution" else None
    value = arguments[position]
    return int(value) if value.isdigit() else None


def _class_block(text: str, name: str) -> str | None:
    match = re.search(rf"^class {re.escape(name)}\(.*$", text, re.M)
    if match is None:
        return None
    rest = text[match.end() :]
    end = re.search(r"^\S", rest, re.M)
    return rest[: end.start()] if end else rest


def _valid_groups(groups: Any, shape: tuple[int, ...]) -> int | None:
    if type(groups) is not int or groups < 1 or not shape or shape[0] % groups:
        return None
    return groups


class TorchScriptSource(TorchSource):
    """The tensors of a TorchScript archive: the modules' attributes, then the constants."""

    format = "torchscript"
    kind = "TorchScript archive"
    missing_hint = (
        "an archive of torch < 1.4 (model.json) is not read: re-save it with a current torch "
        "(torch.jit.save(torch.jit.load(PATH), NEW_PATH)) or save model.state_dict()"
    )

    def _refusal(self, name: str) -> str:
        return refusal_message(self.path, name, TORCHSCRIPT_ALLOWS)

    def _read_tensors(self) -> None:
        classes: dict[str, type] = {}

        def read(member: str, folder: str) -> Any:
            data = self._pickle_bytes(member)

            def load(stream: io.BytesIO) -> Any:
                return load_pickle(_ScriptUnpickler(stream, folder, classes), stream)

            return unpickle_errors(
                self.path,
                self._corrupt,
                self._refusal,
                lambda: load(io.BytesIO(data)),
            )

        self._code: dict[str, str | None] = {}
        self._code_budget = MAX_CODE
        root = read(f"{self._prefix}data.pkl", "data")
        entries = unpickle_errors(self.path, self._corrupt, self._refusal, lambda: _tensors(root))
        constants: list[_Entry] = []
        member = f"{self._prefix}constants.pkl"
        if member in set(self._names):
            table = read(member, "constants")
            constants = unpickle_errors(
                self.path, self._corrupt, self._refusal, lambda: _constants(table)
            )
        _unique_names(entries + constants)  # renames in place
        names = {e.name for e in entries}
        infos = [self._info(e, self._hint(e, names)) for e in entries]
        hints = self._constant_hints(constants) if constants else {}
        infos += [self._info(e, hints.get(e.name, Hint(role="other"))) for e in constants]
        self.tensors = infos

    @staticmethod
    def _info(entry: _Entry, hint: Hint) -> TensorInfo:
        ref = entry.ref
        return TensorInfo(
            entry.name,
            ref.shape,
            dtype_name(ref.storage.dtype),
            layout="out-in",
            role=hint.role,
            groups=hint.groups,
            owner=hint.owner,
            key=ref,
            fan_axes=hint.fan_axes,
            note=hint.note,
        )

    # -- module attributes

    def _hint(self, entry: _Entry, names: set[str]) -> Hint:
        if entry.owner is None:
            return Hint()
        attribute, ndim = entry.attribute, len(entry.ref.shape)
        if not entry.name.endswith(attribute):  # renamed: two paths spelled the same name
            return Hint()
        stem = entry.name[: len(entry.name) - len(attribute)]

        def owned(weight: str) -> str | None:
            return stem + weight if stem + weight in names else None

        cls = _base(entry.owner.class_name)
        parent = _base(entry.parent.class_name) if entry.parent is not None else ""
        if parent == "MultiheadAttention" and entry.slot == "out_proj":
            if attribute == "weight" and ndim == 2:
                return Hint(role="attention")
            if attribute == "bias" and ndim == 1:
                return Hint(role="bias", owner=owned("weight"))
        if cls in LINEAR:
            if attribute == "weight" and ndim == 2:
                return Hint(role="dense")
            if attribute == "bias" and ndim == 1:
                return Hint(role="bias", owner=owned("weight"))
        elif CONV.match(cls):
            if attribute == "weight" and 3 <= ndim <= 5:
                groups = _valid_groups(self._module_groups(entry.owner), entry.ref.shape)
                note = TRANSPOSE_NOTE if "Transpose" in cls else ""
                return Hint(role="conv", groups=groups, note=note)
            if attribute == "bias" and ndim == 1:
                return Hint(role="bias", owner=owned("weight"))
        elif cls in EMBEDDING:
            if attribute == "weight" and ndim == 2:
                return Hint(role="embedding")
        elif cls in RNN:
            if RNN_WEIGHT.match(attribute) and ndim == 2:
                return Hint(role="recurrent", fan_axes=RECURRENT_AXES)
            if RNN_PROJECTION.match(attribute) and ndim == 2:
                return Hint(role="dense")
            bias = RNN_BIAS.match(attribute)
            if bias and ndim == 1:
                weight = f"weight_hh_l{bias.group(2)}{bias.group(3) or ''}"
                return Hint(role="bias", owner=owned(weight))
        elif cls in CELLS:
            if attribute in ("weight_ih", "weight_hh") and ndim == 2:
                return Hint(role="recurrent", fan_axes=RECURRENT_AXES)
            if attribute in ("bias_ih", "bias_hh") and ndim == 1:
                return Hint(role="bias", owner=owned("weight_hh"))
        elif NORM.match(cls):
            return Hint(role="norm")
        elif cls == "MultiheadAttention":
            if attribute in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                return Hint(role="attention") if ndim == 2 else Hint()
            if attribute == "in_proj_bias" and ndim == 1:
                return Hint(role="bias", owner=owned("in_proj_weight"))
            if attribute in ("bias_k", "bias_v"):
                return Hint(role="bias", note=ATTENTION_BIAS_NOTE)
        return Hint()

    def _module_groups(self, module: ScriptObject) -> int | None:
        """A convolution module's groups: its state's, else its class's source."""
        state = module.state if isinstance(module.state, dict) else {}
        if type(state.get("groups")) is int:
            return int(state["groups"])
        class_module, _, name = module.class_name.rpartition(".")
        text = self._source(class_module)
        block = _class_block(text, name) if text is not None else None
        if block is None:
            return None
        declared = FINAL_GROUPS.search(block)
        if declared is not None:
            return int(declared.group(1))
        found = {_groups_argument(op, args) for op, args in calls(block) if op != "linear"}
        found.discard(None)
        return found.pop() if len(found) == 1 else None

    def _source(self, module: str) -> str | None:
        """The TorchScript source of a ``__torch__`` module (None: absent or over budget)."""
        member = f"{self._prefix}code/{module.replace('.', '/')}.py"
        if member not in self._code:
            self._code[member] = self._read_code(member)
        return self._code[member]

    def _read_code(self, member: str) -> str | None:
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            return None
        if info.file_size > self._code_budget:
            return None
        self._code_budget -= info.file_size
        return self._zip.read(info).decode("utf-8", "replace")

    # -- constants

    def _constant_hints(self, constants: list[_Entry]) -> dict[str, Hint]:
        """Roles of the constants the code passes as a weight (a frozen module)."""
        shapes = {e.name: e.ref.shape for e in constants}
        hints: dict[str, Hint] = {}
        prefix = f"{self._prefix}code/"
        for member in self._names:
            if not (member.startswith(prefix) and member.endswith(".py")):
                continue
            if member not in self._code:
                self._code[member] = self._read_code(member)
            text = self._code[member]
            if text is None or "CONSTANTS.c" not in text:
                continue
            for op, arguments in calls(text):
                weight_at = 0 if op == "embedding" else 1
                names = [self._constant(a) for a in arguments[: weight_at + 2]]
                weight = names[weight_at] if len(names) > weight_at else None
                if weight is None or weight not in shapes or weight in hints:
                    continue
                shape = shapes[weight]
                role = {"linear": "dense", "embedding": "embedding"}.get(op, "conv")
                if not (3 <= len(shape) <= 5 if role == "conv" else len(shape) == 2):
                    continue
                groups = (
                    _valid_groups(_groups_argument(op, arguments), shape)
                    if role == "conv"
                    else None
                )
                hints[weight] = Hint(role=role, groups=groups, note=self._frozen_note(op))
                bias = names[2] if op != "embedding" and len(names) > 2 else None
                if bias is not None and bias in shapes and len(shapes[bias]) == 1:
                    hints.setdefault(bias, Hint(role="bias", owner=weight))
        return hints

    @staticmethod
    def _constant(argument: str) -> str | None:
        match = CONSTANT.match(argument)
        return f"constants.{match.group(1)}" if match else None

    @staticmethod
    def _frozen_note(op: str) -> str:
        return f"a constant of the archive's code, the weight of torch.{op} (a frozen module)"
