"""numpy's uniform draw, mapped in place; a float32 one from the bit generator's words in blocks.

``Generator.random(dtype=np.float32)`` makes each value from one 32-bit output ``u`` of the bit
generator as ``(u >> 8) * 2^-24`` (numpy's ``next_float``), one C call per value. PCG64, the bit
generator of every xavinit stream (:mod:`xavinit.core.streams`), hands out its 64-bit words as
two 32-bit outputs each, the low half first, and keeps an unused high half for the next call.
:func:`fill_uniform` reads the words in blocks (``BitGenerator.random_raw``) and maps them with
array operations: the same numbers, bit for bit, and the generator left in the same state, at
about 60% of the cost of numpy's own loop (the draw is most of ``init``'s time for a uniform
scheme, issue 22).

A mapped draw ``fl(fl(u * scale) - shift)`` (``U[-b, b]`` is ``scale = 2b``, ``shift = b``)
folds ``2^-24`` into the scale: ``k * (scale * 2^-24)`` is the same real number as
``(k * 2^-24) * scale`` for the integer ``k = u >> 8``, so it rounds to the same float32 as long
as ``scale * 2^-24`` is itself exact (a normal float32).

The correspondence is numpy's implementation, not its documented contract, so it is checked
once per process against ``Generator.random`` itself (:func:`reproduces_numpy`); where it does
not hold (another numpy, another bit generator, a big-endian machine), and for any call the
words do not cover, numpy's own draw and map are used.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

__all__ = ["WORDS", "fill_uniform", "reproduces_numpy"]

WORDS = 1 << 17
"""64-bit words read per block: 262,144 values (1 MiB), a sampler's piece
(:data:`xavinit.core.schemes.OBSERVED_PIECE`) in one call."""

_UNIT = np.float32(2.0**-24)
"""numpy's float32 step: ``(u >> 8) * 2^-24`` lies in [0, 1) on a grid of 2^-24."""

_SMALLEST_NORMAL = np.finfo(np.float32).tiny


def fill_uniform(
    rng: np.random.Generator, out: np.ndarray, scale: float = 1.0, shift: float = 0.0
) -> None:
    """``rng.random(dtype=out.dtype, out=out)``, then ``out *= scale`` and ``out -= shift`` when
    they are not 1 and 0: the same numbers, the same generator state after, the same errors.

    A C-contiguous, writeable float32 ``out`` drawn from PCG64 holding no half word, with a
    Python ``scale`` and ``shift`` (rounded to float32 as ``out *= scale`` rounds them), is
    filled from the bit generator's words; any other call is numpy's own.
    """
    factor = _folded(scale, shift)
    if (
        factor is None
        or type(rng.bit_generator) is not np.random.PCG64
        or out.dtype != np.float32
        or not (out.flags.c_contiguous and out.flags.writeable)
        or not reproduces_numpy()
        or not _fill_from_words(rng, out, factor, shift)
    ):
        _numpy_fill(rng, out, scale, shift)


def _fill_from_words(
    rng: np.random.Generator, out: np.ndarray, factor: np.float32, shift: float
) -> bool:
    """Fill ``out`` (C-contiguous float32) from PCG64's words, ``k * factor - shift`` for
    ``k = u >> 8``, and leave the state as numpy's draw would; False, drawing nothing, when
    the generator keeps a half word (numpy's draw starts from it)."""
    bits = rng.bit_generator
    if bits.state["has_uint32"]:
        return False
    flat = out.reshape(-1)
    offset = np.float32(shift)
    last = 0
    for start in range(0, flat.size, 2 * WORDS):
        piece = flat[start : start + 2 * WORDS]
        words = bits.random_raw((piece.size + 1) // 2)
        last = int(words[-1])
        halves = words.view(np.uint32)  # little-endian: each word's low half first
        np.right_shift(halves, 8, out=halves)
        piece[...] = halves.view(np.int32)[: piece.size]  # below 2^24: exact as float32
        piece *= factor
        if shift != 0.0:
            piece -= offset
    if flat.size:  # as numpy leaves it: the last word's high half, kept after an odd count
        state = dict(bits.state)
        state["has_uint32"] = flat.size % 2
        state["uinteger"] = last >> 32
        bits.state = state
    return True


def _folded(scale: float, shift: float) -> np.float32 | None:
    """``float32(scale) * 2^-24`` when it is exact, for a Python ``scale`` and ``shift`` (a
    numpy float64 scalar is not rounded to float32 by ``out *= scale``); else None.
    A subnormal product is refused too: exact where subnormals are kept, but flushed to zero
    where the processor flushes them (then ``k * factor`` would not be ``(k 2^-24) scale``)."""
    if type(scale) not in (float, int) or type(shift) not in (float, int):
        return None
    with np.errstate(over="ignore"):
        rounded = np.float32(scale)
    factor = rounded * _UNIT
    if not np.isfinite(factor) or abs(factor) < _SMALLEST_NORMAL:
        return None
    return factor if factor * np.float32(2.0**24) == rounded else None


def _numpy_fill(rng: np.random.Generator, out: np.ndarray, scale: float, shift: float) -> None:
    """numpy's draw and map, the reference :func:`fill_uniform` reproduces."""
    rng.random(dtype=out.dtype, out=out)
    if scale != 1.0:
        out *= scale
    if shift != 0.0:
        out -= shift


@functools.cache
def reproduces_numpy() -> bool:
    """Whether the words give ``Generator.random``'s float32 numbers and state here: odd and
    even counts, a mapped draw, and the draws after each, against numpy itself (numpy's side
    of the correspondence; blocks of words are this module's, tested with the code)."""
    if sys.byteorder != "little":
        return False
    for count, scale, shift in ((5, 1.0, 0.0), (8, 0.75, 0.375), (1001, 0.1, 0.05)):
        numpy_rng = np.random.Generator(np.random.PCG64(20100513))
        ours_rng = np.random.Generator(np.random.PCG64(20100513))
        expected = np.empty(count, dtype=np.float32)
        _numpy_fill(numpy_rng, expected, scale, shift)
        got = np.empty(count, dtype=np.float32)
        factor = _folded(scale, shift)
        if factor is None or not _fill_from_words(ours_rng, got, factor, shift):
            return False
        same_state = numpy_rng.bit_generator.state == ours_rng.bit_generator.state
        after: list[np.ndarray] = [numpy_rng.random(3, dtype=np.float32), numpy_rng.random(2)]
        ours_after: list[np.ndarray] = [ours_rng.random(3, dtype=np.float32), ours_rng.random(2)]
        if not (
            same_state
            and np.array_equal(got.view(np.uint32), expected.view(np.uint32))
            and all(np.array_equal(a, b) for a, b in zip(after, ours_after, strict=True))
        ):
            return False
    return True
