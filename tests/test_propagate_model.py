"""``xavinit propagate --model``: the user's own torch, torch.export and ONNX models.

Factories are written into a fresh folder as a module of the test's own name and imported from
there, as a user's would be; real models come from transformers' configs (no download)."""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.config import PropagateConfig, PropagateModelConfig
from xavinit.core.sampling import draw_weights
from xavinit.core.schemes import get_scheme
from xavinit.errors import XavinitError
from xavinit.experiments.propagate import run_propagate
from xavinit.experiments.propagate_model import run_propagate_model
from xavinit.loading import load_result

torch = pytest.importorskip("torch")
runner = CliRunner()

FACTORIES = """
import math
import torch
import torch.nn as nn


def mlp(depth=3, width=64, std=0.0, inputs=32, outputs=10, act="relu"):
    # He-normal when std is 0, else every weight N(0, std^2); zero biases
    layers, n = [], inputs
    for k in range(depth + 1):
        out = width if k < depth else outputs
        lin = nn.Linear(n, out)
        nn.init.normal_(lin.weight, 0.0, std or math.sqrt(2.0 / n))
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU() if act == "relu" else nn.Tanh()] if k < depth else [lin]
        n = out
    return nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, c, zero):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        if zero:  # SkipInit / zero-init of the branch's last scale (Goyal et al. 2017)
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        return x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


def resnet(blocks=16, channels=4, zero=True):
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        *[Block(channels, zero) for _ in range(blocks)],
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10),
    )


def gpt2(layers=24, scaled=True):
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(n_layer=layers, n_embd=64, n_head=2, n_positions=32, vocab_size=100,
                        bos_token_id=0, eos_token_id=0)
    model = GPT2Model(config)
    if not scaled:  # the output projections at std 0.02, not 0.02 / sqrt(2 layers)
        for block in model.h:
            for lin in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(lin.weight, 0.0, 0.02)
    return model


def bert():
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                intermediate_size=64, vocab_size=100, max_position_embeddings=32))


def vit():
    from transformers import ViTConfig, ViTModel

    return ViTModel(ViTConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                              intermediate_size=64, image_size=16, patch_size=4, num_channels=3))


def hf_resnet():
    from transformers import ResNetConfig, ResNetModel

    return ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[2, 2],
                                    layer_type="basic"))


def raises():
    raise RuntimeError("boom")


def no_parameters():
    return nn.Sequential(nn.ReLU())


def not_a_module():
    return 42
"""


@pytest.fixture
def nets(tmp_path, monkeypatch, request):
    """The factories above as a module named after the test, importable from the cwd."""
    name = "nets_" + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{name}.py").write_text(FACTORIES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _run(spec, **options):
    return run_propagate_model(PropagateModelConfig(model=spec, **options)).models[0]


