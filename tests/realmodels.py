"""Real models, freshly built, and the truth about every tensor they hold (not a test module).

``test_check_real_models.py`` holds ``xavinit check`` to this truth. Every builder makes a model
with a fixed seed, from a config small enough that building, saving and checking all of them
takes seconds, and returns its tensors with one :class:`Truth` each: the role, the fans in
xavinit's per-unit convention and the law that the library's OWN init code draws the tensor
from. The truths were derived by reading that code (file and function cited beside each rule;
line numbers are those of the installed torch 2.13, transformers 5.25 and keras 3.15) and are
computed here from module attributes and configs, never by calling xavinit.
:func:`truth_deviations` checks each truth against the drawn arrays themselves, so a wrong
derivation shows up as a failure of its own, apart from check's.

Conventions of the truth (xavinit's, see ``docs/check.md``):

- fans per unit: a layer computes ``Z @ W`` with ``W`` of shape ``(fan_in, fan_out)``. A Linear
  ``(out, in)`` has ``fan_in = in``; GPT-2's ``Conv1D`` stores ``(in, out)``; a conv has
  ``fan_in = (in/groups) rf`` and ``fan_out = (out/groups) rf`` (``rf`` the product of the kernel
  dims, stride ignored), a ConvTranspose too with ``in`` its input channels (``weight.shape[0]``);
- an embedding table ``(num_embeddings, dim)`` (PyTorch and Keras store it alike) is the lookup
  ``one_hot @ W``: ``fan_in = num_embeddings``, ``fan_out = dim``. A tied LM head is an
  ``nn.Linear`` ``(vocab, dim)``: ``dim -> vocab``;
- packed gates and projections are judged whole: an LSTM's ``(4H, in)`` ``in -> 4H``, GRU ``3H``,
  MultiheadAttention's ``in_proj_weight`` ``(3E, E)`` ``E -> 3E``, Keras' ``(in, 4H)`` the same;
- a bias has its weight's fans; norms, running statistics and scalars have none.

A :class:`Truth` may accept several roles and ``ANY`` fans where no convention is settled (a
ViT ``cls_token`` ``(1, 1, D)``, MultiheadAttention's ``bias_k``); ``fan_out_without_groups`` is
what a reader must report for a grouped conv when the file does not store ``groups`` (PyTorch
state dicts, safetensors): the ``groups = 1`` reading.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

ANY = "any"
"""Fans not asserted (no settled convention for this tensor)."""

MIN_ENTRIES = 32
"""Below this many entries ``unknown`` is an acceptable verdict (docs/check.md)."""

KS_SAMPLE = 1_000_000
"""check's KS test sees at most this many entries."""

SEPARATION = 4.0
"""Two families are told apart when their KS distance times sqrt(N) reaches this: uniform vs
normal of equal variance (0.057 apart) from about 5,000 entries, a normal cut at 2 std vs a
plain one (0.0167) from about 57,000."""

VARIANCE_SE = 5.0
"""A variance matches within this many standard errors, sqrt((kurtosis - 1) / N) relative."""

ORTHOGONAL_MIN_SIDE = 8
"""An orthogonal matrix is told from an i.i.d. one (W^T W = g^2 I exactly) when both sides of
its 2-D view reach this."""

# --- laws ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Law:
    """The law a library's init draws a tensor from.

    ``kind``: ``normal`` (``scale`` = std), ``uniform`` (``scale`` = bound), ``trunc_normal``
    (``scale`` = std of the underlying normal, cut at the absolute ``low``/``high``),
    ``constant`` (``scale`` = the value), ``orthogonal`` (``scale`` = gain, on the 2-D view
    ``(prod(shape[:-1]), shape[-1])`` for Keras, ``(shape[0], prod(shape[1:]))`` for PyTorch),
    ``fixed`` (a deterministic non-constant array, e.g. Keras' LSTM bias with its forget gate at
    one; ``mean_square`` its mean of squares), ``index`` (integers an exporter stored: shapes,
    axes). ``zeros``: the fraction of entries set to exactly
    zero after the draw (an embedding's padding row). ``scheme``: the xavinit scheme that
    reproduces the law exactly at the truth's fans, when there is one (documentation: the
    tests assert the family and the variance, not the name).
    """

    kind: str
    scale: float = 0.0
    low: float | None = None
    high: float | None = None
    zeros: float = 0.0
    scheme: str | None = None
    mean_square: float | None = None

    def describe(self) -> str:
        if self.kind == "normal":
            text = f"N(0, {self.scale:.6g}^2)"
        elif self.kind == "uniform":
            text = f"U(+-{self.scale:.6g})"
        elif self.kind == "trunc_normal":
            text = f"N(0, {self.scale:.6g}^2) cut to [{self.low:.6g}, {self.high:.6g}]"
        elif self.kind == "constant":
            text = f"constant {self.scale:g}"
        elif self.kind == "orthogonal":
            text = f"orthogonal gain {self.scale:g}"
        elif self.kind == "index":
            text = "integers (an index or a shape, not a weight)"
        else:
            text = f"fixed constant blocks (mean square {self.mean_square:.6g})"
        if self.zeros:
            text += f", {self.zeros:.3g} of it zeroed"
        if self.scheme:
            text += f" = {self.scheme}"
        return text


def normal(std: float, *, zeros: float = 0.0, scheme: str | None = None) -> Law:
    return Law("normal", std, zeros=zeros, scheme=scheme)


def uniform(bound: float, *, scheme: str | None = None) -> Law:
    return Law("uniform", bound, scheme=scheme)


def trunc_normal(std: float, low: float, high: float) -> Law:
    return Law("trunc_normal", std, low=low, high=high)


def constant(value: float) -> Law:
    return Law("constant", value)


def orthogonal(gain: float = 1.0) -> Law:
    return Law("orthogonal", gain, scheme="orthogonal")


RANDOM_KINDS = ("normal", "uniform", "trunc_normal", "orthogonal")


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _big_phi(x: np.ndarray | float) -> Any:
    erf = np.vectorize(math.erf)
    return 0.5 * (1.0 + erf(np.asarray(x, dtype=float) / math.sqrt(2.0)))


def truncated_moments(cut: float) -> tuple[float, float]:
    """``(E[x^2], E[x^4])`` of a standard normal cut to ``[-cut, cut]``."""
    if cut > 30:
        return 1.0, 3.0
    mass = math.erf(cut / math.sqrt(2.0))
    m2 = 1.0 - 2.0 * cut * _phi(cut) / mass
    m4 = 3.0 - 2.0 * _phi(cut) * (cut**3 + 3.0 * cut) / mass
    return m2, m4


def _cut(law: Law) -> float:
    """A symmetric truncated normal's cut in std of its underlying normal."""
    assert law.low is not None and law.high is not None
    return min(-law.low, law.high) / law.scale


