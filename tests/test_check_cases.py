"""The cases a CI job meets on day one with ``xavinit check`` (issue 19), each built with the
real library that makes it: a ViT's N(0, 1e-6) biases, a clamp at an absolute bound, a
truncation that lets one entry through, He's fan_out rule, a rank-1 update at the Bai-Yin
edge, small 1x1 convolutions after training, shipped trained weights, per-glob layouts, role
selection and the failures that must stay inside one tensor."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.core.roles import describe, guess_role
from xavinit.errors import XavinitError
from xavinit.experiments.check import check_weights

runner = CliRunner()


def rows_of(result) -> dict:
    return {row.name: row for row in result.tensors}


def run_cli(*args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["check", *args, "-q", "-f", "json"])
    document = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, document, result.stderr


def torch_array(shape: tuple[int, ...], init, seed: int) -> np.ndarray:
    """A tensor drawn by one of torch.nn.init's own functions."""
    torch.manual_seed(seed)
    tensor = torch.empty(shape)
    init(tensor)
    return tensor.numpy().copy()


# --- whole files that used to be refused or crash ---------------------------------------------


def test_a_vit_mlp_bias_of_std_1e6_is_a_fitted_normal(tmp_path):
    # torchvision's ViT MLPBlock: nn.init.normal_(m.bias, std=1e-6) beside xavier_uniform_ weights.
    path = tmp_path / "vit.safetensors"
    weight = torch_array((3072, 768), torch.nn.init.xavier_uniform_, 0)
    bias = torch_array((3072,), lambda t: torch.nn.init.normal_(t, std=1e-6), 1)
    save_file({"encoder.layers.0.mlp.0.weight": weight, "encoder.layers.0.mlp.0.bias": bias},
              str(path))  # fmt: skip
    rows = rows_of(check_weights(path))
    bias_row = rows["encoder.layers.0.mlp.0.bias"]
    assert bias_row.verdict == "init", bias_row.reason
    assert bias_row.scheme.startswith("normal:std=")
    std = float(bias_row.scheme.split("=")[1])
    assert std == pytest.approx(1e-6, rel=5 * math.sqrt(2 / 3072))  # within 5 SE of the std
    assert rows["encoder.layers.0.mlp.0.weight"].scheme == "normalized"


def test_values_no_law_covers_are_unknown_not_a_traceback(tmp_path):
    path = tmp_path / "odd.safetensors"
    rng = np.random.default_rng(0)
    causal = np.triu(np.full((64, 64), np.finfo(np.float32).min, np.float32), 1)
    huge = (rng.standard_normal((64, 64)) * 6e37).astype(np.float32)
    with_inf = np.zeros((16, 16), np.float32)
    with_inf[0, 1:] = -np.inf
    save_file({"mask": causal, "huge": huge, "inf_mask": with_inf}, str(path))
    code, document, stderr = run_cli(str(path))
    assert code == 0, stderr
    rows = {r["name"]: r for r in document["tensors"]}
    assert {r["verdict"] for r in rows.values()} == {"unknown"}
    assert "2 distinct values" in rows["mask"]["reason"]
    assert "outside what any initialisation draws" in rows["huge"]["reason"]
    assert "15 infinite values" in rows["inf_mask"]["reason"]


def test_a_failure_inside_one_tensor_is_that_tensors_unknown(tmp_path, monkeypatch):
    import xavinit.core.verdicts as verdicts

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(verdicts, "top_singular_value", broken)
    path = tmp_path / "m.safetensors"
    save_file({"a.weight": torch_array((64, 64), torch.nn.init.xavier_uniform_, 0)}, str(path))
    code, document, stderr = run_cli(str(path))
    assert code == 0, stderr
    (row,) = document["tensors"]
    assert row["verdict"] == "unknown"
    assert row["reason"] == "could not be examined (LinAlgError: SVD did not converge)"


def test_a_file_without_tensors_says_so_without_mentioning_keys(tmp_path):
    path = tmp_path / "empty.safetensors"
    save_file({}, str(path))
    code, _, stderr = run_cli(str(path))
    assert code == 2
    assert "holds no tensors" in stderr and "--key" not in stderr


# --- a handful of entries never decides the verdict of millions ------------------------------


