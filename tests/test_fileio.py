"""The one .npz reader: every caller gets a one-line XavinitError, and no file handle leaks."""

from __future__ import annotations

import gc
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from xavinit.datasets import load_mnist, load_npz
from xavinit.errors import XavinitError
from xavinit.experiments.checkpoint import load_checkpoint
from xavinit.fileio import npz_headers, read_npz


@contextmanager
def no_leaked_handle() -> Iterator[None]:
    """Fail if a file is left open (CPython warns with ResourceWarning when it is collected)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


def refused(call: Callable[[], object], match: str) -> str:
    """The one-line message of the XavinitError ``call`` raises, leaking no file handle."""
    with no_leaked_handle(), pytest.raises(XavinitError, match=match) as error:
        call()
    message = str(error.value)
    assert "\n" not in message, message
    assert error.value.__cause__ is None
    return message


@pytest.fixture
def files(tmp_path: Path) -> Path:
    np.savez(tmp_path / "good.npz", W1=np.ones((3, 2)), b1=np.zeros(2), W2=np.ones((2, 4)))
    raw = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "fake.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "one.npy", np.ones((2, 2)))
    np.savez(tmp_path / "objects.npz", W1=np.ones((2, 2)), o=np.array([{"a": 1}], dtype=object))
    with zipfile.ZipFile(tmp_path / "member.npz", "w") as archive:
        archive.writestr("W1.npy", "not an array")
    (tmp_path / "folder.npz").mkdir()
    return tmp_path


def test_reads_every_array_in_file_order(files):
    with no_leaked_handle():
        arrays = read_npz(files / "good.npz", "npz")
    assert list(arrays) == ["W1", "b1", "W2"]
    np.testing.assert_array_equal(arrays["W2"], np.ones((2, 4)))


def test_keys_select_by_name_or_pattern_and_the_rest_is_never_read(files):
    assert list(read_npz(files / "good.npz", "npz", ["W*"])) == ["W1", "W2"]
    assert list(read_npz(files / "good.npz", "npz", ("b1",))) == ["b1"]
    assert list(read_npz(files / "good.npz", "npz", ())) == ["W1", "b1", "W2"]
    # the object array is not selected, so it is never unpickled
    assert list(read_npz(files / "objects.npz", "npz", ["W1"])) == ["W1"]
    message = refused(lambda: read_npz(files / "good.npz", "npz", ["w*", "x"]), "no array in")
    assert message.endswith("matches w*, x; arrays: W1, b1, W2")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("none.npz", r"^npz: .*none\.npz does not exist; expected an \.npz archive"),
        ("folder.npz", r"folder\.npz is a folder; expected"),
        ("one.npy", r"one\.npy is a \.npy array; expected an \.npz archive"),
        ("text.npz", r"text\.npz is not a zip archive; expected"),
        ("fake.npz", r"fake\.npz is a damaged or corrupt \.npz \(File is not a zip file\)"),
        ("cut.npz", r"cut\.npz is (a damaged or corrupt \.npz|unreadable) \(.+\); expected"),
        ("objects.npz", r"objects\.npz is unreadable \(array 'o': .*allow_pickle=False"),
        ("member.npz", r"member\.npz is unreadable \(member 'W1' is not a \.npy array\)"),
    ],
)
def test_bad_files_are_one_line_errors_without_a_leaked_handle(files, name, match):
    refused(lambda: read_npz(files / name, "npz"), match)


@pytest.mark.parametrize("name", ["none.npz", "one.npy", "fake.npz", "cut.npz", "objects.npz"])
def test_every_caller_labels_the_same_errors(files, name):
    path = files / name
    where = re.escape(str(path))
    refused(lambda: load_npz(path), f"^npz: {where}")
    refused(lambda: load_mnist(path), f"^mnist: {where}")
    checkpoint = refused(lambda: load_checkpoint(str(path)), f"^checkpoint: {where}")
    assert checkpoint.endswith("expected an xavinit training checkpoint (.npz)")


def test_the_weights_reader_uses_it_and_lists_headers_without_reading(files):
    from xavinit.formats import open_tensors

    with no_leaked_handle():
        headers = npz_headers(files / "good.npz", "weights")
    assert {k: v[0] for k, v in headers.items()} == {"W1": (3, 2), "b1": (2,), "W2": (2, 4)}
    with no_leaked_handle(), open_tensors(files / "good.npz") as source:
        assert [i.name for i in source.tensors] == ["W1", "b1", "W2"]
        assert np.array_equal(source.load(source.tensors[2]), np.ones((2, 4)))
    refused(lambda: npz_headers(files / "fake.npz", "weights"), r"^weights: .* damaged or corrupt")
    refused(lambda: npz_headers(files / "objects.npz", "weights"), r"unreadable \(array 'o'")
    refused(lambda: npz_headers(files / "good.npz", "weights", ["x*"]), r"no array in .* matches x")
    refused(lambda: npz_headers(files / "none.npz", "weights"), "does not exist")
