"""ONNX files made by the real exporters (``torch.onnx.export``, both the TorchScript exporter and
the dynamo one, onnxruntime's quantizer, ``onnx.save_model`` with external data) read back: every
initializer and Constant tensor listed, its values equal to the torch parameter it came from, and
the role, layout, ``fan_axes`` and ``owner`` that the consuming op implies (onnx.ai/onnx/operators).
Models are tiny and exported once per module; nothing is downloaded."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_check_helpers import refused_by_cli
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.errors import XavinitError
from xavinit.formats import open_tensors
from xavinit.formats.base import TensorInfo

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

nn = torch.nn
runner = CliRunner()


# --- helpers ---------------------------------------------------------------------------------


def export(module: Any, args: tuple, path: Path, **options: Any) -> Path:
    """The TorchScript-based exporter (fast, no onnxscript), warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, **options)
    return path


def read(path: Path) -> tuple[dict[str, TensorInfo], dict[str, np.ndarray]]:
    with open_tensors(path) as source:
        infos = {info.name: info for info in source.tensors}
        arrays = {info.name: np.array(source.load(info)) for info in source.tensors}
    assert len(infos) == len(source.tensors), "names are unique"
    return infos, arrays


def held(graph: Any) -> int:
    """What an ONNX graph stores: initializers, sparse initializers and Constant nodes, with its
    subgraphs' (counted by onnx's own protos, independently of the reader)."""
    count = len(graph.initializer) + len(graph.sparse_initializer)
    for node in graph.node:
        count += node.op_type == "Constant"
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                count += held(attribute.g)
            for sub in attribute.graphs:
                count += held(sub)
    return count


def constants(graph: Any) -> dict[str, np.ndarray]:
    """The values of a graph's Constant nodes, by output name, decoded by onnx."""
    found = {}
    for node in graph.node:
        if node.op_type == "Constant":
            attribute = node.attribute[0]
            value = helper.get_attribute_value(attribute)
            found[node.output[0]] = (
                numpy_helper.to_array(value) if attribute.name == "value" else np.array(value)
            )
    return found


def param(module: Any, name: str) -> np.ndarray:
    return dict(module.state_dict())[name].detach().numpy()


def matching(arrays: dict[str, np.ndarray], value: np.ndarray) -> list[str]:
    return [
        name for name, array in arrays.items()
        if array.shape == value.shape and np.array_equal(array, value)
    ]  # fmt: skip


def hints(info: TensorInfo) -> tuple:
    return (info.role, info.layout, info.fan_axes, info.groups, info.owner)


