"""Checkpoint readers: files made by the real libraries read back exactly, and hostile files
refused with one line, exit 2, nothing run and nothing written."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cli_check_helpers import refused_by_cli
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.errors import XavinitError
from xavinit.formats import detect, open_tensors

DATA = Path(__file__).parent / "data" / "checkpoints"
runner = CliRunner()


def read_all(path: Path) -> dict[str, np.ndarray]:
    with open_tensors(path) as source:
        return {info.name: np.array(array) for info, array in source}


# --- safetensors: made by the safetensors package ------------------------------------------


@pytest.fixture
def safetensors_file(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {
        "fc.weight": rng.standard_normal((6, 5)).astype(np.float32),
        "fc.bias": rng.standard_normal(6).astype(np.float64),
        "half": rng.standard_normal((3, 4)).astype(np.float16),
        "ids": np.arange(7, dtype=np.int64),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "np"})
    return path, tensors


def test_safetensors_reads_what_the_library_wrote(safetensors_file):
    path, tensors = safetensors_file
    assert detect(str(path)) == "safetensors"
    found = read_all(path)
    assert set(found) == set(tensors)
    for name, array in tensors.items():
        assert found[name].dtype == array.dtype and np.array_equal(found[name], array), name
    with open_tensors(path) as source:
        assert {i.name: i.layout for i in source.tensors}["fc.weight"] == "out-in"


def test_safetensors_small_tensors_read_large_ones_mapped(tmp_path):
    """Tensors up to 64 KiB are read with one pread of the open file, larger ones mapped: both
    give the library's values; a file cut short after its header was read is refused in a
    line, not a crash."""
    from safetensors.numpy import save_file

    from xavinit.formats.safetensors import SMALL_TENSOR_BYTES

    rng = np.random.default_rng(1)
    tensors = {
        "small": rng.standard_normal((8, 8)).astype(np.float32),
        "edge": rng.standard_normal(SMALL_TENSOR_BYTES // 4).astype(np.float32),
        "large": rng.standard_normal((200, 100)).astype(np.float32),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, str(path))
    with open_tensors(path) as source:
        for info in source.tensors:
            array = source.load(info)
            assert isinstance(array, np.memmap) == (info.name == "large"), info.name
            assert np.array_equal(array, tensors[info.name]), info.name
    cut = tmp_path / "cut.safetensors"
    save_file({"small": tensors["small"]}, str(cut))
    with open_tensors(cut) as source:
        with open(cut, "r+b") as stream:
            stream.truncate(cut.stat().st_size - 4)
        with pytest.raises(XavinitError, match="'small' ends past the end of the file"):
            source.load(source.tensors[0])


def test_safetensors_bfloat16_without_torch(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from safetensors.numpy import save_file

    values = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
    save_file({"w": values.astype(ml_dtypes.bfloat16)}, str(tmp_path / "bf.safetensors"))
    with open_tensors(tmp_path / "bf.safetensors") as source:
        (info,) = source.tensors
        assert info.dtype == "bfloat16"
        loaded = source.load(info)
    # The exact float32 of each bfloat16, computed by ml_dtypes independently.
    expected = values.astype(ml_dtypes.bfloat16).astype(np.float32)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, expected)


def _safetensors_bytes(header: dict, data: bytes, length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


HOSTILE_SAFETENSORS = {
    "header longer than the file": (
        lambda: _safetensors_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, 10**6),
        "header declares",
    ),
    "overlapping offsets": (
        lambda: _safetensors_bytes(
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            b"\0" * 12,
        ),
        "overlap",
    ),
    "offsets beyond the data": (
        lambda: _safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
        "outside",
    ),
    "huge declared size": (
        lambda: _safetensors_bytes({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8),
        "needs",
    ),
    "huge header length": (lambda: struct.pack("<Q", 2**62) + b"{" + b"\0" * 64, "header declares"),
    "not JSON": (lambda: struct.pack("<Q", 4) + b"{abc" + b"\0" * 8, "not JSON"),
    "negative shape": (
        lambda: _safetensors_bytes({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
        "non-negative",
    ),
    "unknown dtype": (
        lambda: _safetensors_bytes({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4),
        "F8_E4M3",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_SAFETENSORS))
def test_hostile_safetensors_headers_are_refused(case, tmp_path):
    make, match = HOSTILE_SAFETENSORS[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make())
    refused_by_cli(path, match, tmp_path)


def test_truncated_safetensors(safetensors_file, tmp_path):
    path, _ = safetensors_file
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-20])
    refused_by_cli(cut, "outside", tmp_path)


# --- PyTorch: committed files made by torch.save (tests/data/checkpoints/make_torch.py) ------


def test_pytorch_state_dict_reads_every_tensor():
    found = read_all(DATA / "fresh.pt")
    assert list(found)[:2] == ["fc.weight", "fc.bias"]
    assert found["fc.weight"].shape == (64, 96) and found["fc.weight"].dtype == np.float32
    assert found["conv.weight"].shape == (16, 8, 3, 3)
    assert found["attn.in_proj_weight"].shape == (96, 32)
    assert np.all(found["norm.weight"] == 1) and np.all(found["norm.bias"] == 0)
    # PyTorch's default Linear draws U(-1/sqrt(96), 1/sqrt(96)).
    assert np.abs(found["fc.weight"]).max() <= 1 / np.sqrt(96)
    nested = read_all(DATA / "nested.pt")
    assert set(nested) == {f"model.{name}" for name in found}
    assert all(np.array_equal(nested[f"model.{k}"], v) for k, v in found.items())


def test_pytorch_bfloat16_and_strided_tensors():
    fresh = read_all(DATA / "fresh.pt")
    halves = read_all(DATA / "bfloat16.pt")
    # bfloat16 keeps the top 16 bits of float32, rounded to nearest even.
    bits = fresh["fc.weight"].view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    assert np.array_equal(halves["fc.weight"], rounded.view(np.float32))
    strided = read_all(DATA / "strided.pt")
    assert np.array_equal(strided["fc.weight"], fresh["fc.weight"].T)


def test_pytorch_live_round_trip_when_torch_is_installed(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    tensors = {
        "w": torch.randn(7, 5),
        "sliced": torch.randn(10, 10)[2:8:2, 1:],
        "half": torch.randn(4, 4).half(),
        "long": torch.arange(9),
        "p": torch.nn.Parameter(torch.randn(3)),
    }
    torch.save(tensors, tmp_path / "t.pt")
    found = read_all(tmp_path / "t.pt")
    for name, value in tensors.items():
        assert np.array_equal(found[name], value.detach().numpy()), name


def _torch_zip(
    path: Path, pickled: bytes, members: dict[str, bytes] | None = None, **zip_args
) -> Path:
    with zipfile.ZipFile(path, "w", **zip_args) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for name, data in (members or {}).items():
            archive.writestr(f"archive/{name}", data)
    return path


class _Call:
    """Pickles as a call of ``func(*args)``: what a malicious checkpoint contains."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("how", ["os.system", "eval", "__import__", "subprocess"])
