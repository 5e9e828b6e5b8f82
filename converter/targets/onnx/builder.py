"""A small ONNX graph writer whose weights go straight to an external data file as they are added.

The graph (nodes, names, shapes) stays in memory; every initializer over `INLINE_BYTES` is
appended to `<model>.data` the moment it is added and referenced by offset, so building a model
needs memory for the tensor being written, not for the model. This is how onnxruntime-genai's
builder stays small, and it lifts protobuf's 2 GB limit on the `.onnx` file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

# Initializers up to this size stay in the .onnx file (shapes, small constants), as onnx's own
# `size_threshold` default does.
INLINE_BYTES = 1024
# Offsets in the data file are aligned so runtimes can memory-map each tensor (onnx's default page).
ALIGNMENT = 4096


class GraphBuilder:
    """Nodes in topological order by construction (each op's inputs exist before it is added)."""

    def __init__(self, data_path: Path, opset: int, name: str = "decoder") -> None:
        from onnx import helper

        self.data_path = data_path
        self.opset = opset
        self.name = name
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._helper = helper
        self._data = data_path.open("wb")
        self._offset = 0
        self._counter = 0
        self._names: set[str] = set()
        self._constants: dict[tuple, str] = {}

    # -- weights -----------------------------------------------------------------------------
    def initializer(self, name: str, array: np.ndarray) -> str:
        """Add a weight; large ones are written to the data file now. Returns its name."""
        from onnx import numpy_helper

        if name in self._names:
            raise ValueError(f"duplicate graph name {name}")
        self._names.add(name)
        array = np.ascontiguousarray(array)
        if array.nbytes <= INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        padding = (-self._offset) % ALIGNMENT
        self._data.write(b"\0" * padding)
        self._offset += padding
        self._data.write(array.tobytes())
        self.initializers.append(self._external(name, array.shape, array.dtype, self._offset, array.nbytes))
        self._offset += array.nbytes
        return name

    def _external(self, name: str, shape: tuple[int, ...], dtype: np.dtype, offset: int, length: int) -> Any:
        from onnx import TensorProto

        tensor = TensorProto()
        tensor.name = name
        tensor.dims.extend(shape)
        tensor.data_type = self._helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.data_path.name), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor

    def initializer_chunks(self, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks: Iterable[np.ndarray]) -> str:
        """A large weight written block by block (row blocks of a C-ordered array, in order)."""
        if name in self._names:
            raise ValueError(f"duplicate graph name {name}")
        self._names.add(name)
        padding = (-self._offset) % ALIGNMENT
        self._data.write(b"\0" * padding)
        self._offset += padding
        start = self._offset
        for chunk in chunks:
            data = np.ascontiguousarray(chunk, dtype=dtype).tobytes()
            self._data.write(data)
            self._offset += len(data)
        expected = math.prod(shape) * dtype.itemsize
        if self._offset - start != expected:
            raise ValueError(f"{name}: wrote {self._offset - start} bytes, its shape needs {expected}")
        self.initializers.append(self._external(name, shape, dtype, start, expected))
        return name

    def constant(self, value: Any, dtype: Any = np.int64) -> str:
        """A small constant (shapes, axes, scalars), shared when the same value is asked twice."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            self._constants[key] = self.initializer(self._fresh("const"), array)
        return self._constants[key]

    # -- nodes -------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, *, name: str | None = None,
           domain: str = "", **attributes: Any) -> Any:
        """Add one node; returns its output name (or the list of names when it has several)."""
        node_name = name or self._fresh(op_type)
        if isinstance(outputs, int):
            outputs = [f"{node_name}/out{i}" if outputs > 1 else f"{node_name}/out" for i in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, inputs, outputs, name=node_name, domain=domain or None,
                                                 **attributes))
        return outputs[0] if len(outputs) == 1 else outputs

    def _fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"/{prefix}_{self._counter}"

    # -- interface and file ------------------------------------------------------------------
    def add_input(self, name: str, elem_type: int, shape: list[Any]) -> str:
        self.inputs.append(self._helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, name: str, elem_type: int, shape: list[Any]) -> None:
        self.outputs.append(self._helper.make_tensor_value_info(name, elem_type, shape))

    @property
    def data_bytes(self) -> int:
        return self._offset

    def save(self, path: Path, opsets: dict[str, int]) -> None:
        """Write the graph to `path` (its weights already sit in the data file)."""
        import onnx

        self._data.close()
        graph = self._helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = self._helper.make_model(graph, opset_imports=[self._helper.make_opsetid(d, v) for d, v in opsets.items()],
                                        producer_name="slmkit")
        model.ir_version = 10
        onnx.save_model(model, path)

    def close(self) -> None:
        if not self._data.closed:
            self._data.close()