def checks_cleanly(path: Path) -> Any:
    """``xavinit check FILE`` from the command line: exit 0, a result, no traceback."""
    result = runner.invoke(app, ["check", str(path), "-f", "json"])
    assert result.exit_code == 0, (result.exception, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    import json

    document = json.loads(result.stdout)
    return {row["name"]: row for row in document["tensors"]}


class _Output0(nn.Module):
    """An RNN or attention module that returns its first output only."""

    def __init__(self, inner: Any, attention: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.attention = attention

    def forward(self, x: Any) -> Any:
        return self.inner(x, x, x)[0] if self.attention else self.inner(x)[0]


def _randomize(module: Any, seed: int) -> Any:
    """Distinct values in every parameter and buffer (so that no exporter merges two equal
    tensors, as the dynamo exporter merges LayerNorm scales that are all ones)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dtype.is_floating_point:
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator).abs())
    return module


# --- models, exported once ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> dict[str, tuple[Path, Any]]:
    """Small torch.nn models through the TorchScript exporter (what most shipped ONNX files
    were made with)."""
    folder = tmp_path_factory.mktemp("legacy")
    torch.manual_seed(0)
    made: dict[str, tuple[Path, Any]] = {}

    def add(name: str, module: Any, x: Any, **options: Any) -> None:
        made[name] = (export(module, (x,), folder / f"{name}.onnx", **options), module)

    mlp = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    add("mlp", mlp, torch.randn(2, 8))  # Gemm, transB=1
    add("mlp3d", mlp, torch.randn(2, 3, 8))  # MatMul with W.T folded into a new initializer
    add("mlp_transposed", mlp, torch.randn(2, 3, 8), do_constant_folding=False)  # Transpose(W)
    add("conv", nn.Sequential(
        nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 6, 1),
    ), torch.randn(1, 4, 9, 9))  # fmt: skip
    add("deconv", nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), torch.randn(1, 4, 5, 5))
    add("deconv1", nn.ConvTranspose2d(4, 6, 3), torch.randn(1, 4, 5, 5))
    add("bn", _randomize(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), 1),
        torch.randn(1, 3, 6, 6), do_constant_folding=False)  # fmt: skip
    add("lstm", _Output0(nn.LSTM(5, 7, bidirectional=True)), torch.randn(3, 2, 5))
    add("gru", _Output0(nn.GRU(5, 7)), torch.randn(3, 2, 5))
    add("mha", _Output0(nn.MultiheadAttention(16, 2), attention=True), torch.randn(3, 2, 16))
    add("emb", _randomize(nn.Sequential(nn.Embedding(20, 8), nn.LayerNorm(8)), 2),
        torch.tensor([[1, 2, 3]]))  # fmt: skip
    made["ops"] = (
        export(_Ops(), (torch.randn(2, 4), torch.tensor([1, 2])), folder / "ops.onnx",
               do_constant_folding=False),
        None,
    )  # fmt: skip
    return made


class _Ops(nn.Module):
    """Weights reaching their op by other roads: as MatMul's FIRST input, through a Cast, as an
    Einsum operand, and a table gathered after a Transpose."""

    def __init__(self) -> None:
        super().__init__()
        self.w_first = nn.Parameter(torch.randn(6, 4))
        self.w_cast = nn.Parameter(torch.randn(4, 6, dtype=torch.float64))
        self.w_einsum = nn.Parameter(torch.randn(5, 4))
        self.table = nn.Parameter(torch.randn(4, 10))

    def forward(self, x: Any, ids: Any) -> Any:
        first = (self.w_first @ x.T).T  # MatMul(W, Transpose(x))
        cast = x @ self.w_cast.float()  # MatMul(x, Cast(W))
        einsum = torch.einsum("bi,oi->bo", x, self.w_einsum)
        gathered = self.table.T[ids]  # Gather(Transpose(table), ids)
        return first.sum() + cast.sum() + einsum.sum() + gathered.sum()


class _CausalLM(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: Any) -> Any:
        return self.model(input_ids=ids, use_cache=False).logits


@pytest.fixture(scope="module")
def hugging_face(tmp_path_factory) -> dict[str, tuple[Path, Any]]:
    """A one-layer GPT-2 and Llama (no download) through the dynamo exporter, weights in
    ``model.onnx.data`` (``external_data=True``). The TorchScript exporter cannot export them
    (transformers' causal-mask code uses ``aten::diff``)."""
    pytest.importorskip("onnxscript", reason="torch.onnx's dynamo exporter needs onnxscript")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    models = {
        "gpt2": transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=1, n_embd=32, n_head=2, vocab_size=100, n_positions=16,
        )),
        "llama": transformers.LlamaForCausalLM(transformers.LlamaConfig(
            num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
            num_key_value_heads=2, vocab_size=100, max_position_embeddings=16,
        )),
    }  # fmt: skip
    made = {}
    for name, model in models.items():
        model = _randomize(model.eval(), 3)
        path = folder / name / "model.onnx"
        path.parent.mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _CausalLM(model), (torch.tensor([[1, 2, 3, 4]]),), str(path), dynamo=True,
                external_data=True, verbose=False,
            )  # fmt: skip
        made[name] = (path, model)
    return made


# --- every stored tensor is listed, with the values onnx itself decodes -------------------------


@pytest.mark.parametrize(
    "name",
    ["mlp", "mlp3d", "mlp_transposed", "conv", "deconv", "bn", "lstm", "gru", "mha", "emb", "ops"],
)
def test_every_initializer_and_constant_is_listed_with_its_values(legacy, name):
    path, _ = legacy[name]
    graph = onnx.load(str(path)).graph
    infos, arrays = read(path)
    assert len(infos) == held(graph)
    for tensor in graph.initializer:
        assert np.array_equal(arrays[tensor.name], numpy_helper.to_array(tensor)), tensor.name
    for output, value in constants(graph).items():
        assert np.array_equal(arrays[output], value), output
        assert infos[output].role == "other", (output, infos[output])  # shapes, axes, states


# --- layouts and roles from the consuming op ------------------------------------------------------


