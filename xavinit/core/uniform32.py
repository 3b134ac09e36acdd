"""numpy's float32 uniform draw, the same numbers from the bit generator's words in blocks.

``Generator.random(dtype=np.float32)`` makes each value from one 32-bit output ``u`` of the bit
generator as ``(u >> 8) * 2^-24`` (numpy's ``next_float``), one C call per value. PCG64, the bit
generator of every xavinit stream (:mod:`xavinit.core.streams`), hands out its 64-bit words as
two 32-bit outputs each, the low half first, and keeps an unused high half for the next call.
:class:`Uniform32` reads the words in blocks (``BitGenerator.random_raw``) and maps them with
array operations: the same numbers, bit for bit, and the generator left in the same state, at
about 60% of the cost of numpy's own loop (the draw is most of ``init``'s time for a uniform
scheme, issue 22).

A mapped draw ``fl(fl(u * scale) - shift)`` (``U[-b, b]`` is ``scale = 2b``, ``shift = b``)
folds ``2^-24`` into the scale: ``k * (scale * 2^-24)`` is the same real number as
``(k * 2^-24) * scale`` for the integer ``k = u >> 8``, so it rounds to the same float32 as long
as ``scale * 2^-24`` is itself exact (a normal float32).

The correspondence is numpy's implementation, not its documented contract, so it is checked
once per process against ``Generator.random`` itself (:func:`reproduces_numpy`); where it does
not hold (another numpy, another bit generator, a big-endian machine, a half word already kept
by the generator), numpy's own draw is used.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

__all__ = ["WORDS", "Uniform32", "reproduces_numpy"]

WORDS = 1 << 17
"""64-bit words read per block: 262,144 values (1 MiB), a sampler's piece
(:data:`xavinit.core.schemes.OBSERVED_PIECE`) in one call."""

_UNIT = np.float32(2.0**-24)
"""numpy's float32 step: ``(u >> 8) * 2^-24`` lies in [0, 1) on a grid of 2^-24."""


class Uniform32:
    """Fills float32 arrays with the numbers ``rng.random(dtype=np.float32, out=...)`` would,
    mapped as ``out *= scale; out -= shift`` would map them, from PCG64's words in blocks.

    Build it with :meth:`of`, which returns None where the words cannot stand for numpy's
    draw; fill arrays in the order they would be drawn, with no other draw from the generator
    in between (it knows of a half word kept only from its own fills). After a fill of an odd
    count the generator keeps the last word's high half, as numpy's draw leaves it; a later
    fill then takes numpy's own draw, which starts from that half.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._bits = rng.bit_generator
        self._half_kept = False

    @classmethod
    def of(cls, rng: np.random.Generator) -> Uniform32 | None:
        """A filler for ``rng``: a PCG64 generator holding no half word, where the words are
        checked to give numpy's numbers; else None (draw with ``rng.random``)."""
        if type(rng.bit_generator) is not np.random.PCG64 or not reproduces_numpy():
            return None
        if rng.bit_generator.state["has_uint32"]:
            return None
        return cls(rng)

    def fill(self, out: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> None:
        """``out`` (C-contiguous float32) gets the next ``out.size`` uniforms ``u`` in [0, 1),
        mapped to ``fl(fl(u * scale) - shift)`` with float32 arithmetic (``scale`` and
        ``shift`` rounded to float32, as ``out *= scale`` rounds a Python float)."""
        if out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array, got {out.dtype}")
        factor = np.float32(scale) * _UNIT
        exact = bool(np.isfinite(factor)) and factor * np.float32(2.0**24) == np.float32(scale)
        if self._half_kept or not exact or abs(factor) < np.finfo(np.float32).tiny:
            self._rng.random(dtype=np.float32, out=out)
            if scale != 1.0:
                out *= scale
            if shift != 0.0:
                out -= shift
            return
        flat = out.reshape(-1)
        offset = np.float32(shift)
        for start in range(0, flat.size, 2 * WORDS):
            piece = flat[start : start + 2 * WORDS]
            words = self._bits.random_raw((piece.size + 1) // 2)
            last = int(words[-1])
            halves = words.view(np.uint32)  # little-endian: each word's low half first
            np.right_shift(halves, 8, out=halves)
            piece[...] = halves.view(np.int32)[: piece.size]  # below 2^24: exact as float32
            piece *= factor
            if shift != 0.0:
                piece -= offset
        if flat.size:  # as numpy leaves it: the last word's high half, kept after an odd count
            state = dict(self._bits.state)
            state["has_uint32"] = flat.size % 2
            state["uinteger"] = last >> 32
            self._bits.state = state
            self._half_kept = bool(flat.size % 2)


@functools.cache
def reproduces_numpy() -> bool:
    """Whether :class:`Uniform32` gives ``Generator.random``'s float32 numbers and state here:
    odd and even counts, a mapped draw, and the draws after each, against numpy itself."""
    if sys.byteorder != "little":
        return False
    for count, scale, shift in ((5, 1.0, 0.0), (8, 0.75, 0.375), (2 * WORDS + 3, 0.1, 0.05)):
        numpy_rng = np.random.Generator(np.random.PCG64(20100513))
        ours_rng = np.random.Generator(np.random.PCG64(20100513))
        expected = numpy_rng.random(count, dtype=np.float32)
        expected *= scale
        expected -= shift
        filler = Uniform32(ours_rng)
        got = np.empty(count, dtype=np.float32)
        filler.fill(got, scale, shift)
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