def test_an_entry_clamped_at_an_absolute_bound_is_set_aside(tmp_path):
    # timm's trunc_normal_(std=0.02) (torch's own, absolute bounds +-2) clamps at -2 when its
    # uniform draw hits -1 exactly: one entry at 100 std in a fresh ConvNeXt MLP matrix.
    weight = torch_array((384, 96), lambda t: torch.nn.init.trunc_normal_(t, std=0.02), 0)
    weight[17, 5] = -2.0
    path = tmp_path / "convnext.safetensors"
    save_file({"stages.0.blocks.0.mlp.fc1.weight": weight}, str(path))
    (row,) = check_weights(path).tensors
    assert row.verdict == "init", row.reason
    assert row.scheme.startswith("normal:std=0.0")
    assert row.outliers == 1 and row.outlier_peak > 90
    assert "1 entry lies far outside the law" in row.reason
    assert row.top_singular_ratio < 1.0


def test_entries_past_a_truncation_are_counted_not_fatal(tmp_path):
    # Keras' TruncatedNormal on the torch backend keeps the first of 4 normal draws inside
    # +-2 std, and the last one when none is (about 4e-6 of the entries): a few of 60,000 lie
    # beyond the cut. The truncated law still names the tensor, and the reason counts them.
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    stddev = 0.05
    kernel = np.asarray(keras.initializers.TruncatedNormal(stddev=stddev, seed=0)((300, 200)))
    beyond = int(np.sum(np.abs(kernel) > 2 * stddev * 1.01))
    assert 1 <= beyond <= 3  # what the backend does with this seed
    path = tmp_path / "keras.safetensors"
    save_file({"dense.kernel": kernel.astype(np.float32)}, str(path))
    (row,) = check_weights(path, layout="in-out").tensors
    assert row.verdict == "init", row.reason
    assert row.scheme.startswith("truncated-normal:std=")
    assert row.candidates[0]["outside"] == beyond
    entries = "entry lies" if beyond == 1 else "entries lie"
    assert f"{beyond} {entries} past its bound" in row.reason


# --- the right name ------------------------------------------------------------------------


def test_he_on_fan_out_is_named_not_a_near_xavier(tmp_path):
    # torchvision's ResNet and EfficientNet: kaiming_normal_(mode="fan_out", relu): N(0, 2/fan_out).
    arrays = {
        f"conv{k}.weight": torch_array(
            shape,
            lambda t: torch.nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
            k,
        )
        for k, shape in enumerate([(32, 3, 3, 3), (48, 32, 3, 3), (128, 48, 1, 1), (80, 48, 3, 3)])
    }
    path = tmp_path / "resnet.safetensors"
    save_file(arrays, str(path))
    for row in check_weights(path).tensors:
        assert row.verdict == "init", row.reason
        fan_out = row.fan_out
        assert row.expected_var == pytest.approx(2 / fan_out), (row.name, row.scheme)
        assert row.scheme == "he-normal:mode=fan_out", (row.name, row.scheme)
        assert "mode='fan_out'" in row.known_as


# --- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "role"),
    [
        ("encoder.pos_embedding", (1, 197, 768), "embedding"),
        ("class_token", (1, 1, 768), "embedding"),
        ("attn.bias_k", (1, 1, 64), "bias"),
        ("lstm.weight_ih_l0", (256, 32), "recurrent"),
        ("lstm.weight_hh_l1_reverse", (256, 64), "recurrent"),
        ("lstm.bias_ih_l0", (256,), "bias"),
        ("h.0.mlp.c_proj.weight", (3072, 768), "dense"),
        ("h.0.attn.c_proj.weight", (768, 768), "attention"),
        ("layer1.0.bn1.weight", (64,), "norm"),
        ("layer1.0.downsample.1.weight", (64,), "norm"),
    ],
)
def test_roles_from_names(name, shape, role):
    assert guess_role(name, shape) == role


def test_rnn_biases_take_the_hidden_fans_and_pytorch_lstm_is_standard(tmp_path):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(64, 64, num_layers=1)
    path = tmp_path / "lstm.safetensors"
    save_file({k: v.detach().numpy().copy() for k, v in lstm.state_dict().items()}, str(path))
    rows = rows_of(check_weights(path))
    for name in ("bias_ih_l0", "bias_hh_l0"):
        assert (rows[name].fan_in, rows[name].fan_out) == (64, 256)
        assert rows[name].owner == "weight_hh_l0"
        assert rows[name].verdict == "init" and rows[name].scheme == "standard"
    assert rows["weight_hh_l0"].role == "recurrent"
    assert rows["weight_hh_l0"].scheme == "standard"  # U(+-1/sqrt(hidden)), fan_in = hidden


