"""TorchScript archives and legacy (non-zip) ``torch.save`` files: files made by torch here read
back exactly (names, values, role hints), and hostile files refused with one line, exit 2,
nothing run and nothing written."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cli_check_helpers import checked_by_cli, refused_by_cli
from typer.testing import CliRunner

from xavinit.formats import detect, open_tensors

runner = CliRunner()


def read_all(path: Path) -> dict[str, np.ndarray]:
    with open_tensors(path) as source:
        return {info.name: np.array(array) for info, array in source}


def infos(path: Path) -> dict:
    with open_tensors(path) as source:
        return {info.name: info for info in source.tensors}


# --- files made by torch ------------------------------------------------------------------


def _model(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 6)
            self.conv = nn.Conv2d(4, 8, 3, groups=2)
            self.bn = nn.BatchNorm2d(8)
            self.lstm = nn.LSTM(6, 6, num_layers=2)
            self.emb = nn.Embedding(10, 6)
            self.attn = nn.MultiheadAttention(6, 2, add_bias_kv=True)
            self.head = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5))
            self.up = nn.ConvTranspose2d(4, 6, 2, groups=2)  # not called: kept all the same
            self.register_buffer("halves", torch.randn(5).to(torch.bfloat16))

        def forward(self, x, img, ids):
            y = self.fc(x)
            z = self.bn(self.conv(img))
            o, _ = self.lstm(self.emb(ids))
            a, _ = self.attn(o, o, o)
            h = self.head(a)
            return y.sum() + z.sum() + h.sum() + torch.tensor([1.5, 2.5]).sum()

    torch.manual_seed(0)
    model = Net()
    inputs = (torch.randn(2, 8), torch.randn(3, 4, 6, 6), torch.randint(0, 10, (3, 2)))
    model.train()
    model(*inputs)  # running statistics that are not the defaults
    return model.eval(), inputs


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The model, its state dict, and each kind of file torch writes for it."""
    import warnings

    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("torch")
    model, inputs = _model(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(folder / "script.pt"))
        torch.jit.trace(model, inputs).save(str(folder / "trace.pt"))
        plain = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4))
        torch.jit.freeze(torch.jit.script(plain.eval())).save(str(folder / "frozen.pt"))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(model.state_dict(), folder / "legacy.pt", _use_new_zipfile_serialization=False)
    base = torch.randn(6, 8)
    tensors = {
        "base": base,
        "transposed": base.t(),  # three views of one storage
        "sliced": base[1:5:2, 2:],
        "half": torch.randn(4, 3).half(),
        "bf16": torch.randn(3, 5).to(torch.bfloat16),
        "long": torch.arange(7),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "nested": {"list": [torch.ones(2), torch.zeros(1, 3, dtype=torch.int32)]},
        "epoch": 3,
    }
    torch.save(tensors, folder / "tensors.pt", _use_new_zipfile_serialization=False)
    torch.save(tensors, folder / "tensors4.pt", _use_new_zipfile_serialization=False,
               pickle_protocol=4)  # fmt: skip
    plain_state = {k: v.detach().clone() for k, v in plain.state_dict().items()}
    return {"folder": folder, "state": state, "tensors": tensors, "plain": plain_state}


def _numpy(tensor) -> np.ndarray:
    import torch

    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    return tensor.detach().numpy()


ROLES = {
    "fc.weight": "dense", "fc.bias": "bias", "conv.weight": "conv", "conv.bias": "bias",
    "bn.weight": "norm", "bn.bias": "norm", "bn.running_mean": "norm", "bn.running_var": "norm",
    "bn.num_batches_tracked": "norm", "emb.weight": "embedding",
    "lstm.weight_ih_l0": "recurrent", "lstm.weight_hh_l0": "recurrent", "lstm.bias_ih_l0": "bias",
    "lstm.bias_hh_l1": "bias", "attn.in_proj_weight": "attention", "attn.in_proj_bias": "bias",
    "attn.bias_k": "bias", "attn.bias_v": "bias", "attn.out_proj.weight": "attention",
    "attn.out_proj.bias": "bias", "head.0.weight": "dense", "head.1.weight": "norm",
    "head.1.bias": "norm", "halves": None,
}  # fmt: skip
OWNERS = {
    "fc.bias": "fc.weight", "conv.bias": "conv.weight", "lstm.bias_ih_l0": "lstm.weight_hh_l0",
    "lstm.bias_hh_l1": "lstm.weight_hh_l1", "attn.in_proj_bias": "attn.in_proj_weight",
    "attn.out_proj.bias": "attn.out_proj.weight", "attn.bias_k": None,
}  # fmt: skip


