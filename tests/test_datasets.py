"""Dataset loaders: small files written here in the real formats, splits, preprocessing, errors."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from xavinit.datasets import (
    DATASET_KINDS,
    ArrayStream,
    Dataset,
    Split,
    load_cifar10,
    load_dataset,
    load_digits,
    load_mnist,
    load_npz,
    to_images,
)
from xavinit.errors import XavinitError

# --- writers for the real formats -------------------------------------------------------------

MNIST_TRAIN, MNIST_TEST, SIDE = 60, 12, 28


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes: big-endian magic ``0x0000 08 ndim``, dims, data."""
    magic = 0x0800 | array.ndim if magic is None else magic
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, size=(MNIST_TRAIN, SIDE, SIDE), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(MNIST_TEST, SIDE, SIDE), dtype=np.uint8)
    x_train[:, 0, 0], x_train[:, 0, 1] = 0, 255  # every image spans the full range
    return {
        "x_train": x_train,
        "y_train": (np.arange(MNIST_TRAIN) * 7 % 10).astype(np.uint8),
        "x_test": x_test,
        "y_test": (np.arange(MNIST_TEST) % 10).astype(np.uint8),
    }


def write_mnist(folder: Path, gz: bool = False, dotted: bool = False) -> dict[str, np.ndarray]:
    arrays = mnist_arrays()
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        name = name.replace("-idx", ".idx") if dotted else name
        data = idx_bytes(arrays[key])
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


CIFAR_BATCH = 5


def cifar_batch(index: int, count: int = CIFAR_BATCH) -> dict[bytes, object]:
    rng = np.random.default_rng(100 + index)
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    data[:, 0], data[:, 1] = 0, 255
    labels = [int(v) for v in rng.integers(0, 10, size=count)]
    return {b"batch_label": b"batch %d" % index, b"data": data, b"labels": labels}


CIFAR_NAMES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4")


