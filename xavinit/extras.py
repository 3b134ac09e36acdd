"""The optional extras of ``pyproject.toml`` and the one way a message names them (a leaf).

A feature whose library is missing says which extra brings it:
``--model needs torch, which is not installed; install it with pip install 'xavinit[torch]'``.
``tests/test_extras.py`` keeps this table equal to the extras ``pyproject.toml`` declares.
"""

from __future__ import annotations

EXTRAS: dict[str, str] = {
    "torch": "PyTorch (the torch array backend, propagate --model)",
    "fast": "SciPy (the SGD step's weight update as one BLAS call)",
    "onnx": "onnx and onnxruntime (propagate --model FILE.onnx)",
    "cupy": "CuPy (the cupy array backend on a CUDA device)",
    "formats": "h5py and onnx (check and init --check on .keras/.h5 and .onnx files)",
    "cluster": "Dask's distributed scheduler (sweep --scheduler)",
    "plot": "matplotlib (figures of report --plots, data preview --save)",
    "digits": "scikit-learn (the digits dataset)",
}
"""Each extra (besides ``test``) and what it brings."""

NOTES: dict[str, str] = {"cupy": " (a CuPy build for your CUDA, e.g. cupy-cuda12x)"}
"""What an install line adds for an extra that needs a choice of the user's."""


def install(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'xavinit[torch]'``.

    Raises:
        KeyError: ``extra`` is not one of :data:`EXTRAS`.
    """
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return f"pip install 'xavinit[{extra}]'{NOTES.get(extra, '')}"