def test_mlp_as_a_torch_module_gives_propagate_s_numbers(nets, tmp_path):
    """Two paths, one answer: the same He-normal ReLU network (xavinit's own draw, put in an
    nn.Sequential) measured by propagate and by propagate --model, with independent inputs.

    Each variance is the mean of B per-example averages over n units; for a ReLU network
    without biases an example's average scales with ``|x|^2 / n0`` (relative variance 2/n0
    for normal inputs) and the units add ``Var[z^2] / E[z^2]^2 = 5`` over n (z = relu(s), s
    Gaussian): relative standard error ``sqrt((2/n0 + 5/n) / B)`` each, sqrt(2) of it for the
    difference; the test allows 5 standard errors."""
    widths, batch = (128, 128, 128, 128, 10), 256
    weights = draw_weights(get_scheme("he-normal"), widths, 0, 0, np.dtype(np.float32))
    np.save(tmp_path / "weights.npy", np.array(weights[:-1]))
    np.save(tmp_path / "top.npy", weights[-1])
    (tmp_path / f"{nets}_same.py").write_text(
        textwrap.dedent("""
        import numpy as np, torch, torch.nn as nn

        def same():
            hidden, top = list(np.load("weights.npy")), np.load("top.npy")
            layers = []
            for w in [*hidden, top]:
                lin = nn.Linear(*w.shape)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(w.T.copy()))  # (fan_in, fan_out) -> out-in
                    lin.bias.zero_()
                layers += [lin, nn.ReLU()]
            return nn.Sequential(*layers[:-1])
    """)
    )
    model = _run(f"{nets}_same:same", input_shape=(128,), batch=batch, input="normal",
                 depth_of="leaf", seed=7)  # fmt: skip
    mlp = run_propagate(
        PropagateConfig(layers=widths, schemes=("he-normal",), activations=("relu",),
                        input="normal", backward="unit", batch=batch, jacobian_samples=0)
    ).runs[0]  # fmt: skip
    linears = [m for m in model.modules if m.type.endswith("Linear")]
    relus = [m for m in model.modules if m.activation == "relu"]
    assert [m.name for m in linears] == ["0", "2", "4", "6"] and len(relus) == 3
    rel_se = math.sqrt(2) * math.sqrt((2 / 128 + 5 / 128) / batch)
    for k, layer in enumerate(mlp.layers):
        measured = relus[k].var if layer.kind == "hidden" else linears[k].var
        assert abs(measured / layer.activation_var - 1) < 5 * rel_se, (k, measured, layer)
        assert abs(linears[k].grad_var / layer.backprop_var - 1) < 5 * rel_se, k
    # theory beside it, by hand: q = fan_in E[W^2] E[x^2]; Var[relu] = q (1/2 - 1/(2 pi))
    for relu in relus:
        source = next(m for m in linears if m.name == relu.theory_from)
        q = source.fan_in * source.weight_var * source.input_second_moment
        assert relu.predicted_var == pytest.approx(q * (0.5 - 0.5 / math.pi), rel=1e-6)
        assert relu.predicted_mean == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-6)
        assert abs(relu.var / relu.predicted_var - 1) < 5 * rel_se
    assert model.backward == "measured" and model.top_grad_var == pytest.approx(1, rel=0.1)


def test_onnx_export_gives_the_torch_run_s_forward_statistics(nets, tmp_path):
    torch.manual_seed(0)  # the factory's weights under --seed 0
    module = __import__(nets).mlp(depth=3, width=32)
    x = torch.zeros(16, 32)
    with pytest.warns(DeprecationWarning):
        torch.onnx.export(module, (x,), str(tmp_path / "mlp.onnx"), dynamo=False)
    onnx_run = _run("mlp.onnx", depth_of="leaf")  # shape and batch from the graph
    torch_run = _run(f"{nets}:mlp", model_args=("depth=3", "width=32"), input_shape=(32,),
                     batch=16, depth_of="leaf")  # fmt: skip
    assert onnx_run.input_shape == [32] and onnx_run.batch == 16
    assert [m.type for m in onnx_run.modules] == ["onnx:Gemm", "onnx:Relu"] * 3 + ["onnx:Gemm"]
    assert len(onnx_run.modules) == len(torch_run.modules)
    for a, b in zip(onnx_run.modules, torch_run.modules, strict=True):
        for key in ("mean", "var", "channel_sq_mean", "channel_var"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-4, abs=1e-7)
        assert a.predicted_var == pytest.approx(b.predicted_var, rel=1e-4)
        assert a.grad_var is None
    assert onnx_run.backward.startswith("unavailable")
    assert [d["quantity"] for d in onnx_run.drift] == ["activation_var"]


def test_torch_export_archive_matches_the_module_it_was_exported_from(nets, tmp_path):
    torch.manual_seed(0)  # the factory's weights under --seed 0
    module = __import__(nets).resnet(blocks=3, channels=4)
    program = torch.export.export(module, (torch.zeros(2, 3, 8, 8),))
    torch.export.save(program, str(tmp_path / "resnet.pt2"))
    exported = _run("resnet.pt2")
    direct = _run(f"{nets}:resnet", model_args=("blocks=3", "channels=4"), input_shape=(3, 8, 8),
                  batch=2)  # fmt: skip
    assert [m.name for m in exported.modules] == ["1", "2", "3"] == [m.name for m in direct.modules]
    for a, b in zip(exported.modules, direct.modules, strict=True):
        assert a.var == pytest.approx(b.var, rel=1e-5)
        assert a.grad_var == pytest.approx(b.grad_var, rel=1e-4)
        assert a.branch_var is not None and a.skip_var is not None


