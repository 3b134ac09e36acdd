"""Keras files with ``h5py``: ``.keras`` (a zip of ``config.json`` and ``model.weights.h5``)
and legacy ``.h5`` (``model.save('x.h5')`` or ``save_weights``).

Keras stores kernels ``in-out``: Dense ``(in, out)``, Conv ``(*kernel, in/groups, out)``,
DepthwiseConv ``(*kernel, in, multiplier)``. The layer class and its ``groups`` come from the
model's config (``config.json``, or the ``model_config`` attribute of a legacy ``.h5``).
Datasets are read one at a time from the open HDF5 file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.fileio import check_zip_sizes
from xavinit.formats.base import TensorInfo, TensorSource, require

VARIABLES = {
    "Dense": ("kernel", "bias"),
    "EinsumDense": ("kernel", "bias"),
    "Conv1D": ("kernel", "bias"),
    "Conv2D": ("kernel", "bias"),
    "Conv3D": ("kernel", "bias"),
    "Conv1DTranspose": ("kernel", "bias"),
    "Conv2DTranspose": ("kernel", "bias"),
    "Conv3DTranspose": ("kernel", "bias"),
    "DepthwiseConv1D": ("kernel", "bias"),
    "DepthwiseConv2D": ("kernel", "bias"),
    "Embedding": ("embeddings",),
    "LayerNormalization": ("gamma", "beta"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "GroupNormalization": ("gamma", "beta"),
    "RMSNormalization": ("scale",),
}
"""Names of a ``.keras`` layer's variables, which the weights file numbers 0, 1, ..."""

NORMS = ("LayerNormalization", "BatchNormalization", "GroupNormalization", "RMSNormalization")


def _layer_configs(config: Any) -> dict[str, dict[str, Any]]:
    """Every layer of a (possibly nested) model config by name: ``{class_name, config}``."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            inner = node.get("config")
            if isinstance(node.get("class_name"), str) and isinstance(inner, dict):
                name = inner.get("name")
                if isinstance(name, str):
                    found.setdefault(name, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: ``DepthwiseConv2D`` -> ``depthwise_conv2d``."""
    intermediate = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def _saved_keys(config: Any) -> dict[str, dict[str, Any]]:
    """The keys a ``.keras`` weights file stores each layer under, mapped to its config.

    Keras 3 names a model's layers in the weights file by class, in order: the k-th
    ``Conv2D`` is ``conv2d`` for k = 0 and ``conv2d_k`` after, whatever the layer's own name.
    """
    keys: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        inner = node.get("config") if isinstance(node, dict) else None
        layers = inner.get("layers") if isinstance(inner, dict) else None
        if not isinstance(layers, list):
            return
        seen: dict[str, int] = {}
        for layer in layers:
            if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
                continue
            base = snake_case(layer["class_name"])
            count = seen.get(base, 0)
            seen[base] = count + 1
            keys.setdefault(base if count == 0 else f"{base}_{count}", layer)
            walk(layer)

    walk(config)
    return keys


def _hints(layer: dict[str, Any] | None, variable: str, ndim: int) -> dict[str, Any]:
    """Role and groups of one variable from its layer's class and config."""
    if layer is None:
        return {}
    kind = str(layer.get("class_name"))
    config = layer.get("config") or {}
    if kind in NORMS:
        return {"role": "norm"}
    if variable == "bias" or (ndim == 1 and kind in VARIABLES):
        return {"role": "bias"}
    if kind == "Embedding":
        return {"role": "embedding"}
    if kind.startswith("DepthwiseConv"):
        return {"role": "conv", "depthwise": True}
    if kind.startswith("Conv"):
        groups = config.get("groups", 1)
        return {"role": "conv", "groups": groups if isinstance(groups, int) and groups > 0 else 1}
    if kind == "MultiHeadAttention" or "attention" in kind.lower():
        return {"role": "attention"}
    if kind in ("Dense", "EinsumDense"):
        return {"role": "dense"}
    return {}


