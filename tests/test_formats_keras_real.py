"""The Keras reader on files Keras itself writes (``.keras``, legacy ``.h5``, ``save_weights``):
every variable listed with its value, its name and its hints; and hostile Keras files refused
with one line, exit 2, nothing written (or, for the config, which is only hints, ignored).

Models are built once per module (Keras on the torch backend); the hostile files are made with
h5py and zipfile alone, so those tests run where Keras is not installed.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cli_check_helpers import refused_by_cli
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.errors import XavinitError
from xavinit.formats import open_tensors
from xavinit.formats.keras import einsum_fan_axes, keras_fans

h5py = pytest.importorskip("h5py")
runner = CliRunner()


def listing(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``{name: TensorInfo}`` and ``{name: values}`` of a file."""
    with open_tensors(path) as source:
        infos = {info.name: info for info in source.tensors}
        assert len(infos) == len(source.tensors), "names are unique"
        values = {info.name: np.array(array) for info, array in source}
    return infos, values


def checked(path: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["check", str(path), "-q", "-f", "json", *extra])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


# --- files written by Keras ---------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _zoo(keras):
    """A functional model with every layer the reader knows, a nested Sequential and a nested
    functional model."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    seq = keras.Input((6, 8), name="seq")
    x = layers.LSTM(8, return_sequences=True, name="lstm")(seq)
    x = layers.GRU(8, return_sequences=True, name="gru")(x)
    x = layers.GRU(4, reset_after=False, return_sequences=True, name="gru_v1")(x)
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True, name="lstm4"), name="bidi")(x)
    x = layers.SimpleRNN(6, return_sequences=True, name="rnn")(x)
    cells = layers.StackedRNNCells(
        [layers.GRUCell(3, name="gru_cell"), layers.SimpleRNNCell(4, name="simple_cell")],
        name="cells",
    )
    x = layers.RNN(cells, return_sequences=True, name="stacked")(x)
    x = layers.MultiHeadAttention(num_heads=2, key_dim=5, name="mha")(x, x)
    x = layers.LayerNormalization(name="ln")(x)
    x = layers.TimeDistributed(layers.Dense(4), name="td")(x)
    x = layers.EinsumDense("abc,cd->abd", output_shape=(6, 5), bias_axes="d", name="ein")(x)
    x = layers.Flatten()(x)
    sub = keras.Sequential(
        [
            keras.Input((30,)),
            layers.Dense(16, name="sub_dense"),
            layers.BatchNormalization(name="sub_bn"),
        ],
        name="sub",
    )
    inner_in = keras.Input((16,))
    inner = keras.Model(inner_in, layers.Dense(8, use_bias=False, name="inner_dense")(inner_in),
                        name="inner")  # fmt: skip
    x = inner(sub(x))
    image = keras.Input((12, 12, 4), name="image")
    y = layers.Conv2D(16, 3, groups=2, name="grouped")(image)
    y = layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(y)
    y = layers.SeparableConv2D(8, 3, name="separable")(y)
    y = layers.Conv2DTranspose(6, 3, name="transpose")(y)
    y = layers.BatchNormalization(center=False, name="bn")(y)
    y = layers.GroupNormalization(groups=3, name="gn")(y)
    y = layers.GlobalAveragePooling2D()(y)
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    e = layers.GlobalAveragePooling1D()(layers.Embedding(300, 64, name="embed")(tokens))
    out = layers.Dense(3, name="head")(layers.Concatenate()([x, y, e]))
    return keras.Model([seq, image, tokens], out, name="zoo"), inner


@pytest.fixture(scope="module")
def zoo(keras, tmp_path_factory):
    """The zoo saved as .keras, legacy .h5 and save_weights, with the names Keras gives."""
    model, inner = _zoo(keras)
    folder = tmp_path_factory.mktemp("zoo")
    files = {"keras": folder / "zoo.keras", "h5": folder / "zoo.h5",
             "weights": folder / "zoo.weights.h5"}  # fmt: skip
    model.save(files["keras"])
    model.save(files["h5"])
    model.save_weights(files["weights"])
    nested = {id(v) for v in inner.weights}
    # Keras' variable.path, with the functional sub-model's name in front (its path lacks it).
    expected = {
        (f"inner/{v.path}" if id(v) in nested else v.path): np.array(v.numpy())
        for v in model.weights
    }
    assert len(expected) == len(model.weights)
    return files, expected


@pytest.mark.parametrize("kind", ["keras", "h5", "weights"])
def test_every_variable_is_listed_with_its_name_and_value(zoo, kind):
    files, expected = zoo
    infos, values = listing(files[kind])
    if kind == "weights":
        # No config: BatchNormalization(center=False) saved 3 of gamma, beta, moving_mean,
        # moving_variance; which 3 the file cannot say, so they go by position.
        for position, variable in enumerate(("gamma", "moving_mean", "moving_variance")):
            expected = {**expected, f"bn/vars/{position}": expected[f"bn/{variable}"]}
            del expected[f"bn/{variable}"]
    assert len(infos) == len(expected)  # 64 variables; the reader used to find 14 in a .keras
    assert set(values) == set(expected)
    for name, array in expected.items():
        assert values[name].dtype == array.dtype and np.array_equal(values[name], array), name
        assert infos[name].layout == "in-out" and infos[name].key is not None


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_hints_from_the_layer_classes(zoo, kind):
    infos, _ = listing(zoo[0][kind])

    def hint(name):
        info = infos[name]
        return info.role, info.groups, info.depthwise, info.fan_axes, info.owner

    # Recurrent layers: gate-stacked kernels, the bias belongs to the kernel.
    for cell in ("lstm/lstm_cell", "gru/gru_cell", "gru_v1/gru_cell", "rnn/simple_rnn_cell",
                 "bidi/forward_lstm4/lstm_cell", "bidi/backward_lstm4/lstm_cell",
                 "stacked/cells/gru_cell", "stacked/cells/simple_cell"):  # fmt: skip
        assert infos[f"{cell}/kernel"].role == "recurrent", cell
        assert infos[f"{cell}/recurrent_kernel"].role == "recurrent", cell
        assert hint(f"{cell}/bias") == ("bias", None, False, None, f"{cell}/kernel")
    assert infos["lstm/lstm_cell/kernel"].shape == (8, 32)
    assert "4 gates (i, f, c, o) of 8 units" in infos["lstm/lstm_cell/kernel"].note
    assert infos["gru/gru_cell/bias"].shape == (2, 24)  # reset_after: input and recurrent rows
    assert "row 0 the input bias" in infos["gru/gru_cell/bias"].note
    assert infos["gru_v1/gru_cell/bias"].shape == (12,)
    # MultiHeadAttention: (units, heads, key_dim) in, (heads, key_dim, units) out.
    for projection in ("query", "key", "value"):
        kernel = f"mha/{projection}/kernel"
        assert infos[kernel].shape == (4, 2, 5)
        assert hint(kernel) == ("attention", None, False, ((0,), (1, 2)), None)
        assert hint(f"mha/{projection}/bias") == ("bias", None, False, None, kernel)
    assert infos["mha/attention_output/kernel"].shape == (2, 5, 4)
    assert infos["mha/attention_output/kernel"].fan_axes == ((0, 1), (2,))
    assert hint("ein/kernel") == ("dense", None, False, ((0,), (1,)), None)
    assert hint("ein/bias")[4] == "ein/kernel"
    # Convolutions.
    assert hint("grouped/kernel") == ("conv", 2, False, None, None)
    assert infos["grouped/kernel"].shape == (3, 3, 2, 16)
    assert hint("depthwise/kernel") == ("conv", None, True, None, None)
    assert hint("separable/depthwise_kernel") == ("conv", None, True, None, None)
    assert hint("separable/pointwise_kernel") == ("conv", 1, False, None, None)
    assert infos["separable/bias"].owner == "separable/pointwise_kernel"
    transpose = infos["transpose/kernel"]
    assert transpose.shape == (3, 3, 6, 8) and transpose.role == "conv"  # (*kernel, out, in)
    assert "(*kernel, out, in)" in transpose.note
    # Dense, embedding, norms (moving statistics included).
    assert hint("head/kernel") == ("dense", None, False, None, None)
    assert hint("head/bias") == ("bias", None, False, None, "head/kernel")
    assert hint("td/dense/kernel")[0] == "dense"
    assert infos["inner/inner_dense/kernel"].role == "dense"
    assert infos["embed/embeddings"].role == "embedding"
    norms = ["ln/gamma", "ln/beta", "gn/gamma", "gn/beta", "bn/gamma", "bn/moving_mean",
             "bn/moving_variance", "sub/sub_bn/beta"]  # fmt: skip
    assert all(infos[n].role == "norm" for n in norms)
    assert "bn/beta" not in infos  # center=False: gamma, moving_mean, moving_variance
    assert not any(info.note for name, info in infos.items() if "lstm" not in name and
                   "gru" not in name and name != "transpose/kernel")  # fmt: skip


def test_save_weights_files_guess_the_classes_from_the_saved_keys(zoo):
    infos, _ = listing(zoo[0]["weights"])  # no config: classes from keys and default names
    assert infos["lstm/lstm_cell/kernel"].role == "recurrent"
    assert infos["mha/query/kernel"].fan_axes == ((0,), (1, 2))
    assert infos["head/bias"].owner == "head/kernel"
    assert infos["separable/bias"].owner == "separable/pointwise_kernel"
    assert infos["depthwise/kernel"].depthwise
    assert infos["grouped/kernel"].groups is None  # not in the file: unknown, not 1
    assert infos["bn/vars/0"].role == "norm"  # gamma or beta: not in the file


def test_check_from_the_cli_judges_every_tensor(zoo):
    files, expected = zoo
    document = checked(files["keras"])
    assert document["passed"] and {row["name"] for row in document["tensors"]} == set(expected)
    rows = {row["name"]: row for row in document["tensors"]}
    assert rows["lstm/lstm_cell/kernel"]["role"] == "recurrent"
    assert rows["embed/embeddings"]["scheme"].startswith("uniform:a=0.05")  # U(+-0.05)
    assert rows["head/bias"]["verdict"] == "constant"
    # With --expect init, every tensor was seen (and a fresh model passes).
    result = runner.invoke(app, ["check", str(files["keras"]), "--expect", "init", "-q"])
    assert result.exit_code == 0, result.stderr


@pytest.fixture(scope="module")
def custom(keras, tmp_path_factory):
    """A Sequential with a custom layer (its own variable and sublayers), Dense without bias,
    and optimizer state."""
    layers = keras.layers

    @keras.saving.register_keras_serializable(package="xavinit_tests")
    class Block(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.proj = layers.Dense(4, use_bias=False)
            self.parts = [layers.Dense(4), layers.LayerNormalization(center=False)]

        def build(self, shape):
            self.scale = self.add_weight(shape=(4,), name="scale", initializer="ones")
            self.proj.build(shape)
            for part in self.parts:
                part.build((*shape[:-1], 4))

        def call(self, x):
            h = self.proj(x)
            for part in self.parts:
                h = part(h)
            return h * self.scale

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((3,)), Block(name="block"), layers.Dense(2, use_bias=False, name="out")],
        name="seq",
    )
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    folder = tmp_path_factory.mktemp("custom")
    model.save(folder / "c.keras")
    model.save(folder / "c.h5")
    return folder, model


def test_a_custom_layer_lists_its_variables_by_position(custom):
    folder, model = custom
    infos, values = listing(folder / "c.keras")
    # A Sequential's variable paths start with its name (seq/...); tensor names start below it.
    weights = {v.path.removeprefix("seq/"): np.array(v.numpy()) for v in model.weights}
    # The custom class is unknown: its own variable by saved position; its sublayers by class.
    assert np.array_equal(values["block/vars/0"], weights["block/scale"])
    assert infos["block/vars/0"].role is None
    # (``proj`` by its default name dense_<n>, the list members by their saved keys).
    block = model.get_layer("block")
    proj, part, norm = (f"block/{layer.name}" for layer in (block.proj, *block.parts))
    for path in (f"{proj}/kernel", f"{part}/kernel", f"{part}/bias", "out/kernel"):
        assert np.array_equal(values[path], weights[path]), path
    assert infos[f"{proj}/kernel"].role == "dense"
    assert infos[f"{part}/bias"].owner == f"{part}/kernel"
    # LayerNormalization(center=False) in a list: one variable, gamma or beta; not guessed.
    assert infos[f"{norm}/vars/0"].role == "norm"
    # Optimizer state is listed, role other.
    state = [info for name, info in infos.items() if name.startswith("optimizer/")]
    assert len(state) == len(model.optimizer.variables) and state
    assert all(i.role == "other" and "optimizer state (adam)" in i.note for i in state)
    assert len(infos) == len(model.weights) + len(model.optimizer.variables)
    # The legacy file stores the variable paths: the custom variable keeps its name.
    legacy, old = listing(folder / "c.h5")
    assert np.array_equal(old["block/scale"], weights["block/scale"])
    assert old[f"{norm}/gamma"].shape == (4,)
    model_names = {n for n in legacy if not n.startswith("optimizer")}
    assert model_names == set(weights)


@pytest.fixture(scope="module")
def variants(keras, tmp_path_factory):
    """Grouped-query attention, attention without bias and with a 2-D output, and int8
    quantized Dense and Embedding layers."""
    layers = keras.layers
    keras.utils.set_random_seed(2)
    x = keras.Input((5, 6))
    y = layers.GroupQueryAttention(4, 4, 2, name="gqa")(x, x)
    y = layers.MultiHeadAttention(2, 3, use_bias=False, output_shape=(2, 3), name="mha")(y, y)
    attention = keras.Model(x, y)
    quantized = keras.Sequential(
        [keras.Input((3,)), layers.Dense(4, name="dense"), layers.Embedding(10, 3, name="emb")]
    )
    quantized.quantize("int8")
    folder = tmp_path_factory.mktemp("variants")
    for model, name in ((attention, "attention"), (quantized, "quantized")):
        model.save(folder / f"{name}.keras")
        model.save(folder / f"{name}.h5")
    return folder, attention, quantized


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_attention_variants_and_quantized_layers(variants, kind):
    folder, attention, quantized = variants
    infos, values = listing(folder / f"attention.{kind}")
    assert set(values) == {v.path for v in attention.weights}
    for projection in ("query", "key", "value"):
        assert infos[f"gqa/{projection}/kernel"].fan_axes == ((0,), (1, 2))
        assert infos[f"gqa/{projection}/bias"].owner == f"gqa/{projection}/kernel"
    assert infos["gqa/key/kernel"].shape == (6, 2, 4)  # 2 key/value heads
    assert infos["gqa/attention_output/kernel"].fan_axes == ((0, 1), (2,))
    assert not any(name.startswith("mha/") and name.endswith("bias") for name in infos)
    output = infos["mha/attention_output/kernel"]
    assert output.shape == (2, 3, 2, 3) and output.fan_axes == ((0, 1), (2, 3))
    infos, values = listing(folder / f"quantized.{kind}")
    weights = {v.path.removeprefix("sequential/"): np.array(v.numpy()) for v in quantized.weights}
    assert set(values) >= {"dense/kernel", "dense/bias", "dense/kernel_scale", "emb/embeddings"}
    assert all(np.array_equal(values[n], weights[n]) for n in values if n in weights)
    assert values["dense/kernel"].dtype == np.int8 and infos["dense/kernel"].role == "other"
    assert "int8-quantized" in infos["dense/kernel"].note
    assert infos["dense/bias"].role == "bias"


def test_read_into_a_workspace_gives_what_load_gives(zoo):
    from xavinit.formats import base

    for kind in ("keras", "h5"):
        with open_tensors(zoo[0][kind]) as source:
            workspace = base.Workspace()
            for info in source.tensors[:12]:
                loaded = np.array(source.load(info))
                assert np.array_equal(source.read(info, workspace), loaded), info.name


# --- pure functions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((5, 3), (5, 3)),
        ((3, 3, 4, 8), (36, 72)),  # rf 9
        ((3, 3, 2, 16), (18, 144)),  # a grouped kernel: Keras ignores the groups
        ((5, 2, 3), (10, 15)),  # a 3-D kernel read as a conv with rf 5
    ],
)
def test_keras_fans_follow_keras_formula(shape, fans):
    assert keras_fans(shape) == fans


def test_keras_fans_agree_with_keras_itself(keras):
    from keras.src.initializers.random_initializers import compute_fans

    for shape in [(), (4,), (6, 2), (3, 3, 4, 8), (2, 5, 3), (1, 1, 7, 9), (2, 2, 2, 3, 4)]:
        assert keras_fans(shape) == compute_fans(shape), shape
    assert keras_fans((8, 2, 5), (0,), (1, 2)) == compute_fans((8, 2, 5), [0], [1, 2]) == (8, 10)


@pytest.mark.parametrize(
    ("equation", "ndim", "axes", "shared"),
    [
        ("abc,cde->abde", 3, ((0,), (1, 2)), ()),  # MultiHeadAttention's query
        ("abcd,cde->abe", 3, ((0, 1), (2,)), ()),  # its output
        ("ab,bc->ac", 2, ((0,), (1,)), ()),
        ("...b,bc->...c", 2, ((0,), (1,)), ()),
        ("abc,bcd->abd", 3, ((1,), (2,)), (0,)),  # b indexes independent copies
    ],
)
def test_einsum_fan_axes_from_the_equation(equation, ndim, axes, shared):
    assert einsum_fan_axes(equation, ndim) == (axes, shared)


def test_einsum_fan_axes_refuse_what_does_not_fit():
    assert einsum_fan_axes("abc,cde->abde", 2) is None
    assert einsum_fan_axes("not an equation", 2) is None


# --- hostile files, made without Keras ------------------------------------------------------


def weights_file(path: Path, extra=None) -> Path:
    """A Keras 3 weights tree: one Dense layer (kernel 40x30, bias)."""
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as h5:
        own = h5.create_group("layers/dense/vars")
        own.attrs["name"] = "dense"
        own["0"] = rng.uniform(-0.2, 0.2, (40, 30)).astype(np.float32)
        own["1"] = np.zeros(30, np.float32)
        h5.create_group("vars").attrs["name"] = "model"
        if extra is not None:
            extra(h5)
    return path


DENSE_CONFIG = {
    "class_name": "Sequential",
    "config": {"name": "model", "layers": [
        {"class_name": "Dense", "config": {"name": "dense", "use_bias": True}},
    ]},
}  # fmt: skip


def keras_zip(path: Path, config: bytes | None, weights: Path | bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if config is not None:
            archive.writestr("config.json", config)
        archive.writestr(
            "model.weights.h5", weights if isinstance(weights, bytes) else weights.read_bytes()
        )
    return path


@pytest.fixture
def no_leftovers(tmp_path, monkeypatch):
    """The reader's temporary folder goes away, whatever happens."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield
    assert list(folder.iterdir()) == []