@pytest.mark.parametrize("kind", ["script", "trace"])
def test_torchscript_lists_every_tensor_with_torchs_values(made, kind):
    path = made["folder"] / f"{kind}.pt"
    assert detect(str(path)) == "torchscript"
    found = read_all(path)
    state = made["state"]
    # The modules' tensors by state-dict name, in order (the LSTM's _flat_weights aliases are
    # not listed twice), then the code's constants.
    assert [n for n in found if not n.startswith("constants.")] == list(state)
    for name, tensor in state.items():
        assert found[name].dtype == _numpy(tensor).dtype, name
        assert np.array_equal(found[name], _numpy(tensor)), name
    described = infos(path)
    for name, role in ROLES.items():
        assert described[name].role == role, (name, described[name])
    for name, owner in OWNERS.items():
        assert described[name].owner == owner, name
    assert described["conv.weight"].groups == 2  # scripted: Final; traced: _convolution's
    assert described["up.weight"].role == "conv" and "ConvTranspose" in described["up.weight"].note
    # An uncalled module has no convolution call in a trace: its groups stay unknown.
    assert described["up.weight"].groups == (2 if kind == "script" else None)
    assert described["lstm.weight_hh_l1"].fan_axes == ((1,), (0,))
    assert all(i.layout == "out-in" for i in described.values())
    constants = {n: a for n, a in found.items() if n.startswith("constants.")}
    if kind == "trace":  # torch.tensor([1.5, 2.5]) in forward: a constant of the trace
        assert any(np.array_equal(a, [1.5, 2.5]) for a in constants.values())
        assert all(described[n].role == "other" for n in constants)


def test_a_frozen_module_keeps_its_weights_in_constants(made):
    path = made["folder"] / "frozen.pt"
    found, described = read_all(path), infos(path)
    plain = made["plain"]
    assert list(found) == [f"constants.{i}" for i in range(4)]
    for index, name in enumerate(["0.weight", "0.bias", "2.weight", "2.bias"]):
        assert np.array_equal(found[f"constants.{index}"], _numpy(plain[name])), name
    assert [described[f"constants.{i}"].role for i in range(4)] == [
        "dense", "bias", "dense", "bias"
    ]  # fmt: skip
    assert described["constants.1"].owner == "constants.0"


def test_legacy_state_dict_reads_back_exactly(made):
    path = made["folder"] / "legacy.pt"
    assert detect(str(path)) == "pytorch-legacy"
    found = read_all(path)
    assert list(found) == list(made["state"])
    for name, tensor in made["state"].items():
        assert np.array_equal(found[name], _numpy(tensor)), name
    assert all(i.layout == "out-in" for i in infos(path).values())


@pytest.mark.parametrize("name", ["tensors.pt", "tensors4.pt"])
def test_legacy_dtypes_and_views_sharing_a_storage(made, name):
    path = made["folder"] / name
    assert detect(str(path)) == "pytorch-legacy"
    found = read_all(path)
    expected = {
        "base": made["tensors"]["base"], "transposed": made["tensors"]["transposed"],
        "sliced": made["tensors"]["sliced"], "half": made["tensors"]["half"],
        "bf16": made["tensors"]["bf16"], "long": made["tensors"]["long"],
        "scalar": made["tensors"]["scalar"],
        "nested.list.0": made["tensors"]["nested"]["list"][0],
        "nested.list.1": made["tensors"]["nested"]["list"][1],
    }  # fmt: skip
    assert list(found) == list(expected)
    for key, tensor in expected.items():
        assert found[key].dtype == _numpy(tensor).dtype, key
        assert np.array_equal(found[key], _numpy(tensor)), key
    assert infos(path)["bf16"].dtype == "bfloat16"


@pytest.mark.parametrize("name", ["script.pt", "trace.pt", "legacy.pt", "frozen.pt"])
def test_check_runs_end_to_end(made, name):
    rows = checked_by_cli(made["folder"] / name)
    if name != "frozen.pt":
        assert set(made["state"]) <= set(rows)
    if name in ("script.pt", "trace.pt"):
        assert rows["lstm.weight_ih_l0"]["role"] == "recurrent"
        assert rows["conv.weight"]["fan_in"] == 2 * 9  # (in / groups) * rf


