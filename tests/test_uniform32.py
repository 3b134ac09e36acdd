"""The float32 uniform draw from PCG64's words: numpy's own numbers and state, bit for bit.

Every expectation is numpy itself: ``Generator.random(dtype=np.float32)`` on a generator seeded
alike, mapped with the in-place float32 steps a user writes (``out *= scale; out -= shift``),
and the generator's state and next draws afterwards.
"""

from __future__ import annotations

import numpy as np
import pytest

from xavinit.core.schemes import SAMPLE_CHUNK, get_scheme
from xavinit.core.uniform32 import WORDS, Uniform32, reproduces_numpy


def numpy_draw(rng: np.random.Generator, size: int, scale: float, shift: float) -> np.ndarray:
    out = rng.random(size, dtype=np.float32)
    out *= scale
    out -= shift
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_the_words_reproduce_numpy_here():
    """Where this fails, every uniform float32 draw falls back to numpy's own (slower) loop:
    numpy's float32 draw or PCG64's 32-bit outputs have changed."""
    assert reproduces_numpy()


@pytest.mark.parametrize("sizes", [[1], [2], [7, 8], [2 * WORDS], [2 * WORDS + 1], [4, 5, 6]])
@pytest.mark.parametrize(("scale", "shift"), [(1.0, 0.0), (2.0, 1.0), (0.0625, 0.03125)])
def test_fills_are_numpys_draw_and_leave_its_state(sizes, scale, shift):
    numpy_rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0, 2)))
    ours_rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0, 2)))
    filler = Uniform32.of(ours_rng)
    assert filler is not None
    for size in sizes:  # after an odd size the generator keeps a half word: numpy's draw goes on
        got = np.empty(size, dtype=np.float32)
        filler.fill(got, scale, shift)
        assert same_bits(got, numpy_draw(numpy_rng, size, scale, shift))
    assert ours_rng.bit_generator.state == numpy_rng.bit_generator.state
    assert same_bits(ours_rng.random(3, dtype=np.float32), numpy_rng.random(3, dtype=np.float32))
    assert np.array_equal(ours_rng.random(2), numpy_rng.random(2))


def test_a_bound_of_every_scale_maps_as_numpy_does():
    """``2^-24`` folded into the scale is exact for a normal float32 scale; a scale that is not
    (subnormal after the fold) takes numpy's two steps: the same numbers either way."""
    for scale in (3.0e-38, 1e-31, 1e-5, 0.123456789, 7.0, 1e30):
        numpy_rng, ours_rng = np.random.default_rng(8), np.random.default_rng(8)
        got = np.empty(1001, dtype=np.float32)
        Uniform32.of(ours_rng).fill(got, scale, scale / 2)
        assert same_bits(got, numpy_draw(numpy_rng, 1001, scale, scale / 2)), scale


def test_a_fill_takes_only_what_numpys_draw_takes():
    filler = Uniform32.of(np.random.default_rng(2))
    with pytest.raises(ValueError, match="C-contiguous float32"):
        filler.fill(np.empty((4, 6), dtype=np.float32)[:, ::2])
    with pytest.raises(ValueError, match="C-contiguous float32"):
        filler.fill(np.empty(4))


def test_other_generators_and_a_kept_half_word_use_numpys_draw():
    assert Uniform32.of(np.random.Generator(np.random.MT19937(1))) is None
    assert Uniform32.of(np.random.Generator(np.random.SFC64(1))) is None
    rng = np.random.default_rng(1)
    rng.random(1, dtype=np.float32)  # keeps the high half of a word for the next value
    assert Uniform32.of(rng) is None


@pytest.mark.parametrize(
    "spec", ["normalized", "he-uniform", "standard", "xavier-normal", "glorot-normal-truncated"]
)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (257, 255), (1024, 1025), (2048, 1031)])
def test_a_scheme_draws_the_matrix_of_numpys_chunked_draw(spec, shape):
    """The weights every command draws are those of the plain loop over 65,536-entry chunks
    (``random`` mapped to ``U[-b, b]``, or ``standard_normal``, a truncated normal's entries
    beyond the cut redrawn chunk by chunk, then scaled), whatever pieces the sampler uses."""
    scheme = get_scheme(spec)
    got = scheme.sample(shape, np.random.default_rng(21))
    rng = np.random.default_rng(21)
    expected = np.empty(shape, dtype=np.float32)
    flat = expected.reshape(-1)
    for start in range(0, flat.size, SAMPLE_CHUNK):
        view = flat[start : start + SAMPLE_CHUNK]
        if scheme.distribution == "uniform":
            bound = scheme.bound(*shape)
            rng.random(dtype=np.float32, out=view)
            view *= 2.0 * bound
            view -= bound
            continue
        rng.standard_normal(dtype=np.float32, out=view)
        while True:
            beyond = np.flatnonzero(np.abs(view) > scheme.truncation)
            if scheme.distribution == "normal" or not beyond.size:
                break
            view[beyond] = rng.standard_normal(beyond.size, dtype=np.float32)
        view *= scheme.std(*shape)
    assert same_bits(got, expected)