def test_a_deep_mlp_at_std_1_fails_naming_the_modules_and_he_passes(nets):
    bad = runner.invoke(app, ["propagate", "--model", f"{nets}:mlp", "--model-arg", "depth=20",
                              "--model-arg", "std=1", "--input-shape", "32", "-f", "json"])  # fmt: skip
    assert bad.exit_code == 1, bad.output
    run = json.loads(bad.stdout)["models"][0]
    check = {d["quantity"]: d for d in run["drift"]}["activation_var"]
    assert check["first"] == "0" and check["last"] == "40" and check["beyond_from"] == "2"
    assert check["ratio"] > 1e20
    good = runner.invoke(app, ["propagate", "--model", f"{nets}:mlp", "--model-arg", "depth=20",
                               "--input-shape", "32", "--batch", "64"])  # fmt: skip
    assert good.exit_code == 0, good.output
    assert "PASSED" in good.stdout


def test_a_resnet_with_unscaled_branches_fails_and_zero_init_passes(nets):
    bad = runner.invoke(app, ["propagate", "--model", f"{nets}:resnet", "--model-arg",
                              "zero=false", "--input-shape", "3,8,8"])  # fmt: skip
    assert bad.exit_code == 1, bad.output
    assert "FAILED" in bad.stdout and "grad_var" in bad.stdout and "from 1 to 16" in bad.stdout
    good = _run(f"{nets}:resnet", input_shape=(3, 8, 8))
    assert good.passed and good.depth_of == "block" and len(good.modules) == 16
    # zero-initialized branches: y = x exactly, so the branch's variance is 0
    assert all(m.branch_var == 0.0 and m.skip_var > 0 for m in good.modules)


def test_gpt2_whose_output_projections_are_not_scaled_with_depth_fails(nets):
    bad = _run(f"{nets}:gpt2", model_args=("scaled=false",), input="tokens:100",
               input_shape=(16,), batch=4)  # fmt: skip
    good = _run(f"{nets}:gpt2", input="tokens:100", input_shape=(16,), batch=4)
    assert [m.name for m in good.modules] == [f"h.{k}" for k in range(24)]
    assert not bad.passed and good.passed
    failed = [d for d in bad.drift if not d["passed"]]
    assert failed and all(d["beyond_from"].startswith("h.") for d in failed)


@pytest.mark.parametrize(
    ("factory", "options", "blocks"),
    [
        ("bert", {"input": "tokens:100", "input_shape": (16,)}, ["encoder.layer.0", "encoder.layer.1"]),
        ("vit", {"input_shape": (3, 16, 16)}, ["layers.0", "layers.1"]),
        ("hf_resnet", {"input_shape": (3, 32, 32)},
         [f"encoder.stages.{s}.layers.{k}" for s in (0, 1) for k in (0, 1)]),
    ],
)  # fmt: skip
def test_real_models_from_library_configs_keep_their_signal(nets, factory, options, blocks):
    run = _run(f"{nets}:{factory}", batch=4, **options)
    assert [m.name for m in run.modules] == blocks
    assert run.passed, run.drift
    assert all(m.grad_var is not None and m.grad_var > 0 for m in run.modules)
    assert all(m.params and all(p["grad_var"] is not None for p in m.params) for m in run.modules)


