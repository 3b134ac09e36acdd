"""Shapeset-3x2: the paper's online dataset of 32x32 grey images holding one or two polygons.

Source: Glorot and Bengio (2010), section 2.1, and the authors' public generator; the spec this
module follows is the "Datasets" section of the project's PAPER.md. Every image holds 1 or 2
objects (probability 1/2 each); each object is a triangle, a parallelogram or an "ellipse" (a
filled regular 20-gon), its type drawn uniformly and independently. The label is the unordered
set of types, 9 classes:

    0 T, 1 P, 2 E, 3 T+P, 4 P+E, 5 T+E, 6 TT, 7 PP, 8 EE

with priors 1/6 for each single, 1/9 for each mixed pair and 1/18 for each same-type pair.

Geometry of one object, in pixel coordinates ``(x, y)`` = (column, row), pixel ``(i, j)``
covering ``[j, j+1] x [i, i+1]`` with its centre at ``(j + 0.5, i + 0.5)``:

1. a regular ``n``-gon (``n`` = 3, 4 or 20) on a circle of radius 0.5, placed so that one edge
   (the base) is horizontal: vertex ``k`` at angle ``-pi/2 + pi/n + 2 pi k / n``. For the
   parallelogram ``n = 4``: a square, which the next three steps shear into a parallelogram;
2. a small rotation within one symmetry period of the n-gon, as in the authors' generator:
   ``theta = j * 2 pi / 255`` with ``j`` uniform in ``0..m-1``, ``m = ceil(255 / n)``, folded to
   the symmetric range (``j -> j - m`` for ``j > m // 2``): about +-60 degrees for triangles,
   +-45 for parallelograms, +-9 for the 20-gon;
3. an anisotropic scale ``diag(32 s0, 32 s1)``, ``s0, s1 ~ U(0.2, 0.8)`` independently, the
   larger on the first axis (x), so an object spans about 6 to 26 px;
4. a rotation by ``-atan(s1/s0 * tan(theta))``, the exact angle of the base edge after steps
   2-3, so the base edge is horizontal again;
5. a global rotation by ``k * 2 pi / 255``, ``k`` uniform in 0..253;
6. a translation drawn uniformly among those that keep every vertex in ``[1, 31]^2`` (inside
   the image with a 1-pixel margin; the shape never exceeds 25.6 px, so one always exists).

Rasterisation: a pixel belongs to a (convex) polygon when its centre is inside all the half
planes of its edges (``>= 0``, so a centre exactly on an edge counts as inside). Objects are
painted in order, so the second occludes the first. A second object that would cover more
than half of the first one's pixels is rejected and redrawn (same type, new geometry); after
50 rejections for one image, the first object's geometry is redrawn as well (its type kept)
and the count starts again. Keeping both types fixed keeps the label priors exact.

Grey levels are integers 0..255: with probability 1/2 the objects are bright (each its own
level in 140..255) on a dark background (0..114), else dark objects (0..114) on a bright
background (140..255). An image is ``level / 255`` mapped to [-1, 1], i.e. ``2 level/255 - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.core.streams import TEST_KEY, VALID_KEY, block_rng
from xavinit.datasets.base import Dataset, Split
from xavinit.errors import XavinitError
from xavinit.serialize import quote

SIZE = 32
"""Image side in pixels; images are ``SIZE x SIZE`` flattened row-major to ``SIZE**2`` inputs."""
INPUTS = SIZE * SIZE
MARGIN = 1.0
"""Every vertex lies in ``[MARGIN, SIZE - MARGIN]`` on both axes."""
SIDES = (3, 4, 20)
"""Vertices of each object type: triangle, parallelogram (from a square), ellipse (20-gon)."""
MAX_SIDES = max(SIDES)
CLASS_NAMES = (
    "triangle",
    "parallelogram",
    "ellipse",
    "triangle+parallelogram",
    "parallelogram+ellipse",
    "triangle+ellipse",
    "2 triangles",
    "2 parallelograms",
    "2 ellipses",
)
CLASS_PRIORS = np.array([1 / 6] * 3 + [1 / 9] * 3 + [1 / 18] * 3)
"""P(class): 1/2 * 1/3 for each single; 1/2 * 2/9 for each mixed pair; 1/2 * 1/9 for a same pair."""
PAIR_LABEL = np.array([[6, 3, 5], [3, 7, 4], [5, 4, 8]], dtype=np.int64)
"""Label of an image holding an object of type ``a`` and one of type ``b``: ``PAIR_LABEL[a, b]``."""

SCALE_RANGE = (0.2, 0.8)
ANGLE_STEPS = 255
"""Every rotation is a multiple of ``2 pi / ANGLE_STEPS`` (the authors' angle resolution)."""
SKEW_PERIODS = np.array([math.ceil(ANGLE_STEPS / n) for n in SIDES])
"""The small rotation of an ``n``-gon is ``j * 2 pi / 255``, ``j`` uniform in
``0..SKEW_PERIODS - 1`` (one symmetry period, ``ceil(255 / n)`` steps), then folded to the
symmetric range: 85 steps (+-59.3 degrees) for triangles, 64 (-43.8..+45.2) for parallelograms,
13 (+-8.5) for the 20-gon."""
GLOBAL_STEPS = ANGLE_STEPS
"""The global rotation is ``k * 2 pi / GLOBAL_STEPS`` with ``k`` in ``0..GLOBAL_STEPS - 2``."""
DARK = (0, 114)
BRIGHT = (140, 255)
MAX_OVERLAP = 0.5
"""A second object may cover at most this fraction of the first one's pixels."""
MAX_REJECTIONS = 50
"""Rejected second objects per image before the first object is redrawn too."""


_RASTER_CHUNK = 256  # shapes rasterised at once: (256, 32, 32) float32 is 1 MiB, cache-sized
_CENTRES = np.arange(SIZE, dtype=np.float32) + np.float32(0.5)
_GREY = ((2.0 * np.arange(256) - 255.0) / 255.0).astype(np.float32)  # level -> [-1, 1]


def _base_polygons() -> np.ndarray:
    """``(3, MAX_SIDES, 2)``: each type's regular polygon of radius 0.5, base edge horizontal.

    Shorter polygons are padded by repeating their last vertex: the padded edges have zero
    length, so their half-plane test (``0 >= 0``) passes and the bounding box is unchanged.
    """
    base = np.empty((len(SIDES), MAX_SIDES, 2))
    for t, n in enumerate(SIDES):
        angles = -math.pi / 2 + math.pi / n + 2 * math.pi * np.arange(n) / n
        base[t, :n, 0] = 0.5 * np.cos(angles)
        base[t, :n, 1] = 0.5 * np.sin(angles)
        base[t, n:] = base[t, n - 1]
    return base


_BASE = _base_polygons()


def _rotation(angle: np.ndarray) -> np.ndarray:
    """``(m, 2, 2)`` rotation matrices acting on row vectors: ``v @ R``."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, s], axis=-1), np.stack([-s, c], axis=-1)], axis=-2)


def draw_polygons(types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one object of each given type, placed in the image (steps 1-6 of the module doc).

    Args:
        types: int ``(m,)`` object types, 0 triangle, 1 parallelogram, 2 ellipse.
        rng: the generator every draw comes from.

    Returns:
        float64 ``(m, MAX_SIDES, 2)`` vertices ``(x, y)`` in pixels, in counter-clockwise order
        (for x right, y down), padded by repeating the last vertex.
    """
    m = len(types)
    period = SKEW_PERIODS[types]
    j = rng.integers(0, period, size=m)
    j = np.where(j > period // 2, j - period, j)
    theta = j * (2 * math.pi / ANGLE_STEPS)
    factors = rng.uniform(*SCALE_RANGE, size=(m, 2))
    s0, s1 = factors.max(axis=1), factors.min(axis=1)
    k = rng.integers(0, GLOBAL_STEPS - 1, size=m)
    back = -np.arctan(s1 / s0 * np.tan(theta))
    # v -> R(theta) -> diag(32 s0, 32 s1) -> R(back) R(global) = R(back + global)
    scale = np.zeros((m, 2, 2))
    scale[:, 0, 0], scale[:, 1, 1] = SIZE * s0, SIZE * s1
    transform = _rotation(theta) @ scale @ _rotation(back + k * (2 * math.pi / GLOBAL_STEPS))
    vertices = _BASE[types] @ transform
    low = MARGIN - vertices.min(axis=1)
    high = (SIZE - MARGIN) - vertices.max(axis=1)
    vertices += rng.uniform(low, high)[:, None, :]
    return vertices


def rasterise(vertices: np.ndarray) -> np.ndarray:
    """Fill convex polygons on the pixel grid: bool ``(m, SIZE, SIZE)``, ``[shape, row, col]``.

    A pixel is inside when its centre ``(x, y)`` passes every edge's half-plane test
    ``cross(v[k+1] - v[k], p - v[k]) >= 0``, i.e. ``a x + b y + c >= 0`` with ``a = -dy``,
    ``b = dx``, ``c = dy x_k - dx y_k``. The test is evaluated for whole chunks of polygons at
    once: per edge, a row term ``b y + c`` plus a column term ``a x`` broadcast to the grid,
    folded into a running minimum.

    Args:
        vertices: ``(m, n, 2)`` counter-clockwise vertices in pixels (padding by repeating the
            last vertex is allowed).
    """
    m, n = vertices.shape[:2]
    edges = np.roll(vertices, -1, axis=1) - vertices
    a = (-edges[..., 1]).astype(np.float32)
    b = edges[..., 0].astype(np.float32)
    c = (edges[..., 1] * vertices[..., 0] - edges[..., 0] * vertices[..., 1]).astype(np.float32)
    masks = np.empty((m, SIZE, SIZE), dtype=bool)
    chunk = max(1, min(m, _RASTER_CHUNK))
    acc = np.empty((chunk, SIZE, SIZE), dtype=np.float32)
    value = np.empty_like(acc)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        rows_of = b[start:stop, :, None] * _CENTRES + c[start:stop, :, None]  # (q, n, SIZE)
        cols_of = a[start:stop, :, None] * _CENTRES  # (q, n, SIZE)
        out, tmp = acc[: stop - start], value[: stop - start]
        np.add(rows_of[:, 0, :, None], cols_of[:, 0, None, :], out=out)
        for e in range(1, n):
            np.add(rows_of[:, e, :, None], cols_of[:, e, None, :], out=tmp)
            np.minimum(out, tmp, out=out)
        np.greater_equal(out, 0, out=masks[start:stop])
    return masks


@dataclass(frozen=True)
class ShapesetSample:
    """Images with everything that made them, for tests and previews.

    Attributes:
        images: float32 ``(count, 1024)`` in [-1, 1], 32x32 row-major.
        labels: int64 ``(count,)`` class indices 0..8 (see ``CLASS_NAMES``).
        objects: int ``(count,)`` 1 or 2.
        types: int ``(count, 2)`` object types (0 T, 1 P, 2 E), -1 where there is no object.
        vertices: float64 ``(count, 2, MAX_SIDES, 2)`` each object's ``(x, y)`` vertices in
            pixels; rows past the object's ``sides`` and absent objects are NaN.
        sides: int ``(count, 2)`` vertices of each object, 0 where there is none.
        masks: bool ``(count, 2, 32, 32)`` pixels inside each object before occlusion.
        background: int ``(count,)`` the background grey level 0..255.
        levels: int ``(count, 2)`` each object's grey level 0..255, -1 where there is none.
    """

    images: np.ndarray
    labels: np.ndarray
    objects: np.ndarray
    types: np.ndarray
    vertices: np.ndarray
    sides: np.ndarray
    masks: np.ndarray
    background: np.ndarray
    levels: np.ndarray


def sample_shapeset(count: int, rng: np.random.Generator) -> ShapesetSample:
    """Draw ``count`` Shapeset-3x2 images with their objects' geometry, masks and grey levels.

    Args:
        count: images to draw, ``>= 0``.
        rng: the generator every draw comes from; the same state gives the same sample.
    """
    count = _count(count, "count")
    objects = rng.integers(1, 3, size=count)
    types = rng.integers(0, len(SIDES), size=(count, 2))
    bright = rng.random(count) < 0.5
    dark_draw = rng.integers(DARK[0], DARK[1] + 1, size=(count, 3))
    bright_draw = rng.integers(BRIGHT[0], BRIGHT[1] + 1, size=(count, 3))
    background = np.where(bright, dark_draw[:, 0], bright_draw[:, 0])
    levels = np.where(bright[:, None], bright_draw[:, 1:], dark_draw[:, 1:])

    vertices = np.empty((count, 2, MAX_SIDES, 2))
    masks = np.zeros((count, 2, SIZE, SIZE), dtype=bool)
    vertices[:, 0] = draw_polygons(types[:, 0], rng)
    masks[:, 0] = rasterise(vertices[:, 0])
    pending = np.flatnonzero(objects == 2)
    rejections = np.zeros(count, dtype=np.int64)
    while pending.size:
        candidate = draw_polygons(types[pending, 1], rng)
        candidate_masks = rasterise(candidate)
        first = masks[pending, 0]
        covered = np.count_nonzero(first & candidate_masks, axis=(1, 2))
        accepted = covered <= MAX_OVERLAP * np.count_nonzero(first, axis=(1, 2))
        done = pending[accepted]
        vertices[done, 1] = candidate[accepted]
        masks[done, 1] = candidate_masks[accepted]
        pending = pending[~accepted]
        rejections[pending] += 1
        exhausted = pending[rejections[pending] >= MAX_REJECTIONS]
        if exhausted.size:
            vertices[exhausted, 0] = draw_polygons(types[exhausted, 0], rng)
            masks[exhausted, 0] = rasterise(vertices[exhausted, 0])
            rejections[exhausted] = 0

    single = objects == 1
    types[single, 1] = -1
    levels[single, 1] = -1
    vertices[single, 1] = np.nan
    sides = np.asarray(SIDES)[types] * (types >= 0)
    for slot in range(2):
        for t, n in enumerate(SIDES):
            vertices[types[:, slot] == t, slot, n:] = np.nan

    grey = np.where(masks[:, 0], levels[:, 0, None, None], background[:, None, None])
    grey = np.where(masks[:, 1], levels[:, 1, None, None], grey)
    images = _GREY[grey.reshape(count, INPUTS)]
    labels = np.where(single, types[:, 0], PAIR_LABEL[types[:, 0], np.maximum(types[:, 1], 0)])
    return ShapesetSample(
        images=images,
        labels=labels.astype(np.int64),
        objects=objects,
        types=types,
        vertices=vertices,
        sides=sides,
        masks=masks,
        background=background,
        levels=levels,
    )


def generate_shapeset(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` Shapeset-3x2 images and labels (see the module doc for the process).

    Args:
        count: images to draw, ``>= 0``.
        rng: the generator every draw comes from.

    Returns:
        ``(images, labels)``: float32 ``(count, 1024)`` in [-1, 1] (32x32, row-major) and
        int64 ``(count,)`` in 0..8.

    Example:
        >>> x, y = generate_shapeset(5, np.random.default_rng(0))
        >>> x.shape, x.dtype, y.shape, bool(np.abs(x).max() <= 1)
        ((5, 1024), dtype('float32'), (5,), True)
    """
    sample = sample_shapeset(count, rng)
    return sample.images, sample.labels


class ShapesetStream:
    """The endless Shapeset-3x2 training stream, generated in blocks, resumable exactly.

    Image ``p`` of the stream is image ``p % block`` of block ``p // block``, and block ``b``
    is ``generate_shapeset(block, block_rng(seed, b))`` (``spawn_key=(b,)``, see
    :mod:`xavinit.core.streams`). The state
    is the position (images consumed); ``restore`` regenerates the current block and skips to
    the position, so a restored stream yields bit-identical batches.
    """

    def __init__(self, seed: int, block: int = 1024) -> None:
        self.seed = _count(seed, "seed")
        self.block = _count(block, "block", minimum=1)
        self._position = 0
        self._index = -1
        self._x = np.empty((0, INPUTS), dtype=np.float32)
        self._y = np.empty(0, dtype=np.int64)

    @property
    def position(self) -> int:
        """Images consumed so far."""
        return self._position

    def _load(self, index: int) -> None:
        if index != self._index:
            self._x, self._y = generate_shapeset(self.block, block_rng(self.seed, index))
            self._index = index

    def next_batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``size`` images ``(size, 1024)`` and labels ``(size,)`` (fresh arrays)."""
        size = _count(size, "batch size", minimum=1)
        xs, ys = [], []
        needed = size
        while needed:
            index, offset = divmod(self._position, self.block)
            self._load(index)
            take = min(needed, self.block - offset)
            xs.append(self._x[offset : offset + take])
            ys.append(self._y[offset : offset + take])
            self._position += take
            needed -= take
        return np.concatenate(xs), np.concatenate(ys)

    def state(self) -> dict[str, Any]:
        return {
            "dataset": "shapeset",
            "seed": self.seed,
            "block": self.block,
            "position": self._position,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of a stream with the same seed and block size."""
        keys = ("dataset", "seed", "block", "position")
        if not isinstance(state, dict) or any(k not in state for k in keys[1:]):
            raise XavinitError(
                f"not a Shapeset stream state (needs seed, block, position): {quote(state, 80)}"
            )
        unknown = [k for k in state if k not in keys]
        if unknown or state.get("dataset", "shapeset") != "shapeset":
            what = f"unknown key {quote(unknown[0], 40)}" if unknown else "another dataset's"
            raise XavinitError(f"{what} in a Shapeset stream state; it holds {', '.join(keys)}")
        seed, block, position = state["seed"], state["block"], state["position"]
        if (seed, block) != (self.seed, self.block):
            raise XavinitError(
                f"Shapeset stream state is for seed {seed}, block {block}; "
                f"this stream has seed {self.seed}, block {self.block}"
            )
        self._position = _count(position, "position")
        self._load(self._position // self.block)


def load_shapeset(seed: int, valid_size: int = 10_000, test_size: int = 10_000) -> Dataset:
    """Shapeset-3x2: an endless training stream and fixed validation and test sets.

    The fixed sets come from their own seed sequences (``spawn_key`` ``2**31 - 1`` and
    ``2**31 - 2``), never from a training block.

    Args:
        seed: the dataset's seed, ``>= 0``.
        valid_size: validation images (0: no validation set).
        test_size: test images, ``>= 1``.
    """
    seed = _count(seed, "seed")
    valid_size = _count(valid_size, "valid_size")
    test_size = _count(test_size, "test_size", minimum=1)
    valid = None
    if valid_size:
        valid = Split(*generate_shapeset(valid_size, block_rng(seed, VALID_KEY)))
    test = Split(*generate_shapeset(test_size, block_rng(seed, TEST_KEY)))
    return Dataset(
        name="shapeset",
        inputs=INPUTS,
        classes=len(CLASS_NAMES),
        train=ShapesetStream(seed),
        valid=valid,
        test=test,
        image_shape=(SIZE, SIZE),
        class_names=CLASS_NAMES,
    )


def _count(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise XavinitError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)