@dataclass(frozen=True)
class Family:
    """A zero-mean distribution shape, standardised to unit variance: ``uniform``, ``normal``,
    ``truncated`` (a normal cut at +-``cut`` of its own std), ``orthogonal`` (marginally
    normal), with ``zeros`` of its mass moved to an atom at zero."""

    name: str
    cut: float = math.inf
    zeros: float = 0.0

    def cdf(self, x: np.ndarray) -> np.ndarray:
        keep = 1.0 - self.zeros
        y = x * math.sqrt(keep)  # the continuous part's own unit-variance scale
        if self.name == "uniform":
            base = np.clip((y + math.sqrt(3.0)) / (2.0 * math.sqrt(3.0)), 0.0, 1.0)
        elif self.name == "truncated" and self.cut < 30:
            m2, _ = truncated_moments(self.cut)
            z = np.clip(y * math.sqrt(m2), -self.cut, self.cut)
            lo = _big_phi(-self.cut)
            base = (_big_phi(z) - lo) / (1.0 - 2.0 * lo)
        else:
            base = _big_phi(y)
        return keep * base + self.zeros * (x >= 0)

    def label(self) -> str:
        text = self.name if self.name != "truncated" else f"truncated at {self.cut:.3g} std"
        return text + (f" with {self.zeros:.3g} zeros" if self.zeros else "")


_GRID = np.linspace(-6.0, 6.0, 24001)


def ks_distance(a: Family, b: Family) -> float:
    """Sup distance between two standardised families' CDFs."""
    return float(np.max(np.abs(a.cdf(_GRID) - b.cdf(_GRID))))


# --- truths ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """What one tensor is, as its library's init code makes it."""

    name: str
    shape: tuple[int, ...]
    role: str | tuple[str, ...]
    fan_in: int | str | None
    fan_out: int | str | None
    law: Law
    source: str
    fan_out_without_groups: int | None = None
    also_fans: tuple[tuple[Any, Any], ...] = ()
    """Other ``(fan_in, fan_out)`` readings accepted in every format, where the convention is
    open (an RNN bias is added with both gate matrices: its fans may be either's)."""
    layout2d: str = "out-in"
    """How the orthogonal law's 2-D view is taken: ``out-in`` rows = shape[0], ``in-out``
    columns = shape[-1]."""

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def roles(self) -> tuple[str, ...]:
        return self.role if isinstance(self.role, tuple) else (self.role,)

    def matrix_shape(self) -> tuple[int, int]:
        if len(self.shape) < 2:
            return (1, self.count)
        if self.layout2d == "in-out":
            return (self.count // self.shape[-1], self.shape[-1])
        return (self.shape[0], self.count // self.shape[0])

    def variance(self) -> float:
        """The expected mean of squares of the entries."""
        law = self.law
        keep = 1.0 - law.zeros
        if law.kind == "normal":
            return keep * law.scale**2
        if law.kind == "uniform":
            return keep * law.scale**2 / 3.0
        if law.kind == "trunc_normal":
            return keep * law.scale**2 * truncated_moments(_cut(law))[0]
        if law.kind == "constant":
            return law.scale**2
        if law.kind == "orthogonal":
            return law.scale**2 / max(self.matrix_shape())
        assert law.mean_square is not None
        return law.mean_square

    def kurtosis(self) -> float:
        law = self.law
        if law.kind == "uniform":
            base = 1.8
        elif law.kind == "trunc_normal":
            m2, m4 = truncated_moments(_cut(law))
            base = m4 / m2**2
        else:
            base = 3.0
        return base / (1.0 - law.zeros)

    def family(self) -> Family | None:
        law = self.law
        if law.kind == "uniform":
            return Family("uniform", zeros=law.zeros)
        if law.kind == "normal":
            return Family("normal", zeros=law.zeros)
        if law.kind == "trunc_normal":
            return Family("truncated", _cut(law), zeros=law.zeros)
        if law.kind == "orthogonal":
            return Family("orthogonal")
        return None


# --- built models ----------------------------------------------------------------------------


@dataclass
class Built:
    """A fresh model: its tensors as the library holds them, their truths, and how to save it."""

    name: str
    framework: str  # torch | keras
    arrays: dict[str, np.ndarray]
    truths: dict[str, Truth]
    formats: tuple[str, ...]
    model: Any = None
    onnx_input: Any = None
    onnx_module: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def _check_complete(name: str, arrays: dict[str, np.ndarray], truths: dict[str, Truth]) -> None:
    missing = sorted(set(arrays) - set(truths))
    extra = sorted(set(truths) - set(arrays))
    if missing or extra:
        raise AssertionError(f"{name}: no truth for {missing}; truth for absent {extra}")
    for key, truth in truths.items():
        if tuple(arrays[key].shape) != truth.shape:
            raise AssertionError(f"{name}: {key} shape {arrays[key].shape} != {truth.shape}")


# --- torch: module fans and the defaults of torch.nn ------------------------------------------

TORCH = "torch 2.13"
T_LINEAR = f"{TORCH} nn/modules/linear.py:117 Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(in)), bias U(+-1/sqrt(fan_in))"
T_CONV = f"{TORCH} nn/modules/conv.py:182 _ConvNd.reset_parameters: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)) with init._calculate_fan_in_and_fan_out (nn/init.py:458: fan_in = weight.size(1) * rf), bias the same bound"
T_RNN = f"{TORCH} nn/modules/rnn.py:308 RNNBase.reset_parameters: every parameter U(+-1/sqrt(hidden_size))"
T_MHA = f"{TORCH} nn/modules/activation.py:1232 MultiheadAttention._reset_parameters"
T_EMBEDDING = f"{TORCH} nn/modules/sparse.py:179 Embedding.reset_parameters: normal_ (std 1), padding row zeroed"
T_NORM = f"{TORCH} nn/modules/batchnorm.py:99 _NormBase.reset_parameters: ones/zeros, running stats zeros/ones, num_batches_tracked 0"


def conv_fans(module: Any) -> tuple[int, int, int | None]:
    """``(fan_in, fan_out, fan_out read with groups = 1 or None)`` of a torch Conv/ConvTranspose."""
    rf = math.prod(module.kernel_size)
    groups = module.groups
    fan_in = module.in_channels // groups * rf
    fan_out = module.out_channels // groups * rf
    transposed = getattr(module, "transposed", False)
    # a state dict knows neither groups nor direction: the weight (out, in/g, k...) read with
    # groups = 1 gives out * rf; a transposed (in, out/g, k...) has no such reading (its own)
    alternative = module.out_channels * rf if groups > 1 and not transposed else None
    return fan_in, fan_out, alternative


def _torch_default_truths(
    prefix: str, module: Any, role: str, arrays: dict[str, np.ndarray]
) -> dict[str, Truth]:
    """Truths of one torch.nn layer at its own defaults (Linear, Conv, ConvTranspose, Embedding,
    BatchNorm, LSTM, GRU, MultiheadAttention)."""
    import torch

    nn = torch.nn
    out: dict[str, Truth] = {}

    def put(local: str, **kwargs: Any) -> None:
        key = f"{prefix}.{local}" if prefix else local
        out[key] = Truth(key, tuple(arrays[key].shape), **kwargs)

    if isinstance(module, nn.Linear):
        fan_in, fan_out = module.in_features, module.out_features
        bound = 1.0 / math.sqrt(fan_in)
        put("weight", role=role, fan_in=fan_in, fan_out=fan_out,
            law=uniform(bound, scheme="standard"), source=T_LINEAR)  # fmt: skip
        if module.bias is not None:
            put("bias", role="bias", fan_in=fan_in, fan_out=fan_out,
                law=uniform(bound, scheme="standard"), source=T_LINEAR)  # fmt: skip
    elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
        fan_in, fan_out, alternative = conv_fans(module)
        torch_fan_in = module.weight.shape[1] * math.prod(module.kernel_size)
        bound = 1.0 / math.sqrt(torch_fan_in)
        # Conv: torch's fan_in is the per-unit one, so this is `standard`; ConvTranspose: its
        # weight (in, out/g, k..) gives torch fan_in = (out/g) rf, the per-unit fan_out
        scheme = "standard" if torch_fan_in == fan_in else None
        put("weight", role="conv", fan_in=fan_in, fan_out=fan_out, law=uniform(bound, scheme=scheme),
            source=T_CONV, fan_out_without_groups=alternative)  # fmt: skip
        if module.bias is not None:
            put("bias", role="bias", fan_in=fan_in, fan_out=fan_out,
                law=uniform(bound, scheme=scheme), source=T_CONV,
                fan_out_without_groups=alternative)  # fmt: skip
    elif isinstance(module, nn.Embedding):
        zeros = 1.0 / module.num_embeddings if module.padding_idx is not None else 0.0
        put("weight", role="embedding", fan_in=module.num_embeddings,
            fan_out=module.embedding_dim, law=normal(1.0, zeros=zeros), source=T_EMBEDDING)  # fmt: skip
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        for local, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0),
                             ("running_var", 1.0), ("num_batches_tracked", 0.0)):  # fmt: skip
            put(local, role="norm", fan_in=None, fan_out=None, law=constant(value), source=T_NORM)
    elif isinstance(module, (nn.LSTM, nn.GRU)):
        gates = 4 if isinstance(module, nn.LSTM) else 3
        hidden = module.hidden_size
        bound = 1.0 / math.sqrt(hidden)
        directions = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            width = module.input_size if layer == 0 else hidden * directions
            for suffix in ("", "_reverse")[:directions]:
                for kind, fan_in in (("ih", width), ("hh", hidden)):
                    law = uniform(bound, scheme="standard" if fan_in == hidden else None)
                    fans = {"fan_in": fan_in, "fan_out": gates * hidden}
                    put(
                        f"weight_{kind}_l{layer}{suffix}",
                        role="recurrent",
                        law=law,
                        source=T_RNN,
                        **fans,
                    )
                    # b_ih and b_hh are both added to the gates' pre-activations: the fans of
                    # either gate matrix are accepted (the bias "of" weight_hh makes torch's
                    # U(+-1/sqrt(H)) the `standard` bias)
                    put(f"bias_{kind}_l{layer}{suffix}", role="bias", law=uniform(bound),
                        source=T_RNN, also_fans=((hidden, gates * hidden), (width, gates * hidden)),
                        **fans)  # fmt: skip
    elif isinstance(module, nn.MultiheadAttention):
        embed = module.embed_dim
        # xavier_uniform_ on the packed (3E, E): torch fans E -> 3E, bound sqrt(6 / 4E)
        put("in_proj_weight", role="attention", fan_in=embed, fan_out=3 * embed,
            law=uniform(math.sqrt(6.0 / (4 * embed)), scheme="normalized"),
            source=f"{T_MHA}: xavier_uniform_(in_proj_weight)")  # fmt: skip
        put("in_proj_bias", role="bias", fan_in=embed, fan_out=3 * embed, law=constant(0.0),
            source=f"{T_MHA}: constant_(in_proj_bias, 0)")  # fmt: skip
        # out_proj is a NonDynamicallyQuantizableLinear (activation.py:1218) that
        # _reset_parameters leaves at Linear's default, except its bias
        put("out_proj.weight", role="attention", fan_in=embed, fan_out=embed,
            law=uniform(1.0 / math.sqrt(embed), scheme="standard"),
            source=f"{T_MHA} leaves it at {T_LINEAR}")  # fmt: skip
        put("out_proj.bias", role="bias", fan_in=embed, fan_out=embed, law=constant(0.0),
            source=f"{T_MHA}: constant_(out_proj.bias, 0)")  # fmt: skip
        for local in ("bias_k", "bias_v"):
            # xavier_normal_ on (1, 1, E): torch fans 1*E and 1*E, std sqrt(2 / 2E)
            put(local, role=("bias", "other"), fan_in=ANY, fan_out=ANY,
                law=normal(1.0 / math.sqrt(embed)),
                source=f"{T_MHA}: xavier_normal_({local}) on (1, 1, E)")  # fmt: skip
    else:
        raise TypeError(f"no torch default truth for {type(module).__name__}")
    return out