def test_silero_vad_jit_is_read_completely():
    """A real TorchScript model users have (silero-vad's silero_vad.jit), read completely."""
    from importlib.util import find_spec

    spec = find_spec("silero_vad")  # located, not imported (a test dependency)
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.jit"
    described = infos(path)
    assert described["_model.decoder.rnn.weight_ih"].role == "recurrent"
    assert described["_model.encoder.0.reparam_conv.weight"].groups == 1
    torch = pytest.importorskip("torch")
    state = torch.jit.load(str(path)).state_dict()
    found = read_all(path)
    assert set(state) <= set(found)
    for name, tensor in state.items():
        assert np.array_equal(found[name], _numpy(tensor)), name
    checked_by_cli(path)


# --- hostile TorchScript archives ---------------------------------------------------------


class _Call:
    """Pickles as a call of ``func(*args)``: what a malicious file contains."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _body(value) -> bytes:
    """The opcodes that push ``value`` (protocol 2, without PROTO and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _script_object(state: bytes, cls: bytes = b"__torch__\nM\n") -> bytes:
    """A pickle of a ``__torch__`` object whose BUILD state is pushed by ``state``."""
    return b"\x80\x02c" + cls + b")\x81" + state + b"b."


def _script_zip(path: Path, data: bytes, constants: bytes | None = None, **zip_args) -> Path:
    with zipfile.ZipFile(path, "w", **zip_args) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/constants.pkl", constants or pickle.dumps((), protocol=2))
        archive.writestr("archive/code/__torch__.py", "class M(Module):\n  pass\n")
        archive.writestr("archive/byteorder", "little")
    return path


def test_a_torchscript_pickle_calling_os_system_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    command = f"touch {marker}"
    state = _body({"w": _Call(os.system, command)})
    path = _script_zip(tmp_path / "evil.pt", _script_object(state))
    assert detect(str(path)) == "torchscript"
    line = refused_by_cli(path, "refused to unpickle global", tmp_path)
    assert f"{os.system.__module__}.system" in line and "nothing in the file was run" in line
    # The same call in constants.pkl.
    path = _script_zip(
        tmp_path / "evil2.pt",
        _script_object(_body({})),
        pickle.dumps((_Call(os.system, command),), protocol=2),
    )
    refused_by_cli(path, "refused to unpickle global", tmp_path)
    assert not marker.exists()


def test_a_torchscript_placeholder_cannot_reach_a_callable(tmp_path):
    marker = tmp_path / "MARKER"
    # getattr(placeholder, "__reduce__"): builtins.getattr is refused.
    obj = _script_object(_body({}))[2:-1]
    grab = b"\x80\x02cbuiltins\ngetattr\n(" + obj + _body("__reduce__") + b"tR."
    refused_by_cli(_script_zip(tmp_path / "a.pt", grab), "'builtins.getattr'", tmp_path)
    # A module named like __torch__ but outside it.
    fake = _script_object(_body({}), cls=b"__torch__os\nsystem\n")
    refused_by_cli(_script_zip(tmp_path / "b.pt", fake), "'__torch__os.system'", tmp_path)
    # A placeholder class called with arguments builds a placeholder and runs nothing.
    called = b"\x80\x02c__torch__\nM\n(" + _body(f"touch {marker}") + b"tR."
    assert read_all(_script_zip(tmp_path / "c.pt", called)) == {}
    # A BUILD state that names eval is refused.
    state = _body({"w": _Call(eval, f"open({str(marker)!r}, 'w')")})
    refused_by_cli(_script_zip(tmp_path / "d.pt", _script_object(state)), "builtins.eval", tmp_path)
    # A real torch class (not a __torch__ placeholder).
    module = b"\x80\x02ctorch.nn.modules.linear\nLinear\n)\x81}b."
    refused_by_cli(
        _script_zip(tmp_path / "e.pt", module), "torch.nn.modules.linear.Linear", tmp_path
    )
    assert not marker.exists()


def test_a_torchscript_zip_bomb_and_a_short_storage_are_refused(made, tmp_path):
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", _script_object(_body({})))
        archive.writestr("archive/constants.pkl", pickle.dumps((), protocol=2))
        with archive.open("archive/data/0", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(20):  # 20 MiB from about 20 KB: 1000 x its size
                member.write(chunk)
    assert path.stat().st_size < 200_000
    refused_by_cli(path, "zip bomb", tmp_path)
    # The scripted model with fc.weight's storage (data/1, 48 floats) cut to 8 bytes.
    short = tmp_path / "short.pt"
    with (
        zipfile.ZipFile(made["folder"] / "script.pt") as source,
        zipfile.ZipFile(short, "w") as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, data[:8] if info.filename.endswith("/data/1") else data)
    refused_by_cli(short, "reaches element 47 of a storage of 48 (8 bytes in the file)", tmp_path)


def test_pickle_buffers_are_refused_before_anything_is_allocated(tmp_path):
    huge = b"\x80\x05\x96" + struct.pack("<Q", 2**50) + b"abc."
    refused_by_cli(_script_zip(tmp_path / "huge.pt", huge), "damaged pickle", tmp_path)
    small = b"\x80\x05\x96" + struct.pack("<Q", 3) + b"abc."
    refused_by_cli(_script_zip(tmp_path / "small.pt", small), "opcode BYTEARRAY8", tmp_path)


def test_shared_references_cannot_make_the_walk_explode(tmp_path, monkeypatch):
    from xavinit.formats import torch as reader

    monkeypatch.setattr(reader, "MAX_ENTRIES", 100_000)  # 1_000_000 by default: a second
    nested: dict = {}
    for _ in range(64):  # 2^64 paths from a pickle of a few hundred bytes
        nested = {"a": nested, "b": nested}
    state = _body({"x": nested})
    path = _script_zip(tmp_path / "paths.pt", _script_object(state))
    refused_by_cli(path, "more than 100000 values", tmp_path)
    cycle = b"\x80\x02c__torch__\nM\n)\x81q\x00}X\x04\x00\x00\x00selfh\x00sb."
    assert read_all(_script_zip(tmp_path / "cycle.pt", cycle)) == {}


# --- hostile and damaged legacy files -----------------------------------------------------

MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 8}}  # fmt: skip


