"""Figures (``xavinit.render.plots``): files written, labels, scheme colours, failed runs.

The figure tests need matplotlib (the ``plot`` extra) and are skipped without it; the first test
runs either way, with matplotlib's import blocked.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys

import numpy as np
import pytest

from xavinit.config import InitConfig, PropagateConfig, SchemesConfig, TrainConfig
from xavinit.errors import XavinitError
from xavinit.experiments.init import run_init
from xavinit.experiments.propagate import run_propagate
from xavinit.experiments.schemes import run_schemes
from xavinit.experiments.train import run_train
from xavinit.render import plots
from xavinit.render.plots import (
    SCHEME_COLOURS,
    PlotsUnavailable,
    figure_bytes,
    figures,
    scheme_colour,
    write_figures,
)
from xavinit.results import InitResult

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="figures need matplotlib"
)


# ------------------------------------------------------------------------------------ documents


@pytest.fixture(scope="module")
def init_doc():
    return run_init(InitConfig.from_mapping({"layers": "32,16,8"}))


@pytest.fixture(scope="module")
def propagate_doc():
    config = PropagateConfig(layers=(64, 32, 32, 10), batch=100, jacobian_samples=0)
    return run_propagate(config)


@pytest.fixture(scope="module")
def train_doc(module_blobs):
    mapping = {
        "dataset": f"npz:{module_blobs}", "layers": "12,16,16,3", "updates": 100, "eval_every": 50,
        "track_every": 25, "lr": 0.1, "activation": ["tanh"],
    }  # fmt: skip
    return run_train(TrainConfig.from_mapping(mapping))


@pytest.fixture(scope="module")
def overflow_doc():
    # variance-scaling:scale=1000 multiplies the variance by ~1000 per layer: a linear network
    # 40 layers deep overflows float32 (see test_propagate); normalized beside it is healthy.
    config = PropagateConfig.from_mapping(
        {"schemes": ["variance-scaling:scale=1000", "normalized"], "activations": ["linear"],
         "depth": 40, "width": 32, "batch": 50, "jacobian_samples": 0}
    )  # fmt: skip
    return run_propagate(config)


@pytest.fixture(scope="module")
def diverged_doc(module_blobs):
    # As in test_train: at lr 2 a linear network diverges while tanh stays stable.
    mapping = {
        "dataset": f"npz:{module_blobs}", "layers": "12,16,16,3", "updates": 100, "eval_every": 25,
        "track_every": 25, "lr": 2.0, "activation": ["linear", "tanh"], "scheme": ["normalized"],
    }  # fmt: skip
    return run_train(TrainConfig.from_mapping(mapping))


def _names(document):
    return [name for name, _, _ in figures(document)]


def _title(fig):
    suptitle = getattr(fig, "_suptitle", None)
    texts = [suptitle.get_text() if suptitle is not None else ""]
    texts += [ax.get_title() for ax in fig.axes if ax.get_visible()]
    return " ".join(t for t in texts if t)


def _line_colours(fig):
    """Label -> colour of every labelled line in a figure."""
    return {
        line.get_label(): line.get_color()
        for ax in fig.axes
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def _legend_texts(fig):
    return {
        text.get_text()
        for ax in fig.axes
        if ax.get_legend()
        for text in ax.get_legend().get_texts()
    }


# ------------------------------------------------------------------------------------------ tests


def test_without_matplotlib_the_module_imports_and_drawing_names_the_extra(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "xavinit.render.plots", raising=False)
    fresh = importlib.import_module("xavinit.render.plots")  # works without matplotlib
    assert fresh.plots_available() is False
    result = InitResult(seed=0, config={}, passed=True, layers=[], alpha=0.01, correction="holm")
    with pytest.raises(fresh.PlotsUnavailable, match=r"pip install 'xavinit\[plot\]'"):
        fresh.figures(result)
    with pytest.raises(XavinitError, match="figures need matplotlib"):
        fresh.write_figures([result.to_dict()], tmp_path / "figures")
    assert not (tmp_path / "figures").exists()
    assert fresh.scheme_colour("normalized") == SCHEME_COLOURS["normalized"]


def test_plots_unavailable_is_a_bad_input_error():
    assert issubclass(PlotsUnavailable, XavinitError)


def test_scheme_colours_are_fixed_for_names_and_aliases_and_hashed_otherwise():
    assert scheme_colour("standard") == SCHEME_COLOURS["standard"]
    # An alias has its preset's colour through the canonical name its run records.
    assert scheme_colour("xavier-uniform", "normalized") == scheme_colour("normalized")
    assert scheme_colour("kaiming-normal", "he-normal") == scheme_colour("he-normal")
    assert scheme_colour("Normalized", "normalized") == SCHEME_COLOURS["normalized"]
    # A spec with parameters keeps a colour of its own, apart from its preset's.
    assert scheme_colour("he-normal:mode=fan_out", "he-normal") not in SCHEME_COLOURS.values()
    # Without the name (a file saved before runs recorded it) the spec itself is looked up.
    assert scheme_colour("xavier-uniform") not in SCHEME_COLOURS.values()
    assert len(set(SCHEME_COLOURS.values())) == len(SCHEME_COLOURS)
    custom = "variance-scaling:scale=2,mode=fan_avg"
    assert scheme_colour(custom) == scheme_colour(custom)  # deterministic
    assert scheme_colour(custom) not in SCHEME_COLOURS.values()
    assert scheme_colour("normalized:gain=tanh").startswith("#")


@needs_matplotlib
def test_figure_names_per_kind(init_doc, propagate_doc, train_doc):
    assert _names(init_doc) == ["init-variance"]
    assert _names(propagate_doc) == [
        "propagate-tanh-activations",
        "propagate-tanh-backprop-gradients",
        "propagate-tanh-weight-gradients",
        "propagate-tanh-variance",
    ]
    assert _names(train_doc) == [
        "train-tanh-mean-std",
        "train-tanh-p98-std",
        "train-tanh-weight-grad-std",
        "train-tanh-final-histograms",
        "train-test-error",
    ]


@needs_matplotlib
@pytest.mark.parametrize("kind", ["init_doc", "propagate_doc", "train_doc"])
def test_write_figures_writes_png_and_svg(kind, request, tmp_path):
    document = request.getfixturevalue(kind)
    paths = write_figures([{"file": "result.json", **document.to_dict()}], tmp_path / "figures")
    names = _names(document)
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{ext}" for n in names for ext in ("png", "svg")
    )
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG") and len(data) > 1000
        else:
            assert b"<svg" in data
    assert not [p for p in (tmp_path / "figures").iterdir() if p.name.endswith(".tmp")]


@needs_matplotlib
def test_every_figure_has_a_title_axis_labels_and_a_legend(
    init_doc, propagate_doc, train_doc, overflow_doc, diverged_doc
):
    for document in (init_doc, propagate_doc, train_doc, overflow_doc, diverged_doc):
        for name, title, fig in figures(document):
            assert title and _title(fig), name
            visible = [ax for ax in fig.axes if ax.get_visible()]
            assert visible, name
            for ax in visible:
                assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
            assert any(ax.get_legend() is not None for ax in visible), name


@needs_matplotlib
def test_a_scheme_has_the_same_colour_in_every_figure(init_doc, propagate_doc, train_doc):
    drawn = {
        name: fig for doc in (init_doc, propagate_doc, train_doc) for name, _, fig in figures(doc)
    }
    for scheme in ("standard", "normalized"):
        expected = scheme_colour(scheme)
        for name in ("init-variance", "propagate-tanh-variance"):
            assert _line_colours(drawn[name])[scheme] == expected, name
            assert scheme in _legend_texts(drawn[name]), name
        assert _line_colours(drawn["train-test-error"])[f"{scheme}, tanh"] == expected
        # Panels of one scheme carry its colour in their title.
        for name in ("propagate-tanh-activations", "train-tanh-mean-std"):
            (ax,) = [ax for ax in drawn[name].axes if ax.get_title() == scheme]
            assert ax.title.get_color() == expected
    assert scheme_colour("standard") != scheme_colour("normalized")


@needs_matplotlib
def test_an_alias_is_drawn_in_its_presets_colour_a_parametrised_spec_in_its_own():
    config = PropagateConfig.from_mapping(
        {"schemes": ["xavier-uniform", "normalized:gain=2"], "layers": "16,16,16,4",
         "batch": 20, "jacobian_samples": 0}
    )  # fmt: skip
    result = run_propagate(config)
    assert [run.scheme_name for run in result.runs] == ["normalized", "normalized"]
    drawn = {name: fig for name, _, fig in figures(result)}
    colours = _line_colours(drawn["propagate-tanh-variance"])
    assert colours["xavier-uniform"] == SCHEME_COLOURS["normalized"]
    assert colours["normalized:gain=2"] not in SCHEME_COLOURS.values()


@needs_matplotlib
def test_histograms_and_variances_follow_the_document(propagate_doc):
    drawn = {name: fig for name, _, fig in figures(propagate_doc)}
    standard = propagate_doc.runs[0]
    hidden = [layer for layer in standard.layers if layer.kind == "hidden"]
    ax = drawn["propagate-tanh-activations"].axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [f"layer {lay.layer}" for lay in hidden]
    # Each line is a normalized density: it integrates to 1 over its bins.
    edges = np.asarray(hidden[0].histogram["edges"])
    assert np.sum(lines[0].get_ydata() * np.diff(edges)) == pytest.approx(1.0)
    # The variance panel shows the measured values and both predictions per hidden layer.
    variance = drawn["propagate-tanh-variance"].axes[0]
    assert variance.get_yscale() == "log"
    ydata = [list(line.get_ydata()) for line in variance.get_lines()]
    assert [lay.activation_var for lay in hidden] in ydata
    assert [lay.predicted_activation_var for lay in hidden] in ydata
    assert [lay.linear_activation_var for lay in hidden] in ydata


@needs_matplotlib
def test_failed_propagate_runs_and_diverged_training_still_draw(overflow_doc, diverged_doc):
    failed, healthy = overflow_doc.runs
    assert failed.layers == [] and failed.overflow_layer is not None and healthy.layers
    drawn = {name: fig for name, _, fig in figures(overflow_doc)}
    assert "propagate-linear-variance" in drawn
    assert {ax.get_title() for ax in drawn["propagate-linear-activations"].axes} == {"normalized"}

    linear, tanh = diverged_doc.runs
    assert linear.diverged and not tanh.diverged
    drawn = {name: (title, fig) for name, title, fig in figures(diverged_doc)}
    assert "train-linear-mean-std" in drawn and "train-tanh-final-histograms" in drawn
    assert any("diverged" in label for label in _legend_texts(drawn["train-test-error"][1]))
    for fig in (fig for _, fig in drawn.values()):
        assert figure_bytes(fig, "png").startswith(b"\x89PNG")


@needs_matplotlib
def test_older_files_without_weight_gradient_histograms_skip_that_figure(propagate_doc):
    old = dataclasses.replace(
        propagate_doc,
        runs=[
            dataclasses.replace(run, layers=[dataclasses.replace(lay, weight_grad_histogram={})
                                             for lay in run.layers])
            for run in propagate_doc.runs
        ],
    )  # fmt: skip
    assert "propagate-tanh-weight-gradients" not in _names(old)
    assert "propagate-tanh-activations" in _names(old)


@needs_matplotlib
def test_deep_networks_show_a_readable_number_of_layers():
    config = PropagateConfig(
        layers=(16, *[16] * 12, 4), schemes=("normalized",), batch=50, jacobian_samples=0
    )
    drawn = {name: fig for name, _, fig in figures(run_propagate(config))}
    labels = [line.get_label() for line in drawn["propagate-tanh-activations"].axes[0].get_lines()]
    assert len(labels) == plots.MAX_LAYER_LINES
    assert labels[0] == "layer 1" and labels[-1] == "layer 12"


@needs_matplotlib
def test_rank_mode_draws_a_score_chart_per_array(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.normal(0.0, np.sqrt(2.0 / 64), (64, 32)).astype(np.float32)
    np.savez(tmp_path / "w.npz", **{"fc1.weight": weights})
    document = run_init(InitConfig.from_mapping({"check": str(tmp_path / "w.npz")}))
    assert document.mode == "rank"
    drawn = {name: fig for name, _, fig in figures(document)}
    assert set(drawn) == {"init-variance", "init-rank-fc1-weight"}
    ticks = [t.get_text() for t in drawn["init-rank-fc1-weight"].axes[0].get_yticklabels()]
    assert set(ticks) == {c["scheme"] for c in document.rankings[0].candidates}


@needs_matplotlib
def test_name_collisions_across_documents_get_the_document_number(init_doc, tmp_path):
    paths = write_figures([init_doc.to_dict(), init_doc.to_dict()], tmp_path)
    assert sorted(p.name for p in paths) == [
        "1-init-variance.png", "1-init-variance.svg", "2-init-variance.png", "2-init-variance.svg",
    ]  # fmt: skip


@needs_matplotlib
def test_bad_input_is_a_clear_error(init_doc):
    (_, _, fig), *_ = figures(init_doc)
    with pytest.raises(XavinitError, match="png, svg"):
        figure_bytes(fig, "gif")
    schemes = run_schemes(SchemesConfig())
    assert figures(schemes) == []  # a result without figures has none
    assert b"<svg" in figure_bytes(fig, "SVG")
