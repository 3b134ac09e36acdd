"""Sizes and caps that several layers share (a leaf: no imports, nothing heavy)."""

MAX_LAYERS = 10_000
"""At most this many widths in a network spec."""

KS_SAMPLE = 1_000_000
"""At most this many entries of a matrix enter the KS test (the p-value is then about
``n^-1/2``-accurate; the variance test always uses every entry)."""
