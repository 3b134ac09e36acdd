"""Roles, fans, the spectral edge and the verdicts: fresh tensors of every scheme and shape are
``init``, the same tensors with a low-rank update beyond the edge are ``trained``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xavinit.core.roles import describe, fans, guess_role, select_names
from xavinit.core.schemes import get_scheme
from xavinit.core.spectrum import edge_p_value, top_singular_value, tw1_survival
from xavinit.core.verification import RANKING_CANDIDATES
from xavinit.experiments.check import check_weights

# --- the Tracy-Widom law and the edge ---------------------------------------------------------


def test_tw1_table_gives_the_published_quantiles_and_mean():
    # GOE Tracy-Widom: 95% quantile 0.9793, 99% 2.0234, mean -1.2065 (Tracy and Widom 1996;
    # Bornemann 2010, table 6).
    assert tw1_survival(0.9793) == pytest.approx(0.05, rel=0.01)
    assert tw1_survival(2.0234) == pytest.approx(0.01, rel=0.01)
    grid = np.linspace(-8.0, 16.0, 4801)
    survival = np.array([tw1_survival(s) for s in grid])
    step = grid[1] - grid[0]
    mean = step * (survival[grid >= 0].sum() - (1 - survival[grid < 0]).sum())
    # The interpolation errs by < 1% of S (see tw1_survival), so the mean by < 0.01 of a spread
    # of about 1.27.
    assert mean == pytest.approx(-1.2065, abs=0.013)
    assert tw1_survival(-10) == 1.0
    # Far right: the asymptotic tail exp(-2/3 s^1.5) / (4 sqrt(pi) s^0.75) (Baik et al. 2008).
    asymptote = math.exp(-(2 / 3) * 15**1.5) / (4 * math.sqrt(math.pi) * 15**0.75)
    assert tw1_survival(15) == pytest.approx(asymptote, rel=0.05)


@pytest.mark.parametrize(("n", "p"), [(8, 8), (32, 32), (64, 16), (96, 48)])
@pytest.mark.parametrize("law", ["normal", "uniform"])
def test_edge_p_values_of_fresh_matrices_are_not_too_small(n, p, law):
    """The rate of p < 0.05 over 300 fresh matrices stays below 0.05 plus 3 binomial SE."""
    rng = np.random.default_rng(11)
    draws = 300
    p_values = []
    for _ in range(draws):
        w = rng.standard_normal((n, p)) if law == "normal" else rng.uniform(-1, 1, (n, p))
        top = np.linalg.svd(w, compute_uv=False)[0]
        p_values.append(edge_p_value(top, float(np.mean(w * w)), n, p))
    rate = np.mean(np.array(p_values) < 0.05)
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / draws), rate


@pytest.mark.parametrize(("n", "p"), [(300, 200), (200, 300), (1000, 96)])
def test_lanczos_converges_on_a_spike_at_the_edge_and_never_overshoots(n, p):
    """A rank-1 update of 1.0x the edge stands 1.2-1.4x out: within 1e-3 of its exact value after
    the five steps; on a fresh matrix the estimate is a lower bound within 5% of the exact value
    (the test is then conservative)."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((n, p)).astype(np.float32)
    u, v = rng.standard_normal(n), rng.standard_normal(p)
    spike = (math.sqrt(n) + math.sqrt(p)) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    spiked = (w + spike).astype(np.float32)
    for matrix, accuracy in ((spiked, 1e-3), (w, 0.05)):
        exact = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)[0]
        found = top_singular_value(matrix, np.random.default_rng(0))
        assert exact * (1 - accuracy) <= found.value <= exact * (1 + 1e-6), (found, exact)
        assert found.steps == 5
    # A rank-1 Gram matrix: the Krylov space {q, v v^T q} holds v, so the second step is exact
    # and the space is invariant: the iteration stops.
    rank_one = np.outer(u, v).astype(np.float64)
    found = top_singular_value(rank_one, rng)
    assert found.value == pytest.approx(np.linalg.norm(u) * np.linalg.norm(v), rel=1e-12)
    assert found.steps == 2
    # A side of at most 64: the exact value, no iteration.
    narrow = w[:, :64]
    found = top_singular_value(narrow, rng)
    exact = np.linalg.svd(narrow.astype(np.float64), compute_uv=False)[0]
    assert found.value == pytest.approx(exact, rel=1e-12) and found.steps == 0


