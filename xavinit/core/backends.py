"""Array backends: where the numeric core's arrays live (numpy, PyTorch or CuPy).

The core is one implementation written against two namespaces that every backend provides:

- ``xp``, the Python array API standard namespace of ``array-api-compat``, for creation,
  reductions, indexing and casts (``xp.max(a, axis=1, keepdims=True)``, ``xp.astype``);
- ``ops``, numpy's signature for the elementwise kernels and matrix products that write into a
  preallocated ``out=`` (the array API has no ``out=``; the hot path allocates nothing per update,
  PERF.md). numpy and CuPy are that namespace themselves; PyTorch gets :class:`TorchOps`, a thin
  adapter onto torch's own ``out=`` functions.

On numpy both are numpy, so the default path is what it was before backends existed. Randomness
never moves: weights and data come from numpy's seeded generators and are copied to the device
once per block (:meth:`Backend.asarray`), so a seed gives the same run on every backend up to
floating-point reassociation.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.core.placement import BACKENDS, check_placement, parse_device
from xavinit.errors import XavinitError
from xavinit.extras import install

__all__ = [
    "Backend",
    "TorchOps",
    "get_backend",
    "ops_for",
    "to_numpy",
    "usable_backends",
]

Array = Any
"""A numpy, torch or cupy array."""


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | bool | np.generic)


class TorchOps:
    """numpy's ``out=`` signatures on torch tensors: what the kernels of
    :mod:`xavinit.core.activations`, :mod:`xavinit.core.network` and :mod:`xavinit.core.sgd` call.

    Each method takes tensors or Python scalars as numpy's function does and writes into
    ``out`` when given (``out`` may alias an input, as in numpy).
    """

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        for name in ("tanh", "exp", "expm1", "log1p", "abs", "negative"):
            setattr(self, name, self._unary(getattr(torch, name)))

    @staticmethod
    def _unary(function: Callable[..., Any]) -> Callable[..., Any]:
        def apply(a: Any, out: Any = None) -> Any:
            return function(a) if out is None else function(a, out=out)

        return apply

    def _binary(self, name: str, a: Any, b: Any, out: Any) -> Any:
        function = getattr(self.torch, name)
        if _scalar(a):  # torch's binary functions take a tensor first
            if name in ("mul", "add"):
                a, b = b, a
            elif name == "sub":  # a - b = -(b - a)
                result = self.torch.neg(b) if out is None else self.torch.neg(b, out=out)
                return result.add_(a)
            else:
                a = self.torch.as_tensor(a, dtype=b.dtype, device=b.device)
        return function(a, b) if out is None else function(a, b, out=out)

    def multiply(self, a: Any, b: Any, out: Any = None) -> Any:
        return self._binary("mul", a, b, out)

    def add(self, a: Any, b: Any, out: Any = None) -> Any:
        return self._binary("add", a, b, out)

    def subtract(self, a: Any, b: Any, out: Any = None) -> Any:
        return self._binary("sub", a, b, out)

    def divide(self, a: Any, b: Any, out: Any = None) -> Any:
        return self._binary("div", a, b, out)

    def matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        return self.torch.matmul(a, b) if out is None else self.torch.matmul(a, b, out=out)

    def maximum(self, a: Any, b: Any, out: Any = None) -> Any:
        if _scalar(b):
            return (
                self.torch.clamp(a, min=b) if out is None else self.torch.clamp(a, min=b, out=out)
            )
        return self.torch.maximum(a, b) if out is None else self.torch.maximum(a, b, out=out)

    def minimum(self, a: Any, b: Any, out: Any = None) -> Any:
        if _scalar(b):
            return (
                self.torch.clamp(a, max=b) if out is None else self.torch.clamp(a, max=b, out=out)
            )
        return self.torch.minimum(a, b) if out is None else self.torch.minimum(a, b, out=out)

    def clip(self, a: Any, lo: float, hi: float, out: Any = None) -> Any:
        return self.torch.clamp(a, lo, hi) if out is None else self.torch.clamp(a, lo, hi, out=out)

    def greater(self, a: Any, b: Any, out: Any = None) -> Any:
        mask = a > b
        if out is None:
            return mask
        return out.copy_(mask)

    def copyto(self, dst: Any, src: Any, where: Any = None) -> None:
        if where is None:
            if _scalar(src):
                dst.fill_(src)
            else:
                dst.copy_(src)
        elif _scalar(src):
            dst.masked_fill_(where, src)
        else:
            self.torch.where(where, src, dst, out=dst)

    def einsum(self, subscripts: str, *operands: Any) -> Any:
        return self.torch.einsum(subscripts, *operands)

    def erf(self, a: Any, out: Any = None) -> Any:
        return self.torch.special.erf(a) if out is None else self.torch.special.erf(a, out=out)

    def empty_like(self, a: Any) -> Any:
        return self.torch.empty_like(a)

    def ones_like(self, a: Any) -> Any:
        return self.torch.ones_like(a)

    def zeros_like(self, a: Any, dtype: Any = None) -> Any:
        if dtype is bool:
            dtype = self.torch.bool
        return self.torch.zeros_like(a, dtype=dtype)


@functools.cache
def _torch_ops() -> TorchOps:
    return TorchOps(importlib.import_module("torch"))


def ops_for(a: Array) -> Any:
    """The ``out=`` namespace of ``a``'s library: numpy, cupy, or :class:`TorchOps`."""
    if isinstance(a, np.ndarray | np.generic):
        return np
    module = type(a).__module__.split(".")[0]
    if module == "torch":
        return _torch_ops()
    if module == "cupy":
        return importlib.import_module("cupy")
    return np


