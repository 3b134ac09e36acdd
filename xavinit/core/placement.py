"""Where a backend may put its arrays: the placement rules, one owner (the standard library
only, so that the command line's options and ``--help`` need no numpy).

:func:`xavinit.core.backends.get_backend` applies them and then asks the library whether the
device exists; the config models apply them when an option is validated.
"""

from __future__ import annotations

import re
from typing import Any

from xavinit.serialize import quote

BACKENDS: tuple[str, ...] = ("numpy", "torch", "cupy")
"""Backend names accepted by ``--backend``."""


def parse_device(value: Any) -> str:
    """The device a ``--device`` value names, normalised: ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: for anything else (the caller names the option).
    """
    text = value.strip().lower() if isinstance(value, str) else value
    if isinstance(text, str) and re.fullmatch(r"cpu|cuda(:\d+)?", text):
        return text
    raise ValueError(f"must be cpu, cuda or cuda:N, got {quote(value)}")


def check_placement(backend: str, device: str) -> None:
    """The placement rules, one owner: numpy computes on the CPU only, CuPy on CUDA devices
    only, torch on either (whether the device exists is asked of the library, in
    :func:`get_backend`). ``device`` is already parsed (:func:`parse_device`).

    Raises:
        ValueError: naming the rule broken and what to use (the caller names the option).
    """
    if backend == "numpy" and device != "cpu":
        raise ValueError(f"numpy runs on the CPU only, got {device}; use --backend torch or cupy")
    if backend == "cupy" and device == "cpu":
        raise ValueError("cupy runs on CUDA devices only; give --device cuda")