def test_leaf_theory_for_a_transformer_layer(nets):
    run = _run(f"{nets}:bert", input="tokens:100", input_shape=(16,), batch=4, depth_of="leaf")
    dense = [m for m in run.modules if m.type.endswith("Linear")]
    gelu = [m for m in run.modules if m.activation == "gelu"]
    assert dense and all(m.predicted_var is not None for m in dense)
    assert gelu and all(m.theory_from is not None for m in gelu)
    assert any("tanh-approximate" in note for note in run.notes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{nets}:raises", "--input-shape", "3"], "the factory raised RuntimeError: boom"),
        (["--model", "{nets}:no_parameters", "--input-shape", "3"], "has no parameters"),
        (["--model", "{nets}:not_a_module"], "returned int, not a torch.nn.Module"),
        (["--model", "{nets}:mlp", "--input-shape", "3,3"], "refuses a batch of 8 inputs of shape 3,3"),
        (["--model", "{nets}:mlp"], "--input-shape: "),
        (["--model", "{nets}:missing"], "has no attribute 'missing'"),
        (["--model", "nowhere_at_all:f"], "no module 'nowhere_at_all'"),
        (["--model", "model.bin"], "expected package.module:callable"),
        (["--model", "absent.onnx"], "no such file"),
        (["--model", "{nets}:mlp", "-s", "he-normal"], "--scheme option applies to propagate's own"),
        (["--max-drift", "3"], "--max-drift: applies only with --model"),
        (["--model", "{nets}:mlp", "--max-drift", "1"], "--max-drift: must be > 1"),
        (["--model", "{nets}:mlp", "--input", "tokens:x"], "tokens:VOCAB"),
        (["--model", "{nets}:mlp", "--model-arg", "depth"], "key=value"),
        (["--model", "{nets}:mlp", "--input-shape", "100000,100000,1000"], "of memory"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(nets, args, message):
    result = runner.invoke(app, ["propagate", *(a.format(nets=nets) for a in args)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert "Traceback" not in result.output


def test_a_damaged_export_archive_is_one_line_with_no_log_of_torch_s(tmp_path):
    """torch.export logs a traceback before it raises on a damaged archive: none of it shows."""
    import subprocess

    damaged = tmp_path / "model.pt2"
    damaged.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    proc = subprocess.run(
        [sys.executable, "-m", "xavinit", "propagate", "--model", str(damaged), "-q"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "not a readable torch.export archive" in lines[0], lines
    assert not (tmp_path / "result.json").exists() and proc.stdout == ""


@pytest.mark.parametrize(("blocked", "extra"), [("torch", "torch"), ("onnxruntime", "onnx")])
def test_a_missing_extra_names_its_install_line(nets, tmp_path, monkeypatch, blocked, extra):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    spec = f"{nets}:mlp" if blocked == "torch" else "m.onnx"
    monkeypatch.setitem(sys.modules, blocked, None)
    result = runner.invoke(app, ["propagate", "--model", spec, "--input-shape", "32"])
    assert result.exit_code == 2
    assert f"pip install 'xavinit[{extra}]'" in result.stderr


def test_saved_result_round_trips_and_its_verdict_is_recomputed(nets, tmp_path):
    out = tmp_path / "model.json"
    result = runner.invoke(app, ["propagate", "--model", f"{nets}:resnet", "--model-arg",
                                 "blocks=4", "--model-arg", "zero=false", "--input-shape",
                                 "3,8,8", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    loaded = load_result(out)
    assert loaded.models[0].modules[0].name == "1" and loaded.passed
    document = json.loads(out.read_text())
    document["models"][0]["drift"][0]["passed"] = False
    document["models"][0]["passed"] = document["passed"] = False
    (tmp_path / "edited.json").write_text(json.dumps(document))
    with pytest.raises(XavinitError, match="contradicts its own evidence"):
        load_result(tmp_path / "edited.json")
    document = json.loads(out.read_text())
    document["models"][0]["max_drift"] = 1.01  # the same variances judged at a tighter band
    (tmp_path / "tighter.json").write_text(json.dumps(document))
    with pytest.raises(XavinitError, match="activation_var check says passed=True"):
        load_result(tmp_path / "tighter.json")


def test_report_plots_csv_and_markdown(nets, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "model.json"
    args = ["propagate", "--model", f"{nets}:resnet", "--model-arg", "blocks=3",
            "--input-shape", "3,8,8", "-o", str(out)]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    report = runner.invoke(app, ["report", str(out), "--plots", str(tmp_path / "figs"),
                                 "-o", str(tmp_path / "r.html")])  # fmt: skip
    assert report.exit_code == 0, report.output
    assert (tmp_path / "figs" / f"propagate-model-{nets.replace('_', '-')}-resnet.png").is_file()
    assert "signal propagation" in (tmp_path / "r.html").read_text()
    csv = runner.invoke(app, ["report", str(out), "-f", "csv"]).stdout
    assert csv.splitlines()[0].startswith("file,command,model,source,index,name")
    assert len(csv.splitlines()) == 1 + 3
    markdown = runner.invoke(app, ["report", str(out), "-f", "markdown"]).stdout
    assert "| 3 | 3 | Block |" in markdown and "branch / skip" in markdown


def test_tanh_saturation_against_the_gaussian_tail(nets):
    """A tanh unit is saturated when |tanh(s)| > 0.99, i.e. |s| > atanh(0.99); with
    s ~ N(0, q) (q the measured variance of the Linear output before it) that happens with
    probability erfc(atanh(0.99) / sqrt(2 q)); the fraction over B n units is held within 5
    binomial standard errors. Units of one example share its input's norm, whose relative
    spread sqrt(2 / n0) sets q per example; 1024 normal inputs and width 256 keep that spread
    (4% and about 6% of q) below the binomial error of the fraction over 64 examples."""
    run = _run(f"{nets}:mlp", model_args=("depth=2", "width=256", "std=0.04", "act=tanh", "inputs=1024"),
               input_shape=(1024,), batch=64, depth_of="leaf")  # fmt: skip
    tanh = [m for m in run.modules if m.activation == "tanh"]
    relu_free = [m for m in run.modules if m.activation is None]
    assert len(tanh) == 2 and all(m.saturated_fraction is None for m in relu_free)
    tails = []
    for m in tanh:
        source = next(x for x in run.modules if x.name == m.theory_from)
        p = math.erfc(math.atanh(0.99) / math.sqrt(2 * source.var))
        se = math.sqrt(p * (1 - p) / (64 * 256))
        assert abs(m.saturated_fraction - p) < 5 * se, (m.saturated_fraction, p)
        tails.append(p)
    assert max(tails) > 0.03  # the first layer saturates measurably, the second hardly


def test_a_config_file_can_name_the_model(nets, tmp_path):
    (tmp_path / "run.yaml").write_text(
        f"model: {nets}:mlp\ninput_shape: [32]\ndepth_of: leaf\nmax_drift: 1000\n"
    )
    result = runner.invoke(app, ["propagate", "-c", "run.yaml", "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["config"]["max_drift"] == 1000 and document["models"][0]["depth_of"] == "leaf"
    (tmp_path / "bad.yaml").write_text(f"model: {nets}:mlp\nlayers: 32,10\n")
    bad = runner.invoke(app, ["propagate", "-c", "bad.yaml"])
    assert bad.exit_code == 2 and "bad.yaml: layers: the --layers option" in bad.stderr


def test_channel_moments_by_hand():
    """The SPP metrics of a (batch 2, channels 2, positions 2) tensor, counted by hand:
    channel 0 holds 1, 3, 5, 7 (mean 4, variance 5), channel 1 holds 0, 0, 2, 2 (mean 1,
    variance 1): average squared mean (16 + 1) / 2, average variance (5 + 1) / 2; over all
    entries mean 2.5 and variance 3 + 8.5 - 6.25 = 5.25."""
    from xavinit.core.modelprobe import moments

    y = np.array([[[1, 3], [0, 0]], [[5, 7], [2, 2]]], dtype=np.float32)
    expected = (2.5, 5.25, 8.5, 3.0)
    assert moments(y, 1) == pytest.approx(expected)
    assert moments(torch.from_numpy(y), 1) == pytest.approx(expected)
    transposed = np.ascontiguousarray(y.transpose(0, 2, 1))  # channels last, as a transformer
    assert moments(torch.from_numpy(transposed), 2) == pytest.approx(expected)