def test_linear_layers_by_gemm_matmul_and_a_transposed_matmul(legacy):
    _, mlp = legacy["mlp"]
    w0, b0 = param(mlp, "0.weight"), param(mlp, "0.bias")
    infos, arrays = read(legacy["mlp"][0])  # Gemm(x, W, b, transB=1): W (out, in)
    assert np.array_equal(arrays["0.weight"], w0) and np.array_equal(arrays["0.bias"], b0)
    assert hints(infos["0.weight"]) == ("dense", "out-in", ((1,), (0,)), None, None)
    assert hints(infos["0.bias"])[::4] == ("bias", "0.weight")

    infos, arrays = read(legacy["mlp3d"][0])  # MatMul(x, W.T) with W.T a new initializer
    (folded,) = matching(arrays, w0.T)
    assert hints(infos[folded]) == ("dense", "in-out", ((0,), (1,)), None, None)
    assert (infos["0.bias"].role, infos["0.bias"].owner) == ("bias", folded)  # Add(b, MatMul)

    infos, arrays = read(legacy["mlp_transposed"][0])  # MatMul(x, Transpose(W))
    assert np.array_equal(arrays["0.weight"], w0)
    assert hints(infos["0.weight"]) == ("dense", "out-in", ((1,), (0,)), None, None)
    assert "Transpose" in infos["0.weight"].note
    assert (infos["2.bias"].role, infos["2.bias"].owner) == ("bias", "2.weight")