def _header() -> bytes:
    return b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC, 1001, SYS_INFO))


def _tensor(numel: int, shape=(4,), strides=(1,), view=None, key="0") -> bytes:
    """Opcodes for ``_rebuild_tensor_v2`` of a FloatStorage ``key`` of ``numel`` elements."""
    pid = (
        b"(" + _body("storage") + b"ctorch\nFloatStorage\n" + _body(key) + _body("cpu")
        + _body(numel) + (_body(view) if view is not None else b"N") + b"tQ"
    )  # fmt: skip
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + _body(0) + _body(shape)
        + _body(strides) + b"\x89ccollections\nOrderedDict\n)RtR"
    )  # fmt: skip


def _legacy(
    obj: bytes | None = None, keys=("0",), count: int = 4, data: bytes | None = None
) -> bytes:
    """A legacy file: header, object (``{'w': tensor}``), keys, then one storage."""
    obj = obj if obj is not None else b"\x80\x02}" + _body("w") + _tensor(4) + b"s."
    data = data if data is not None else np.arange(4, dtype="<f4").tobytes()
    return _header() + obj + pickle.dumps(list(keys), protocol=2) + struct.pack("<q", count) + data


def test_the_hand_made_legacy_file_is_what_torch_reads(tmp_path):
    path = tmp_path / "made.pt"
    path.write_bytes(_legacy())
    assert np.array_equal(read_all(path)["w"], np.arange(4, dtype=np.float32))
    torch = pytest.importorskip("torch")
    assert torch.equal(torch.load(path, weights_only=False)["w"], torch.arange(4.0))