def test_a_config_nested_100000_deep_is_ignored(tmp_path, no_leftovers):
    deep = b"[" * 100_000 + b"]" * 100_000
    path = keras_zip(tmp_path / "deep.keras", deep, weights_file(tmp_path / "w.h5"))
    infos, _ = listing(path)
    # Only hints are lost: the layer's class comes from its saved key, as without a config.
    assert set(infos) == {"dense/kernel", "dense/bias"} and infos["dense/kernel"].role == "dense"
    assert all("config.json nested deeper than" in i.note for i in infos.values())
    document = checked(path)
    assert len(document["tensors"]) == 2
    # The same for a config that is not JSON, or not an object, or missing.
    for name, config in [("bad", b"{not json"), ("list", b"[1, 2]"), ("none", None)]:
        infos, _ = listing(keras_zip(tmp_path / f"{name}.keras", config, tmp_path / "w.h5"))
        assert len(infos) == 2 and all("ignored" in i.note for i in infos.values()), name


def test_a_legacy_file_with_hostile_attributes(tmp_path):
    path = tmp_path / "legacy.h5"
    rng = np.random.default_rng(5)
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = "[" * 100_000 + "]" * 100_000
        weights = h5.create_group("model_weights")
        # Names that repeat, climb out, are empty, or name nothing.
        weights.attrs["layer_names"] = [b"dense", b"dense", b"../x", b"", b"ghost", b"a/b"]
        layer = weights.create_group("dense")
        layer.attrs["weight_names"] = [b"dense/kernel:0", b"../../escape", b"dense/kernel:0"]
        layer["dense/kernel:0"] = rng.standard_normal((40, 30)).astype(np.float32)
        layer["dense/bias:0"] = np.zeros(30, np.float32)
        h5["optimizer_weights/sgd/iteration"] = np.array(3)
    infos, values = listing(path)
    assert list(infos) == ["dense/kernel", "dense/bias", "optimizer_weights/sgd/iteration"]
    assert infos["dense/kernel"].role == "dense" and infos["dense/bias"].owner == "dense/kernel"
    assert "model_config nested deeper than" in infos["dense/kernel"].note
    assert infos["optimizer_weights/sgd/iteration"].role == "other"
    assert values["optimizer_weights/sgd/iteration"] == 3


