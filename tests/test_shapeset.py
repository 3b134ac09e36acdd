"""Shapeset-3x2 (``xavinit/datasets/shapeset.py``) and ``xavinit data preview``."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.datasets import shapeset
from xavinit.datasets.shapeset import (
    CLASS_NAMES,
    CLASS_PRIORS,
    ShapesetStream,
    draw_polygons,
    generate_shapeset,
    load_shapeset,
    sample_shapeset,
)
from xavinit.errors import XavinitError


@pytest.fixture(scope="module")
def sample() -> shapeset.ShapesetSample:
    return sample_shapeset(3000, np.random.default_rng(11))


def levels_of(images: np.ndarray) -> np.ndarray:
    """[-1, 1] back to the integer grey levels 0..255 (exact: each value is 2 g/255 - 1)."""
    g = (images.astype(np.float64) + 1) * 127.5
    assert np.allclose(g, np.rint(g), atol=1e-4)
    return np.rint(g).astype(np.int64)


def test_shapes_dtypes_and_range():
    x, y = generate_shapeset(257, np.random.default_rng(0))
    assert x.shape == (257, 1024) and x.dtype == np.float32
    assert y.shape == (257,) and y.dtype == np.int64
    assert x.min() >= -1 and x.max() <= 1
    assert y.min() >= 0 and y.max() <= 8
    empty_x, empty_y = generate_shapeset(0, np.random.default_rng(0))
    assert empty_x.shape == (0, 1024) and empty_y.shape == (0,)


def test_label_frequencies_match_the_priors():
    # Priors: one object (p 1/2) of 3 types -> 1/6 each; two objects of different types
    # 1/2 * 2/9 = 1/9 each; two of the same type 1/2 * 1/9 = 1/18 each.
    assert CLASS_PRIORS.sum() == pytest.approx(1)
    assert CLASS_PRIORS[0] == pytest.approx(1 / 6) and CLASS_PRIORS[3] == pytest.approx(1 / 9)
    assert CLASS_PRIORS[6] == pytest.approx(1 / 18)
    n = 20_000
    _, y = generate_shapeset(n, np.random.default_rng(2010))
    observed = np.bincount(y, minlength=9)
    expected = n * CLASS_PRIORS
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    # 9 classes, no fitted parameter: 8 degrees of freedom. The p = 0.001 upper quantile of
    # chi-square(8) is 26.12 (tables; e.g. scipy.stats.chi2.ppf(0.999, 8) = 26.1245), so a
    # correct generator fails this at a given seed with probability 1/1000 (and this seed passes).
    assert chi2 < 26.12, (chi2, observed.tolist())


def test_labels_are_the_unordered_set_of_types(sample):
    types = sample.types
    for label in range(9):
        rows = types[sample.labels == label]
        assert len(rows)
        kinds = {tuple(sorted(t for t in row if t >= 0)) for row in rows.tolist()}
        expected = {
            0: (0,), 1: (1,), 2: (2,), 3: (0, 1), 4: (1, 2), 5: (0, 2), 6: (0, 0), 7: (1, 1),
            8: (2, 2),
        }[label]  # fmt: skip
        assert kinds == {expected}, CLASS_NAMES[label]
    assert set(sample.objects.tolist()) == {1, 2}
    assert np.array_equal(sample.sides[:, 0], np.array([3, 4, 20])[types[:, 0]])


def test_every_image_has_at_least_two_grey_levels_from_the_right_ranges(sample):
    levels = levels_of(sample.images)
    for image, objects, background, shape_levels in zip(
        levels, sample.objects, sample.background, sample.levels, strict=True
    ):
        present = set(np.unique(image).tolist())
        assert len(present) >= 2
        assert present <= {int(background), *shape_levels[:objects].tolist()}
        # the 1-pixel border is always background
        assert (image.reshape(32, 32)[[0, -1], :] == background).all()
        assert (image.reshape(32, 32)[:, [0, -1]] == background).all()
        foreground = present - {int(background)}
        if background <= 114:  # bright objects on a dark background
            assert all(140 <= g <= 255 for g in foreground)
        else:  # dark objects on a bright background
            assert 140 <= background <= 255
            assert all(0 <= g <= 114 for g in foreground)


def test_both_brightness_modes_occur_about_equally(sample):
    dark_background = np.mean(sample.background <= 114)
    # binomial(3000, 1/2): standard error 0.0091; 5 standard errors
    assert abs(dark_background - 0.5) < 0.046


def test_every_shape_lies_inside_the_frame_with_a_one_pixel_margin(sample):
    for slot in range(2):
        present = sample.sides[:, slot] > 0
        for n in (3, 4, 20):
            rows = present & (sample.sides[:, slot] == n)
            v = sample.vertices[rows, slot]
            assert np.isfinite(v[:, :n]).all() and np.isnan(v[:, n:]).all()
            assert v[:, :n].min() >= 1 - 1e-9 and v[:, :n].max() <= 31 + 1e-9
        assert np.isnan(sample.vertices[~present, slot]).all()


def test_shape_sizes_follow_the_scale_range(sample):
    # The n-gon of radius 0.5 scaled by 32 s, s in [0.2, 0.8]: the largest vertex distance
    # from the centroid is at most 0.5 * 32 * 0.8 = 12.8 px, and ellipses (20-gons) span at
    # least 0.2 * 32 * cos(pi/20) = 6.3 px across their narrow axis.
    v = sample.vertices[:, 0]
    for n in (3, 4, 20):
        rows = sample.sides[:, 0] == n
        points = v[rows, :n]
        centre = points.mean(axis=1, keepdims=True)
        radius = np.linalg.norm(points - centre, axis=-1).max(axis=1)
        assert radius.max() <= 12.8 + 1e-9
        assert radius.max() > 11 and radius.min() < 4  # the whole range is used


def test_base_edge_ends_at_a_multiple_of_the_global_rotation_step(sample):
    # After the small rotation, the scale and the exact back rotation the base edge (last
    # vertex -> first vertex) is horizontal again, so its direction is the global rotation
    # k * 2 pi / 255 with k in 0..253.
    step = 2 * math.pi / 255
    for slot in range(2):
        for n in (3, 4, 20):
            rows = sample.sides[:, slot] == n
            v = sample.vertices[rows, slot]
            d = v[:, 0] - v[:, n - 1]
            k = np.mod(np.arctan2(d[:, 1], d[:, 0]), 2 * math.pi) / step
            assert np.allclose(k, np.rint(k), atol=1e-6)
            assert (np.rint(k) % 255).max() <= 253  # k = 0 may come out as 2 pi - epsilon


def _largest_interior_angles(vertices: np.ndarray) -> np.ndarray:
    """Largest interior angle (degrees) of each convex polygon ``(m, n, 2)``."""
    before = np.roll(vertices, 1, axis=1) - vertices
    after = np.roll(vertices, -1, axis=1) - vertices
    cosine = np.einsum("mkd,mkd->mk", before, after) / (
        np.linalg.norm(before, axis=-1) * np.linalg.norm(after, axis=-1)
    )
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))).max(axis=1)


def _authors_polygons(count: int, sides: int, rng: np.random.Generator, uniform_45=False):
    """An independent generator of the shape before placement, written from PAPER.md: regular
    n-gon of radius 0.5 with a horizontal base, the authors' small rotation j * 2 pi / 255 (one
    symmetry period, folded), then the anisotropic scale. Rotations after the scale and the
    translation keep the angles, so they are left out. ``uniform_45`` draws the rotation the
    old way, U(-45, 45) degrees, to show that the test tells the two apart."""
    if uniform_45:
        angle = rng.uniform(-math.pi / 4, math.pi / 4, count)
    else:
        period = math.ceil(255 / sides)
        j = rng.integers(0, period, count)
        j[j > period // 2] -= period
        angle = 2 * math.pi * j / 255
    k = np.arange(sides)
    corners = 0.5 * np.exp(1j * (-math.pi / 2 + math.pi / sides + 2 * math.pi * k / sides))
    turned = corners[None, :] * np.exp(1j * angle)[:, None]  # complex numbers, row per shape
    factors = rng.uniform(0.2, 0.8, (count, 2))
    wide, narrow = factors.max(axis=1), factors.min(axis=1)
    return np.stack([turned.real * wide[:, None], turned.imag * narrow[:, None]], axis=-1)


def _two_sample_ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: D = sup |F_a - F_b| and its asymptotic p-value
    P(K > sqrt(n m / (n + m)) D) (Kolmogorov's distribution, from xavinit.core.stats)."""
    from xavinit.core.stats import kolmogorov_sf

    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / a.size
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / b.size
    d = float(np.abs(cdf_a - cdf_b).max())
    return d, kolmogorov_sf(math.sqrt(a.size * b.size / (a.size + b.size)) * d)