def test_grouped_depthwise_and_transposed_convolutions(legacy):
    path, model = legacy["conv"]
    infos, arrays = read(path)
    for index, groups in ((0, 2), (1, 8), (2, 1)):
        weight = f"{index}.weight"
        assert np.array_equal(arrays[weight], param(model, weight))
        # (M, C/group, *kernel): out-in with its groups; the layout path divides by them
        assert hints(infos[weight]) == ("conv", "out-in", None, groups, None)
        assert (infos[f"{index}.bias"].role, infos[f"{index}.bias"].owner) == ("bias", weight)

    for name, groups in (("deconv", 2), ("deconv1", 1)):
        path, model = legacy[name]
        infos, arrays = read(path)
        assert arrays["weight"].shape == (4, 6 // groups, 3, 3)  # (C_in, M/group, kH, kW)
        assert np.array_equal(arrays["weight"], param(model, "weight"))
        # ONNX ConvTranspose: axis 0 is the input channels, axis 1 the outputs
        assert hints(infos["weight"]) == ("conv", "out-in", ((0, 2, 3), (1, 2, 3)), groups, None)
        assert "axis 0" in infos["weight"].note
        assert infos["bias"].owner == "weight"


def _gates(array: np.ndarray, order: list[int]) -> np.ndarray:
    blocks = np.split(array, len(order), axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)


@pytest.mark.parametrize(
    ("name", "order", "suffixes"),
    [
        ("lstm", [0, 3, 1, 2], ["", "_reverse"]),  # torch i f g o -> ONNX i o f c
        ("gru", [1, 0, 2], [""]),  # torch r z n -> ONNX z r h
    ],
)
def test_recurrent_w_r_and_b_follow_the_operator_spec(legacy, name, order, suffixes):
    path, model = legacy[name]
    (node,) = [n for n in onnx.load(str(path)).graph.node if n.op_type == name.upper()]
    w, r, b = node.input[1:4]
    infos, arrays = read(path)
    gates = len(order)
    expected_w = np.stack([_gates(param(model, f"inner.weight_ih_l0{s}"), order) for s in suffixes])
    expected_r = np.stack([_gates(param(model, f"inner.weight_hh_l0{s}"), order) for s in suffixes])
    expected_b = np.stack([
        np.concatenate([_gates(param(model, f"inner.bias_ih_l0{s}"), order),
                        _gates(param(model, f"inner.bias_hh_l0{s}"), order)])
        for s in suffixes
    ])  # fmt: skip
    assert arrays[w].shape == (len(suffixes), gates * 7, 5)  # [directions, gates*hidden, input]
    assert arrays[r].shape == (len(suffixes), gates * 7, 7)  # [directions, gates*hidden, hidden]
    assert arrays[b].shape == (len(suffixes), 2 * gates * 7)
    assert np.array_equal(arrays[w], expected_w) and np.array_equal(arrays[r], expected_r)
    assert np.array_equal(arrays[b], expected_b)
    for tensor in (w, r):
        assert hints(infos[tensor]) == ("recurrent", "out-in", ((2,), (1,)), None, None)
    assert (infos[b].role, infos[b].owner) == ("bias", r)
    states = [n for n in node.input[4:] if n]  # sequence_lens, initial_h (an Expand of a Constant)
    assert states and all(n not in infos for n in states)
    zero_state = [n for n, i in infos.items() if i.shape[-1:] == (7,) and i.role == "other"]
    assert zero_state and all(not arrays[n].any() for n in zero_state)


def test_multihead_attention_norms_and_embeddings(legacy):
    path, model = legacy["mha"]
    infos, arrays = read(path)
    # the projections whose outputs meet in q k^T and p v, and the one projecting p v: attention
    (packed,) = matching(arrays, param(model, "inner.in_proj_weight").T)  # (E, 3E) for MatMul
    assert hints(infos[packed]) == ("attention", "in-out", ((0,), (1,)), None, None)
    assert (infos["inner.in_proj_bias"].role, infos["inner.in_proj_bias"].owner) == ("bias", packed)
    out = infos["inner.out_proj.weight"]
    assert hints(out) == ("attention", "out-in", ((1,), (0,)), None, None)

    path, model = legacy["emb"]
    infos, arrays = read(path)
    assert np.array_equal(arrays["0.weight"], param(model, "0.weight"))
    # Gather(table, ids) is one_hot(ids) @ table: the gathered axis is the input
    table = infos["0.weight"]
    assert (table.role, table.layout, table.fan_axes) == ("embedding", "out-in", ((0,), (1,)))
    assert infos["1.weight"].role == infos["1.bias"].role == "norm"

    path, model = legacy["bn"]
    infos, arrays = read(path)
    for name in ("1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert np.array_equal(arrays[name], param(model, name)) and infos[name].role == "norm"


def test_weights_through_cast_einsum_transpose_and_as_first_matmul_input(legacy):
    path, _ = legacy["ops"]
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"MatMul", "Cast", "Einsum", "Transpose", "Gather"} <= ops
    infos, arrays = read(path)
    assert arrays["w_cast"].dtype == np.float64
    assert hints(infos["w_first"]) == ("dense", "out-in", ((1,), (0,)), None, None)
    assert "first input" in infos["w_first"].note
    assert hints(infos["w_cast"]) == ("dense", "in-out", ((0,), (1,)), None, None)
    assert hints(infos["w_einsum"]) == ("dense", "out-in", ((1,), (0,)), None, None)  # "oi"
    table = infos["table"]  # (dim, rows): Gather(Transpose(table), ids)
    assert (table.role, table.layout, table.fan_axes) == ("embedding", "in-out", ((1,), (0,)))


def test_subgraphs_of_a_scripted_if_see_the_outer_weights(tmp_path):
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(4, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if bool(x.sum() > 0):
                return self.a(x) * 2.0
            return self.b(x)

    model = Branches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated, and still exported
        scripted = torch.jit.script(model)
    path = export(scripted, (torch.randn(2, 4),), tmp_path / "if.onnx")
    graph = onnx.load(str(path)).graph
    assert any(n.op_type == "If" for n in graph.node)
    infos, arrays = read(path)
    assert len(infos) == held(graph)
    for layer in ("a", "b"):  # consumed by a Gemm inside a branch
        assert np.array_equal(arrays[f"{layer}.weight"], param(model, f"{layer}.weight"))
        assert hints(infos[f"{layer}.weight"]) == ("dense", "out-in", ((1,), (0,)), None, None)
        assert infos[f"{layer}.bias"].owner == f"{layer}.weight"
    inner = [n for n in infos if "/then_branch/" in n]  # the branch's Constant 2.0, prefixed
    assert len(inner) == 1 and arrays[inner[0]] == np.float32(2.0)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> dict[str, Any]:
    """An MLP through onnxruntime's quantizer: static QDQ (per-channel int8 weights behind
    DequantizeLinear) and dynamic (MatMulInteger)."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    import logging

    folder = tmp_path_factory.mktemp("quantized")
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    source = export(model, (torch.randn(2, 8),), folder / "float.onnx", input_names=["x"])

    class Samples(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.samples = iter([{"x": rng.standard_normal((2, 8)).astype(np.float32)}] * 4)

        def get_next(self) -> Any:
            return next(self.samples, None)

    made = {"qdq": folder / "qdq.onnx", "dynamic": folder / "dynamic.onnx"}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's advice on pre-processing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantization.quantize_static(
                str(source), str(made["qdq"]), Samples(), per_channel=True,
                quant_format=quantization.QuantFormat.QDQ,
                weight_type=quantization.QuantType.QInt8,
            )  # fmt: skip
            quantization.quantize_dynamic(str(source), str(made["dynamic"]))
    finally:
        root.setLevel(level)
    return {**made, "model": model}


def test_quantized_weights_are_listed_as_int8_with_their_role(quantized):
    infos, arrays = read(quantized["qdq"])  # DequantizeLinear(int8, scale, zero) -> Gemm
    weight = infos["0.weight_quantized"]
    assert weight.dtype == "int8" and hints(weight) == ("dense", "out-in", ((1,), (0,)), None, None)
    assert "DequantizeLinear" in weight.note
    for name in ("0.weight_scale", "0.weight_zero_point", "x_scale"):
        assert infos[name].role == "other"
    assert (infos["0.bias_quantized"].role, infos["0.bias_quantized"].owner) == (
        "bias", "0.weight_quantized",
    )  # fmt: skip
    # per output channel (axis 0): (q - zero) * scale is the float weight, to half a step
    scale = arrays["0.weight_scale"][:, None]
    steps = arrays["0.weight_quantized"].astype(np.float64) - arrays["0.weight_zero_point"][:, None]
    assert np.all(np.abs(steps * scale - param(quantized["model"], "0.weight")) <= scale / 2 + 1e-7)

    infos, _ = read(quantized["dynamic"])  # MatMulInteger(x, W.T int8)
    (name,) = [n for n, i in infos.items() if i.dtype in ("int8", "uint8") and i.role == "dense"][
        :1
    ]
    assert infos[name].layout == "in-out" and infos[name].fan_axes == ((0,), (1,))
    assert infos["0.bias"].owner == name


# --- weights stored as Constant nodes, sparse tensors, in subgraphs ----------------------------


def _as_constants(graph: Any, forms: bool) -> None:
    """Move every initializer into a Constant node, as silero-vad's and RapidOCR's models store
    their weights; with ``forms``, also the attribute forms ``value_float(s)``/``value_int(s)``
    and ``sparse_value``."""
    nodes = []
    used_sparse = False
    for tensor in graph.initializer:
        value = numpy_helper.to_array(tensor)
        name = tensor.name
        if forms and value.dtype == np.float32 and value.ndim == 1:
            node = helper.make_node("Constant", [], [name], value_floats=value.tolist())
        elif forms and value.dtype == np.int64 and value.ndim == 1:
            node = helper.make_node("Constant", [], [name], value_ints=value.tolist())
        elif forms and value.dtype == np.float32 and value.ndim == 0:
            node = helper.make_node("Constant", [], [name], value_float=float(value))
        elif forms and value.ndim == 4 and not used_sparse:
            used_sparse = True
            flat = np.flatnonzero(value)
            sparse = helper.make_sparse_tensor(
                numpy_helper.from_array(value.reshape(-1)[flat], name),
                numpy_helper.from_array(flat.astype(np.int64), name + "_indices"),
                list(value.shape),
            )
            node = helper.make_node("Constant", [], [name], sparse_value=sparse)
        else:
            node = helper.make_node("Constant", [], [name], value=tensor)
        nodes.append(node)
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    del graph.initializer[:]
    del graph.input[:]
    graph.input.extend(inputs)
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", ["conv", "mlp", "lstm", "deconv"])
@pytest.mark.parametrize("forms", [False, True], ids=["value", "all-forms"])
def test_weights_in_constant_nodes_read_as_initializers_do(legacy, name, forms, tmp_path):
    path, _ = legacy[name]
    model = onnx.load(str(path))
    _as_constants(model.graph, forms)
    moved = tmp_path / "constants.onnx"
    onnx.save_model(model, str(moved))
    assert not model.graph.initializer
    before, values = read(path)
    after, found = read(moved)
    assert set(after) == set(before) and len(after) == held(model.graph)
    for tensor, info in before.items():
        assert np.array_equal(found[tensor], values[tensor]), tensor
        assert found[tensor].dtype == values[tensor].dtype
        assert hints(after[tensor]) == hints(info), tensor
    x = (
        np.random.default_rng(0)
        .standard_normal(
            {"conv": (1, 4, 9, 9), "mlp": (2, 8), "lstm": (3, 2, 5), "deconv": (1, 4, 5, 5)}[name]
        )
        .astype(np.float32)
    )
    assert np.allclose(_run(moved, x), _run(path, x), atol=1e-6)  # the same model, for onnxruntime


def _prefixed(graph: Any, prefix: str, keep: set[str]) -> Any:
    """A copy of a graph with every value renamed ``prefix + name`` except ``keep`` (outer
    inputs), as exporters inline modules into If branches."""
    copy = onnx.GraphProto()
    copy.CopyFrom(graph)

    def rename(name: str) -> str:
        return name if not name or name in keep else prefix + name

    for node in copy.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for tensor in copy.initializer:
        tensor.name = rename(tensor.name)
    for value in copy.output:
        value.name = rename(value.name)
    del copy.input[:]
    return copy


def test_initializers_and_constants_inside_if_branches(legacy, tmp_path):
    """The layout of silero-vad's default model: the main graph holds an If whose branches hold
    every weight (one branch as Constant nodes, the other as initializers of the subgraph)."""
    path, _ = legacy["conv"]
    original = onnx.load(str(path))
    graph = original.graph
    keep = {i.name for i in graph.input}
    constant_branch = _prefixed(graph, "t_", keep)
    _as_constants(constant_branch, forms=True)
    initializer_branch = _prefixed(graph, "e_", keep)
    outputs = [o.name for o in graph.output]
    nodes = [
        helper.make_node("Constant", [], ["flag"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["flag"], outputs, name="branch",
                         then_branch=constant_branch, else_branch=initializer_branch),
    ]  # fmt: skip
    wrapped = helper.make_model(
        helper.make_graph(nodes, "wrapped", list(graph.input), list(graph.output)),
        opset_imports=list(original.opset_import),
    )
    onnx.checker.check_model(wrapped)
    moved = tmp_path / "branches.onnx"
    onnx.save_model(wrapped, str(moved))
    infos, arrays = read(moved)
    assert len(infos) == held(wrapped.graph) == 1 + 2 * len(graph.initializer)
    for tensor in graph.initializer:
        value = numpy_helper.to_array(tensor)
        for branch, prefix in (("then_branch", "t_"), ("else_branch", "e_")):
            name = f"branch/{branch}/{prefix}{tensor.name}"
            assert np.array_equal(arrays[name], value), name
    weight = infos["branch/else_branch/e_1.weight"]
    assert (weight.role, weight.layout, weight.groups) == ("conv", "out-in", 8)
    assert infos["branch/then_branch/t_1.bias"].owner == "branch/then_branch/t_1.weight"
    x = np.random.default_rng(1).standard_normal((1, 4, 9, 9)).astype(np.float32)
    assert np.allclose(_run(moved, x), _run(path, x), atol=1e-6)


def test_sparse_initializers_are_made_dense(legacy, tmp_path):
    path, _ = legacy["mlp"]
    model = onnx.load(str(path))
    (tensor,) = [t for t in model.graph.initializer if t.name == "2.weight"]
    value = numpy_helper.to_array(tensor).copy()
    value[:, ::2] = 0
    rows, cols = np.nonzero(value)
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(value[rows, cols], "2.weight"),
        numpy_helper.from_array(np.stack([rows, cols], axis=1).astype(np.int64), "2.weight_idx"),
        list(value.shape),
    )  # indices of shape [NNZ, rank]
    model.graph.initializer.remove(tensor)
    model.graph.sparse_initializer.append(sparse)
    moved = tmp_path / "sparse.onnx"
    onnx.save_model(model, str(moved))
    infos, arrays = read(moved)
    assert len(infos) == held(model.graph)
    assert np.array_equal(arrays["2.weight"], value)
    assert hints(infos["2.weight"]) == ("dense", "out-in", ((1,), (0,)), None, None)


def test_a_model_without_weights_says_so(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "bare",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )  # fmt: skip
    path = tmp_path / "bare.onnx"
    onnx.save_model(helper.make_model(graph), str(path))
    with pytest.raises(XavinitError, match="holds no weight tensors"):
        open_tensors(path)
    refused_by_cli(path, "holds no weight tensors", tmp_path)


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external"])
def test_bfloat16_float16_and_int4_weights(tmp_path, external):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    stored = {
        "bf16": w.astype(ml_dtypes.bfloat16),
        "half": w.astype(np.float16),
        "int4": np.clip(np.round(3 * w), -8, 7).astype(ml_dtypes.int4),
    }
    nodes = [helper.make_node("Cast", ["bf16"], ["c"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["x", "c"], ["y"])]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        initializer=[numpy_helper.from_array(v, k) for k, v in stored.items()],
    )  # fmt: skip
    path = tmp_path / "typed.onnx"
    options = dict(save_as_external_data=True, location="typed.data", size_threshold=0)
    onnx.save_model(helper.make_model(graph), str(path), **(options if external else {}))
    infos, arrays = read(path)
    assert (infos["bf16"].dtype, arrays["bf16"].dtype) == ("bfloat16", np.float32)
    assert np.array_equal(arrays["bf16"], stored["bf16"].astype(np.float32))
    assert hints(infos["bf16"]) == ("dense", "in-out", ((0,), (1,)), None, None)  # Cast -> MatMul
    assert arrays["half"].dtype == np.float16 and np.array_equal(arrays["half"], stored["half"])
    # int4 is read as int8 (numpy's own "int4" would mean int32)
    assert (infos["int4"].dtype, arrays["int4"].dtype) == ("int8", np.int8)
    assert np.array_equal(arrays["int4"], stored["int4"].astype(np.int8))


# --- external data ------------------------------------------------------------------------------


@pytest.fixture
def external(legacy, tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """The LSTM model with every tensor, Constant values too, in one ``model.onnx.data``."""
    path, _ = legacy["lstm"]
    _, inline = read(path)
    model = onnx.load(str(path))
    folder = tmp_path / "model"
    folder.mkdir()
    target = folder / "model.onnx"
    onnx.save_model(
        model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
        location="model.onnx.data", size_threshold=0, convert_attribute=True,
    )  # fmt: skip
    return target, inline


def _external_entries(path: Path) -> tuple[Any, list[Any]]:
    model = onnx.load(str(path), load_external_data=False)
    from onnx.external_data_helper import _get_all_tensors

    return model, [t for t in _get_all_tensors(model) if t.data_location == TensorProto.EXTERNAL]


def test_external_data_in_one_file_with_offsets_reads_end_to_end(external):
    path, inline = external
    _, stored = _external_entries(path)
    offsets = {int(e.value) for t in stored for e in t.external_data if e.key == "offset"}
    assert len(stored) > 5 and len(offsets) == len(stored) and max(offsets) > 0
    assert {e.value for t in stored for e in t.external_data if e.key == "location"} == {
        "model.onnx.data"
    }
    assert sorted(os.listdir(path.parent)) == ["model.onnx", "model.onnx.data"]
    _, arrays = read(path)
    assert set(arrays) == set(inline)
    for name, value in inline.items():
        assert arrays[name].dtype == value.dtype and np.array_equal(arrays[name], value), name
    checks_cleanly(path)


def _corrupt_last(path: Path, change: Callable[[dict[str, str]], None]) -> None:
    """Edit the external-data entry of the LAST external tensor (a reader that read lazily would
    already have read the others)."""
    model, _ = _external_entries(path)
    from onnx.external_data_helper import _get_all_tensors

    last = [t for t in _get_all_tensors(model) if t.data_location == TensorProto.EXTERNAL][-1]
    entries = {e.key: e.value for e in last.external_data}
    change(entries)
    del last.external_data[:]
    for key, value in entries.items():
        last.external_data.add(key=key, value=value)
    with open(path, "wb") as stream:
        stream.write(model.SerializeToString())


def _outside(path: Path) -> Path:
    secret = path.parent.parent / "secret.bin"
    secret.write_bytes(b"\0" * 4096)
    return secret


HOSTILE: dict[str, tuple[Callable[[Path, dict[str, str]], None], str]] = {
    "parent": (lambda p, e: e.update(location="../../etc/passwd"), "leaves the model's folder"),
    "absolute": (lambda p, e: e.update(location=str(_outside(p))), "leaves the model's folder"),
    "symlink": (
        lambda p, e: (
            os.symlink(_outside(p), p.parent / "link.bin"),
            e.update(location="link.bin"),
        ),
        "leaves the model's folder",
    ),
    "missing": (lambda p, e: e.update(location="gone.bin"), "is missing"),
    "offset": (
        lambda p, e: e.update(offset=str(os.path.getsize(p.parent / "model.onnx.data"))),
        "runs past the end",
    ),
    "length": (
        lambda p, e: e.update(length=str(os.path.getsize(p.parent / "model.onnx.data") * 2)),
        "runs past the end",
    ),
    "short": (lambda p, e: e.update(length="4"), "cannot hold"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_external_data_is_refused_before_anything_is_read(external, case, monkeypatch):
    path, _ = external
    change, message = HOSTILE[case]
    _corrupt_last(path, lambda entries: change(path, entries))
    read_any: list[str] = []
    monkeypatch.setattr(np, "memmap", lambda *a, **k: read_any.append("memmap"))
    with pytest.raises(XavinitError, match=message):
        open_tensors(path)  # refused on opening: no tensor was read
    assert not read_any
    monkeypatch.undo()
    refused_by_cli(path, message, path.parent)


# --- Hugging Face transformers through the dynamo exporter --------------------------------------


def test_gpt2_every_weight_its_values_and_hints(hugging_face):
    path, model = hugging_face["gpt2"]
    graph = onnx.load(str(path), load_external_data=False).graph
    infos, arrays = read(path)
    assert len(infos) == held(graph)
    state = {f"model.{k}": v.detach().numpy() for k, v in model.state_dict().items()}
    named = [n for n in infos if n in state]
    assert len(named) >= 15
    for name in named:
        assert np.array_equal(arrays[name], state[name]), name
    block = "model.transformer.h.0"
    for layer in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):  # Conv1D: (in, out)
        weight = f"{block}.{layer}.weight"
        role = "attention" if layer.startswith("attn") else "dense"  # found from the graph
        assert hints(infos[weight]) == (role, "in-out", ((0,), (1,)), None, None)
        assert (infos[f"{block}.{layer}.bias"].role, infos[f"{block}.{layer}.bias"].owner) == (
            "bias", weight,
        )  # fmt: skip
    for norm in ("ln_1", "ln_2"):
        assert infos[f"{block}.{norm}.weight"].role == infos[f"{block}.{norm}.bias"].role == "norm"
    tied = infos["model.lm_head.weight"]  # tied to wte, gathered first
    assert (tied.role, tied.fan_axes) == ("embedding", ((0,), (1,)))
    (head,) = matching(arrays, state["model.lm_head.weight"].T)  # the logits' MatMul
    assert hints(infos[head]) == ("dense", "in-out", ((0,), (1,)), None, None)
    masks = [n for n, a in arrays.items() if a.ndim == 4 and a.min() <= np.finfo(np.float32).min]
    assert masks and all(infos[n].role == "other" for n in masks)  # the causal mask
    for name, info in infos.items():  # every weight is a parameter, as stored or transposed
        if info.role in ("dense", "attention", "embedding"):
            assert any(
                np.array_equal(arrays[name], v) or np.array_equal(arrays[name], v.T)
                for v in state.values() if v.ndim == 2
            ), name  # fmt: skip
    rows = checks_cleanly(path)
    assert rows[f"{block}.attn.c_attn.weight"]["fan_in"] == 32
    assert rows[f"{block}.attn.c_attn.weight"]["fan_out"] == 96


def test_llama_projections_norms_and_masks(hugging_face):
    path, model = hugging_face["llama"]
    graph = onnx.load(str(path), load_external_data=False).graph
    infos, arrays = read(path)
    assert len(infos) == held(graph)
    state = {f"model.{k}": v.detach().numpy() for k, v in model.state_dict().items()}
    for name, value in state.items():
        if name.endswith("proj.weight") or name.endswith("lm_head.weight"):
            (stored,) = matching(arrays, value.T)  # MatMul(x, W.T), under a new name
            role = "attention" if ".self_attn." in name else "dense"  # q, k, v, o: from the graph
            assert hints(infos[stored]) == (role, "in-out", ((0,), (1,)), None, None), name
        elif "norm" in name:  # RMSNorm written out: x * 1/sqrt(mean(x^2) + eps) * weight
            assert np.array_equal(arrays[name], value) and infos[name].role == "norm", name
        elif "embed_tokens" in name:
            assert infos[name].role == "embedding"
    masks = [n for n, a in arrays.items() if a.ndim == 4 and a.min() <= np.finfo(np.float32).min]
    assert masks and all(infos[n].role == "other" for n in masks)
    rotary = [n for n, i in infos.items() if i.shape == (1, 1, 4, 16)]  # cos and sin tables
    assert rotary and all(infos[n].role == "other" for n in rotary)
    checks_cleanly(path)


# --- the command line on every exported model ---------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "conv", "deconv", "bn", "lstm", "gru", "mha", "emb"])
def test_check_runs_on_each_exported_model(legacy, name):
    rows = checks_cleanly(legacy[name][0])
    assert len(rows) == len(read(legacy[name][0])[0])


def test_check_runs_on_quantized_models(quantized):
    for name in ("qdq", "dynamic"):
        checks_cleanly(quantized[name])


# --- the ONNX files of real packages, where installed -------------------------------------------


def _package_models(package: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(root.rglob("*.onnx"))


def test_shipped_models_list_every_weight():
    """silero-vad (a test dependency) keeps its weights in Constant nodes inside If branches:
    every one is listed, and every conv, dense and recurrent weight gets its role. (RapidOCR's
    models, Constant nodes too, passed the same test where installed; it pulls in OpenCV, so it
    is not a test dependency.)"""
    models = _package_models("silero_vad")
    assert models
    for path in models:
        graph = onnx.load(str(path), load_external_data=False).graph
        infos, _ = read(path)
        assert len(infos) == held(graph), path.name
        roles = {i.role for i in infos.values()}
        assert "conv" in roles, path.name
        for info in infos.values():  # no float weight of 2+ dims left to a guess
            if info.dtype.startswith("float") and len(info.shape) >= 2 and info.size >= 64:
                assert info.role is not None, (path.name, info)
