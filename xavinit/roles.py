"""What each tensor of a checkpoint is: its role, layout and fans, from the format's hints and,
where the format says nothing, from its name, shape and the bias beside it.

Roles: ``dense``, ``conv`` (3-D to 5-D), ``embedding``, ``attention``, ``bias``, ``norm``
(LayerNorm/BatchNorm scales, shifts and running statistics), ``other``.

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
- norm and other: no fans.
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
    r"^query$|^key$|^value$|^c_attn$|^c_proj$)"
)
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


def _bias_owner(name: str, names: set[str]) -> str | None:
    """The weight a bias belongs to: ``x.bias -> x.weight`` (or ``kernel``), ``in_proj_bias ->
    in_proj_weight``."""
    for suffix in ("bias", "b"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            for candidate in ("weight", "kernel", "w"):
                if stem + candidate in names and stem + candidate != name:
                    return stem + candidate
    return None


def _layout(
    shape: tuple[int, ...], given: str | None, override: str, bias_length: int | None
) -> tuple[str, str]:
    """``(layout, note)``: the override, else the format's, else a guess from the bias."""
    if override in ("in-out", "out-in"):
        return override, ""
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
    role: str, shape: tuple[int, ...], layout: str, groups: int | None, depthwise: bool = False
) -> tuple[int | None, int | None, str]:
    """``(fan_in, fan_out, note)`` of a weight (see the module docstring)."""
    if role in ("norm", "bias", "other") or len(shape) < 2 or math.prod(shape) == 0:
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


PACKED_QKV_NOTE = (
    "packed q, k, v (3E, E), judged whole: PyTorch's xavier on it uses fan_out = 3E, so each "
    "of q, k, v gets half the variance of a separate (E, E) xavier"
)


def describe(infos: Sequence[Any], layout: str = "auto") -> list[Tensor]:
    """Role, layout and fans of every tensor of one file.

    Args:
        infos: the file's tensors, each with ``name``, ``shape``, ``dtype`` and the format's
            ``layout``, ``role``, ``groups`` and ``owner`` hints (None where it has none).
        layout: ``auto`` (the format's, else a guess), or ``in-out``/``out-in`` for every
            tensor of the file.
    """
    names = {info.name for info in infos}
    roles = {
        info.name: getattr(info, "role", None) or guess_role(info.name, tuple(info.shape))
        for info in infos
    }
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
        chosen, note = _layout(shape, getattr(info, "layout", None), layout, bias_of.get(info.name))
        fan_in, fan_out, fan_note = fans(
            role, shape, chosen, getattr(info, "groups", None), getattr(info, "depthwise", False)
        )
        notes = [n for n in (note, fan_note) if n]
        if role == "attention" and len(shape) == 2 and shape[0] == 3 * shape[1]:
            notes.append(PACKED_QKV_NOTE)
        described[info.name] = Tensor(
            info.name, shape, str(info.dtype), role, chosen, fan_in, fan_out,
            groups=getattr(info, "groups", None), note="; ".join(notes),
        )  # fmt: skip
    out: list[Tensor] = []
    for info in infos:
        if info.name in described:
            out.append(described[info.name])
            continue
        owner = owners.get(info.name)
        weight = described.get(owner) if owner is not None else None
        out.append(
            Tensor(
                info.name,
                tuple(info.shape),
                str(info.dtype),
                "bias",
                weight.layout if weight is not None else (layout if layout != "auto" else "-"),
                weight.fan_in if weight is not None else None,
                weight.fan_out if weight is not None else None,
                owner=owner,
                note="" if weight is not None else "no weight found for this bias",
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