def test_without_a_config_the_saved_key_names_the_class(tmp_path):
    infos, _ = listing(weights_file(tmp_path / "model.weights.h5"))
    assert infos["dense/kernel"].role == "dense" and infos["dense/bias"].owner == "dense/kernel"


def test_a_config_that_contradicts_the_file_gives_no_false_hints(tmp_path):
    config = {
        "class_name": "Sequential",
        "config": {"name": "model", "layers": [
            # The file's layer "dense" called an Embedding, and layers that are not there.
            {"class_name": "Embedding", "config": {"name": "dense"}},
            {"class_name": "Conv2D", "config": {"name": "ghost", "groups": 4}},
            {"class_name": "Dense", "config": "not a dict"},
            "not a layer",
        ]},
    }  # fmt: skip
    path = keras_zip(tmp_path / "odd.keras", json.dumps(config).encode(),
                     weights_file(tmp_path / "w.h5"))  # fmt: skip
    infos, values = listing(path)
    assert set(infos) == {"dense/vars/0", "dense/vars/1"}  # no Embedding list fits 2 variables
    assert all(info.role is None for info in infos.values())
    assert values["dense/vars/0"].shape == (40, 30)
    checked(path)


def test_a_dataset_outside_any_layer_is_listed_under_its_path(tmp_path):
    def extra(h5):
        h5["stray/data"] = np.arange(6, dtype=np.float64)
        h5["layers/dense/vars/extra"] = np.ones(2, np.float32)  # not numbered like Keras

    infos, values = listing(weights_file(tmp_path / "w.h5", extra))
    assert np.array_equal(values["stray/data"], np.arange(6))
    assert infos["stray/data"].role is None
    # A vars group Keras did not write: every member by its key, none guessed.
    assert set(infos) >= {"dense/vars/0", "dense/vars/1", "dense/vars/extra"}


