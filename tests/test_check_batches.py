"""``check`` examines small tensors of one shape in batches (:class:`xavinit.core.verdicts.Batch`):
the batched path must give every tensor the result it gets alone, bit for bit, keep the file's
order, refuse the first NaN tensor in file order, and keep a failure inside one tensor."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from cli_check_helpers import refused_by_cli
from safetensors.numpy import save_file

import xavinit.core.verdicts as verdicts
from xavinit.core.matrixscan import scan_matrices, scan_matrix
from xavinit.core.roles import describe
from xavinit.core.spectrum import edge_p_value, edge_p_values, top_singular_value
from xavinit.core.streams import spectrum_rng
from xavinit.errors import XavinitError
from xavinit.experiments.check import check_weights
from xavinit.experiments.examine import examine_files
from xavinit.formats.base import TensorInfo


def same_shape_file(path, count=300, seed=0) -> dict[str, np.ndarray]:
    """``count`` 8 x 8 tensors drawn by torch.nn.init's own samplers at varied scales, with a
    constant, an all -0.0, an infinite-masked, an int8, a trained-looking (rank-1 heavy) one,
    16 x 16 and 1-D tensors interleaved and a zero-size one; saved with safetensors."""
    torch.manual_seed(seed)
    inits = [
        torch.nn.init.xavier_uniform_,
        torch.nn.init.xavier_normal_,
        torch.nn.init.kaiming_uniform_,
        lambda t: torch.nn.init.trunc_normal_(t, std=0.02),
        lambda t: torch.nn.init.normal_(t, std=1.0),
    ]
    tensors: dict[str, np.ndarray] = {}
    for i in range(count):
        tensors[f"layer{i}.weight"] = inits[i % len(inits)](torch.empty(8, 8)).numpy()
        if i % 37 == 5:
            tensors[f"layer{i}.bias"] = torch.nn.init.uniform_(torch.empty(8), -0.3, 0.3).numpy()
        if i % 53 == 7:
            tensors[f"wide{i}.weight"] = torch.nn.init.xavier_uniform_(torch.empty(16, 16)).numpy()
    u = torch.randn(8, 1)
    tensors["layer10.weight"] = (u @ u.T * 3.0 + 0.1 * torch.randn(8, 8)).numpy()
    tensors["layer20.weight"] = np.full((8, 8), 0.5, np.float32)
    tensors["layer30.weight"] = np.full((8, 8), -0.0, np.float32)
    masked = np.zeros((8, 8), np.float32)
    masked[0, 1:] = -np.inf
    tensors["layer40.weight"] = masked
    tensors["layer50.weight"] = np.arange(64, dtype=np.int8).reshape(8, 8)
    tensors["layer60.weight"] = np.zeros((0, 8), np.float32)
    save_file(tensors, str(path))
    return tensors


def examined_text(item: verdicts.Examined) -> str:
    """Everything examine found, floats written exactly (repr round-trips)."""
    return json.dumps(dataclasses.asdict(item), default=repr, sort_keys=True)


def test_a_batched_file_gives_each_tensor_its_result_alone_bit_for_bit(tmp_path, monkeypatch):
    path = tmp_path / "many.safetensors"
    same_shape_file(path)
    joint_sizes: list[int] = []
    for name in ("scan_matrices", "_tops", "edge_p_values", "_ks_many"):
        original = getattr(verdicts, name)

        def spy(first, *rest, _original=original):
            joint_sizes.append(len(first))
            return _original(first, *rest)

        monkeypatch.setattr(verdicts, name, spy)
    options = dict(keys=(), layout="auto", alpha=0.01, ks_sample=131072, seed=3,
                   allow_infinite=True, best_checks=False)  # fmt: skip
    batched, _ = examine_files([str(path)], **options)
    assert joint_sizes and max(joint_sizes) >= verdicts.BATCH_TENSORS - 2  # many at once
    monkeypatch.setattr(verdicts, "BATCH_ENTRIES", -1)  # no tensor is batched
    joint_sizes.clear()
    alone, _ = examine_files([str(path)], **options)
    assert not joint_sizes
    assert [e.tensor.name for e in batched] == [e.tensor.name for e in alone]
    for one, other in zip(batched, alone, strict=True):
        assert examined_text(one) == examined_text(other), one.tensor.name
    # and the rows differ from tensor to tensor: a mix-up would show
    assert len({e.observed_var for e in batched if e.observed_var is not None}) > 290
    statuses = {e.tensor.name: (e.status, e.reason) for e in batched}
    assert statuses["layer20.weight"][0] == "constant"
    assert statuses["layer30.weight"] == ("constant", "all 64 entries are -0")
    assert "infinite values" in statuses["layer40.weight"][1]
    assert "integer tensor" in statuses["layer50.weight"][1]
    assert statuses["layer60.weight"] == ("unknown", "empty tensor")


def test_the_check_document_is_the_same_with_and_without_batches(tmp_path, monkeypatch):
    path = tmp_path / "many.safetensors"
    same_shape_file(path, count=120, seed=1)
    batched = json.dumps(check_weights(str(path)).to_dict())
    monkeypatch.setattr(verdicts, "BATCH_ENTRIES", -1)
    alone = json.dumps(check_weights(str(path)).to_dict())
    assert batched == alone
    assert '"verdict": "trained"' in batched and '"verdict": "init"' in batched


def test_the_first_nan_tensor_in_file_order_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"t{i:02d}.weight": rng.standard_normal((8, 8)).astype(np.float32)
               for i in range(40)}  # fmt: skip
    for name in ("t17.weight", "t29.weight"):
        tensors[name][3, 4] = np.nan
    path = tmp_path / "nan.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(XavinitError, match=r"t17\.weight: holds NaN"):
        check_weights(str(path))
    refused_by_cli(path, "t17.weight: holds NaN", tmp_path)


@pytest.mark.parametrize("later", ["t20.bias", "t20.scale", "t30.weight"])
def test_a_nan_matrix_is_refused_before_a_later_nan_of_any_rank(tmp_path, later):
    # A matrix's NaN is found by its batched scan, a vector's or a scalar's when it is added:
    # the refusal is still the first NaN tensor in the file, whichever step finds it.
    rng = np.random.default_rng(2)
    tensors = {f"t{i:02d}.weight": rng.standard_normal((8, 8)).astype(np.float32)
               for i in range(40)}  # fmt: skip
    tensors["t20.bias"] = rng.standard_normal(8).astype(np.float32)
    tensors["t20.scale"] = np.array(0.5, dtype=np.float32)
    tensors["t05.weight"][3, 4] = np.nan
    tensors[later].reshape(-1)[0] = np.nan
    path = tmp_path / "nan.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(XavinitError, match=r"t05\.weight: holds NaN"):
        check_weights(str(path))
    with pytest.raises(XavinitError, match=r"t05\.weight: holds NaN"):
        check_weights({name: tensors[name] for name in sorted(tensors)})


def test_a_nan_matrix_is_refused_before_a_later_tensor_that_cannot_be_read(monkeypatch):
    from xavinit.formats.mapping import MappingSource

    rng = np.random.default_rng(3)
    tensors = {f"t{i:02d}.weight": rng.standard_normal((8, 8)).astype(np.float32)
               for i in range(10)}  # fmt: skip
    tensors["t02.weight"][0, 0] = np.nan
    read = MappingSource.read_lazily

    def damaged(self, info, workspace):
        if info.name == "t07.weight":
            raise XavinitError("t07.weight: damaged")
        return read(self, info, workspace)

    monkeypatch.setattr(MappingSource, "read_lazily", damaged)
    with pytest.raises(XavinitError, match=r"t02\.weight: holds NaN"):
        check_weights(tensors)
    tensors["t02.weight"][0, 0] = 0.0
    with pytest.raises(XavinitError, match=r"t07\.weight: damaged"):
        check_weights(tensors)


def test_a_failure_inside_one_batched_tensor_stays_that_tensors(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    tensors = {f"t{i}.weight": (rng.standard_normal((8, 8)) * 0.3).astype(np.float32)
               for i in range(12)}  # fmt: skip
    tensors["t5.weight"][0, 0] = 7.0  # marks the matrix whose SVD "fails"
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))

    def joint_fails(matrices):
        raise np.linalg.LinAlgError("SVD did not converge")

    original = verdicts.top_singular_value

    def alone(matrix, rng, **kwargs):
        if matrix[0, 0] == 7.0:
            raise np.linalg.LinAlgError("SVD did not converge")
        return original(matrix, rng, **kwargs)

    monkeypatch.setattr(verdicts, "_tops", joint_fails)
    monkeypatch.setattr(verdicts, "top_singular_value", alone)
    rows = {row.name: row for row in check_weights(str(path)).tensors}
    assert rows["t5.weight"].verdict == "unknown"
    assert rows["t5.weight"].reason == "could not be examined (LinAlgError: SVD did not converge)"
    assert all(row.verdict == "init" for name, row in rows.items() if name != "t5.weight")


def bits(value: object) -> object:
    """Floats and arrays by their bits (NaN, -0.0 told apart)."""
    if isinstance(value, float):
        return np.float64(value).tobytes()
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if dataclasses.is_dataclass(value):
        return tuple(bits(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple | list):
        return tuple(bits(item) for item in value)
    return value


@pytest.mark.parametrize(
    "shape", [(8, 8), (7, 9), (16, 16), (3, 40), (64, 64), (64, 1), (33, 17), (1, 5)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_stacked_scan_is_each_matrix_scan(shape, dtype):
    rng = np.random.default_rng(abs(hash((shape, np.dtype(dtype).str))) % 2**32)
    k = 40
    stack = rng.standard_normal((k, *shape)) * rng.uniform(1e-3, 30.0, (k, 1, 1))
    stack[3] = -0.0  # a column sum of -0.0: 0.0 + (-0.0) is 0.0 in both
    stack[4, 0, 0] = np.nan
    stack[5, -1, -1] = -np.inf
    stack[6] = 1e20  # float32 squares overflow
    matrices = [m for m in stack.astype(dtype)]
    for sample_size in (131072, 5):
        joint = scan_matrices(matrices, sample_size)
        for matrix, found in zip(matrices, joint, strict=True):
            assert bits(found) == bits(scan_matrix(matrix, sample_size))


def test_the_stacked_svd_quadrature_and_ks_are_each_ones():
    rng = np.random.default_rng(5)
    matrices = [(rng.standard_normal((9, 12)) * s).astype(np.float32)
                for s in rng.uniform(0.01, 5.0, 30)]  # fmt: skip
    tops = verdicts._tops(matrices)
    for matrix, top in zip(matrices, tops, strict=True):
        assert bits(top) == bits(top_singular_value(matrix, rng))
    cases = [(t.value, float(np.mean(np.square(m, dtype=np.float64))), 9, 12)
             for t, m in zip(tops, matrices, strict=True)]  # fmt: skip
    cases += [(3.0, 0.0, 9, 12), (50.0, 0.01, 9, 12), (1.0, 1.0, 30, 2000)]  # p=1, the tail
    assert [bits(p) for p in edge_p_values(cases)] == [bits(edge_p_value(*c)) for c in cases]
    parameters = [verdicts._cdf_parameters_of(verdicts.get_scheme(spec), 9, 12)
                  for spec in ("normalized", "xavier-normal", "glorot-normal-truncated",
                               "he-uniform", "trunc-normal:std=0.1,a=-0.15,b=0.15")]  # fmt: skip
    requests = [verdicts.KSRequest(parameters[: 1 + i % 5], np.sort(m.reshape(-1)))
                for i, m in enumerate(matrices)]  # fmt: skip
    joint = verdicts._ks_many(requests)
    for request, tests in zip(requests, joint, strict=True):
        assert [tuple(map(bits, t)) for t in tests] == [
            tuple(map(bits, t))
            for t in verdicts._answer(request)  # type: ignore[union-attr]
        ]
        assert not any(math.isnan(d) for d, _ in tests)


def test_a_batch_draws_no_start_vector_for_an_svd_sized_matrix():
    """A batch never makes a tensor's stream for a matrix whose top singular value is an SVD."""
    made = []
    arrays = {f"t{i}.weight": np.random.default_rng(i).standard_normal((8, 8)).astype(np.float32)
              for i in range(5)}  # fmt: skip
    infos = [TensorInfo(name=n, shape=a.shape, dtype="float32") for n, a in arrays.items()]
    batch = verdicts.Batch(file="f", alpha=0.01, ks_sample=131072)
    for tensor in describe(infos, "auto"):

        def rng(name=tensor.name):
            made.append(name)
            return spectrum_rng(0, name)

        batch.add(tensor, arrays[tensor.name], rng)
    assert [e.status for e in batch.finish()] == ["test"] * 5
    assert made == [] and batch.finish() == []


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (9, 7), (16, 16), (8, 300), (64, 64), (33, 17)])
def test_the_stacked_spread_sums_are_each_matrix_own(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    matrices = [(rng.standard_normal(shape) * s).astype(np.float32)
                for s in rng.uniform(1e-3, 30.0, 25)]  # fmt: skip
    requests = []
    for matrix in matrices:
        found = scan_matrix(matrix, 131072)
        found.sample.sort()
        requests.append(
            verdicts.SpreadRequest(found.sample, found.row_squares, found.col_squares, matrix)
        )
    for request, sums in zip(requests, verdicts._spread_sums(requests), strict=True):
        w = request.matrix.astype(np.float64)
        gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
        diagonal = np.diagonal(gram)
        alone = verdicts.SpreadSums(
            verdicts._square_kurtosis(request.sample),
            verdicts.sample_variance(request.row_squares),
            verdicts.sample_variance(request.col_squares),
            (float(np.sum(gram * gram)), float(diagonal @ diagonal)),
        )
        assert bits(sums) == bits(alone)