def _state_arrays(model: Any) -> dict[str, np.ndarray]:
    return {k: _numpy(v) for k, v in model.state_dict().items()}


def _seed_torch(seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)


def build_torch_mlp() -> Built:
    import torch

    _seed_torch(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip
    arrays = _state_arrays(model)
    truths: dict[str, Truth] = {}
    for index in (0, 2, 4):
        truths.update(_torch_default_truths(str(index), model[index], "dense", arrays))
    return Built("torch_mlp", "torch", arrays, truths, ("pt", "safetensors", "onnx"), model,
                 onnx_input=torch.randn(2, 256))  # fmt: skip


def build_torch_conv() -> Built:
    from collections import OrderedDict

    import torch

    nn = torch.nn
    _seed_torch(0)
    layers = OrderedDict(
        conv=nn.Conv2d(16, 64, 3, padding=1),
        grouped=nn.Conv2d(64, 128, 3, padding=1, groups=4),
        depthwise=nn.Conv2d(128, 128, 5, padding=2, groups=128),
        up=nn.ConvTranspose2d(128, 32, 4, stride=2, padding=1),
    )
    model = nn.Sequential(layers).eval()
    arrays = _state_arrays(model)
    truths: dict[str, Truth] = {}
    for name, module in model.named_children():
        truths.update(_torch_default_truths(name, module, "conv", arrays))
    return Built("torch_conv", "torch", arrays, truths, ("pt", "safetensors", "onnx"), model,
                 onnx_input=torch.randn(1, 16, 8, 8))  # fmt: skip


def build_torch_batchnorm() -> Built:
    import torch

    _seed_torch(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, bias=False), torch.nn.BatchNorm2d(64))
    arrays = _state_arrays(model)
    truths: dict[str, Truth] = {}
    truths.update(_torch_default_truths("0", model[0], "conv", arrays))
    truths.update(_torch_default_truths("1", model[1], "norm", arrays))
    return Built("torch_batchnorm", "torch", arrays, truths, ("pt", "safetensors"), model)


def build_torch_embedding() -> Built:
    import torch

    _seed_torch(0)
    model = torch.nn.ModuleDict(
        {
            "embedding": torch.nn.Embedding(2000, 64),
            "padded_embedding": torch.nn.Embedding(500, 32, padding_idx=0),
        }
    )
    arrays = _state_arrays(model)
    truths: dict[str, Truth] = {}
    for name, module in model.items():
        truths.update(_torch_default_truths(name, module, "embedding", arrays))
    return Built("torch_embedding", "torch", arrays, truths, ("pt", "safetensors"), model)


def build_torch_lstm() -> Built:
    import torch

    _seed_torch(0)
    model = torch.nn.LSTM(48, 64, num_layers=2, bidirectional=True, batch_first=True)
    arrays = _state_arrays(model)
    truths = _torch_default_truths("", model, "recurrent", arrays)
    return Built("torch_lstm", "torch", arrays, truths, ("pt", "safetensors", "onnx"), model,
                 onnx_input=torch.randn(2, 5, 48))  # fmt: skip


