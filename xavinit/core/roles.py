"""What each tensor of a checkpoint is: its role, layout and fans, from the format's hints and,
where the format says nothing, from its name, shape and the bias beside it.

Roles: ``dense``, ``conv`` (3-D to 5-D), ``embedding`` (lookup tables, and position or class
embeddings with leading size-1 axes), ``attention``, ``recurrent`` (an RNN's stacked gate
matrices), ``bias``, ``norm`` (LayerNorm/BatchNorm scales, shifts and running statistics),
``other``.

Fans (xavinit's convention: a layer computes ``Z @ W``, ``W`` of shape ``(fan_in, fan_out)``):

- dense, attention, embedding, ``out-in`` ``(out, in)``: ``fan_in = in``, ``fan_out = out``;
  ``in-out`` ``(in, out)`` the other way round.
- conv ``out-in`` ``(out, in/groups, *kernel)`` (PyTorch, ONNX): with the receptive field
  ``rf = prod(kernel)``, ``fan_in = (in/groups) rf`` and ``fan_out = (out/groups) rf``: each input
  unit reaches only the ``out/groups`` output channels of its group. PyTorch's own
  ``_calculate_fan_in_and_fan_out`` gives ``out rf`` (pytorch issue 23854). ``in-out``
  ``(*kernel, in/groups, out)`` (Keras) the same way; Keras' depthwise kernel
  ``(*kernel, in, multiplier)`` has ``fan_in = rf``, ``fan_out = multiplier rf``.
- bias: the fans of the weight it belongs to (PyTorch's default bias is
  ``U(+-1/sqrt(fan_in))`` of its weight's ``fan_in``).
- recurrent: as dense, on the stacked gates (PyTorch ``weight_ih_l0`` ``(4 hidden, in)`` is
  ``in -> 4 hidden``); its biases (``bias_ih_l0``, ``bias_hh_l0``) take the fans of
  ``weight_hh_l0`` (``hidden -> 4 hidden``), so PyTorch's default ``U(+-1/sqrt(hidden))`` is
  ``standard`` for them.
- a format that knows which axes are inputs and which outputs (``fan_axes``: a Keras
  ``EinsumDense`` kernel, an ONNX LSTM ``W``, a transposed convolution): the product of each
  group; for a conv the remaining axes are its kernel and multiply both fans, for other roles
  they are independent copies (an LSTM's directions).
- embedding: a lookup is ``one_hot @ W``, so a ``(rows, dim)`` table is ``rows -> dim`` in
  every framework.
- a PyTorch transposed convolution ``(in, out/groups, *kernel)`` is told from its bias, whose
  length is the second axis: ``fan_in = in rf``, ``fan_out = (out/groups) rf``.
- norm and other: no fans.

Layouts: the format's convention (``out-in`` for PyTorch and safetensors), unless the tensor
says otherwise: a bias whose length matches only the second axis (GPT-2's ``Conv1D`` keeps
``(in, out)``), or the name of a layer known to store ``(in, out)`` (``c_attn``, ``c_fc``,
``c_proj``); ``--layout GLOB=LAYOUT`` overrides both.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_LAYOUT = "in-out"
"""xavinit's own convention, for files whose format does not say (npy, npz)."""

_NORM = re.compile(r"^(.*norm.*|ln(_?[0-9a-z]{0,2})?|bn[0-9]*|gn[0-9]*|gamma|beta|.*_ln)$")
_EMBEDDING = re.compile(
    r"(embed|^emb$|^emb_|^wte$|^wpe$|^shared$|^tok_|^word_|^position_|^token_type)"
)
_ATTENTION = re.compile(
    r"(attn|attention|^q_proj$|^k_proj$|^v_proj$|^o_proj$|^qkv|^in_proj|^out_proj$|"
    r"^query$|^key$|^value$|^c_attn$)"
)
_POSITIONAL = re.compile(
    r"(pos_?embed|position|cls_token|class_token|dist_token|mask_token|"
    r"^register_tokens$|^pos$|embedding)"
)
_RNN_WEIGHT = re.compile(r"^weight_(ih|hh)(_l\d+)?(_reverse)?$")
_RNN_BIAS = re.compile(r"^bias_(ih|hh)(_l\d+)?(_reverse)?$")
_IN_OUT_LAYERS = ("c_attn", "c_fc", "c_proj")
"""Layers known to store their weight ``(in, out)`` under a PyTorch name: Hugging Face's
``Conv1D`` (GPT-2, GPT-J's ancestors, CodeGen...)."""
_MHA_BIAS_KV = ("bias_k", "bias_v")
_STATISTICS = (
    "running_mean",
    "running_var",
    "num_batches_tracked",
    "moving_mean",
    "moving_variance",
)


