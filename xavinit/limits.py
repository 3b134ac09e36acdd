"""Sizes and caps that several layers share (a leaf: no imports, nothing heavy)."""

MAX_LAYERS = 10_000
"""At most this many widths in a network spec."""

KS_SAMPLE = 1 << 17
"""At most this many entries of a matrix or tensor enter its KS tests (``init`` and ``check``'s
default ``--ks-sample``; the variance, moments, spectrum and spread tests always use every
entry). Its power: at alpha 0.01 the test rejects beyond about ``1.63 / sqrt(n) = 0.0045`` in
CDF, and a law ``delta`` apart in CDF is rejected with probability at least
``Phi((sqrt(n) delta - 1.63) / 0.5)`` (the empirical CDF at the point of largest difference
has standard deviation at most ``0.5 / sqrt(n)``): at least 90% from ``delta = 2.27 / sqrt(n)
= 0.0063``. A uniform and a normal of equal variance are 0.057 apart, a truncated and a plain
normal 0.0167: both are rejected with probability above 1 - 1e-18; the sample is tested
without sorting in a few milliseconds. A larger ``--ks-sample`` (up to every entry) resolves
distances in proportion to ``1 / sqrt(n)``, at a cost in proportion to ``n``."""

MAX_ARRAY_BYTES = 2**63 - 1
"""numpy's largest array, in bytes: a tensor whose shape (its non-zero dimensions, even when
another is 0) describes more is corrupt, refused before numpy is asked to make it."""

VARIANCE_TOLERANCE = 0.01
"""Default relative deviation of Var[W] that does not matter to a verdict (1%)."""

KS_DISTANCE = 0.01
"""Default sup-distance between an empirical CDF and the scheme's that does not matter: a
uniform and a normal of equal variance are 0.057 apart, a truncated and a plain normal 0.0167,
a normal whose std is 1% off 0.0024 (a variance error is the variance test's to find)."""

ACTIVATION_PARAMETER_MAX = 1e6
"""An activation's parameter (``leaky-relu:slope``, ``elu:alpha``) is at most this: beyond it
the gains and Gaussian expectations overflow double precision, and no network uses one."""

GAIN_CHECK_WORK = 2e9
"""``gain --check`` runs at most this many activation values (replicas x depth x width per
activation, replicas ``2 k / alpha``): a few minutes on one core. Beyond it the run is refused
before it starts, naming the options that set its size."""