def test_absurd_declared_shapes_are_refused_before_allocating(tmp_path):
    def extra(h5):
        h5.create_dataset("layers/huge/vars/0", shape=(2**40,), dtype=np.float32)
        h5.create_dataset("layers/packed/vars/0", shape=(2**36,), dtype=np.float32,
                          chunks=(2**20,), compression="gzip")  # fmt: skip

    path = weights_file(tmp_path / "huge.h5", extra)
    with open_tensors(path) as source:
        infos = {info.name: info for info in source.tensors}
        assert infos["huge/vars/0"].shape == (2**40,)  # listed; refused when read
        with pytest.raises(XavinitError, match="holds 0"):
            source.load(infos["huge/vars/0"])
        with pytest.raises(XavinitError, match="decompression bomb"):
            source.load(infos["packed/vars/0"])
    refused_by_cli(path, "needs 4398046511104 bytes but the file holds 0", tmp_path)
    result = runner.invoke(app, ["check", str(path), "--key", "dense/*", "-q"])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("make", "dtype"),
    [
        (lambda h5: h5.create_dataset("layers/names/vars/0", data=np.array([b"a", b"b"])), "str"),
        (
            lambda h5: h5.create_dataset(
                "layers/names/vars/0", data=["x", "yz"], dtype=h5py.string_dtype()
            ),
            "str",
        ),
        (
            lambda h5: h5.create_dataset(
                "layers/names/vars/0", data=np.zeros(3, [("a", "f4"), ("b", "i4")])
            ),
            "compound",
        ),
        (lambda h5: h5.create_dataset("layers/names/vars/0", data=np.zeros(3, "V4")), "opaque"),
    ],
)
def test_datasets_that_are_not_numbers_are_refused_by_name(tmp_path, make, dtype):
    path = weights_file(tmp_path / "odd.h5", make)
    line = refused_by_cli(path, f"dtype {dtype}", tmp_path)
    assert "--key '!names/vars/0'" in line
    result = runner.invoke(app, ["check", str(path), "--key", "!names/vars/0", "-q"])
    assert result.exit_code == 0, result.stderr