def build_torch_gru() -> Built:
    import torch

    _seed_torch(0)
    model = torch.nn.GRU(48, 96)
    arrays = _state_arrays(model)
    truths = _torch_default_truths("", model, "recurrent", arrays)
    return Built("torch_gru", "torch", arrays, truths, ("pt", "safetensors"), model)


def build_torch_mha() -> Built:
    import torch

    _seed_torch(0)
    model = torch.nn.MultiheadAttention(128, 8, add_bias_kv=True)
    arrays = _state_arrays(model)
    truths = _torch_default_truths("", model, "attention", arrays)
    return Built("torch_mha", "torch", arrays, truths, ("pt", "safetensors"), model)


# --- transformers: PreTrainedModel._init_weights and each model's override ---------------------

HF = "transformers 5.25"
HF_BASE = f"{HF} modeling_utils.py:2306 PreTrainedModel._init_weights"
"""Linear/Conv1d-3d/ConvTranspose N(0, initializer_range), bias zeros; Embedding N(0, range) with
the padding row zeroed; GroupNorm/BatchNorm and classes named *LayerNorm*/*RMSNorm* ones/zeros,
running stats zeros/ones, num_batches_tracked 0. Called by post_init -> init_weights ->
initialize_weights (modeling_utils.py:1339, 3109, 2399) on every module, children first; the
torch.nn.init calls go through transformers/initialization.py, which only skips tensors
flagged _is_hf_initialized (set when loading a checkpoint, never on a fresh model)."""

Rule = Callable[[str, Any, str, Any], "tuple[str | tuple[str, ...], Law, str] | None"]