@dataclass(frozen=True)
class Tensor:
    """A tensor as the checks see it, before its data is read.

    ``fan_in``/``fan_out`` are None where they do not apply (norms, scalars); ``note`` says
    anything the reader of a verdict should know (guessed layout, unknown groups, packed QKV).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str
    layout: str
    fan_in: int | None
    fan_out: int | None
    groups: int | None = None
    owner: str | None = None
    note: str = ""
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def size(self) -> int:
        """Number of entries."""
        return math.prod(self.shape)


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[./:]", name.lower()) if p]


def guess_role(name: str, shape: tuple[int, ...]) -> str:
    """The role a state-dict name and shape suggest (used when the format has no hint)."""
    parts = _parts(name)
    leaf = parts[-1] if parts else ""
    owner_parts = parts[:-1]
    if any(stat in name.lower() for stat in _STATISTICS):
        return "norm"
    if len(shape) == 0:
        return "other"
    if _RNN_WEIGHT.match(leaf) and len(shape) == 2:
        return "recurrent"
    if _RNN_BIAS.match(leaf) or leaf in _MHA_BIAS_KV:
        return "bias"
    if len(shape) >= 2 and shape[0] == 1 and _POSITIONAL.search(leaf):
        return "embedding"  # a ViT's (1, 197, 768) position embedding, a (1, 1, 768) token
    if len(shape) == 1:
        if any(_NORM.match(p) for p in owner_parts) or _NORM.match(leaf):
            return "norm"
        if leaf.endswith("bias") or leaf == "b":
            return "bias"
        if leaf in ("weight", "scale", "g", "alpha"):
            return "norm"
        return "other"
    if len(shape) == 2:
        if any(_EMBEDDING.search(p) for p in parts):
            return "embedding"
        if any(_ATTENTION.search(p) for p in parts):
            return "attention"
        return "dense"
    if 3 <= len(shape) <= 5:
        return "conv"
    return "other"


def _role(info: Any) -> str:
    """The format's role hint, refined by the name where it knows more (an ONNX MatMul is a
    ``dense`` hint; its name may say attention), else the guess from name and shape."""
    hint = getattr(info, "role", None)
    guess = guess_role(info.name, tuple(info.shape))
    if hint == "dense" and guess == "attention":
        return "attention"
    return hint or guess


def _bias_owner(name: str, names: set[str]) -> str | None:
    """The weight a bias belongs to: ``x.bias -> x.weight`` (or ``kernel``), ``in_proj_bias ->
    in_proj_weight``, an RNN's ``bias_ih_l0`` and ``bias_hh_l0`` -> ``weight_hh_l0`` (whose
    ``fan_in`` is the hidden size PyTorch's default bias uses)."""
    stem, _, leaf = name.rpartition(".")
    rnn = _RNN_BIAS.match(leaf)
    if rnn:
        weight = f"{stem}.weight_hh{rnn.group(2) or ''}{rnn.group(3) or ''}".lstrip(".")
        return weight if weight in names else None
    for suffix in ("bias", "b"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            for candidate in ("weight", "kernel", "w"):
                if stem + candidate in names and stem + candidate != name:
                    return stem + candidate
    return None


def _layout(
    shape: tuple[int, ...],
    given: str | None,
    override: str,
    bias_length: int | None,
    name: str = "",
) -> tuple[str, str]:
    """``(layout, note)``: the override, else what the tensor itself says against the format's
    convention (a bias length, a known ``(in, out)`` layer name), else the format's, else a
    guess from the bias."""
    if override in ("in-out", "out-in"):
        return override, ""
    if given == "out-in" and len(shape) == 2:
        first, last = shape
        if bias_length is not None and bias_length == last != first:
            return "in-out", "layout in-out: the bias's length is the second axis"
        parts = _parts(name)
        if len(parts) >= 2 and parts[-2] in _IN_OUT_LAYERS and bias_length in (None, last):
            return "in-out", f"layout in-out: {parts[-2]} is a Conv1D, stored (in, out)"
    if given is not None:
        return given, ""
    if len(shape) >= 2 and bias_length is not None:
        first, last = shape[0], shape[-1]
        if bias_length == first and bias_length != last:
            return "out-in", "layout out-in guessed from the bias length"
        if bias_length == last and bias_length != first:
            return "in-out", "layout in-out guessed from the bias length"
    if len(shape) >= 3 and shape[-1] == shape[-2] and shape[-1] <= 11 < shape[0]:
        return "out-in", "layout out-in guessed from the kernel's trailing dimensions"
    return DEFAULT_LAYOUT, ""


def fans(
    role: str,
    shape: tuple[int, ...],
    layout: str,
    groups: int | None,
    depthwise: bool = False,
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
) -> tuple[int | None, int | None, str]:
    """``(fan_in, fan_out, note)`` of a weight (see the module docstring)."""
    if role in ("norm", "bias", "other") or len(shape) < 2 or math.prod(shape) == 0:
        return None, None, ""
    if fan_axes is not None and all(0 <= a < len(shape) for a in (*fan_axes[0], *fan_axes[1])):
        inputs = math.prod(shape[a] for a in fan_axes[0])
        outputs = math.prod(shape[a] for a in fan_axes[1])
        if role == "conv":  # the other axes are the kernel: each fan spans its field
            field = math.prod(
                n for a, n in enumerate(shape) if a not in (*fan_axes[0], *fan_axes[1])
            )
            if groups and groups > 1:  # the whole-channel side (axis 0) splits into groups
                if 0 in fan_axes[0] and inputs % groups == 0:
                    inputs //= groups
                elif 0 in fan_axes[1] and outputs % groups == 0:
                    outputs //= groups
            return inputs * field, outputs * field, ""
        return inputs, outputs, ""  # other axes are independent copies (directions)
    if role == "embedding" and 1 in shape:
        shape = tuple(n for n in shape if n != 1)
        if len(shape) < 2:
            return None, None, ""
    if len(shape) == 2:
        return (shape[1], shape[0], "") if layout == "out-in" else (shape[0], shape[1], "")
    if role == "attention":  # Keras EinsumDense kernels: (in, heads, dim) or (heads, dim, out)
        if len(shape) == 3 and layout == "in-out":
            return shape[0], shape[1] * shape[2], ""
        return math.prod(shape[1:]), shape[0], ""
    note = ""
    if layout == "out-in":
        out, per_group_in, kernel = shape[0], shape[1], shape[2:]
    else:
        out, per_group_in, kernel = shape[-1], shape[-2], shape[:-2]
    field = math.prod(kernel)
    framework = (
        f"PyTorch's and Keras' own formulas give {per_group_in * field}->{out * field}, so "
        "their fan_out-based defaults (xavier, glorot) show as a fitted fan-free law"
    )
    if depthwise:
        return (
            field,
            out * field,
            f"depthwise kernel: fans per unit {field}->{out * field}; {framework}",
        )
    if groups is None:
        groups = 1
        if per_group_in == 1 and out > 1:
            note = "groups not in the file: fan_out assumes 1 (a depthwise conv has fan_out = rf)"
    if groups < 1 or out % groups:
        groups = 1
    if groups > 1:
        note = f"{groups} groups: fans per unit {per_group_in * field}->{out // groups * field}; {framework}"
    return per_group_in * field, (out // groups) * field, note


TRANSPOSED_NOTE = (
    "a transposed convolution (in, out, *kernel): the bias's length is the second axis; "
    "PyTorch's default draws it with fan_in = out rf"
)
RNN_NOTE = (
    "PyTorch's RNN, LSTM and GRU draw every parameter from U(+-1/sqrt(hidden)): standard when "
    "fan_in is the hidden size, else a fitted uniform"
)
MHA_BIAS_KV_NOTE = (
    "MultiheadAttention's bias_k/bias_v: PyTorch draws them by xavier_normal_ on (1, 1, E), "
    "N(0, 1/E)"
)

PACKED_QKV_NOTE = (
    "packed q, k, v (3E, E), judged whole: PyTorch's xavier on it uses fan_out = 3E, so each "
    "of q, k, v gets half the variance of a separate (E, E) xavier"
)


LAYOUTS = ("auto", "in-out", "out-in")


def parse_layouts(layout: str | Sequence[str]) -> list[tuple[str, str]]:
    """``[(glob, layout)]`` from ``auto``/``in-out``/``out-in`` (every tensor) and
    ``GLOB=LAYOUT`` items; later items win.

    Raises:
        ValueError: an item that is neither.
    """
    items = [layout] if isinstance(layout, str) else list(layout)
    rules: list[tuple[str, str]] = []
    for item in items:
        pattern, sep, value = str(item).rpartition("=")
        value = value.strip().lower().replace("_", "-")
        if value not in LAYOUTS or (sep and not pattern):
            raise ValueError(
                f"layout must be auto, in-out, out-in or GLOB=LAYOUT (such as "
                f"'*.c_attn.weight=in-out'), got {item!r}"
            )
        rules.append((pattern if sep else "*", value))
    return rules


def layout_of(name: str, rules: Sequence[tuple[str, str]]) -> str:
    """The layout the rules give a tensor name (the last matching rule), ``auto`` if none."""
    chosen = "auto"
    for pattern, value in rules:
        if fnmatch.fnmatchcase(name, pattern):
            chosen = value
    return chosen


def describe(infos: Sequence[Any], layout: str | Sequence[str] = "auto") -> list[Tensor]:
    """Role, layout and fans of every tensor of one file.

    Args:
        infos: the file's tensors, each with ``name``, ``shape``, ``dtype`` and the format's
            ``layout``, ``role``, ``groups``, ``owner``, ``fan_axes`` and ``note`` hints (None or
            empty where it has none).
        layout: ``auto`` (the format's, else what the tensor says, else a guess),
            ``in-out``/``out-in`` for every tensor, or a list of those and ``GLOB=LAYOUT``
            items (the last matching one wins).
    """
    rules = parse_layouts(layout)
    names = {info.name for info in infos}
    roles = {info.name: _role(info) for info in infos}
    owners: dict[str, str | None] = {}
    bias_of: dict[str, int] = {}
    for info in infos:
        if roles[info.name] != "bias":
            continue
        owner = getattr(info, "owner", None) or _bias_owner(info.name, names)
        if owner in roles and roles[str(owner)] == "norm":  # a LayerNorm's shift
            roles[info.name] = "norm"
            continue
        owners[info.name] = owner if owner in names else None
        if owners[info.name] is not None and len(info.shape) == 1:
            bias_of[str(owner)] = info.shape[0]
    described: dict[str, Tensor] = {}
    for info in infos:
        if roles[info.name] == "bias":
            continue
        shape = tuple(info.shape)
        role = roles[info.name]
        axes = getattr(info, "fan_axes", None)
        given = layout_of(info.name, rules)
        chosen, note = _layout(
            shape, getattr(info, "layout", None), given, bias_of.get(info.name), info.name,
        )  # fmt: skip
        bias = bias_of.get(info.name)
        if (
            role == "conv" and axes is None and chosen == "out-in" and given == "auto"
            and bias is not None and len(shape) >= 2 and bias == shape[1] != shape[0]
        ):  # fmt: skip
            axes, chosen = ((0,), (1,)), "in-out"
            note = TRANSPOSED_NOTE
        if role == "embedding" and given == "auto" and chosen != "in-out":
            chosen, note = "in-out", ""  # a lookup is one_hot @ W: (rows, dim) is (in, out)
        fan_in, fan_out, fan_note = fans(
            role, shape, chosen, getattr(info, "groups", None), getattr(info, "depthwise", False),
            axes,
        )  # fmt: skip
        notes = [n for n in (getattr(info, "note", ""), note, fan_note) if n]
        if role == "recurrent" and _RNN_WEIGHT.match(_parts(info.name)[-1] if info.name else ""):
            notes.append(RNN_NOTE)
        if role == "attention" and len(shape) == 2 and shape[0] == 3 * shape[1]:
            notes.append(PACKED_QKV_NOTE)
        described[info.name] = Tensor(
            info.name, shape, str(info.dtype), role, chosen, fan_in, fan_out,
            groups=getattr(info, "groups", None), note="; ".join(notes), fan_axes=axes,
        )  # fmt: skip
    out: list[Tensor] = []
    for info in infos:
        if info.name in described:
            out.append(described[info.name])
            continue
        owner = owners.get(info.name)
        weight = described.get(owner) if owner is not None else None
        given = layout_of(info.name, rules)
        leaf = _parts(info.name)[-1] if info.name else ""
        if weight is not None:
            note = getattr(info, "note", "")
        elif leaf in _MHA_BIAS_KV:
            note = MHA_BIAS_KV_NOTE
        else:
            note = "no weight found for this bias"
        out.append(
            Tensor(
                info.name,
                tuple(info.shape),
                str(info.dtype),
                "bias",
                weight.layout if weight is not None else (given if given != "auto" else "-"),
                weight.fan_in if weight is not None else None,
                weight.fan_out if weight is not None else None,
                owner=owner,
                note=note,
            )
        )
    return out


def select_names(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The names that ``patterns`` select, in their order.

    Patterns are shell globs (``*.weight``); one starting with ``!`` excludes (``!emb*``).
    Without an including pattern every name is included before exclusions apply.
    """
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    return [
        name
        for name in names
        if (not include or any(fnmatch.fnmatchcase(name, p) for p in include))
        and not any(fnmatch.fnmatchcase(name, p) for p in exclude)
    ]
