"""The float32 uniform draw from PCG64's words: numpy's own numbers and state, bit for bit.

Every expectation is numpy itself: ``Generator.random(dtype=np.float32)`` on a generator seeded
alike, mapped with the in-place float32 steps a user writes (``out *= scale; out -= shift``),
and the generator's state and next draws afterwards.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xavinit.core import uniform32
from xavinit.core.sampling import draw_inputs
from xavinit.core.schemes import SAMPLE_CHUNK, get_scheme
from xavinit.core.streams import INPUT_KEY, input_rng
from xavinit.core.uniform32 import WORDS, fill_uniform, reproduces_numpy


def numpy_draw(rng: np.random.Generator, size: int, scale: float, shift: float) -> np.ndarray:
    out = rng.random(size, dtype=np.float32)
    out *= scale
    out -= shift
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def same_after(ours: np.random.Generator, numpys: np.random.Generator) -> bool:
    """The same state, and the same draws after it (32-bit values first: a kept half word)."""
    return (
        ours.bit_generator.state == numpys.bit_generator.state
        and same_bits(ours.random(3, dtype=np.float32), numpys.random(3, dtype=np.float32))
        and np.array_equal(ours.random(2), numpys.random(2))
    )


def test_the_words_reproduce_numpy_here():
    """Where this fails, every uniform float32 draw falls back to numpy's own (slower) loop:
    numpy's float32 draw or PCG64's 32-bit outputs have changed."""
    assert reproduces_numpy()


@pytest.mark.parametrize("sizes", [[1], [2], [7, 8], [2 * WORDS], [2 * WORDS + 1], [4, 5, 6]])
@pytest.mark.parametrize(("scale", "shift"), [(1.0, 0.0), (2.0, 1.0), (0.0625, 0.03125)])
def test_fills_are_numpys_draw_and_leave_its_state(sizes, scale, shift):
    numpy_rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0, 2)))
    ours_rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0, 2)))
    for size in sizes:  # after an odd size the generator keeps a half word: numpy's draw goes on
        got = np.empty(size, dtype=np.float32)
        fill_uniform(ours_rng, got, scale, shift)
        assert same_bits(got, numpy_draw(numpy_rng, size, scale, shift))
    assert same_after(ours_rng, numpy_rng)


def test_a_float32_fill_from_pcg64_reads_the_words(monkeypatch):
    """The fast path is the one taken (numpy's loop, made to fail here, is not called) for
    init's and propagate's draws: C-contiguous float32 views, Python floats."""

    def numpys_loop(*args: object) -> None:
        raise AssertionError("numpy's own draw was used")

    assert reproduces_numpy()  # checked (against numpy's loop) before the loop is taken away
    monkeypatch.setattr(uniform32, "_numpy_fill", numpys_loop)
    rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(0, 1)))
    for size in (64, 2 * WORDS + 6, 1):
        fill_uniform(rng, np.empty(size, dtype=np.float32), 0.1, 0.05)
    get_scheme("normalized").sample((1025, 257), np.random.default_rng(1))


def test_fills_of_mixed_scales_after_a_kept_half_word_are_numpys():
    """A fill numpy makes (a scale whose fold is not exact) of an odd count leaves a half word:
    the next fill, whatever its scale, starts from it, as numpy's draw does."""
    numpy_rng, ours_rng = np.random.default_rng(6), np.random.default_rng(6)
    for size, scale, shift in ((3, 1e-36, 0.0), (4, 2.0, 1.0), (5, 2.0, 1.0), (6, 0.5, 0.25)):
        got = np.empty(size, dtype=np.float32)
        fill_uniform(ours_rng, got, scale, shift)
        assert same_bits(got, numpy_draw(numpy_rng, size, scale, shift)), (size, scale)
    assert same_after(ours_rng, numpy_rng)


def test_a_bound_of_every_scale_maps_as_numpy_does():
    """``2^-24`` folded into the scale is exact for a normal float32 scale; a scale that is not
    (subnormal after the fold), an overflowing one, an integer and a numpy float64 (which
    ``out *= scale`` does not round to float32) take numpy's steps: the same numbers."""
    scales = (3.0e-38, 1e-31, 1e-5, 0.123456789, 7.0, 1e30, 1e39, 3, np.float64(0.1), -0.5)
    for scale in scales:
        numpy_rng, ours_rng = np.random.default_rng(8), np.random.default_rng(8)
        got = np.empty(1001, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # 1e39: inf - inf
            fill_uniform(ours_rng, got, scale, scale / 2)
            expected = numpy_draw(numpy_rng, 1001, scale, scale / 2)
        assert same_bits(got, expected), scale
        assert same_after(ours_rng, numpy_rng), scale


def test_what_numpy_draws_otherwise_is_numpys_own():
    """float64, a Fortran-ordered or read-only array, other bit generators: numpy's draw, its
    numbers and its errors, with the generator left as numpy leaves it."""
    for make in (
        lambda: np.empty(7),
        lambda: np.empty((4, 6), dtype=np.float32, order="F"),
        lambda: np.empty(0, dtype=np.float32),
    ):
        numpy_rng, ours_rng = np.random.default_rng(9), np.random.default_rng(9)
        got, expected = make(), make()
        fill_uniform(ours_rng, got, 2.0, 1.0)
        numpy_rng.random(dtype=expected.dtype, out=expected)
        expected *= 2.0
        expected -= 1.0
        assert np.array_equal(got, expected) and same_after(ours_rng, numpy_rng)
    for bits in (np.random.MT19937(1), np.random.SFC64(1)):
        got = np.empty(9, dtype=np.float32)
        fill_uniform(np.random.Generator(bits), got)
        assert same_bits(got, np.random.Generator(type(bits)(1)).random(9, dtype=np.float32))
    frozen = np.empty(5, dtype=np.float32)
    frozen.flags.writeable = False
    numpy_rng, ours_rng = np.random.default_rng(9), np.random.default_rng(9)
    with pytest.raises(ValueError) as ours:
        fill_uniform(ours_rng, frozen)
    with pytest.raises(ValueError) as numpys:
        numpy_rng.random(dtype=np.float32, out=frozen)
    assert str(ours.value) == str(numpys.value)
    assert same_after(ours_rng, numpy_rng)


def test_propagates_uniform_inputs_are_numpys_draw():
    """propagate's ``U[-1, 1]`` inputs: ``random``, ``*= 2``, ``-= 1`` on their stream, fresh or
    into a given array, float32 and float64."""
    for dtype, (batch, width) in itertools.product((np.float32, np.float64), ((7, 13), (3, 1))):
        rng = input_rng(5, 1, INPUT_KEY)
        expected = rng.random((batch, width), dtype=dtype)
        expected *= 2.0
        expected -= 1.0
        fresh = draw_inputs(5, 1, batch, width, "uniform", np.dtype(dtype))
        given = draw_inputs(
            5, 1, batch, width, "uniform", np.dtype(dtype), out=np.empty_like(fresh)
        )
        assert np.array_equal(fresh, expected) and np.array_equal(given, expected)


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