def test_a_legacy_pickle_calling_os_system_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    evil = pickle.dumps({"w": _Call(os.system, f"touch {marker}")}, protocol=2)
    path = tmp_path / "evil.pt"
    path.write_bytes(_legacy(obj=evil))
    assert detect(str(path)) == "pytorch-legacy"
    line = refused_by_cli(path, "refused to unpickle global", tmp_path)
    assert f"{os.system.__module__}.system" in line and "nothing in the file was run" in line
    # In the header's sys_info pickle, where no global at all is allowed.
    header = b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC, 1001))
    path.write_bytes(header + pickle.dumps(_Call(os.system, f"touch {marker}"), protocol=2))
    refused_by_cli(path, "refused to unpickle global", tmp_path)
    # A bare pickle (no magic number) is not unpickled at all.
    path.write_bytes(evil)
    refused_by_cli(path, "a bare pickle", tmp_path)
    # A legacy torch.save of a whole module names its class.
    module = b"\x80\x02ctorch.nn.modules.linear\nLinear\nq\x00)\x81q\x01."
    path.write_bytes(_legacy(obj=module))
    refused_by_cli(path, "a whole pickled model (torch.nn.modules.linear.Linear)", tmp_path)
    assert not marker.exists()


def test_truncated_legacy_files_are_refused(tmp_path):
    whole = _legacy()
    header = len(_header())
    data = len(whole) - 16  # where the storage's 16 bytes start
    cut = tmp_path / "cut.pt"
    # Inside the header, the object, the key list, the count and the storage's bytes.
    for size in (40, header + 20, data - 20, data - 4, data + 7, len(whole) - 1):
        cut.write_bytes(whole[:size])
        line = refused_by_cli(cut, "not a readable legacy PyTorch checkpoint", tmp_path)
        assert "truncated" in line, (size, line)


LEGACY_CASES = {
    "2^62 elements": (
        lambda: _legacy(b"\x80\x02}" + _body("w") + _tensor(2**62) + b"s.", count=2**62),
        "declares 4611686018427387904 elements",
    ),
    "count unlike the declared": (lambda: _legacy(count=5), "declares 4 elements but its data says 5"),
    "negative count": (lambda: _legacy(count=-1), "its data says -1"),
    "storage listed twice": (lambda: _legacy(keys=("0", "0")), "listed twice"),
    "storage without data": (lambda: _legacy(keys=()), "has no data"),
    "unused key": (lambda: _legacy(keys=("0", "1")), "which no tensor uses"),
    "view past its storage": (
        lambda: _legacy(b"\x80\x02}" + _body("w") + _tensor(4, view=("v", 2, 3)) + b"s."),
        "a view of elements 2..5 of storage '0' of 4",
    ),
    "tensor past its storage": (
        lambda: _legacy(b"\x80\x02}" + _body("w") + _tensor(4, shape=(5,)) + b"s."),
        "reaches element 4 of a storage of 4",
    ),
    "negative stride": (
        lambda: _legacy(b"\x80\x02}" + _body("w") + _tensor(4, strides=(-1,)) + b"s."),
        "bad size",
    ),
    "huge string in the pickle": (
        lambda: _header() + b"\x80\x02X\xff\xff\xff\x7f" + b"\0" * 64,
        "truncated: the file ends inside its pickles",
    ),
    "wrong protocol version": (
        lambda: pickle.dumps(MAGIC, protocol=2) + pickle.dumps(7, protocol=2),
        "protocol version 7",
    ),
    "bytearray8 of 2^50 bytes": (
        lambda: _header() + b"\x80\x05\x96" + struct.pack("<Q", 2**50) + b"\0" * 64,
        "truncated: the file ends inside its pickles",
    ),
    "big-endian": (
        lambda: _legacy().replace(b"\x88", b"\x89", 1),
        "big-endian",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LEGACY_CASES))
def test_damaged_legacy_files_are_refused(case, tmp_path):
    make, match = LEGACY_CASES[case]
    path = tmp_path / "bad.pt"
    path.write_bytes(make())
    refused_by_cli(path, match, tmp_path)


def test_a_legacy_view_storage_reads_its_slice(tmp_path):
    obj = b"\x80\x02}" + _body("w") + _tensor(4, shape=(2,), view=("v", 1, 2)) + b"s."
    path = tmp_path / "view.pt"
    path.write_bytes(_legacy(obj))
    assert np.array_equal(read_all(path)["w"], [1.0, 2.0])


def test_legacy_pickles_longer_than_the_limit_are_refused(tmp_path, monkeypatch):
    from xavinit.formats import torch as reader

    monkeypatch.setattr(reader, "MAX_PICKLE", 100)
    path = tmp_path / "long.pt"
    path.write_bytes(_legacy())
    refused_by_cli(path, "longer than 100 bytes", tmp_path)