def test_links_out_of_the_file_are_never_followed(tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as h5:
        h5["data"] = np.full(50, 7.0)

    def external(h5):
        h5["layers/evil"] = h5py.ExternalLink(str(secret), "/")

    refused_by_cli(weights_file(tmp_path / "ext.h5", external), "external link", tmp_path)

    def soft(h5):
        h5["layers/alias"] = h5py.SoftLink("/layers/dense")  # an alias inside the file
        h5["layers/dangling"] = h5py.SoftLink("/nowhere/at/all")
        h5["layers/dense/vars/loop"] = h5["layers/dense"]  # a hard-link cycle

    infos, _ = listing(weights_file(tmp_path / "soft.h5", soft))
    assert set(infos) == {"dense/kernel", "dense/bias"}

    def stored_outside(h5):
        h5.create_dataset("layers/x/vars/0", shape=(4,), dtype="f4",
                          external=[(str(secret), 0, 16)])  # fmt: skip

    refused_by_cli(weights_file(tmp_path / "raw.h5", stored_outside), "external file", tmp_path)

    def virtual(h5):
        layout = h5py.VirtualLayout(shape=(50,), dtype="f8")
        layout[:] = h5py.VirtualSource(str(secret), "data", shape=(50,))
        h5.create_virtual_dataset("layers/v/vars/0", layout)

    refused_by_cli(weights_file(tmp_path / "virtual.h5", virtual), "virtual dataset", tmp_path)


def test_groups_nested_too_deep_are_refused(tmp_path):
    def deep(h5):
        h5.create_group("/".join(["g"] * 80))

    refused_by_cli(weights_file(tmp_path / "deep.h5", deep), "nested deeper than 64", tmp_path)


def test_zip_bombs_and_broken_weights_are_refused(tmp_path, no_leftovers):
    config = json.dumps(DENSE_CONFIG).encode()
    bomb = keras_zip(tmp_path / "bomb.keras", config, b"\0" * (20 << 20))
    refused_by_cli(bomb, "zip bomb", tmp_path)
    config_bomb = keras_zip(tmp_path / "cbomb.keras", b" " * (20 << 20) + config,
                            weights_file(tmp_path / "w.h5"))  # fmt: skip
    refused_by_cli(config_bomb, "zip bomb", tmp_path)
    not_hdf5 = keras_zip(tmp_path / "junk.keras", config, b"\x89HDF\r\n\x1a\n" + b"\1" * 300)
    refused_by_cli(not_hdf5, "not a readable Keras file", tmp_path)


def test_a_keras_zip_with_a_config_reads_like_keras_wrote_it(tmp_path, no_leftovers):
    path = keras_zip(tmp_path / "m.keras", json.dumps(DENSE_CONFIG).encode(),
                     weights_file(tmp_path / "w.h5"))  # fmt: skip
    infos, _ = listing(path)
    assert list(infos) == ["dense/kernel", "dense/bias"]
    assert infos["dense/kernel"].role == "dense" and not infos["dense/kernel"].note
    row = {r["name"]: r for r in checked(path)["tensors"]}["dense/kernel"]
    assert row["verdict"] == "init" and row["scheme"].startswith("uniform:a=0.2")


def test_bfloat16_as_keras_marks_it(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    values = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)

    def extra(h5):
        data = values.astype(ml_dtypes.bfloat16).view(np.uint16).view("V2")
        h5.create_dataset("layers/half/vars/0", data=data).attrs["dtype"] = "bfloat16"

    infos, read = listing(weights_file(tmp_path / "bf.h5", extra))
    assert infos["half/vars/0"].dtype == "bfloat16"
    expected = values.astype(ml_dtypes.bfloat16).astype(np.float32)
    assert read["half/vars/0"].dtype == np.float32 and np.array_equal(read["half/vars/0"], expected)