def test_gpt2_conv1d_weights_are_read_in_out_and_a_glob_overrides(tmp_path):
    torch.manual_seed(0)
    arrays = {
        "h.0.attn.c_attn.weight": torch.empty(96, 288).normal_(0, 0.02).numpy(),
        "h.0.attn.c_attn.bias": np.zeros(288, np.float32),
        "h.0.attn.c_proj.weight": torch.empty(96, 96).normal_(0, 0.02).numpy(),
        "h.0.mlp.c_fc.weight": torch.empty(96, 384).normal_(0, 0.02).numpy(),
    }
    path = tmp_path / "gpt2.safetensors"
    save_file(arrays, str(path))
    rows = rows_of(check_weights(path))
    assert (rows["h.0.attn.c_attn.weight"].fan_in, rows["h.0.attn.c_attn.weight"].fan_out) == (
        96,
        288,
    )
    assert rows["h.0.attn.c_proj.weight"].layout == "in-out"
    assert (rows["h.0.mlp.c_fc.weight"].fan_in, rows["h.0.mlp.c_fc.weight"].fan_out) == (96, 384)
    code, document, _ = run_cli(str(path), "--layout", "*.c_fc.weight=out-in")
    assert code == 0
    fc = {r["name"]: r for r in document["tensors"]}["h.0.mlp.c_fc.weight"]
    assert (fc["layout"], fc["fan_in"], fc["fan_out"]) == ("out-in", 384, 96)
    assert document["config"]["layout"] == ["*.c_fc.weight=out-in"]