def to_numpy(a: Array) -> np.ndarray:
    """A host numpy copy (or view, for numpy) of any backend's array."""
    if isinstance(a, np.ndarray):
        return a
    module = type(a).__module__.split(".")[0]
    if module == "torch":
        return a.detach().cpu().numpy()
    if module == "cupy":
        return a.get()
    return np.asarray(a)


@dataclass(frozen=True)
class Backend:
    """One backend on one device.

    Attributes:
        name: ``"numpy"``, ``"torch"`` or ``"cupy"``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        xp: The array API namespace (``array_api_compat``) of the backend.
        ops: The ``out=`` namespace (numpy, cupy or :class:`TorchOps`).
        native: The library module itself (numpy, torch or cupy).
    """

    name: str
    device: str
    xp: Any
    ops: Any
    native: Any

    @property
    def is_numpy(self) -> bool:
        """True for the default backend, whose arrays need no copies."""
        return self.name == "numpy"

    @property
    def on_gpu(self) -> bool:
        """True when the arrays live on a CUDA device."""
        return self.device.startswith("cuda")

    def asarray(self, a: np.ndarray) -> Array:
        """``a`` on this backend's device (no copy for numpy). torch's copies to a GPU are
        issued asynchronously from pinned memory; CuPy's wait for the copy."""
        if self.is_numpy:
            return a
        if self.name == "torch":
            if not a.flags.writeable:  # torch warns on, and may write into, read-only memory
                a = a.copy()
            tensor = self.native.from_numpy(np.ascontiguousarray(a))
            if self.on_gpu:
                return tensor.pin_memory().to(self.device, non_blocking=True)
            return tensor
        with self.native.cuda.Device(_cuda_index(self.device)):
            return self.native.asarray(a)

    def to_numpy(self, a: Array) -> np.ndarray:
        """A host copy of ``a`` (``a`` itself for numpy)."""
        return to_numpy(a)

    def to_floats(self, values: list[Array]) -> list[float]:
        """Python floats of 0-d arrays, read back from the device in one copy."""
        if self.is_numpy or not values:
            return [float(v) for v in values]
        return [float(v) for v in self.to_numpy(self.xp.stack(values)).tolist()]

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timing); nothing on a CPU."""
        if self.on_gpu and self.name == "torch":
            self.native.cuda.synchronize(self.device)
        elif self.on_gpu:
            self.native.cuda.Device(_cuda_index(self.device)).synchronize()

    def limit_threads(self, count: int) -> None:
        """Hold the backend's own CPU thread pool to ``count`` threads (torch has its own;
        numpy's BLAS is held by threadpoolctl)."""
        if self.name == "torch" and not self.on_gpu:
            self.native.set_num_threads(count)

    def activate(self, threads: int) -> None:
        """Make this backend's device the current one (CuPy allocates new arrays there, whatever
        ``device=`` says) and hold a CPU thread pool to ``threads``."""
        self.limit_threads(threads)
        if self.name == "cupy":
            self.native.cuda.Device(_cuda_index(self.device)).use()
        elif self.on_gpu:
            self.native.cuda.set_device(_cuda_index(self.device))


def _cuda_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise XavinitError(
            f"--backend {name}: {name} is not installed; install it with {install(name)}"
        ) from None


def _namespace(name: str) -> Any:
    """array-api-compat's standard namespace for the library ``name``."""
    return importlib.import_module(f"array_api_compat.{name}")


@functools.cache
def get_backend(name: str = "numpy", device: str = "cpu") -> Backend:
    """The backend ``name`` on ``device``, checked: the package is installed and the device
    exists (else :class:`XavinitError` naming what to install or use).

    Example:
        >>> get_backend().ops is np
        True
    """
    if name not in BACKENDS:
        raise XavinitError(f"--backend: unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    try:
        device = parse_device(device)
        check_placement(name, device)
    except ValueError as error:
        raise XavinitError(f"--device: {error}") from None
    if name == "numpy":
        return Backend("numpy", "cpu", _namespace("numpy"), np, np)
    native = _import(name)
    if name == "torch":
        if device != "cpu":
            if not native.cuda.is_available():
                raise XavinitError(
                    f"--device {device}: torch sees no CUDA device "
                    f"(torch {native.__version__}); use --device cpu"
                )
            if _cuda_index(device) >= native.cuda.device_count():
                raise XavinitError(
                    f"--device {device}: torch sees {native.cuda.device_count()} CUDA device(s)"
                )
        return Backend("torch", device, _namespace("torch"), _torch_ops(), native)
    try:
        count = native.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise XavinitError(f"--device {device}: cupy sees no CUDA device ({error})") from None
    if _cuda_index(device) >= count:
        raise XavinitError(f"--device {device}: cupy sees {count} CUDA device(s)")
    return Backend("cupy", device, _namespace("cupy"), native, native)


def usable_backends() -> list[tuple[str, str]]:
    """The backends other than numpy that can run here, each with the device it reaches:
    ``("torch", "cpu")`` when torch is installed, ``("torch", "cuda")`` and ``("cupy", "cuda")``
    when they see a CUDA device. Imports torch and cupy when they are installed."""
    import importlib.util

    places = []
    if importlib.util.find_spec("torch") is not None:
        places.append(("torch", "cpu"))
        if importlib.import_module("torch").cuda.is_available():
            places.append(("torch", "cuda"))
    if importlib.util.find_spec("cupy") is not None:
        try:
            if importlib.import_module("cupy").cuda.runtime.getDeviceCount() > 0:
                places.append(("cupy", "cuda"))
        except Exception:  # a CUDA driver missing or broken: no device
            pass
    return places