@pytest.mark.parametrize(("shape", "sides"), [(0, 3), (1, 4)], ids=["triangle", "parallelogram"])
def test_small_rotation_follows_the_authors_generator(shape, sides):
    """The largest interior angle, which the small rotation (through the shear it causes) and
    the scale decide, has the same law as in an independent generator (two-sample KS on
    20,000 shapes each, fixed seeds; p > 0.001)."""
    ours = draw_polygons(np.full(20_000, shape), np.random.default_rng(1))[:, :sides]
    theirs = _authors_polygons(20_000, sides, np.random.default_rng(2))
    d, p = _two_sample_ks(_largest_interior_angles(ours), _largest_interior_angles(theirs))
    assert p > 0.001, (d, p)


def test_the_angle_test_tells_the_old_rotation_apart():
    """The same statistic rejects triangles rotated by U(-45, 45) degrees (the old law), so the
    test above has the power to see the difference: mean largest angle about 77.3 against
    78.7 degrees."""
    new = _largest_interior_angles(_authors_polygons(20_000, 3, np.random.default_rng(3)))
    old = _largest_interior_angles(
        _authors_polygons(20_000, 3, np.random.default_rng(4), uniform_45=True)
    )
    d, p = _two_sample_ks(new, old)
    assert p < 1e-9, (d, p)
    assert old.mean() < new.mean() - 0.5


