"""xavinit: empirical variance analysis of neural-network initialization (Glorot and Bengio, 2010)."""

__version__ = "0.1.0"