class KerasSource(TensorSource):
    """The variables of a ``.keras`` or Keras ``.h5`` file, layer by layer."""

    format = "keras"

    def __init__(self, path: str, zipped: bool) -> None:
        super().__init__(path)
        h5py = require("h5py", "Keras files")
        self._folder: str | None = None
        config: Any = None
        weights_path = path
        try:
            if zipped:
                weights_path, config = self._unzip(path)
            self._file = h5py.File(weights_path, "r")
        except XavinitError:
            self.close()
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            self.close()
            raise XavinitError(
                f"{path}: not a readable Keras file ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
            ) from None
        try:
            self.tensors = self._list(config)
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.close()
            raise XavinitError(
                f"{path}: not a readable Keras file ({type(error).__name__})"
            ) from None

    def _unzip(self, path: str) -> tuple[str, Any]:
        """Extract ``model.weights.h5`` (h5py needs a real file) and parse ``config.json``."""
        with zipfile.ZipFile(path) as archive:
            check_zip_sizes(archive, "weights", path)
            try:
                config = json.loads(archive.read("config.json").decode("utf-8"))
            except (KeyError, UnicodeDecodeError, json.JSONDecodeError):
                raise XavinitError(
                    f"{path}: a .keras archive without a readable config.json"
                ) from None
            self._folder = tempfile.mkdtemp(prefix="xavinit-keras-")
            target = os.path.join(self._folder, "model.weights.h5")
            with archive.open("model.weights.h5") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        return target, config

    def _list(self, config: Any) -> list[TensorInfo]:
        h5 = self._file
        if config is None and "model_config" in h5.attrs:
            raw = h5.attrs["model_config"]
            config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        layers = _layer_configs(config)
        tensors: list[TensorInfo] = []
        if "layers" in h5 and config is not None:  # Keras 3: layers/<key>/vars/<i>
            self._walk_v3(h5["layers"], "", {**layers, **_saved_keys(config)}, tensors)
            if tensors:
                return tensors
        root = h5.get("model_weights", h5)
        visited: list[tuple[str, Any]] = []
        root.visititems(lambda name, obj: visited.append((name, obj)))
        datasets = [(name, obj) for name, obj in visited if hasattr(obj, "shape")]
        short = [f"{n.split('/')[0]}/{n.split('/')[-1].split(':')[0]}" for n, _ in datasets]
        unique = len(set(short)) == len(short)
        for (name, obj), brief in zip(datasets, short, strict=True):
            parts = name.split("/")
            layer = layers.get(parts[0])
            variable = parts[-1].split(":")[0]
            hints = _hints(layer, variable, len(obj.shape))
            tensors.append(self._info(brief if unique else name.replace(":0", ""), obj, hints))
        return tensors

    def _walk_v3(
        self, group: Any, prefix: str, layers: dict[str, Any], out: list[TensorInfo]
    ) -> None:
        for name in group:
            node = group[name]
            if "vars" in node:
                layer = layers.get(name)
                names = VARIABLES.get(str(layer.get("class_name")) if layer else "", ())
                config = (layer or {}).get("config") or {}
                label = config.get("name") if isinstance(config.get("name"), str) else name
                variables = node["vars"]
                for index in sorted(variables, key=lambda k: int(k) if k.isdigit() else 0):
                    dataset = variables[index]
                    position = int(index) if index.isdigit() else -1
                    variable = names[position] if 0 <= position < len(names) else f"vars/{index}"
                    hints = _hints(layer, variable, len(dataset.shape))
                    out.append(self._info(f"{prefix}{label}/{variable}", dataset, hints))
            if "layers" in node:
                self._walk_v3(node["layers"], f"{prefix}{name}/", layers, out)

    def _info(self, name: str, dataset: Any, hints: dict[str, Any]) -> TensorInfo:
        dtype = dataset.dtype
        kind = "str" if dtype.kind in "OSU" else dtype.name
        groups = hints.get("groups")
        shape = tuple(int(n) for n in dataset.shape)
        owner = None
        if hints.get("role") == "bias":
            owner = name.rsplit("/", 1)[0] + "/kernel"
        return TensorInfo(
            name,
            shape,
            kind,
            layout="in-out",
            role=hints.get("role"),
            groups=groups,
            owner=owner,
            key=dataset.name,
            depthwise=bool(hints.get("depthwise")),
        )

    def load(self, info: TensorInfo) -> np.ndarray:
        try:
            return np.asarray(self._file[info.key][()])
        except (OSError, ValueError, KeyError) as error:
            raise XavinitError(
                f"{self.path}: tensor {info.name!r} is unreadable ({type(error).__name__}); "
                "the file is truncated or corrupt"
            ) from None

    def close(self) -> None:
        handle = getattr(self, "_file", None)
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