def test_small_rotation_periods_by_hand():
    # ceil(255 / 3) = 85, ceil(255 / 4) = 64 (255 / 4 = 63.75), ceil(255 / 20) = 13 (12.75)
    assert shapeset.SKEW_PERIODS.tolist() == [85, 64, 13]


def test_parallelograms_have_parallel_opposite_sides_and_are_sheared(sample):
    rows = sample.sides[:, 0] == 4
    v = sample.vertices[rows, 0, :4]
    e = np.roll(v, -1, axis=1) - v
    assert np.allclose(e[:, 0] + e[:, 2], 0, atol=1e-9)
    assert np.allclose(e[:, 1] + e[:, 3], 0, atol=1e-9)
    cosine = np.einsum("ij,ij->i", e[:, 0], e[:, 1]) / (
        np.linalg.norm(e[:, 0], axis=1) * np.linalg.norm(e[:, 1], axis=1)
    )
    assert np.abs(cosine).max() > 0.3  # not only rectangles


def test_the_second_shape_occludes_the_first(sample):
    levels = levels_of(sample.images).reshape(-1, 32, 32)
    two = np.flatnonzero(sample.objects == 2)
    overlapping = 0
    for i in two:
        first, second = sample.masks[i]
        assert (levels[i][second] == sample.levels[i, 1]).all()
        assert (levels[i][first & ~second] == sample.levels[i, 0]).all()
        assert (levels[i][~first & ~second] == sample.background[i]).all()
        overlapping += bool((first & second).any())
    assert overlapping > 50


def test_the_second_shape_covers_at_most_half_of_the_first(sample):
    two = sample.objects == 2
    first, second = sample.masks[two, 0], sample.masks[two, 1]
    covered = np.count_nonzero(first & second, axis=(1, 2))
    area = np.count_nonzero(first, axis=(1, 2))
    assert (2 * covered <= area).all()
    assert (covered > 0).any()
    assert not sample.masks[~two, 1].any()


def test_masks_are_the_pixel_centres_inside_the_polygons(sample):
    # An independent point-in-polygon test (winding sign per edge, in float64) on a few shapes.
    yy, xx = np.mgrid[0:32, 0:32] + 0.5
    for i in range(40):
        n = sample.sides[i, 0]
        v = sample.vertices[i, 0, :n]
        inside = np.ones((32, 32), dtype=bool)
        for k in range(n):
            (x0, y0), (x1, y1) = v[k], v[(k + 1) % n]
            inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= -1e-4
        strict = np.ones((32, 32), dtype=bool)
        for k in range(n):
            (x0, y0), (x1, y1) = v[k], v[(k + 1) % n]
            strict &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 1e-4
        mask = sample.masks[i, 0]
        assert (mask <= inside).all() and (strict <= mask).all()
        assert mask.any()


def test_exhausted_rejections_redraw_the_pair_and_keep_its_types(monkeypatch):
    monkeypatch.setattr(shapeset, "MAX_OVERLAP", 0.0)
    monkeypatch.setattr(shapeset, "MAX_REJECTIONS", 1)
    s = sample_shapeset(400, np.random.default_rng(5))
    two = s.objects == 2
    assert not (s.masks[two, 0] & s.masks[two, 1]).any()
    reference = sample_shapeset(400, np.random.default_rng(5))
    assert np.array_equal(reference.labels, s.labels)  # types are drawn before any geometry


def test_same_generator_state_gives_the_same_images():
    a = generate_shapeset(300, np.random.default_rng(42))
    b = generate_shapeset(300, np.random.default_rng(42))
    c = generate_shapeset(300, np.random.default_rng(43))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_stream_blocks_follow_the_seed_sequence():
    stream = ShapesetStream(7, block=64)
    x, y = stream.next_batch(100)
    b0 = generate_shapeset(64, np.random.default_rng(np.random.SeedSequence(7, spawn_key=(0,))))
    b1 = generate_shapeset(64, np.random.default_rng(np.random.SeedSequence(7, spawn_key=(1,))))
    assert np.array_equal(x, np.concatenate([b0[0], b1[0][:36]]))
    assert np.array_equal(y, np.concatenate([b0[1], b1[1][:36]]))
    assert stream.position == 100