def _is_hf_norm(module: Any) -> bool:
    import torch

    nn = torch.nn
    name = type(module).__name__
    return (
        isinstance(module, (nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
        or "LayerNorm" in name
        or "RMSNorm" in name
    )


def _hf_fans(module: Any, local: str, tensor: Any) -> tuple[Any, Any, int | None]:
    """Per-unit fans of a transformers module's parameter (bias: its weight's)."""
    import torch

    nn = torch.nn
    if _is_hf_norm(module):
        return None, None, None
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features, None
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
        return conv_fans(module)
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim, None
    if type(module).__name__ == "Conv1D":  # GPT-2's (nx, nf) = (in, out)
        return module.nx, module.nf, None
    return None, None, None


def hf_truths(model: Any, rule: Rule, arrays: dict[str, np.ndarray]) -> dict[str, Truth]:
    """One truth per state-dict entry: ``rule(module_name, module, local_name, tensor)`` gives
    ``(role, law, source)``; fans come from the module (:func:`_hf_fans`)."""
    truths: dict[str, Truth] = {}
    for module_name, module in model.named_modules():
        locals_ = list(module.named_parameters(recurse=False)) + list(
            module.named_buffers(recurse=False)
        )
        for local, tensor in locals_:
            key = f"{module_name}.{local}" if module_name else local
            if key not in arrays:
                continue  # a non-persistent buffer (position_ids, inv_freq)
            found = rule(module_name, module, local, tensor)
            if found is None:
                raise AssertionError(f"no rule for {key} ({type(module).__name__})")
            role, law, source = found
            fan_in, fan_out, alternative = _hf_fans(module, local, tensor)
            if role in ("norm", "other"):
                fan_in = fan_out = None
            truths[key] = Truth(key, tuple(arrays[key].shape), role, fan_in, fan_out, law, source,
                                fan_out_without_groups=alternative)  # fmt: skip
    return truths


def hf_base_rule(std: float, role_of: Callable[[str, Any], str]) -> Rule:
    """PreTrainedModel._init_weights (modeling_utils.py:2306) for a model whose
    ``initializer_range`` is ``std``; ``role_of(module_name, module)`` names dense/attention."""
    import torch

    nn = torch.nn

    def rule(module_name: str, module: Any, local: str, tensor: Any) -> Any:
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            if local == "weight":
                return (
                    role_of(module_name, module),
                    normal(std),
                    HF_BASE + ": normal_(weight, 0, range)",
                )
            return "bias", constant(0.0), HF_BASE + ": zeros_(bias)"
        if isinstance(module, nn.Embedding):
            zeros = 1.0 / module.num_embeddings if module.padding_idx is not None else 0.0
            return (
                "embedding",
                normal(std, zeros=zeros),
                HF_BASE + ": normal_(embedding, 0, range), padding row zeros_",
            )
        if _is_hf_norm(module):
            value = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0,
                     "num_batches_tracked": 0.0}[local]  # fmt: skip
            return "norm", constant(value), HF_BASE + ": norms ones_/zeros_"
        return None

    return rule


def _attention_if(*markers: str) -> Callable[[str, Any], str]:
    """Roles by module: a conv ``conv``; a Linear under a module named one of ``markers``
    ``attention`` (q/k/v/out projections); any other Linear ``dense``."""

    def role_of(module_name: str, module: Any) -> str:
        import torch

        if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            return "conv"
        parts = module_name.split(".")
        return "attention" if any(m in parts for m in markers) else "dense"

    return role_of


_conv_role = _attention_if()


def _hf_build(name: str, cls_name: str, config: Any, rule_for: Callable[[Any, Any], Rule]) -> Built:
    import transformers

    _seed_torch(0)
    model = getattr(transformers, cls_name)(config)
    arrays = _state_arrays(model)
    truths = hf_truths(model, rule_for(model, config), arrays)
    return Built(name, "torch", arrays, truths, ("pt", "safetensors"), model)


def build_bert() -> Built:
    import transformers

    config = transformers.BertConfig(
        vocab_size=2000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=512, max_position_embeddings=256, type_vocab_size=2,
    )  # fmt: skip

    def rule_for(model: Any, config: Any) -> Rule:
        # bert/modeling_bert.py:550 BertPreTrainedModel._init_weights: super() (the base), then
        # zeros for BertLMPredictionHead.bias (absent from BertModel); word_embeddings has
        # padding_idx = pad_token_id = 0 (modeling_bert.py:59): that row is zeroed.
        # Attention: encoder.layer.N.attention.{self.query,self.key,self.value,output.dense}.
        return hf_base_rule(config.initializer_range, _attention_if("attention"))

    built = _hf_build("bert", "BertModel", config, rule_for)
    built.formats = ("pt", "safetensors", "onnx")
    built.onnx_module = _LastHidden.wrap(built.model)
    built.onnx_input = _token_ids()
    return built


def _token_ids() -> Any:
    import torch

    return torch.randint(0, 2000, (1, 8), generator=torch.Generator().manual_seed(0))


class _LastHidden:
    """A module ``ids -> last_hidden_state`` around a transformers model, for the TorchScript
    ONNX exporter (which cannot pass keyword arguments); its parameters are named ``m.<key>``."""

    @staticmethod
    def wrap(model: Any) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.m = model

            def forward(self, ids: Any) -> Any:
                return self.m(input_ids=ids).last_hidden_state

        return Wrapped().eval()


def build_gpt2() -> Built:
    import transformers

    config = transformers.GPT2Config(
        vocab_size=2000, n_embd=128, n_layer=2, n_head=4, n_positions=256,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip

    def rule_for(model: Any, config: Any) -> Rule:
        # gpt2/modeling_gpt2.py:432 GPT2PreTrainedModel._init_weights: super() (the base: wte,
        # wpe, lm_head N(0, 0.02), ln_* ones/zeros), then Conv1D weights N(0, 0.02) and biases
        # zeros, then for GPT2Attention and GPT2MLP their c_proj.weight N(0, 0.02 / sqrt(2
        # n_layer)) (the parent runs after its children). lm_head.weight is tied to wte
        # (tie_word_embeddings, modeling_utils.py tie_weights): same values, but it is the
        # nn.Linear (vocab, n_embd), so dense n_embd -> vocab. Conv1D (pytorch_utils.py:95)
        # stores (nx, nf) = (in, out). Attention: attn.c_attn and attn.c_proj only.
        std = config.initializer_range
        base = hf_base_rule(std, _attention_if("attn"))
        scaled = std / math.sqrt(2 * config.n_layer)
        source = f"{HF} gpt2/modeling_gpt2.py:432 GPT2PreTrainedModel._init_weights"

        def rule(module_name: str, module: Any, local: str, tensor: Any) -> Any:
            if type(module).__name__ == "Conv1D":
                role = "attention" if ".attn." in f".{module_name}." else "dense"
                if local == "bias":
                    return "bias", constant(0.0), source + ": zeros_(Conv1D.bias)"
                if module_name.endswith("c_proj"):
                    return role, normal(scaled), source + ": c_proj N(0, range / sqrt(2 n_layer))"
                return role, normal(std), source + ": normal_(Conv1D.weight, 0, range)"
            return base(module_name, module, local, tensor)

        return rule

    return _hf_build("gpt2", "GPT2LMHeadModel", config, rule_for)


def build_llama() -> Built:
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=2000, hidden_size=128, intermediate_size=384, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip

    def rule_for(model: Any, config: Any) -> Rule:
        # llama/modeling_llama.py:319 LlamaPreTrainedModel has no _init_weights: the base
        # alone. q/k/v/o_proj without bias, LlamaRMSNorm ones, embed_tokens without padding_idx
        # (pad_token_id None), lm_head untied (tie_word_embeddings False). The rotary inv_freq
        # buffers are not persistent. Attention: self_attn.*.
        return hf_base_rule(config.initializer_range, _attention_if("self_attn"))

    return _hf_build("llama", "LlamaForCausalLM", config, rule_for)


def build_vit() -> Built:
    import transformers

    config = transformers.ViTConfig(
        image_size=32, patch_size=4, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=512, num_channels=3,
    )  # fmt: skip

    def rule_for(model: Any, config: Any) -> Rule:
        # vit/modeling_vit.py:323 ViTPreTrainedModel._init_weights: super() (the base: every
        # Linear and the patch Conv2d N(0, 0.02), biases zeros, LayerNorms ones/zeros), then on
        # ViTEmbeddings trunc_normal_(position_embeddings / cls_token, std=0.02) with torch's
        # default absolute bounds a=-2, b=2 (nn/init.py trunc_normal_): 100 std out, a plain
        # normal in effect. Attention: layers.N.attention.{q,k,v,o}_proj.
        std = config.initializer_range
        base = hf_base_rule(std, _attention_if("attention"))
        source = f"{HF} vit/modeling_vit.py:323 ViTPreTrainedModel._init_weights: trunc_normal_(std=range) (a=-2, b=2)"

        def rule(module_name: str, module: Any, local: str, tensor: Any) -> Any:
            if type(module).__name__ == "ViTEmbeddings":
                return ("embedding", "other"), trunc_normal(std, -2.0, 2.0), source
            return base(module_name, module, local, tensor)

        return rule

    built = _hf_build("vit", "ViTModel", config, rule_for)
    for key in ("embeddings.cls_token", "embeddings.position_embeddings"):
        built.truths[key] = replace(built.truths[key], fan_in=ANY, fan_out=ANY)
    return built


def build_resnet() -> Built:
    import transformers

    config = transformers.ResNetConfig(
        embedding_size=64, hidden_sizes=[64, 128], depths=[1, 1], layer_type="bottleneck"
    )

    def rule_for(model: Any, config: Any) -> Rule:
        # resnet/modeling_resnet.py:268 ResNetPreTrainedModel._init_weights: super(), then
        # Conv2d kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / fan_out) with
        # torch's fan_out = out_channels * rf (groups 1 here: the per-unit fan_out);
        # "BatchNorm" modules ones/zeros, running stats zeros/ones, num_batches_tracked 0.
        import torch

        source = f"{HF} resnet/modeling_resnet.py:268 ResNetPreTrainedModel._init_weights"

        def rule(module_name: str, module: Any, local: str, tensor: Any) -> Any:
            if isinstance(module, torch.nn.Conv2d) and local == "weight":
                fan_out = module.out_channels * math.prod(module.kernel_size)
                return (
                    "conv",
                    normal(math.sqrt(2.0 / fan_out)),
                    source + ": kaiming_normal_(fan_out, relu)",
                )
            if "BatchNorm" in type(module).__name__:
                value = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0,
                         "num_batches_tracked": 0.0}[local]  # fmt: skip
                return "norm", constant(value), source + ": BatchNorm ones/zeros"
            return None

        return rule

    return _hf_build("resnet", "ResNetModel", config, rule_for)


def build_convnext() -> Built:
    import transformers

    config = transformers.ConvNextConfig(hidden_sizes=[64, 128], depths=[1, 1], num_stages=2)

    def rule_for(model: Any, config: Any) -> Rule:
        # convnext/modeling_convnext.py:201 ConvNextPreTrainedModel._init_weights: super() (the
        # base: patch/downsampling/depthwise Conv2d and the pwconv Linears N(0, 0.02), biases
        # zeros, ConvNextLayerNorm and LayerNorm ones/zeros), then ConvNextLayer's
        # layer_scale_parameter constant_(layer_scale_init_value = 1e-6). dwconv is a depthwise
        # Conv2d (groups = channels).
        base = hf_base_rule(config.initializer_range, _conv_role)
        source = f"{HF} convnext/modeling_convnext.py:201 ConvNextPreTrainedModel._init_weights: constant_(layer_scale_parameter, 1e-6)"

        def rule(module_name: str, module: Any, local: str, tensor: Any) -> Any:
            if local == "layer_scale_parameter":
                return ("norm", "other"), constant(config.layer_scale_init_value), source
            return base(module_name, module, local, tensor)

        return rule

    return _hf_build("convnext", "ConvNextModel", config, rule_for)


def build_mobilenet_v2() -> Built:
    import transformers

    config = transformers.MobileNetV2Config(depth_multiplier=0.35, image_size=32)

    def rule_for(model: Any, config: Any) -> Rule:
        # mobilenet_v2/modeling_mobilenet_v2.py:250 MobileNetV2PreTrainedModel has no
        # _init_weights: the base. Conv2d (bias=False) N(0, 0.02); nn.BatchNorm2d ones/zeros;
        # conv_3x3 layers are depthwise (groups = channels).
        return hf_base_rule(config.initializer_range, _conv_role)

    return _hf_build("mobilenet_v2", "MobileNetV2Model", config, rule_for)


def build_mobilenet_v1() -> Built:
    import transformers

    config = transformers.MobileNetV1Config(depth_multiplier=0.25, image_size=32)

    def rule_for(model: Any, config: Any) -> Rule:
        # mobilenet_v1/modeling_mobilenet_v1.py:124 MobileNetV1PreTrainedModel has no
        # _init_weights: the base, as for V2; every other conv is depthwise.
        return hf_base_rule(config.initializer_range, _conv_role)

    return _hf_build("mobilenet_v1", "MobileNetV1Model", config, rule_for)


def build_efficientnet() -> Built:
    import transformers

    config = transformers.EfficientNetConfig(
        width_coefficient=0.25, depth_coefficient=0.25, image_size=32, hidden_dim=256
    )

    def rule_for(model: Any, config: Any) -> Rule:
        # efficientnet/modeling_efficientnet.py:438 EfficientNetPreTrainedModel._init_weights:
        # super(), then for Linear, Conv2d AND BatchNorm2d: normal_(weight, 0, 0.02), bias
        # zeros, running stats zeros/ones, num_batches_tracked 0. So the BatchNorm scales are
        # N(0, 0.02), not ones. depthwise_conv is depthwise (groups = channels).
        import torch

        std = config.initializer_range
        base = hf_base_rule(std, _conv_role)
        source = f"{HF} efficientnet/modeling_efficientnet.py:438 EfficientNetPreTrainedModel._init_weights"

        def rule(module_name: str, module: Any, local: str, tensor: Any) -> Any:
            if isinstance(module, torch.nn.BatchNorm2d) and local == "weight":
                return "norm", normal(std), source + ": normal_(BatchNorm2d.weight, 0, range)"
            return base(module_name, module, local, tensor)

        return rule

    return _hf_build("efficientnet", "EfficientNetModel", config, rule_for)


# --- keras 3 ---------------------------------------------------------------------------------

KERAS = "keras 3.15 (src/)"
K_GLOROT = f"{KERAS} initializers/random_initializers.py:293 VarianceScaling.__call__ (glorot_uniform: scale 1, fan_avg, uniform) with compute_fans:663"
K_DENSE = f"{KERAS} layers/core/dense.py:89 Dense: kernel glorot_uniform, bias zeros"
K_CONV = f"{KERAS} layers/convolutional/base_conv.py:102 BaseConv: kernel glorot_uniform, bias zeros; compute_fans gives ((in/groups) rf, out rf)"
K_DEPTHWISE = f"{KERAS} layers/convolutional/base_depthwise_conv.py:94: depthwise_initializer glorot_uniform on (*k, in, mult): compute_fans (in rf, mult rf); bias zeros"
K_LSTM = f"{KERAS} layers/rnn/lstm.py:94 LSTMCell: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros with unit_forget_bias (lstm.py:168: [zeros(H), ones(H), zeros(2H)])"
K_GRU = f"{KERAS} layers/rnn/gru.py:92 GRUCell: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros of (2, 3H) (reset_after=True, gru.py:103)"
K_ORTHOGONAL = f"{KERAS} initializers/random_initializers.py:747 OrthogonalInitializer.__call__: QR of (max, min) normal, rows orthonormal for (H, nH)"
K_MHA = f"{KERAS} layers/attention/multi_head_attention.py:126 kernel_initializer glorot_uniform for every EinsumDense; layers/core/einsum_dense.py:187 passes the einsum's input/output axes to compute_fans"
K_EMBEDDING = f"{KERAS} layers/core/embedding.py:91 embeddings_initializer 'uniform' = RandomUniform(-0.05, 0.05) (random_initializers.py:181)"
K_NORM = f"{KERAS} layers/normalization/layer_normalization.py:111 gamma ones, beta zeros"


def _glorot_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras runs on {keras.backend.backend()}; these tests need torch")
    return keras


def _keras_truths(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Truth]]:
    """Truths of every variable of a Keras model, by its ``Variable.path``."""
    keras = _keras()
    layers = keras.layers
    arrays: dict[str, np.ndarray] = {}
    truths: dict[str, Truth] = {}

    def put(variable: Any, **kwargs: Any) -> None:
        array = variable.value.detach().cpu().numpy().copy()  # the torch backend's tensor
        arrays[variable.path] = array
        truths[variable.path] = Truth(
            variable.path, tuple(array.shape), layout2d="in-out", **kwargs
        )

    for layer in model.layers:
        if isinstance(layer, layers.InputLayer) or not layer.weights:
            continue
        if isinstance(layer, layers.Dense):
            fan_in, fan_out = layer.kernel.shape
            bound = _glorot_bound(fan_in, fan_out)
            put(layer.kernel, role="dense", fan_in=fan_in, fan_out=fan_out,
                law=uniform(bound, scheme="normalized"), source=K_DENSE + "; " + K_GLOROT)  # fmt: skip
            put(
                layer.bias,
                role="bias",
                fan_in=fan_in,
                fan_out=fan_out,
                law=constant(0.0),
                source=K_DENSE,
            )
        elif isinstance(layer, layers.DepthwiseConv2D):
            *kernel, channels, multiplier = layer.kernel.shape
            rf = math.prod(kernel)
            bound = _glorot_bound(channels * rf, multiplier * rf)
            put(layer.kernel, role="conv", fan_in=rf, fan_out=multiplier * rf, law=uniform(bound),
                source=K_DEPTHWISE)  # fmt: skip
            put(layer.bias, role="bias", fan_in=rf, fan_out=multiplier * rf, law=constant(0.0),
                source=K_DEPTHWISE)  # fmt: skip
        elif isinstance(layer, layers.Conv2D):
            *kernel, per_group_in, out = layer.kernel.shape
            rf = math.prod(kernel)
            groups = layer.groups
            bound = _glorot_bound(per_group_in * rf, out * rf)
            fans = {"fan_in": per_group_in * rf, "fan_out": out // groups * rf}
            put(layer.kernel, role="conv", law=uniform(bound, scheme="normalized" if groups == 1 else None),
                source=K_CONV + "; " + K_GLOROT, **fans)  # fmt: skip
            put(layer.bias, role="bias", law=constant(0.0), source=K_CONV, **fans)
        elif isinstance(layer, (layers.LSTM, layers.GRU)):
            cell = layer.cell
            fan_in, packed = cell.kernel.shape
            hidden = cell.units
            source = K_LSTM if isinstance(layer, layers.LSTM) else K_GRU
            put(cell.kernel, role="recurrent", fan_in=fan_in, fan_out=packed,
                law=uniform(_glorot_bound(fan_in, packed), scheme="normalized"),
                source=source + "; " + K_GLOROT)  # fmt: skip
            put(cell.recurrent_kernel, role="recurrent", fan_in=hidden, fan_out=packed,
                law=orthogonal(1.0), source=source + "; " + K_ORTHOGONAL)  # fmt: skip
            if isinstance(layer, layers.LSTM):
                law = Law("fixed", mean_square=1.0 / 4.0)  # ones on the forget gate, H of 4H
            else:
                law = constant(0.0)
            put(cell.bias, role="bias", fan_in=fan_in, fan_out=packed, law=law, source=source)
        elif isinstance(layer, layers.MultiHeadAttention):
            for sub in (layer._query_dense, layer._key_dense, layer._value_dense,
                        layer._output_dense):  # fmt: skip
                shape = tuple(sub.kernel.shape)
                if sub is layer._output_dense:  # (heads, dim, E): "abc,bcd->ad"-style
                    fan_in, fan_out = shape[0] * shape[1], shape[2]
                else:  # (E, heads, dim)
                    fan_in, fan_out = shape[0], shape[1] * shape[2]
                put(sub.kernel, role="attention", fan_in=fan_in, fan_out=fan_out,
                    law=uniform(_glorot_bound(fan_in, fan_out), scheme="normalized"), source=K_MHA)  # fmt: skip
                put(
                    sub.bias,
                    role="bias",
                    fan_in=fan_in,
                    fan_out=fan_out,
                    law=constant(0.0),
                    source=K_MHA,
                )
        elif isinstance(layer, layers.Embedding):
            count, dim = layer.embeddings.shape
            put(layer.embeddings, role="embedding", fan_in=count, fan_out=dim, law=uniform(0.05),
                source=K_EMBEDDING)  # fmt: skip
        elif isinstance(layer, layers.LayerNormalization):
            put(
                layer.gamma,
                role="norm",
                fan_in=None,
                fan_out=None,
                law=constant(1.0),
                source=K_NORM,
            )
            put(
                layer.beta, role="norm", fan_in=None, fan_out=None, law=constant(0.0), source=K_NORM
            )
        else:
            raise TypeError(f"no keras truth for {type(layer).__name__}")
    paths = [v.path for v in model.weights]
    if sorted(paths) != sorted(truths):
        raise AssertionError(f"keras truths {sorted(truths)} != weights {sorted(paths)}")
    return arrays, truths


def _keras_build(name: str, make: Callable[[Any], Any]) -> Built:
    keras = _keras()
    keras.utils.set_random_seed(0)
    model = make(keras)
    arrays, truths = _keras_truths(model)
    return Built(name, "keras", arrays, truths, ("keras", "h5"), model)


def build_keras_dense() -> Built:
    def make(keras: Any) -> Any:
        inputs = keras.Input((64,))
        x = keras.layers.Dense(256, name="dense_in")(inputs)
        x = keras.layers.LayerNormalization(name="norm")(x)
        x = keras.layers.Dense(128, name="hidden")(x)
        return keras.Model(inputs, keras.layers.Dense(10, name="head")(x))

    return _keras_build("keras_dense", make)


def build_keras_conv() -> Built:
    def make(keras: Any) -> Any:
        inputs = keras.Input((12, 12, 16))
        x = keras.layers.Conv2D(64, 3, name="conv")(inputs)
        x = keras.layers.Conv2D(64, 3, groups=4, name="grouped")(x)
        x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
        return keras.Model(inputs, x)

    return _keras_build("keras_conv", make)


def build_keras_rnn() -> Built:
    def make(keras: Any) -> Any:
        inputs = keras.Input((10, 32))
        x = keras.layers.LSTM(64, return_sequences=True, name="lstm")(inputs)
        return keras.Model(inputs, keras.layers.GRU(48, name="gru")(x))

    return _keras_build("keras_rnn", make)


def build_keras_mha() -> Built:
    def make(keras: Any) -> Any:
        inputs = keras.Input((12, 64))
        attention = keras.layers.MultiHeadAttention(num_heads=4, key_dim=32, name="mha")
        return keras.Model(inputs, attention(inputs, inputs))

    return _keras_build("keras_mha", make)


def build_keras_embedding() -> Built:
    def make(keras: Any) -> Any:
        tokens = keras.Input((8,), dtype="int32")
        return keras.Model(tokens, keras.layers.Embedding(2000, 32, name="embed")(tokens))

    return _keras_build("keras_embedding", make)


BUILDERS: dict[str, Callable[[], Built]] = {
    "bert": build_bert,
    "gpt2": build_gpt2,
    "llama": build_llama,
    "vit": build_vit,
    "resnet": build_resnet,
    "convnext": build_convnext,
    "mobilenet_v2": build_mobilenet_v2,
    "mobilenet_v1": build_mobilenet_v1,
    "efficientnet": build_efficientnet,
    "torch_mlp": build_torch_mlp,
    "torch_conv": build_torch_conv,
    "torch_batchnorm": build_torch_batchnorm,
    "torch_embedding": build_torch_embedding,
    "torch_lstm": build_torch_lstm,
    "torch_gru": build_torch_gru,
    "torch_mha": build_torch_mha,
    "keras_dense": build_keras_dense,
    "keras_conv": build_keras_conv,
    "keras_rnn": build_keras_rnn,
    "keras_mha": build_keras_mha,
    "keras_embedding": build_keras_embedding,
}

FORMATS: dict[str, tuple[str, ...]] = {
    **{name: ("pt", "safetensors") for name in BUILDERS},
    "bert": ("pt", "safetensors", "onnx"),
    "torch_mlp": ("pt", "safetensors", "onnx"),
    "torch_conv": ("pt", "safetensors", "onnx"),
    "torch_lstm": ("pt", "safetensors", "onnx"),
    **{name: ("keras", "h5") for name in BUILDERS if name.startswith("keras_")},
}
"""The formats each model is saved in (the test ids); must agree with each Built.formats."""

GROUPLESS_FORMATS = ("pt", "safetensors")
"""Formats that do not store a conv's groups."""


@cache
def build(name: str) -> Built:
    built = BUILDERS[name]()
    _check_complete(name, built.arrays, built.truths)
    assert built.formats == FORMATS[name], (name, built.formats, FORMATS[name])
    return built


# --- saving ----------------------------------------------------------------------------------


def save(
    built: Built, fmt: str, directory: Path
) -> tuple[Path, dict[str, Truth], dict[str, np.ndarray]]:
    """Write one model in one format; returns the file and the truths and arrays by the names
    the file uses."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{built.name}.{fmt}"
    if fmt == "pt":
        import torch

        torch.save(built.model.state_dict(), path)
        return path, built.truths, built.arrays
    if fmt == "safetensors":
        from safetensors.torch import save_file

        # contiguous clones: tied weights (GPT-2's lm_head and wte) become two tensors
        tensors = {k: v.detach().clone().contiguous() for k, v in built.model.state_dict().items()}
        save_file(tensors, str(path))
        return path, built.truths, built.arrays
    if fmt in ("keras", "h5"):
        built.model.save(str(path))
        return path, built.truths, built.arrays
    if fmt == "onnx":
        return _save_onnx(built, path)
    raise ValueError(fmt)


def _save_onnx(built: Built, path: Path) -> tuple[Path, dict[str, Truth], dict[str, np.ndarray]]:
    """TorchScript-based export (``dynamo=False``, no constant folding but for the LSTM):
    parameters keep their state-dict names (``m.`` before them for a wrapped transformers
    model), identical tensors are merged into one initializer (BERT's zero biases and its
    LayerNorms' ones and zeros: the name of one of them, the role of each); an LSTM is folded
    into ONNX ``LSTM`` nodes whose ``W (dirs, 4H, in)``, ``R (dirs, 4H, H)`` and ``B (dirs,
    8H)`` are new initializers, truths by node. The exporter's Constant nodes are stored
    tensors too (:func:`_onnx_constants`)."""
    import warnings

    import onnx
    import torch
    from onnx import numpy_helper

    lstm = isinstance(built.model, torch.nn.LSTM)
    module = built.onnx_module if built.onnx_module is not None else built.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (built.onnx_input,), str(path), dynamo=False,
                          do_constant_folding=lstm)  # fmt: skip
    graph = onnx.load(str(path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    if not lstm:
        prefix = "m." if built.onnx_module is not None else ""
        initializers = list(arrays)
        truths = _onnx_constants(graph, arrays)
        for name in initializers:
            key = name[len(prefix) :] if name.startswith(prefix) else name
            same = [
                k for k, a in built.arrays.items()
                if a.shape == arrays[name].shape and np.array_equal(a, arrays[name])
            ]  # fmt: skip
            assert key in same, (name, same[:3])
            truth = replace(
                built.truths[key], name=name, fan_out_without_groups=None
            )  # ONNX has `group`
            merged = {
                (built.truths[k].roles, built.truths[k].fan_in, built.truths[k].fan_out)
                for k in same
            }
            if len(merged) > 1:  # one initializer for tensors of several roles
                roles = tuple(sorted({r for k in same for r in built.truths[k].roles}))
                truth = replace(truth, role=roles, fan_in=ANY, fan_out=ANY,
                                source=truth.source + f"; merged by the exporter with {len(same) - 1} equal tensors")  # fmt: skip
            truths[name] = truth
        return path, truths, arrays
    model = built.model
    hidden = model.hidden_size
    bound = 1.0 / math.sqrt(hidden)
    source = (f"{T_RNN}; the ONNX LSTM op (torch/onnx symbolic_opset9 lstm) stacks the same "
              "draws per direction, gates reordered (i, o, f, c), B = [Wb, Rb]")  # fmt: skip
    truths = {}
    nodes = [n for n in graph.node if n.op_type == "LSTM"]
    directions = 2 if model.bidirectional else 1
    for layer, node in enumerate(nodes):
        width = model.input_size if layer == 0 else hidden * directions
        w, r, b = node.input[1], node.input[2], node.input[3]
        law_w = uniform(bound, scheme="standard" if width == hidden else None)
        truths[w] = Truth(w, tuple(arrays[w].shape), "recurrent", width, 4 * hidden, law_w, source)
        truths[r] = Truth(r, tuple(arrays[r].shape), "recurrent", hidden, 4 * hidden,
                          uniform(bound, scheme="standard"), source)  # fmt: skip
        truths[b] = Truth(b, tuple(arrays[b].shape), "bias", width, 4 * hidden, uniform(bound),
                          source, also_fans=((hidden, 4 * hidden),))  # fmt: skip
    truths.update(_onnx_constants(graph, arrays))
    unknown = sorted(set(arrays) - set(truths))
    if unknown:
        raise AssertionError(f"ONNX initializers without a truth: {unknown}")
    return path, truths, arrays


def _onnx_constants(graph: Any, arrays: dict[str, np.ndarray]) -> dict[str, Truth]:
    """Truths of the exporter's ``Constant`` nodes (shapes, indices, axes: integers), which are
    stored tensors too: role ``other``, no fans, ``constant`` when all entries are equal, else
    an ``index`` (an integer array, ``unknown`` to check). Fills ``arrays`` by output name."""
    from onnx import numpy_helper

    truths: dict[str, Truth] = {}
    source = "torch.onnx.export (dynamo=False): a Constant node the exporter wrote"
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        (attribute,) = node.attribute
        if attribute.name != "value":
            raise AssertionError(f"Constant {node.output[0]} holds {attribute.name}")
        array = numpy_helper.to_array(attribute.t)
        name = node.output[0]
        arrays[name] = array
        if array.size and np.all(array == array.flat[0]):
            law = constant(float(array.flat[0]))
        elif array.dtype.kind in "iu":
            law = Law("index")
        else:
            raise AssertionError(f"Constant {name} holds non-constant floats")
        truths[name] = Truth(name, tuple(array.shape), "other", None, None, law, source)
    return truths


# --- the truth against the drawn arrays (no xavinit) -------------------------------------------


def truth_deviations(truth: Truth, array: np.ndarray) -> list[str]:
    """Where an array contradicts its truth: wrong shape, a constant that is not, a variance
    beyond ``VARIANCE_SE`` standard errors, entries beyond a bound, a KS distance to the true
    law beyond ``2.3 / sqrt(N)`` (p about 1e-4), an orthogonal matrix that is not."""
    problems: list[str] = []
    if tuple(array.shape) != truth.shape:
        return [f"shape {array.shape} != {truth.shape}"]
    values = np.asarray(array, dtype=np.float64).ravel()
    law = truth.law
    if law.kind == "index":
        if array.dtype.kind not in "iu":
            problems.append(f"an index of dtype {array.dtype}")
        return problems
    if law.kind == "constant":
        if not np.all(values == np.asarray(law.scale, dtype=array.dtype)):
            problems.append(f"not all {law.scale:g}: {np.unique(values)[:5]}")
        return problems
    if law.kind == "fixed":
        if not math.isclose(float(np.mean(values**2)), truth.variance(), rel_tol=1e-6):
            problems.append(f"mean square {np.mean(values**2):.6g} != {truth.variance():.6g}")
        return problems
    n = values.size
    m2 = float(np.mean(values**2))
    se = math.sqrt((truth.kurtosis() - 1.0) / n)
    if abs(m2 / truth.variance() - 1.0) > VARIANCE_SE * se:
        problems.append(f"mean square {m2:.6g} vs {truth.variance():.6g} (rel SE {se:.3g})")
    if law.kind == "uniform" and np.max(np.abs(values)) > law.scale * (1 + 1e-6):
        problems.append(f"max |w| {np.max(np.abs(values)):.6g} beyond the bound {law.scale:.6g}")
    if law.kind == "trunc_normal" and (values.min() < law.low or values.max() > law.high):  # type: ignore[operator]
        problems.append("entries outside the truncation bounds")
    if law.kind == "orthogonal":
        rows, cols = truth.matrix_shape()
        matrix = values.reshape(rows, cols)
        gram = matrix @ matrix.T if rows <= cols else matrix.T @ matrix
        if not np.allclose(gram, law.scale**2 * np.eye(gram.shape[0]), atol=1e-4):
            problems.append("not orthogonal")
        return problems
    family = truth.family()
    assert family is not None
    standardised = np.sort(values / math.sqrt(truth.variance()))
    cdf = family.cdf(standardised)
    upper = np.arange(1, n + 1) / n
    lower = np.arange(0, n) / n
    distance = float(max(np.max(upper - cdf), np.max(cdf - lower)))
    if n >= MIN_ENTRIES and distance * math.sqrt(n) > 2.3:
        problems.append(
            f"KS distance {distance:.4f} to {family.label()} (sqrt(N) D = {distance * math.sqrt(n):.2f})"
        )
    return problems


# --- a trained model -------------------------------------------------------------------------


def train_mlp(steps: int = 300) -> dict[str, Any]:
    """A 64-128-128-10 MLP trained with Adam (lr 1e-3, batches of 64) for ``steps`` steps on 10
    noisy prototypes (the task of docs/check.md): its weight matrices have moved far from any
    fresh draw. One torch thread: tiny matmuls on a busy 2-core machine otherwise spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(1)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10),
        )  # fmt: skip
        prototypes = torch.randn(10, 64)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            labels = torch.randint(0, 10, (64,))
            inputs = prototypes[labels] + 0.5 * torch.randn(64, 64)
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