# --- roles and fans -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "role"),
    [
        ("encoder.layer.0.attention.self.query.weight", (768, 768), "attention"),
        ("h.0.attn.c_attn.weight", (768, 2304), "attention"),
        ("bert.embeddings.word_embeddings.weight", (30522, 768), "embedding"),
        ("transformer.wte.weight", (50257, 768), "embedding"),
        ("layers.0.in_proj_weight", (96, 32), "attention"),
        ("fc1.weight", (256, 784), "dense"),
        ("conv1.weight", (64, 3, 7, 7), "conv"),
        ("fc1.bias", (256,), "bias"),
        ("bn1.weight", (64,), "norm"),
        ("bn1.running_var", (64,), "norm"),
        ("h.0.ln_1.weight", (768,), "norm"),
        ("encoder.layer.0.output.LayerNorm.bias", (768,), "norm"),
        ("logit_scale", (), "other"),
    ],
)
def test_roles_from_state_dict_names(name, shape, role):
    assert guess_role(name, shape) == role


def test_grouped_and_depthwise_conv_fans_by_hand():
    # nn.Conv2d(8, 16, 3, groups=4): weight (16, 2, 3, 3). Each output sees 2 x 9 inputs; each
    # input feeds the 16 / 4 = 4 output channels of its group over 9 positions: 36.
    assert fans("conv", (16, 2, 3, 3), "out-in", 4)[:2] == (18, 36)
    # Without the groups (a state dict does not store them), fan_out assumes one group.
    fan_in, fan_out, note = fans("conv", (16, 1, 3, 3), "out-in", None)
    assert (fan_in, fan_out) == (9, 144) and "groups not in the file" in note
    # Keras DepthwiseConv2D(3, depth_multiplier=2) on 16 channels: kernel (3, 3, 16, 2).
    assert fans("conv", (3, 3, 16, 2), "in-out", None, depthwise=True)[:2] == (9, 18)
    # Keras Conv2D(16, 3, groups=4) on 8 channels: kernel (3, 3, 2, 16).
    assert fans("conv", (3, 3, 2, 16), "in-out", 4)[:2] == (18, 36)
    assert fans("dense", (64, 96), "out-in", None)[:2] == (96, 64)
    assert fans("dense", (96, 64), "in-out", None)[:2] == (96, 64)


def test_pytorch_gets_grouped_fan_out_wrong_and_we_do_not():
    torch = pytest.importorskip("torch")
    weight = torch.nn.Conv2d(8, 16, 3, groups=4).weight
    torch_in, torch_out = torch.nn.init._calculate_fan_in_and_fan_out(weight)
    assert (torch_in, torch_out) == (18, 144)  # pytorch issue 23854
    assert fans("conv", tuple(weight.shape), "out-in", 4)[:2] == (18, 36)


class _Info:
    def __init__(self, name, shape, layout=None, role=None, groups=None, owner=None):
        self.name, self.shape, self.dtype = name, shape, "float32"
        self.layout, self.role, self.groups, self.owner = layout, role, groups, owner


def test_biases_take_their_weights_fans_and_numpy_layouts_are_guessed_from_them():
    described = {
        t.name: t
        for t in describe(
            [_Info("fc.weight", (64, 96)), _Info("fc.bias", (64,)), _Info("ln.weight", (64,)),
             _Info("ln.bias", (64,)), _Info("attn.in_proj_weight", (96, 32)),
             _Info("attn.in_proj_bias", (96,))]
        )
    }  # fmt: skip
    assert described["fc.weight"].layout == "out-in"  # the bias has the first dimension
    assert (described["fc.bias"].fan_in, described["fc.bias"].owner) == (96, "fc.weight")
    assert described["ln.bias"].role == "norm"  # a LayerNorm's shift, not a layer's bias
    assert described["attn.in_proj_bias"].owner == "attn.in_proj_weight"
    assert "half the variance" in described["attn.in_proj_weight"].note
    assert describe([_Info("w", (64, 96))], "out-in")[0].fan_in == 96


def test_key_patterns_include_and_exclude():
    names = ["emb.weight", "fc.weight", "fc.bias", "head.weight"]
    assert select_names(names, ["*.weight", "!emb*"]) == ["fc.weight", "head.weight"]
    assert select_names(names, ["!*.bias"]) == ["emb.weight", "fc.weight", "head.weight"]
    assert select_names(names, []) == names


# --- fresh tensors are init; a low-rank update beyond the edge makes them trained -------------

FAN_FREE = ("normal:std=0.02", "uniform:a=0.05", "truncated-normal:std=0.05",
            "trunc-normal:std=0.02,a=-0.04,b=0.04")  # fmt: skip
SHAPES = {
    # name -> (shape in-out, fans, kind): Keras-style layouts, read with layout in-out.
    "dense": ((120, 80), (120, 80)),
    "tall": ((400, 40), (400, 40)),
    "conv": ((3, 3, 16, 24), (144, 216)),
    "embedding": ((500, 32), (500, 32)),
    "attention": ((32, 96), (32, 96)),
}
SEEDS = (0, 1, 2)


def _fresh(spec: str, shape: tuple[int, ...], fan_in: int, fan_out: int, seed: int) -> np.ndarray:
    """i.i.d. entries of the scheme for these fans (any subset of an i.i.d. draw is one)."""
    rng = np.random.default_rng(seed)
    matrix = get_scheme(spec).sample((fan_in, fan_out), rng)
    return matrix.reshape(-1)[: math.prod(shape)].reshape(shape).copy()