def test_a_pickle_calling_anything_is_refused_before_it_runs(how, tmp_path):
    marker = tmp_path / "marker"
    command = f"touch {marker}"
    import subprocess

    payloads = {
        "os.system": (_Call(os.system, command), f"{os.system.__module__}.system"),
        "eval": (_Call(eval, f"open({str(marker)!r}, 'w')"), "builtins.eval"),
        "__import__": (_Call(__import__, "os"), "builtins.__import__"),
        "subprocess": (_Call(subprocess.call, ["touch", str(marker)]), "subprocess.call"),
    }
    payload, name = payloads[how]
    for protocol in (2, 4):  # torch writes protocol 2, whose names are Python 2's
        path = _torch_zip(tmp_path / "evil.pt", pickle.dumps({"w": payload}, protocol=protocol))
        line = refused_by_cli(path, "refused to unpickle global", tmp_path)
        assert name in line or how == "subprocess", line
    assert "nothing in the file was run" in line
    assert not marker.exists()


def test_a_whole_pickled_module_is_refused_with_the_state_dict_hint(tmp_path):
    refused_by_cli(DATA / "module.pt", "torch.save(model.state_dict(), PATH)", tmp_path)
    # The same without torch: a pickle naming a module class.
    pickled = b"\x80\x02ctorch.nn.modules.linear\nLinear\nq\x00)\x81q\x01."
    path = _torch_zip(tmp_path / "module.pt", pickled)
    refused_by_cli(path, "a whole pickled model (torch.nn.modules.linear.Linear)", tmp_path)