@pytest.mark.parametrize("bad", ["sideways", "*.w=", "=in-out"])
def test_a_bad_layout_is_one_line_exit_2(tmp_path, bad):
    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones((4, 4), np.float32)}, str(path))
    result = runner.invoke(app, ["check", str(path), "--layout", bad, "-q"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "GLOB=LAYOUT" in result.stderr


def test_the_ci_recipe_selects_by_role_so_fresh_batchnorm_scales_do_not_fail_it(tmp_path):
    torch.manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.Conv2d(16, 32, 3), torch.nn.BatchNorm2d(32), torch.nn.Conv2d(32, 32, 1),
        torch.nn.BatchNorm2d(32),
    )  # fmt: skip
    state = {k: v.detach().numpy().copy() for k, v in block.state_dict().items()}
    state = {k.replace("1.", "bn1.").replace("3.", "downsample.1."): v for k, v in state.items()}
    path = tmp_path / "resnet_block.safetensors"
    save_file({k: v for k, v in state.items() if v.dtype != np.int64}, str(path))
    code, document, _ = run_cli(str(path), "--role", "!norm", "--role", "!bias", "--expect", "init")
    assert code == 0
    assert {r["role"] for r in document["tensors"]} == {"conv"}
    code, _, stderr = run_cli(str(path), "--role", "norn")
    assert code == 2 and "matches no role" in stderr


# --- the spectrum: the converged statistic's power --------------------------------------------


@pytest.mark.parametrize(("n", "p"), [(1000, 1000), (4096, 1024), (8192, 256)])
def test_a_rank_1_update_at_the_edge_is_trained_and_the_fresh_matrix_is_not(n, p):
    rng = np.random.default_rng(n + p)
    bound = 1 / math.sqrt(p)
    fresh = rng.uniform(-bound, bound, (n, p)).astype(np.float32)
    sigma = bound / math.sqrt(3)
    u, v = rng.standard_normal(n), rng.standard_normal(p)
    spike = sigma * (math.sqrt(n) + math.sqrt(p)) / np.linalg.norm(u) / np.linalg.norm(v)
    trained = (fresh + spike * np.outer(u, v)).astype(np.float32)
    result = check_weights({"fresh": fresh, "trained": trained}, layout="out-in")
    rows = rows_of(result)
    assert rows["fresh"].verdict == "init" and rows["fresh"].scheme == "standard"
    assert 0.95 < rows["fresh"].top_singular_ratio < 1.0
    assert rows["trained"].verdict == "trained"
    assert rows["trained"].top_singular_ratio > 1.15  # converged: the spike stands 1.2-1.3x out


# --- trained weights that stay small ----------------------------------------------------------


def test_small_one_by_one_convolutions_are_called_trained_after_training():
    """A convnet whose 1x1 convolutions hold 512-4096 entries, trained 300 Adam steps on a
    task with structure: every weight of at least 8 x 8 is trained."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 16, 1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10),
    )  # fmt: skip
    prototypes = torch.randn(10, 3, 8, 8)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        labels = torch.randint(0, 10, (32,))
        images = prototypes[labels] + 0.5 * torch.randn(32, 3, 8, 8)
        loss = torch.nn.functional.cross_entropy(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    rows = check_weights(state).tensors
    weights = [
        r for r in rows if r.name.endswith("weight") and min(r.shape[0], r.count // r.shape[0]) >= 8
    ]
    assert len(weights) == 5
    assert all(r.verdict == "trained" for r in weights), [(r.name, r.verdict) for r in weights]


def test_shipped_trained_weights_are_trained():
    """silero-vad (a test dependency) ships trained weights as TorchScript and ONNX: every
    matrix of at least 8 x 8 is trained in both."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    files = [*root.rglob("silero_vad.jit"), *root.rglob("silero_vad.onnx")]
    assert len(files) == 2
    for path in files:
        rows = check_weights(path).tensors
        matrices = [
            r for r in rows
            if r.role in ("conv", "dense", "recurrent") and r.top_singular_ratio is not None
        ]  # fmt: skip
        assert len(matrices) >= 10, path.name
        assert all(r.verdict == "trained" for r in matrices), [
            (r.name, r.verdict) for r in matrices if r.verdict != "trained"
        ]


def test_describe_places_embeddings_rows_to_dim_in_every_format():
    class Info:
        def __init__(self, name, shape, layout, role=None):
            self.name, self.shape, self.dtype, self.layout, self.role = (
                name,
                shape,
                "float32",
                layout,
                role,
            )

    tensors = describe([Info("wte.weight", (50257, 768), "out-in"),
                        Info("embeddings", (1000, 64), "in-out", "embedding")])  # fmt: skip
    assert [(t.fan_in, t.fan_out) for t in tensors] == [(50257, 768), (1000, 64)]


# --- 16-bit files: widened exactly, a chunk at a time -----------------------------------------


def test_every_float16_value_widens_exactly():
    from xavinit.formats.base import half_to_float32

    bits = np.arange(65536, dtype=np.uint16)
    out = np.empty(bits.size, dtype=np.float32)
    half_to_float32(bits, out)
    expected = bits.view(np.float16).astype(np.float32)
    same = (out.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(out) & np.isnan(expected))
    assert same.all(), np.flatnonzero(~same)[:5]


def test_float16_specials_left_unmarked_then_marked_match_numpys_cast():
    from xavinit.formats.base import HALF_UNMARKED, half_to_float32, mark_half_specials

    bits = np.arange(65536, dtype=np.uint16)
    expected = bits.view(np.float16).astype(np.float32)  # numpy's own cast
    out = np.empty(bits.size, dtype=np.float32)
    half_to_float32(bits, out, mark=False)
    exponent_31 = (bits & 0x7C00) == 0x7C00  # the 2 infinities and 2046 NaNs
    assert exponent_31.sum() == 2048
    assert np.all(np.abs(out[exponent_31]) >= HALF_UNMARKED)  # finite, set apart by size
    assert np.all(np.abs(out[~exponent_31]) <= 65504.0)
    assert np.array_equal(out[~exponent_31].view(np.uint32), expected[~exponent_31].view(np.uint32))
    mark_half_specials(out)
    assert np.array_equal(out.view(np.uint32), expected.view(np.uint32))  # NaN payloads too


def test_a_float16_file_with_infinities_nan_and_its_largest_values(tmp_path):
    # The chunks of a float16 file are widened without looking for infinities and NaNs; the
    # scan's extremes find them. Each case through the whole command, beside the same values
    # read from float32 (numpy's exact cast).
    rng = np.random.default_rng(3)
    weight = ((rng.random((300, 200)) - 0.5) * 0.1).astype(np.float16)
    bias = ((rng.random(300) - 0.5) * 0.1).astype(np.float16)
    masked, masked_bias, largest = weight.copy(), bias.copy(), weight.copy()
    masked[3, 4], masked[100, 7], masked_bias[5] = np.inf, -np.inf, -np.inf
    largest[0, 0], largest[1, 1] = 65504.0, -65504.0  # finite: below 2^16, never "infinite"
    tensors = {"fc.weight": masked, "fc.bias": masked_bias, "big.weight": largest}
    save_file(tensors, str(tmp_path / "f16.safetensors"))
    save_file(
        {k: v.astype(np.float32) for k, v in tensors.items()}, str(tmp_path / "f32.safetensors")
    )
    code, half, _ = run_cli(str(tmp_path / "f16.safetensors"))
    code32, single, _ = run_cli(str(tmp_path / "f32.safetensors"))
    assert code == code32 == 0
    rows = {row["name"]: row for row in half["tensors"]}
    assert rows["fc.weight"]["verdict"] == rows["fc.bias"]["verdict"] == "unknown"
    assert rows["fc.weight"]["reason"].startswith("2 infinite values")
    assert rows["fc.bias"]["reason"].startswith("1 infinite values")
    assert rows["big.weight"]["outliers"] == 2  # two finite entries far outside the law
    assert "infinite" not in rows["big.weight"]["reason"]
    for row, twin in zip(half["tensors"], single["tensors"], strict=True):
        same = {k: v for k, v in row.items() if k not in ("file", "dtype")}
        assert same == {k: v for k, v in twin.items() if k not in ("file", "dtype")}
    for shape in ((300, 200), (300,)):  # a matrix scanned in blocks, a vector at once
        values = ((rng.random(shape) - 0.5) * 0.1).astype(np.float16)
        values.reshape(-1)[7] = np.nan
        save_file({"fc.weight": values}, str(tmp_path / "nan.safetensors"))
        code, _, stderr = run_cli(str(tmp_path / "nan.safetensors"))
        assert code == 2 and "holds NaN" in stderr and len(stderr.strip().splitlines()) == 1


def test_a_float16_file_cut_short_after_its_header_was_read_is_refused(tmp_path):
    # 16-bit tensors are mapped from the file and widened range by range; a file that shrank
    # between reading its header and reading the tensor is a one-line error, not a crash.
    from xavinit.formats import open_tensors
    from xavinit.formats.base import Workspace

    path = tmp_path / "cut.safetensors"
    values = np.linspace(-0.1, 0.1, 300 * 200, dtype=np.float32).reshape(300, 200)
    save_file({"fc.weight": values.astype(np.float16)}, str(path))
    with open_tensors(path) as source:
        (info,) = source.tensors
        os.truncate(path, path.stat().st_size - 1000)
        with pytest.raises(XavinitError, match="ends inside a tensor"):
            source.read(info, Workspace())
    save_file({"fc.weight": values.astype(np.float16)}, str(path))
    with open_tensors(path) as source:
        widened = source.read(source.tensors[0], Workspace())
    assert np.array_equal(widened, values.astype(np.float16).astype(np.float32))


def test_an_empty_16_bit_tensor_is_reported_not_a_crash(tmp_path):
    # A float16 or bfloat16 tensor with no entries (shape [0], offsets [0, 0]) beside a real
    # one: nothing to widen, a row saying so (this crashed in the widening loop once).
    import torch
    from safetensors.torch import save_file as save_torch

    tensors = {
        "empty.half": torch.zeros(0, dtype=torch.float16),
        "empty.brain": torch.zeros(0, 3, dtype=torch.bfloat16),
        "fc.weight": torch.linspace(-0.1, 0.1, 300 * 200).reshape(300, 200).half(),
    }
    save_torch(tensors, str(tmp_path / "empty.safetensors"))
    code, document, stderr = run_cli(str(tmp_path / "empty.safetensors"))
    assert code == 0, stderr
    rows = {row["name"]: row for row in document["tensors"]}
    assert rows["empty.half"]["verdict"] == rows["empty.brain"]["verdict"] == "unknown"
    assert rows["fc.weight"]["verdict"] != "unknown"


def test_a_16_bit_file_gets_the_verdicts_of_its_float32_values(tmp_path):
    torch.manual_seed(0)
    weight = torch.empty(700, 300)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    arrays = {}
    for name, dtype in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        arrays[name] = weight.to(dtype).contiguous()
    from safetensors.torch import save_file as save_torch

    for name, tensor in arrays.items():
        save_torch({"fc.weight": tensor}, str(tmp_path / f"{name}.safetensors"))
        widened = check_weights({"fc.weight": tensor.float().numpy()}).tensors[0]
        (row,) = check_weights(tmp_path / f"{name}.safetensors").tensors
        assert row.dtype == {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[name]
        assert row.observed_var == widened.observed_var  # the same float32 values, read in chunks
        assert row.verdict == "init" and row.scheme == "standard", (name, row.reason)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((tmp_path / "f16.safetensors").read_bytes()[:-1000])
    code, _, stderr = run_cli(str(cut))
    assert code == 2 and len(stderr.strip().splitlines()) == 1