def _population() -> dict[str, tuple[np.ndarray, str, int, int]]:
    tensors = {}
    for spec in (*RANKING_CANDIDATES, *FAN_FREE):
        for kind, (shape, (fan_in, fan_out)) in SHAPES.items():
            if spec == "orthogonal" and len(shape) != 2:
                continue
            for seed in SEEDS:
                name = {"embedding": "embed", "attention": "attn.qkv"}.get(kind, kind)
                key = f"{name}.{spec}.{seed}.weight"
                if spec == "orthogonal":
                    array = get_scheme(spec).sample(shape, np.random.default_rng(seed))
                else:
                    array = _fresh(spec, shape, fan_in, fan_out, seed)
                tensors[key] = (array, spec, fan_in, fan_out)
    return tensors


@pytest.fixture(scope="module")
def population():
    return _population()


def test_fresh_tensors_of_every_scheme_and_shape_are_init(population):
    result = check_weights({k: v[0] for k, v in population.items()}, layout="in-out")
    rows = {row.name: row for row in result.tensors}
    wrong = [(name, row.verdict, row.reason) for name, row in rows.items() if row.verdict != "init"]
    assert not wrong, wrong[:5]
    for name, (_, spec, fan_in, fan_out) in population.items():
        row = rows[name]
        assert (row.fan_in, row.fan_out) == (fan_in, fan_out), name
        scores = {c["scheme"]: c["score"] for c in row.candidates}
        if ":" not in spec:  # the drawn scheme fits (10^-6: Bonferroni over the population)
            assert scores[spec] > 1e-6, (name, row.candidates[:3])
        assert row.top_singular_ratio is not None and row.top_singular_ratio < 1.1, name


def _spiked(array: np.ndarray, spec: str, fan_in: int, fan_out: int, seed: int) -> np.ndarray:
    """The tensor plus a rank-1 update whose singular value is 1.5 times the Bai-Yin edge."""
    matrix = array.reshape(-1, array.shape[-1]).astype(np.float64)
    n, p = matrix.shape
    sigma = math.sqrt(get_scheme(spec).variance(fan_in, fan_out))
    rng = np.random.default_rng(1000 + seed)
    u, v = rng.standard_normal(n), rng.standard_normal(p)
    update = (
        1.5
        * sigma
        * (math.sqrt(n) + math.sqrt(p))
        * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    )
    return (matrix + update).astype(np.float32).reshape(array.shape)


def test_the_same_tensors_with_a_spike_beyond_the_edge_are_trained(population):
    spiked = {
        name: _spiked(array, spec, fan_in, fan_out, int(name.split(".")[-2]))
        for name, (array, spec, fan_in, fan_out) in population.items()
    }
    result = check_weights(spiked, layout="in-out")
    wrong = [(r.name, r.verdict, r.reason) for r in result.tensors if r.verdict != "trained"]
    assert not wrong, wrong[:5]
    assert all(r.top_singular_ratio > 1.2 for r in result.tensors)


def test_a_tensors_stream_is_made_only_when_a_start_vector_is_drawn(monkeypatch):
    """A short side gets an SVD and no generator; outliers (Lanczos on the product without
    them) and long sides draw their start from the first draw of the tensor's own stream."""
    import xavinit.experiments.examine as examine_module
    from xavinit.core.streams import spectrum_rng

    made: list[str] = []

    def counted(seed: int, name: str) -> np.random.Generator:
        made.append(name)
        return spectrum_rng(seed, name)

    monkeypatch.setattr(examine_module, "spectrum_rng", counted)
    rng = np.random.default_rng(5)
    spiky = rng.normal(0, 0.1, (40, 500))  # 20,000 entries: two are set aside as outliers
    spiky[1, 2], spiky[3, 4] = 5.0, -4.0
    weights = {
        "a.weight": rng.normal(0, 0.1, (8, 8)),
        "b.weight": spiky,
        "c.weight": rng.normal(0, 0.1, (100, 120)),
    }
    rows = {r.name: r for r in check_weights(weights, layout="in-out").tensors}
    assert made == ["b.weight", "c.weight"]
    assert rows["a.weight"].spectral_steps == 0 and rows["b.weight"].outliers == 2
    assert rows["b.weight"].spectral_steps > 0 and rows["c.weight"].spectral_steps > 0
    from xavinit.core.spectrum import bai_yin_edge

    c = rows["c.weight"]  # the estimate from the stream's first draw, as spectrum draws it
    lanczos = top_singular_value(weights["c.weight"], spectrum_rng(0, "c.weight")).value
    measured = c.top_singular_ratio * math.sqrt(c.observed_var) * bai_yin_edge(100, 120)
    assert math.isclose(measured, lanczos, rel_tol=1e-9)