def test_legacy_and_truncated_pytorch_files(tmp_path):
    # A legacy (non-zip) file is read (tests/test_formats_torch_archives.py tests it in depth).
    assert detect(str(DATA / "legacy.pt")) == "pytorch-legacy"
    legacy = read_all(DATA / "legacy.pt")
    assert list(legacy) == ["weight", "bias"] and legacy["weight"].shape == (3, 4)
    cut = tmp_path / "cut.pt"
    cut.write_bytes((DATA / "fresh.pt").read_bytes()[:5000])
    refused_by_cli(cut, "corrupt or truncated zip", tmp_path)


def test_a_storage_shorter_than_its_tensor_is_refused(tmp_path):
    # The committed checkpoint with its first storage (fc.weight, 64 x 96 floats) cut to 8 bytes.
    path = tmp_path / "short.pt"
    with zipfile.ZipFile(DATA / "fresh.pt") as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, data[:8] if info.filename.endswith("/data/0") else data)
    refused_by_cli(path, "of a storage of 6144 (8 bytes in the file)", tmp_path)


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    # 200 MB of zeros deflate to about 200 KB: a member declaring 1000 x its size.
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        with archive.open("archive/data/0", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(200):
                member.write(chunk)
    assert path.stat().st_size < 2_000_000
    refused_by_cli(path, "zip bomb", tmp_path)
    npz = tmp_path / "bomb.npz"
    with zipfile.ZipFile(npz, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(50_000_000, dtype=np.float32))
        archive.writestr("w.npy", buffer.getvalue())
    refused_by_cli(npz, "zip bomb", tmp_path)


# --- dtypes xavinit does not check, corrupt files of every format ------------------------


def test_bool_complex_and_string_tensors_are_refused(tmp_path):
    from safetensors.numpy import save_file

    save_file({"mask": np.ones((4, 4), dtype=bool)}, str(tmp_path / "mask.safetensors"))
    refused_by_cli(tmp_path / "mask.safetensors", "dtype bool", tmp_path)
    np.savez(tmp_path / "complex.npz", w=np.ones((4, 4), dtype=np.complex64))
    refused_by_cli(tmp_path / "complex.npz", "dtype complex64", tmp_path)
    np.savez(tmp_path / "text.npz", w=np.array(["a", "b"]))
    line = refused_by_cli(tmp_path / "text.npz", "dtype str", tmp_path)
    assert "--key '!w'" in line
    # Leaving the tensor out is the way around it.
    np.savez(tmp_path / "mixed.npz", w=np.ones((40, 40)), names=np.array(["a"]))
    result = runner.invoke(app, ["check", str(tmp_path / "mixed.npz"), "--key", "!names"])
    assert result.exit_code == 0, result.stderr


def test_nan_weights_are_bad_input(tmp_path):
    from safetensors.numpy import save_file

    w = np.ones((40, 40), dtype=np.float32)
    w[3, 4] = np.nan
    save_file({"w": w}, str(tmp_path / "nan.safetensors"))
    refused_by_cli(tmp_path / "nan.safetensors", "NaN or infinite", tmp_path)


def test_corrupt_hdf5_keras_and_onnx_files(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    refused_by_cli(tmp_path / "bad.h5", "not a readable Keras file", tmp_path)
    keras = (DATA / "model.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(keras[: len(keras) // 2])
    refused_by_cli(tmp_path / "cut.keras", "corrupt or truncated zip", tmp_path)
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07\x12\xff\xff\xff garbage")
    refused_by_cli(tmp_path / "bad.onnx", "not a readable ONNX model", tmp_path)
    (tmp_path / "empty.bin").write_bytes(b"")
    refused_by_cli(tmp_path / "empty.bin", "empty", tmp_path)


@pytest.mark.parametrize(("package", "file"), [("h5py", "model.h5"), ("onnx", "x.onnx")])
def test_a_missing_optional_package_names_the_pip_line(package, file, monkeypatch, tmp_path):
    import sys

    path = DATA / file
    if file.endswith(".onnx"):
        path = tmp_path / file
        path.write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    line = refused_by_cli(path, "pip install 'xavinit[formats]'", tmp_path)
    assert package in line


# --- Keras: committed files made by keras (tests/data/checkpoints/make_keras.py) ----------


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_keras_files_give_layers_roles_and_groups(name):
    pytest.importorskip("h5py")
    with open_tensors(DATA / name) as source:
        infos = {i.name: i for i in source.tensors}
        assert infos["conv/kernel"].shape == (3, 3, 8, 16) and infos["conv/kernel"].role == "conv"
        assert infos["grouped/kernel"].groups == 4
        assert infos["depthwise/kernel"].depthwise
        assert infos["dense/kernel"].layout == "in-out" and infos["dense/bias"].role == "bias"
        assert infos["embed/embeddings"].role == "embedding"
        assert infos["norm/gamma"].role == "norm"
        kernel = source.load(infos["dense/kernel"])
    # Keras' Dense default, glorot uniform: |w| <= sqrt(6 / (512 + 64)).
    assert kernel.shape == (512, 64) and np.abs(kernel).max() <= np.sqrt(6 / 576)


def test_keras_files_of_both_formats_hold_the_same_weights():
    pytest.importorskip("h5py")
    assert read_all(DATA / "model.keras").keys() == read_all(DATA / "model.h5").keys()
    new, old = read_all(DATA / "model.keras"), read_all(DATA / "model.h5")
    assert all(np.array_equal(new[k], old[k]) for k in new)


# --- ONNX: graphs built by onnx.helper ----------------------------------------------------


def onnx_model(tmp_path: Path, external: bool = False) -> tuple[Path, dict[str, np.ndarray]]:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    arrays = {
        "gemm_w": rng.uniform(-0.1, 0.1, (32, 48)).astype(np.float32),  # (N, K), transB=1
        "gemm_b": np.zeros(32, np.float32),
        "matmul_w": rng.standard_normal((32, 16)).astype(np.float32),  # (K, N)
        "add_b": np.zeros(16, np.float32),
        "conv_w": rng.standard_normal((8, 2, 3, 3)).astype(np.float32),  # group 2, 4 in
        "conv_b": np.zeros(8, np.float32),
        "table": rng.standard_normal((50, 48)).astype(np.float32),
        "ln_scale": np.ones(16, np.float32),
        "ln_bias": np.zeros(16, np.float32),
    }
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("Gemm", ["emb", "gemm_w", "gemm_b"], ["h"], transB=1),
        helper.make_node("MatMul", ["h", "matmul_w"], ["m"]),
        helper.make_node("Add", ["m", "add_b"], ["a"]),
        helper.make_node("LayerNormalization", ["a", "ln_scale", "ln_bias"], ["out"]),
        helper.make_node("Conv", ["img", "conv_w", "conv_b"], ["c"], group=2),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [3]),
         helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [3, 16]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 8, 3, 3])],
        initializer=[numpy_helper.from_array(v, k) for k, v in arrays.items()],
    )  # fmt: skip
    model = helper.make_model(graph)
    path = tmp_path / "model.onnx"
    if external:
        onnx.save_model(
            model, str(path), save_as_external_data=True, location="weights.bin",
            size_threshold=0,
        )  # fmt: skip
    else:
        onnx.save_model(model, str(path))
    return path, arrays


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external"])
def test_onnx_initializers_get_roles_and_layouts_from_their_nodes(tmp_path, external):
    path, arrays = onnx_model(tmp_path, external)
    with open_tensors(path) as source:
        infos = {i.name: i for i in source.tensors}
        found = {i.name: source.load(i) for i in source.tensors}
    assert all(np.array_equal(found[k], v) for k, v in arrays.items())
    assert (infos["gemm_w"].role, infos["gemm_w"].layout) == ("dense", "out-in")
    assert (infos["matmul_w"].role, infos["matmul_w"].layout) == ("dense", "in-out")
    assert (infos["conv_w"].role, infos["conv_w"].groups) == ("conv", 2)
    assert infos["gemm_b"].owner == "gemm_w" and infos["add_b"].owner == "matmul_w"
    assert infos["conv_b"].owner == "conv_w" and infos["table"].role == "embedding"
    assert infos["ln_scale"].role == "norm"


def test_onnx_external_data_outside_the_folder_is_refused(tmp_path):
    path, _ = onnx_model(tmp_path, external=True)
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save_model(model, str(path))
    refused_by_cli(path, "leaves the model's folder", tmp_path)


def test_unknown_content_and_a_zip_of_something_else(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    refused_by_cli(tmp_path / "notes.txt", "unknown format", tmp_path)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "x")
    refused_by_cli(tmp_path / "other.zip", "neither an .npz", tmp_path)
    with pytest.raises(XavinitError, match="does not exist"):
        open_tensors(tmp_path / "missing.pt")