def python2_pickle(batch: dict[bytes, object]) -> bytes:
    """The batch as Python 2's cPickle wrote CIFAR-10: protocol 2, str (not bytes) strings,
    arrays rebuilt by ``numpy.core.multiarray._reconstruct`` (the pre-numpy-2 module name)."""

    def string(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING: a Python 2 str
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def integer(v: int) -> bytes:  # BININT1 / BININT
        return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)

    data = batch[b"data"]
    assert isinstance(data, np.ndarray)
    dtype = (
        b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"  # dtype('u1', 0, 1)
        b"(" + integer(3) + string(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + integer(0)
        + b"\x85"
        + string(b"b")
        + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
        + b"("
        + integer(1)
        + integer(data.shape[0])
        + integer(data.shape[1])
        + b"\x86"
        + dtype
        + b"\x89"
        + string(data.tobytes())
        + b"tb"  # __setstate__((1, shape, dtype, False, raw))
    )
    labels = b"](" + b"".join(integer(v) for v in batch[b"labels"]) + b"e"  # type: ignore[attr-defined]
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + labels + b"u."


def write_cifar(folder: Path, protocol: int | str = pickle.DEFAULT_PROTOCOL) -> list[dict]:
    """The six batches of ``cifar-10-batches-py``; ``protocol="py2"`` writes them as Python 2 did."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = []
    for index, name in enumerate((*CIFAR_NAMES, "data_batch_5", "test_batch")):
        batch = cifar_batch(index)
        if protocol == "py2":
            (folder / name).write_bytes(python2_pickle(batch))
        else:
            with (folder / name).open("wb") as stream:
                pickle.dump(batch, stream, protocol=protocol)
        batches.append(batch)
    return batches


def raises(match: str):
    return pytest.raises(XavinitError, match=match)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


# --- MNIST ------------------------------------------------------------------------------------


def test_mnist_idx_shapes_splits_labels_and_exact_scaling(tmp_path):
    arrays = write_mnist(tmp_path)
    data = load_mnist(tmp_path, "scale", seed=0)
    assert isinstance(data, Dataset)
    assert (data.name, data.inputs, data.classes, data.image_shape) == ("mnist", 784, 10, (28, 28))
    assert data.class_names == tuple("0123456789")
    # fewer than 60,000 training images: the last sixth is validation
    assert (len(data.train.y), len(data.valid), len(data.test)) == (50, 10, MNIST_TEST)
    for x in (data.train.x, data.valid.x, data.test.x):
        assert x.dtype == np.float32 and x.shape[1] == 784
    for y in (data.train.y, data.valid.y, data.test.y):
        assert y.dtype == np.int64
    np.testing.assert_array_equal(data.train.y, arrays["y_train"][:50])
    np.testing.assert_array_equal(data.valid.y, arrays["y_train"][50:])
    np.testing.assert_array_equal(data.test.y, arrays["y_test"])
    raw = arrays["x_train"].reshape(MNIST_TRAIN, -1)
    assert data.train.x[0, 0] == -1.0 and data.train.x[0, 1] == 1.0
    np.testing.assert_array_equal(data.train.x, (raw[:50] / 127.5 - 1).astype(np.float32))
    np.testing.assert_array_equal(data.valid.x, (raw[50:] / 127.5 - 1).astype(np.float32))
    assert data.test.x.min() >= -1 and data.test.x.max() <= 1


def test_mnist_paper_split_is_50000_10000():
    from xavinit.datasets.mnist import MNIST_VALID

    assert MNIST_VALID == 10_000 and min(MNIST_VALID, 60_000 // 6) == 10_000


@pytest.mark.parametrize(("gz", "dotted"), [(True, False), (False, True), (True, True)])
def test_mnist_gzip_and_dotted_names_read_the_same(tmp_path, gz, dotted):
    write_mnist(tmp_path / "plain")
    write_mnist(tmp_path / "other", gz=gz, dotted=dotted)
    a, b = load_mnist(tmp_path / "plain"), load_mnist(tmp_path / "other")
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)


def test_mnist_npz_file_and_folder(tmp_path):
    arrays = write_mnist(tmp_path / "idx")
    np.savez(tmp_path / "mnist.npz", **arrays)
    reference = load_mnist(tmp_path / "idx")
    for source in (tmp_path / "mnist.npz", tmp_path):
        data = load_mnist(source)
        np.testing.assert_array_equal(data.train.x, reference.train.x)
        np.testing.assert_array_equal(data.valid.y, reference.valid.y)
        np.testing.assert_array_equal(data.test.x, reference.test.x)


def test_standardize_uses_training_statistics_for_every_split(tmp_path):
    arrays = write_mnist(tmp_path)
    data = load_mnist(tmp_path, "standardize")
    train = data.train.x.astype(np.float64)
    varying = np.ones(784, dtype=bool)
    varying[:2] = False  # pixels 0 and 1 are constant (0 and 255) in every image
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(train.std(axis=0)[varying], 1, rtol=1e-5)
    assert np.all(data.train.x[:, :2] == 0) and np.all(data.valid.x[:, :2] == 0)
    raw = arrays["x_train"].reshape(MNIST_TRAIN, -1).astype(np.float64)
    mean, std = raw[:50].mean(axis=0), raw[:50].std(axis=0)
    std[std == 0] = 1
    np.testing.assert_allclose(data.valid.x, (raw[50:] - mean) / std, rtol=1e-6, atol=1e-6)
    test = arrays["x_test"].reshape(MNIST_TEST, -1)
    np.testing.assert_allclose(data.test.x, (test - mean) / std, rtol=1e-6, atol=1e-6)


def test_mnist_missing_folder_or_file(tmp_path):
    with raises("does not exist") as error:
        load_mnist(tmp_path / "nowhere")
    assert "mnist.npz" in one_line(error)
    write_mnist(tmp_path)
    with raises("is one IDX file; pass the folder"):
        load_mnist(tmp_path / "train-images-idx3-ubyte")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with raises(r"mnist: folder .* lacks t10k-labels-idx1-ubyte\[\.gz\]; expected the four IDX"):
        load_mnist(tmp_path)


def test_mnist_wrong_magic(tmp_path):
    write_mnist(tmp_path)
    labels = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(labels)  # a label file in its place
    with raises(
        r"train-images-idx3-ubyte is not an IDX image file \(magic 2051 expected, got 2049\)"
    ):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with raises("magic 2051 expected, got 305419896") as error:
        load_mnist(tmp_path)
    one_line(error)


def test_mnist_truncated_or_padded_idx(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    full = path.read_bytes()
    path.write_bytes(full[:-1])
    with raises(r"is truncated: its IDX header declares 60x28x28 = 47040 bytes") as error:
        load_mnist(tmp_path)
    one_line(error)
    path.write_bytes(full[:10])
    with raises("is truncated: its IDX header needs 16 bytes, the file has 10"):
        load_mnist(tmp_path)
    path.write_bytes(full + b"\x00")
    with raises("longer than its header says"):
        load_mnist(tmp_path)


def test_mnist_corrupt_gzip(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    good = path.read_bytes()
    path.write_bytes(b"this is not gzip at all")
    with raises(r"train-labels-idx1-ubyte\.gz is not a valid gzip file") as error:
        load_mnist(tmp_path)
    assert "IDX label file" in one_line(error)
    path.write_bytes(good[: len(good) // 2])  # cut mid-stream
    with raises("is not a valid gzip file"):
        load_mnist(tmp_path)


def test_mnist_inconsistent_files(tmp_path):
    arrays = write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(arrays["y_train"][:-1]))
    with raises("holds 59 labels but .* holds 60 images"):
        load_mnist(tmp_path)
    bad = arrays["y_train"].copy()
    bad[3] = 12
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(bad))
    with raises("holds label 12; MNIST labels are 0..9"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(arrays["y_train"]))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(arrays["x_test"][:, :20, :20]))
    with raises("holds 20x20 images but .* holds 28x28"):
        load_mnist(tmp_path)


def test_mnist_npz_with_other_data_points_to_npz(tmp_path):
    arrays = mnist_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    np.savez(tmp_path / "mnist.npz", **arrays)
    with raises(r"x_train float32 .*expected uint8 \(N, 28, 28\) \(for other data use npz:PATH\)"):
        load_mnist(tmp_path / "mnist.npz")


def test_unknown_preprocess_is_refused_before_reading(tmp_path):
    with raises("unknown preprocess 'minmax'; choose one of: scale, standardize"):
        load_mnist(tmp_path / "nowhere", "minmax")


# --- CIFAR-10 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["py2", 2, 4, 5])
def test_cifar10_reads_batches_and_splits_40k_10k_10k(tmp_path, protocol):
    batches = write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    data = load_cifar10(tmp_path / "cifar-10-batches-py", "scale", seed=3)
    assert (data.name, data.inputs, data.classes, data.image_shape) == (
        "cifar10",
        3072,
        10,
        (3, 32, 32),
    )
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"
    assert (len(data.train.y), len(data.valid), len(data.test)) == (20, 5, 5)
    raw_train = np.concatenate([b[b"data"] for b in batches[:4]])
    np.testing.assert_array_equal(data.train.x, (raw_train / 127.5 - 1).astype(np.float32))
    np.testing.assert_array_equal(data.train.y, np.concatenate([b[b"labels"] for b in batches[:4]]))
    np.testing.assert_array_equal(data.valid.y, batches[4][b"labels"])
    np.testing.assert_array_equal(data.test.y, batches[5][b"labels"])
    assert data.train.x[0, 0] == -1.0 and data.train.x[0, 1] == 1.0
    assert data.test.x.dtype == np.float32 and data.test.y.dtype == np.int64


def test_cifar10_parent_folder_and_channel_major_images(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(tmp_path)  # the folder that contains cifar-10-batches-py
    # image_shape is what a row reshapes to: CIFAR-10 stores red, then green, then blue planes
    planes = data.test.x.reshape(-1, *data.image_shape)
    assert planes.shape == (CIFAR_BATCH, 3, 32, 32)
    images = to_images(data, data.test.x)
    assert images.shape == (CIFAR_BATCH, 32, 32, 3)
    np.testing.assert_array_equal(images[2, 5, 17], planes[2, :, 5, 17])
    stored = batches[5][b"data"][2]
    row, column = 5, 17
    for channel in range(3):
        value = stored[channel * 1024 + row * 32 + column]
        assert images[2, row, column, channel] == np.float32(value / 127.5 - 1)


def test_cifar10_pickle_with_a_foreign_global_is_refused_and_never_run(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with (tmp_path / "data_batch_3").open("wb") as stream:
        pickle.dump({b"data": Exploit(), b"labels": [0]}, stream)
    with raises(r"data_batch_3 refers to (posix|nt|os)\.system, .*refused") as error:
        load_cifar10(tmp_path)
    one_line(error)
    assert not marker.exists()

    with (tmp_path / "data_batch_3").open("wb") as stream:
        pickle.dump({b"data": types.SimpleNamespace(), b"labels": []}, stream)
    with raises(r"refers to types\.SimpleNamespace"):
        load_cifar10(tmp_path)


def test_cifar10_bad_folders_and_batches(tmp_path):
    with raises("does not exist; expected the cifar-10-batches-py folder"):
        load_cifar10(tmp_path / "nowhere")
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"x")
    with raises(r"is a file; extract it \(tar xzf\)"):
        load_cifar10(archive)
    folder = tmp_path / "cifar"
    write_cifar(folder)
    (folder / "data_batch_5").unlink()
    with raises("lacks data_batch_5"):
        load_cifar10(folder)
    write_cifar(folder)
    (folder / "test_batch").write_bytes(b"garbage, not a pickle")
    with raises("test_batch is not a CIFAR-10 python batch") as error:
        load_cifar10(folder)
    one_line(error)
    batch = cifar_batch(0)
    batch[b"data"] = batch[b"data"][:, :3000]
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    with raises(r"has b'data' uint8 \(5, 3000\); expected uint8 \(N, 3072\)"):
        load_cifar10(folder)
    batch = cifar_batch(0)
    batch[b"labels"] = batch[b"labels"][:-1]
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    with raises("has 4 labels for 5 images"):
        load_cifar10(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"labels": []}))
    with raises("lacks b'data' or b'labels'"):
        load_cifar10(folder)
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with raises("holds a list; expected a CIFAR-10 python batch"):
        load_cifar10(folder)


# --- npz --------------------------------------------------------------------------------------


def npz_arrays(train: int = 30, test: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "x_train": rng.normal(3.0, 2.0, size=(train, 4, 5)),
        "y_train": np.arange(train) % 3,
        "x_test": rng.normal(3.0, 2.0, size=(test, 4, 5)),
        "y_test": np.arange(test) % 3,
    }


def test_npz_flattens_and_keeps_the_last_sixth_for_validation(tmp_path):
    arrays = npz_arrays()
    arrays["y_test"][0] = 4  # classes = largest label + 1, over every split
    np.savez(tmp_path / "d.npz", **arrays)
    data = load_npz(tmp_path / "d.npz", "scale", seed=0)
    assert (data.inputs, data.classes, data.image_shape) == (20, 5, (4, 5))
    assert data.class_names == ("0", "1", "2", "3", "4")
    assert (len(data.train.y), len(data.valid), len(data.test)) == (25, 5, 6)
    np.testing.assert_array_equal(data.valid.y, arrays["y_train"][25:])
    np.testing.assert_array_equal(data.test.y, arrays["y_test"])
    # float data: the training set's min and max map to -1 and +1
    assert data.train.x.min() == -1.0 and data.train.x.max() == 1.0
    low, high = arrays["x_train"][:25].min(), arrays["x_train"][:25].max()
    expected = (arrays["x_train"][25:].reshape(5, -1) - (high + low) / 2) / ((high - low) / 2)
    np.testing.assert_allclose(data.valid.x, expected, rtol=1e-6)
    assert data.valid.x.dtype == np.float32


def test_npz_with_validation_column_labels_and_uint8(tmp_path):
    arrays = npz_arrays()
    arrays = {
        "x_train": np.full((8, 3), 255, dtype=np.uint8),
        "y_train": np.arange(8).reshape(8, 1),
        "x_valid": np.zeros((2, 3), dtype=np.uint8),
        "y_valid": np.array([[0], [1]]),
        "x_test": np.array([[0, 51, 255]], dtype=np.uint8),
        "y_test": np.array([[2.0]]),
        "class_names": np.array([f"c{i}" for i in range(8)]),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    data = load_npz(tmp_path / "d.npz")
    assert (len(data.train.y), len(data.valid), len(data.test)) == (8, 2, 1)
    assert data.class_names[7] == "c7" and data.classes == 8
    np.testing.assert_array_equal(data.test.x, [[-1.0, np.float32(51 / 127.5 - 1), 1.0]])
    np.testing.assert_array_equal(data.test.y, [2])
    standardized = load_npz(tmp_path / "d.npz", "standardize")
    assert np.all(standardized.train.x == 0)  # constant features: std 1, mean subtracted


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.pop("y_test"), r"lacks array 'y_test'; expected x_train, .* found x_test"),
        (lambda a: a.update(y_train=a["y_train"][:-1]), "30 rows in x_train but 29 labels"),
        (
            lambda a: a["x_train"].__setitem__((3, 1, 2), np.nan),
            r"NaN or infinite .* x_train \(row 3\)",
        ),
        (lambda a: a["x_test"].__setitem__((0, 0, 0), np.inf), "NaN or infinite value in x_test"),
        (lambda a: a.update(y_train=a["y_train"] + 0.5), "non-integer label 0.5 in y_train"),
        (lambda a: a.update(y_test=a["y_test"] - 1), "negative label -1 in y_test"),
        (
            lambda a: a.update(x_test=np.array([["a"] * 20] * 6)),
            "x_test of dtype <U1; expected numbers",
        ),
        (lambda a: a.update(x_valid=a["x_test"]), "has x_valid but not y_valid"),
        (
            lambda a: a.update(x_test=a["x_test"][:, :3]),
            r"x_test rows of shape \(3, 5\) but x_train",
        ),
        (lambda a: a.update(y_train=np.eye(3)[a["y_train"]]), "one-hot labels"),
        (lambda a: a.update(y_train=np.array(["a"] * 30)), "expected integer class indices"),
        (
            lambda a: a.update(x_train=np.arange(30.0)),
            r"x_train of shape \(30,\); expected \(N, \.\.\.\)",
        ),
    ],
)
def test_npz_bad_contents(tmp_path, change, match):
    arrays = npz_arrays()
    change(arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    with raises(match) as error:
        load_npz(tmp_path / "d.npz")
    assert str(tmp_path / "d.npz") in one_line(error)


def test_npz_bad_files(tmp_path):
    with raises("does not exist"):
        load_npz(tmp_path / "none.npz")
    (tmp_path / "text.npz").write_text("hello")
    with raises("text.npz is not a zip archive; expected an .npz archive"):
        load_npz(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with raises(r"one\.npy is a \.npy array"):
        load_npz(tmp_path / "one.npy")
    arrays = npz_arrays()
    arrays["y_test"] = np.array([object()] * 6, dtype=object)
    np.savez(tmp_path / "objects.npz", **arrays)
    with raises("objects.npz is unreadable .*allow_pickle") as error:
        load_npz(tmp_path / "objects.npz")
    one_line(error)
    np.savez(tmp_path / "good.npz", **npz_arrays())
    raw = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with raises("cut.npz is (a damaged|unreadable)"):
        load_npz(tmp_path / "cut.npz")


# --- digits -----------------------------------------------------------------------------------


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with raises(r"^digits needs scikit-learn: pip install 'xavinit\[digits\]'$"):
        load_digits()
    with raises("digits needs scikit-learn"):
        load_dataset("digits")


@pytest.fixture
def fake_sklearn(monkeypatch):
    """A stand-in for sklearn.datasets.load_digits: 1797 images of 0..16, label = index % 10."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 17, size=(1797, 64)).astype(np.float64)
    pixels[:, 0], pixels[:, 1] = 0, 16
    bunch = types.SimpleNamespace(data=pixels, target=np.arange(1797) % 10)
    module = types.ModuleType("sklearn.datasets")
    module.load_digits = lambda: bunch  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", module)
    return bunch


def test_digits_split_from_the_seed(fake_sklearn):
    data = load_digits("scale", seed=4)
    assert (data.name, data.inputs, data.classes, data.image_shape) == ("digits", 64, 10, (8, 8))
    assert (len(data.train.y), len(data.valid), len(data.test)) == (1197, 300, 300)
    assert data.train.x[:, 0].tolist() == [-1.0] * 1197 and np.all(data.train.x[:, 1] == 1.0)
    # every image lands in exactly one split: pixel rows are distinct with overwhelming odds
    scaled = (fake_sklearn.data / 8 - 1).astype(np.float32)
    everything = np.concatenate([data.train.x, data.valid.x, data.test.x])
    assert np.array_equal(np.unique(everything, axis=0), np.unique(scaled, axis=0))
    again, other = load_digits("scale", seed=4), load_digits("scale", seed=5)
    np.testing.assert_array_equal(again.test.x, data.test.x)
    assert not np.array_equal(other.test.y, data.test.y)


# --- load_dataset -----------------------------------------------------------------------------


def test_load_dataset_dispatches_each_kind(tmp_path, fake_sklearn):
    write_mnist(tmp_path / "mnist")
    write_cifar(tmp_path / "cifar")
    np.savez(tmp_path / "d.npz", **npz_arrays())
    assert load_dataset(f"mnist:{tmp_path / 'mnist'}").name == "mnist"
    assert load_dataset(f"CIFAR10:{tmp_path / 'cifar'}", "standardize").name == "cifar10"
    assert load_dataset(f"npz:{tmp_path / 'd.npz'}", seed=2).inputs == 20
    assert load_dataset("digits", seed=1).name == "digits"
    assert set(DATASET_KINDS) == {"shapeset", "mnist", "cifar10", "npz", "digits"}


def test_load_dataset_shapeset_passes_the_seed_and_ignores_preprocess(monkeypatch):
    calls = []
    module = types.ModuleType("xavinit.datasets.shapeset")
    module.load_shapeset = lambda seed: calls.append(seed) or "shapeset"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xavinit.datasets.shapeset", module)
    assert load_dataset("shapeset", "standardize", seed=9) == "shapeset"
    assert calls == [9]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("mnsit:/x", r"unknown dataset kind 'mnsit' \(did you mean 'mnist'\?\); kinds: shapeset, "),
        ("cifar:/x", r"did you mean 'cifar10'\?"),
        ("/data/mine.npz", r"did you mean 'npz:/data/mine\.npz'\?"),
        ("imagenet", r"unknown dataset kind 'imagenet'; kinds: shapeset, mnist, cifar10, npz"),
        ("mnist", r"dataset mnist needs a path: mnist:PATH, for example mnist:"),
        ("npz:", r"dataset npz needs a path: npz:PATH, for example npz:"),
        ("digits:/x", r"dataset digits takes no path"),
    ],
)
def test_load_dataset_bad_specs(spec, match):
    with raises(match) as error:
        load_dataset(spec)
    one_line(error)