def test_restored_stream_yields_bit_identical_batches():
    stream = ShapesetStream(3, block=50)
    for size in (7, 33, 61):
        stream.next_batch(size)
    state = json.loads(json.dumps(stream.state()))
    expected = [stream.next_batch(size) for size in (9, 77, 1)]
    fresh = ShapesetStream(3, block=50)
    fresh.restore(state)
    for (x, y), (fx, fy) in zip(expected, [fresh.next_batch(s) for s in (9, 77, 1)], strict=True):
        assert np.array_equal(x, fx) and np.array_equal(y, fy)
        assert x.tobytes() == fx.tobytes()


def test_stream_batches_are_fresh_arrays():
    stream = ShapesetStream(0, block=32)
    x, _ = stream.next_batch(4)
    x[:] = 0
    stream.restore({"seed": 0, "block": 32, "position": 0})
    again, _ = stream.next_batch(4)
    assert np.abs(again).sum() > 0


def test_bad_input_raises_the_domain_error():
    with pytest.raises(XavinitError, match="count"):
        generate_shapeset(-1, np.random.default_rng(0))
    with pytest.raises(XavinitError, match="batch size"):
        ShapesetStream(0).next_batch(0)
    with pytest.raises(XavinitError, match="seed"):
        ShapesetStream(-3)
    with pytest.raises(XavinitError, match="this stream has seed 1"):
        ShapesetStream(1).restore({"seed": 2, "block": 1024, "position": 0})
    with pytest.raises(XavinitError, match="not a Shapeset stream state"):
        ShapesetStream(1).restore({"position": 3})


def test_dataset_splits_do_not_share_images():
    data = load_shapeset(0, valid_size=500, test_size=600)
    assert (data.name, data.inputs, data.classes, data.image_shape) == (
        "shapeset",
        1024,
        9,
        (32, 32),
    )
    assert data.class_names == CLASS_NAMES and len(CLASS_NAMES) == 9
    assert data.valid is not None and len(data.valid) == 500 and len(data.test) == 600
    train_x, _ = data.train.next_batch(2048)
    seen: dict[bytes, str] = {}
    for name, x in (("train", train_x), ("valid", data.valid.x), ("test", data.test.x)):
        for row in x:
            key = row.tobytes()
            assert seen.setdefault(key, name) == name, f"an image of {name} is also in {seen[key]}"
    again = load_shapeset(0, valid_size=500, test_size=600)
    assert np.array_equal(again.test.x, data.test.x) and np.array_equal(again.test.y, data.test.y)
    assert load_shapeset(0, valid_size=0, test_size=5).valid is None


# --- xavinit data preview -------------------------------------------------------------------

runner = CliRunner()


def test_preview_draws_half_blocks_and_label_names():
    result = runner.invoke(app, ["data", "preview", "shapeset", "--count", "3"])
    assert result.exit_code == 0, result.output
    assert any(block in result.stdout for block in "▀▄█")
    _, y = ShapesetStream(0).next_batch(3)
    for label in y:
        assert CLASS_NAMES[label] in result.stdout
    assert len(result.stdout.splitlines()) == 16 + 1  # 32 pixel rows in 16 text rows, labels


def test_preview_in_colour_uses_grey_rgb_styles():
    from rich.console import Console

    from xavinit.datasets.preview import load_preview_images
    from xavinit.render.preview import print_preview

    images, names = load_preview_images("shapeset", 2, 0)
    assert images.shape == (2, 32, 32) and names == [
        CLASS_NAMES[k] for k in ShapesetStream(0).next_batch(2)[1]
    ]
    console = Console(
        file=io.StringIO(), record=True, width=80, color_system="truecolor", force_terminal=True
    )
    print_preview(images, names, console)
    html = console.export_html(inline_styles=True)
    assert "▀" in html and "background-color: #" in html


def test_preview_bad_dataset_exits_2_with_one_line():
    result = runner.invoke(app, ["data", "preview", "no-such-dataset"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_preview_save_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    target = tmp_path / "grid.png"
    result = runner.invoke(app, ["data", "preview", "shapeset", "--save", str(target)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and "pip install 'xavinit[plot]'" in result.stderr
    assert not target.exists()


def test_preview_save_needs_a_png_name(tmp_path):
    result = runner.invoke(app, ["data", "preview", "shapeset", "--save", str(tmp_path / "a.jpg")])
    assert result.exit_code == 2 and "png" in result.stderr


def test_preview_save_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "grid.png"
    result = runner.invoke(
        app, ["data", "preview", "shapeset", "--count", "4", "--save", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
