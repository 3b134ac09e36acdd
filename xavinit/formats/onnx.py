"""ONNX models with the ``onnx`` package: every initializer, its role and layout from the node
that uses it.

``Gemm`` B is ``(N, K)`` with ``transB=1`` (``out-in``, as PyTorch exports Linear) and ``(K, N)``
otherwise; ``MatMul`` B is ``(K, N)`` (``in-out``); ``Conv`` W is ``(M, C/group, *kernel)`` with
its ``group``; ``ConvTranspose`` W is ``(C, M/group, *kernel)``, read like PyTorch (fan_in from
the second dimension); ``Gather`` data is an embedding; the scales and biases of
``LayerNormalization``/``BatchNormalization`` are norms; a Gemm's C, a Conv's B and a 1-D
initializer added to a MatMul's output are biases of that weight. External data is read from
files beside the model, refused when its location leaves that folder or runs past its file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xavinit.errors import XavinitError
from xavinit.formats.base import TensorInfo, TensorSource, require


def _attribute(node: Any, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(attribute.i)
    return default


def _roles(graph: Any, names: set[str]) -> dict[str, dict[str, Any]]:
    """Role hints of initializers from the nodes that use them (the first use decides)."""
    hints: dict[str, dict[str, Any]] = {}
    produced_by_matmul: dict[str, str] = {}

    def hint(name: str, **values: Any) -> None:
        if name in names and name not in hints:
            hints[name] = values

    for node in graph.node:
        inputs = list(node.input)
        op = node.op_type
        if op == "Gemm" and len(inputs) >= 2:
            layout = "out-in" if _attribute(node, "transB", 0) else "in-out"
            hint(inputs[1], role="dense", layout=layout)
            if len(inputs) >= 3:
                hint(inputs[2], role="bias", owner=inputs[1])
        elif op == "MatMul" and len(inputs) == 2:
            hint(inputs[1], role="dense", layout="in-out")
            if inputs[1] in names:
                for output in node.output:
                    produced_by_matmul[output] = inputs[1]
        elif op in ("Conv", "ConvTranspose") and len(inputs) >= 2:
            hint(inputs[1], role="conv", layout="out-in", groups=_attribute(node, "group", 1))
            if len(inputs) >= 3:
                hint(inputs[2], role="bias", owner=inputs[1])
        elif op == "Gather" and inputs:
            hint(inputs[0], role="embedding", layout="out-in")
        elif op in ("LayerNormalization", "BatchNormalization", "InstanceNormalization"):
            for name in inputs[1:]:
                hint(name, role="norm")
        elif op == "Add" and len(inputs) == 2:
            for mine, other in ((inputs[0], inputs[1]), (inputs[1], inputs[0])):
                if other in produced_by_matmul:
                    hint(mine, role="bias", owner=produced_by_matmul[other])
    return hints


class OnnxSource(TensorSource):
    """The initializers of an ONNX model, in graph order."""

    format = "onnx"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        onnx = require("onnx", "ONNX models")
        try:
            model = onnx.load(path, load_external_data=False)
        except Exception as error:  # protobuf's DecodeError and friends: any failure is corrupt
            detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise XavinitError(f"{path}: not a readable ONNX model ({detail})") from None
        graph = model.graph
        initializers = list(graph.initializer)
        if not initializers and not graph.node:
            raise XavinitError(f"{path}: not a readable ONNX model (no graph)")
        self._folder = os.path.dirname(os.path.abspath(path))
        self._by_name = {t.name: t for t in initializers}
        hints = _roles(graph, set(self._by_name))
        helper = onnx.helper
        self.tensors = []
        for tensor in initializers:
            try:
                dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
                kind = "str" if dtype.kind in "OSU" else dtype.name
            except (KeyError, TypeError, ValueError):
                kind = f"ONNX type {tensor.data_type}"
            if tensor.data_type == onnx.TensorProto.BFLOAT16:
                kind = "bfloat16"
            hint = hints.get(tensor.name, {})
            self.tensors.append(
                TensorInfo(
                    tensor.name,
                    tuple(int(n) for n in tensor.dims),
                    kind,
                    layout=hint.get("layout"),
                    role=hint.get("role"),
                    groups=hint.get("groups"),
                    owner=hint.get("owner"),
                    key=tensor.name,
                )
            )

    def _check_external(self, info: TensorInfo, tensor: Any) -> None:
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        target = os.path.realpath(os.path.join(self._folder, location))
        if not location or os.path.commonpath([target, os.path.realpath(self._folder)]) != (
            os.path.realpath(self._folder)
        ):
            raise XavinitError(
                f"{self.path}: tensor {info.name!r}: external data location {location!r} "
                "leaves the model's folder; refused"
            )
        if not os.path.isfile(target):
            raise XavinitError(
                f"{self.path}: tensor {info.name!r}: external data file {location!r} is missing"
            )
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError:
            raise XavinitError(
                f"{self.path}: tensor {info.name!r}: bad external data offsets"
            ) from None
        size = os.path.getsize(target)
        if offset < 0 or (length is not None and (length < 0 or offset + length > size)):
            raise XavinitError(
                f"{self.path}: tensor {info.name!r}: external data runs past the end of "
                f"{location!r} ({size} bytes)"
            )

    def load(self, info: TensorInfo) -> np.ndarray:
        onnx = require("onnx", "ONNX models")
        tensor = self._by_name[info.key]
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            self._check_external(info, tensor)
        try:
            array = onnx.numpy_helper.to_array(tensor, base_dir=self._folder)
        except Exception as error:  # truncated raw data, bad external data: corrupt input
            detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise XavinitError(
                f"{self.path}: tensor {info.name!r} is unreadable ({detail})"
            ) from None
        if info.dtype == "bfloat16":
            array = array.astype(np.float32)
        if tuple(array.shape) != info.shape:
            raise XavinitError(
                f"{self.path}: tensor {info.name!r} holds the wrong number of values"
            )
        return array