def test_load_dataset_bad_preprocess_and_seed():
    with raises("unknown preprocess 'none'"):
        load_dataset("shapeset", "none")
    with raises("seed must be a non-negative integer, got -1"):
        load_dataset("digits", seed=-1)


# --- ArrayStream ------------------------------------------------------------------------------


def identity_stream(count: int = 23, seed: int = 0) -> ArrayStream:
    """A stream whose labels are the example indices, so batches show which examples came."""
    x = np.arange(count * 2, dtype=np.float32).reshape(count, 2)
    return ArrayStream(x, np.arange(count, dtype=np.int64), seed)


def test_array_stream_covers_every_example_once_per_epoch_and_reshuffles():
    count = 23
    stream = identity_stream(count)
    seen = np.concatenate([stream.next_batch(5)[1] for _ in range(count)])  # 5 epochs exactly
    epochs = seen.reshape(5, count)
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(count))
    assert len({tuple(epoch) for epoch in epochs}) == 5
    x, y = identity_stream(count).next_batch(count)
    np.testing.assert_array_equal(x[:, 0], 2 * y)  # rows and labels stay paired


def test_array_stream_state_restores_bit_identically_across_epochs():
    original = identity_stream(seed=7)
    for _ in range(3):
        original.next_batch(4)  # 12 of 23: mid-epoch
    state = json.loads(json.dumps(original.state()))  # the state is JSON-able
    resumed = identity_stream(seed=7)
    resumed.restore(state)
    for _ in range(12):  # 48 more examples: crosses two epoch boundaries
        (xa, ya), (xb, yb) = original.next_batch(4), resumed.next_batch(4)
        np.testing.assert_array_equal(ya, yb)
        assert xa.tobytes() == xb.tobytes()


def test_split_head_and_len():
    split = Split(np.zeros((5, 2), np.float32), np.arange(5))
    assert len(split) == 5 and len(split.head(2)) == 2
