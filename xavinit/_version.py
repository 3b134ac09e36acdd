"""The version of xavinit, in one place: the package, results and ``--version`` read it."""

__version__ = "0.1.0"
