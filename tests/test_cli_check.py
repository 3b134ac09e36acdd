"""``xavinit check`` end to end: verdicts on real checkpoints, --expect, --key, the result
document, init --check on the same path, the Python API and propagate --weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import xavinit
from xavinit.cli import app
from xavinit.formats import open_tensors

DATA = Path(__file__).parent / "data" / "checkpoints"
runner = CliRunner()

FIELDS = (
    "file", "name", "role", "shape", "dtype", "layout", "fan_in", "fan_out", "verdict", "scheme",
    "expected_var", "observed_var", "p_value", "runner_up", "top_singular_ratio", "reason",
)  # fmt: skip


def check(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["check", *args, "-q", "-f", "json"])
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def by_name(document: dict) -> dict[str, dict]:
    return {row["name"]: row for row in document["tensors"]}


FRESH_VERDICTS = {
    # PyTorch's defaults: Linear and Conv weights and biases U(+-1/sqrt(fan_in)) = standard;
    # Embedding N(0, 1); MultiheadAttention xavier on the packed (3E, E) in_proj, zero biases;
    # LayerNorm ones and zeros. Biases of 16 entries are too short to tell.
    "fc.weight": ("init", "standard"),
    "fc.bias": ("init", "standard"),
    "conv.weight": ("init", "standard"),
    "conv.bias": ("unknown", None),
    "depthwise.weight": ("init", "standard"),
    "depthwise.bias": ("unknown", None),
    "attn.in_proj_weight": ("init", "normalized"),
    "attn.in_proj_bias": ("constant", None),
    "attn.out_proj.weight": ("init", "standard"),
    "attn.out_proj.bias": ("constant", None),
    "norm.weight": ("constant", None),
    "norm.bias": ("constant", None),
}


def test_a_fresh_pytorch_state_dict_tensor_by_tensor():
    code, document = check(str(DATA / "fresh.pt"))
    assert code == 0 and document["command"] == "check" and document["passed"]
    rows = by_name(document)
    for row in rows.values():
        assert set(FIELDS) <= set(row), set(FIELDS) - set(row)
    for name, (verdict, scheme) in FRESH_VERDICTS.items():
        assert (rows[name]["verdict"], rows[name]["scheme"]) == (verdict, scheme), rows[name]
    assert (rows["fc.weight"]["fan_in"], rows["fc.weight"]["fan_out"]) == (96, 64)
    assert rows["fc.bias"]["fan_in"] == 96 and rows["fc.weight"]["layout"] == "out-in"
    assert (rows["conv.weight"]["fan_in"], rows["conv.weight"]["fan_out"]) == (72, 144)
    embed = rows["embed.weight"]
    assert embed["verdict"] == "init" and embed["scheme"].startswith("normal:std=")
    # The fitted std of 6400 N(0, 1) entries: 1 +- 3 SE, SE = sqrt(2 / 6400) / 2.
    assert abs(float(embed["scheme"].partition("=")[2]) - 1) < 3 * math.sqrt(2 / 6400) / 2
    assert "half the variance" in rows["attn.in_proj_weight"]["reason"]
    assert document["counts"] == {"trained": 0, "init": 7, "constant": 4, "unknown": 2}
    assert rows["fc.weight"]["runner_up"] is not None
    assert rows["fc.weight"]["expected_var"] == pytest.approx(1 / (3 * 96))


def test_expect_trained_init_and_a_scheme_set_the_exit_code():
    fresh = str(DATA / "fresh.pt")
    code, document = check(fresh, "--expect", "trained")
    assert code == 1 and not document["passed"]
    assert f"{fresh}:fc.weight" in document["failures"]
    assert check(fresh, "--expect", "init")[0] == 0
    assert check(fresh, "--key", "fc.*", "--expect", "standard")[0] == 0
    code, document = check(fresh, "--key", "fc.weight", "--expect", "he-normal")
    assert code == 1 and document["tensors"][0]["matches"] is False


def test_keys_include_and_exclude_and_must_match(tmp_path):
    _, document = check(str(DATA / "fresh.pt"), "--key", "*.weight", "--key", "!attn*")
    assert list(by_name(document)) == [
        "fc.weight", "conv.weight", "depthwise.weight", "embed.weight", "norm.weight",
    ]  # fmt: skip
    result = runner.invoke(app, ["check", str(DATA / "fresh.pt"), "--key", "nothing*"])
    assert result.exit_code == 2 and "no tensor matches --key nothing*" in result.stderr


def trained_copy(source: Path, target: Path) -> None:
    """The fresh weights with a rank-1 update at twice the edge, as safetensors."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(4)
    with open_tensors(source) as tensors:
        arrays = {info.name: np.array(array) for info, array in tensors}
    for name, array in arrays.items():
        if array.ndim >= 2:
            matrix = array.reshape(array.shape[0], -1).astype(np.float64)
            n, p = matrix.shape
            sigma = math.sqrt(np.mean(matrix**2))
            u, v = rng.standard_normal(n), rng.standard_normal(p)
            spike = 2 * sigma * (math.sqrt(n) + math.sqrt(p))
            matrix += spike * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
            arrays[name] = matrix.reshape(array.shape).astype(np.float32)
    save_file(arrays, str(target))


def test_ci_recipe_expect_trained_after_loading_a_checkpoint(tmp_path):
    trained = tmp_path / "trained.safetensors"
    trained_copy(DATA / "fresh.pt", trained)
    code, document = check(
        str(trained), "--key", "*weight", "--key", "!norm*", "--expect", "trained"
    )
    assert code == 0, [(r["name"], r["verdict"]) for r in document["tensors"]]
    assert all(r["verdict"] == "trained" for r in document["tensors"])
    assert all(r["top_singular_ratio"] > 1.3 for r in document["tensors"])
    # A tensor that stayed random (a renamed key, a strict=False load) fails the check.
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(trained))
    with open_tensors(DATA / "fresh.pt") as fresh:
        arrays["fc.weight"] = np.array(fresh.load(fresh.tensors[0]))
    save_file(arrays, str(tmp_path / "half.safetensors"))
    code, document = check(str(tmp_path / "half.safetensors"), "--key", "*weight",
                           "--key", "!norm*", "--expect", "trained")  # fmt: skip
    assert code == 1 and document["failures"] == [f"{tmp_path / 'half.safetensors'}:fc.weight"]


def test_table_groups_by_verdict_and_markdown_suits_a_ci_summary():
    table = runner.invoke(app, ["check", str(DATA / "fresh.pt")], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert table.stdout.index("init: 7 tensors") < table.stdout.index("constant: 4 tensors")
    assert "unknown: 2 tensors" in table.stdout
    assert "13 tensors: 7 init, 4 constant, 2 unknown" in table.stdout
    markdown = runner.invoke(app, ["check", str(DATA / "fresh.pt"), "-f", "markdown",
                                   "--expect", "trained"])  # fmt: skip
    assert markdown.exit_code == 1
    text = markdown.stdout
    assert text.startswith("**FAILED --expect trained")
    assert "| verdict | tensors |" in text and "### init (7)" in text and "❌" in text


def test_several_files_in_one_run(tmp_path):
    _, document = check(str(DATA / "fresh.pt"), str(DATA / "nested.pt"), "--key", "*fc.weight")
    assert [(r["file"], r["name"]) for r in document["tensors"]] == [
        (str(DATA / "fresh.pt"), "fc.weight"),
        (str(DATA / "nested.pt"), "model.fc.weight"),
    ]


def test_init_check_gives_the_same_answer_through_the_same_path():
    path = str(DATA / "fresh.pt")
    _, checked = check(path, "--layout", "out-in")
    # init --check ranks the 2-D matrices; its default layout is in-out, PyTorch's out-in (and
    # check's own auto layout reads an embedding table in-out: the override applies to both).
    result = runner.invoke(app, ["init", "--check", path, "--layout", "out-in", "-q", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    init = json.loads(result.stdout)
    rows = by_name(checked)
    assert [r["array"] for r in init["rankings"]] == [
        "fc.weight", "embed.weight", "attn.in_proj_weight", "attn.out_proj.weight",
    ]  # fmt: skip
    assert init["skipped"] == [n for n in rows if n not in {r["array"] for r in init["rankings"]}]
    for ranking in init["rankings"]:
        row = rows[ranking["array"]]
        assert ranking["best"] == row["scheme"] and ranking["candidates"] == row["candidates"]
    # With a scheme, init --check -s and check --expect judge the same way.
    result = runner.invoke(app, ["init", "--check", path, "--layout", "out-in", "--key", "fc.weight",
                                 "-s", "standard", "-q", "-f", "json"])  # fmt: skip
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"][0]["passed"]


def test_keras_and_onnx_files_get_their_verdicts(tmp_path):
    pytest.importorskip("h5py")
    _, document = check(str(DATA / "model.keras"))
    rows = by_name(document)
    # Keras' defaults: glorot uniform kernels (normalized), zero biases, U(+-0.05) embeddings.
    assert rows["dense/kernel"]["scheme"] == rows["conv/kernel"]["scheme"] == "normalized"
    assert rows["dense/bias"]["verdict"] == "constant"
    assert rows["embed/embeddings"]["scheme"].startswith("uniform:a=0.05")
    assert "fans per unit" in rows["grouped/kernel"]["reason"]
    from test_formats import onnx_model  # tests/ is on sys.path (no __init__.py)

    path, _ = onnx_model(tmp_path)
    _, document = check(str(path))
    rows = by_name(document)
    assert rows["gemm_w"]["layout"] == "out-in" and rows["gemm_w"]["fan_in"] == 48
    assert rows["matmul_w"]["layout"] == "in-out" and rows["matmul_w"]["fan_in"] == 32
    assert rows["gemm_b"]["verdict"] == "constant" and rows["ln_scale"]["role"] == "norm"
    # U(-0.1, 0.1) is the fan-free uniform with a = 0.1.
    assert rows["gemm_w"]["scheme"].startswith("uniform:a=0.1")


def test_python_api_with_arrays_and_a_path(tmp_path):
    rng = np.random.default_rng(8)
    bound = 1 / math.sqrt(300)
    weights = {"fc.weight": rng.uniform(-bound, bound, (200, 300)).astype(np.float32),
               "fc.bias": rng.uniform(-bound, bound, 200).astype(np.float32)}  # fmt: skip
    result = xavinit.check_weights(weights, expect="standard")
    assert result.passed and [r.layout for r in result.tensors] == ["out-in", "out-in"]
    assert [r.scheme for r in result.tensors] == ["standard", "standard"]
    assert xavinit.check_weights(str(DATA / "fresh.pt"), expect="init").passed
    with pytest.raises(xavinit.XavinitError, match="not an array"):
        xavinit.check_weights({"w": "text"})
    document = result.to_dict()
    assert xavinit.load_result is not None and document["command"] == "check"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(document))
    assert xavinit.load_result(path).tensors[0].scheme == "standard"


def test_pytorch_models_built_live_get_every_verdict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    layers = torch.nn.ModuleDict(
        {
            "linear": torch.nn.Linear(128, 64),
            "conv": torch.nn.Conv2d(16, 48, 3),
            "depthwise": torch.nn.Conv2d(48, 48, 5, groups=48),
            "embedding": torch.nn.Embedding(300, 48),
            "attention": torch.nn.MultiheadAttention(48, 4),
            "layernorm": torch.nn.LayerNorm(48),
        }
    )
    state = layers.state_dict()
    result = xavinit.check_weights(state, expect="init")
    assert result.passed
    rows = {r.name: r for r in result.tensors}
    expected = {
        "linear.weight": "standard", "linear.bias": "standard", "conv.weight": "standard",
        "conv.bias": "standard", "depthwise.weight": "standard", "depthwise.bias": "standard",
        "attention.in_proj_weight": "normalized", "attention.out_proj.weight": "standard",
    }  # fmt: skip
    for name, scheme in expected.items():
        assert (rows[name].verdict, rows[name].scheme) == ("init", scheme), rows[name]
    assert rows["embedding.weight"].scheme.startswith("normal:std=")
    for name in ("attention.in_proj_bias", "attention.out_proj.bias", "layernorm.weight",
                 "layernorm.bias"):  # fmt: skip
        assert rows[name].verdict == "constant", name
    with torch.no_grad():
        for name in ("linear.weight", "attention.in_proj_weight", "embedding.weight"):
            weight = state[name]
            n, p = weight.shape
            edge = weight.pow(2).mean().sqrt() * (math.sqrt(n) + math.sqrt(p))
            u, v = torch.randn(n, 1), torch.randn(1, p)
            weight += 1.5 * edge * (u / u.norm()) @ (v / v.norm())
    trained = {r.name: r for r in xavinit.check_weights(state).tensors}
    for name in ("linear.weight", "attention.in_proj_weight", "embedding.weight"):
        assert trained[name].verdict == "trained", trained[name]


def test_propagate_through_a_files_own_layers(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(9)
    widths = (50, 80, 80, 10)
    arrays = {}
    for k in range(3):
        bound = 1 / math.sqrt(widths[k])
        arrays[f"layers.{k}.weight"] = rng.uniform(
            -bound, bound, (widths[k + 1], widths[k])
        ).astype(np.float32)
        arrays[f"layers.{k}.bias"] = np.zeros(widths[k + 1], np.float32)
    save_file(arrays, str(tmp_path / "mlp.safetensors"))
    result = runner.invoke(app, ["propagate", "--weights", str(tmp_path / "mlp.safetensors"),
                                 "-a", "linear", "--batch", "2000", "-q", "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["config"]["layers"] == list(widths)
    (run,) = document["runs"]
    assert run["scheme"] == str(tmp_path / "mlp.safetensors") and len(run["layers"]) == 3
    # Linear regime, paper eq. 5: Var[z^1] = n_0 Var[x] Var[W^1], with U[-1, 1] inputs (1/3)
    # and Var[W^1] the file's mean of squares (out-in: the matrix is stored transposed).
    w1 = arrays["layers.0.weight"].astype(np.float64)
    expected = widths[0] * (1 / 3) * np.mean(w1**2)
    # 2000 x 80 values of a near-normal z: the variance's relative SE is sqrt(2 / 160000).
    assert run["layers"][0]["activation_var"] == pytest.approx(
        expected, rel=6 * math.sqrt(2 / 160_000) + 0.02
    )
    # A stack that does not chain is refused, naming the mismatch.
    arrays["layers.1.weight"] = arrays["layers.1.weight"][:, :70]
    save_file(arrays, str(tmp_path / "broken.safetensors"))
    broken = runner.invoke(app, ["propagate", "--weights", str(tmp_path / "broken.safetensors")])
    assert broken.exit_code == 2
    assert (
        "layers.0.weight (50 -> 80) does not chain into layers.1.weight (70 -> 80)" in broken.stderr
    )


def test_json_on_stdout_and_in_the_output_file_is_one_rendering(tmp_path):
    """``-f json -o out.json``: the file and stdout hold the same text (rendered once)."""
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["check", str(DATA / "fresh.pt"), "-q", "-f", "json", "-o", str(target)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == target.read_text(encoding="utf-8")
    assert json.loads(result.stdout)["command"] == "check"
