"""Graph rewrites on the exported decoder that onnxruntime's quantizers do not do for us.

The exporter writes a tied output projection as `MatMul(x, Transpose(E))` over the embedding
table `E`. Left alone, ORT constant-folds the Transpose at load (a second copy of the largest
tensor in RAM) and the weight-only quantizer skips the MatMul (its weight is not an initializer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmkit.converter.errors import SlmkitError

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class TiedHead:
    """The embedding lookup and output projection that read the same table."""

    table: str  # initializer [vocab, hidden]
    gather: str  # Gather node name
    matmul: str  # MatMul node name producing `logits`
    transpose: str  # Transpose node feeding the MatMul


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in graph.node for output in node.output}


def initializer(graph: onnx.GraphProto, name: str) -> onnx.TensorProto:
    for tensor in graph.initializer:
        if tensor.name == name:
            return tensor
    raise SlmkitError(f"The exported graph has no initializer '{name}'.")


def name_matmul_weights(model: onnx.ModelProto, parameters: dict[str, Any]) -> int:
    """Rename the exporter's anonymous MatMul weights (`val_161`) after the PyTorch parameters they hold.

    A Linear's weight W [out, in] is exported as a constant B = W.T; matching by value makes names
    like `model.layers.3.mlp.down_proj.weight.T` that quantization policies and humans can read.
    Returns how many were renamed.
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    candidates: dict[tuple, list[tuple[str, Any]]] = {}
    for name, weight in parameters.items():
        if weight.ndim == 2:
            candidates.setdefault((weight.shape[1], weight.shape[0], weight[:, 0].tobytes()), []).append((name, weight))
    matmul_weights = {n.input[1] for n in graph.node if n.op_type == "MatMul"}
    renames: dict[str, str] = {}
    for tensor in graph.initializer:
        if tensor.name not in matmul_weights or len(tensor.dims) != 2:
            continue
        value = numpy_helper.to_array(tensor)
        for name, weight in candidates.get((*value.shape, value[0].tobytes()), []):
            if np.array_equal(value, weight.T):
                renames[tensor.name] = f"{name}.T"
                break
    for tensor in graph.initializer:
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
    return len(renames)


def head_node(model: onnx.ModelProto) -> onnx.NodeProto:
    """The MatMul producing `logits` (the output projection)."""
    node = _producers(model.graph).get("logits")
    if node is None or node.op_type != "MatMul" or not node.name:
        raise SlmkitError("The exported graph's logits do not come from a named MatMul; cannot quantize the head.")
    return node


def find_tied_head(model: onnx.ModelProto) -> TiedHead | None:
    graph = model.graph
    producers = _producers(graph)
    head = producers.get("logits")
    if head is None or head.op_type != "MatMul":
        return None
    transpose = producers.get(head.input[1])
    if transpose is None or transpose.op_type != "Transpose":
        return None
    table = transpose.input[0]
    gather = next((n for n in graph.node if n.op_type == "Gather" and n.input[0] == table), None)
    if gather is None:
        return None
    return TiedHead(table=table, gather=gather.name, matmul=head.name, transpose=transpose.name)


def _node(graph: onnx.GraphProto, name: str) -> onnx.NodeProto:
    return next(n for n in graph.node if n.name == name)


def _replace_node(graph: onnx.GraphProto, old: onnx.NodeProto, new_nodes: list[onnx.NodeProto]) -> None:
    index = list(graph.node).index(old)
    graph.node.remove(old)
    for offset, node in enumerate(new_nodes):
        graph.node.insert(index + offset, node)


def head_as_gemm(model: onnx.ModelProto, tied: TiedHead) -> None:
    """Float models: logits = Gemm(x, E, transB=1) on a 2D view; E is stored and held once."""
    from onnx import helper, numpy_helper

    graph = model.graph
    matmul, transpose = _node(graph, tied.matmul), _node(graph, tied.transpose)
    hidden = initializer(graph, tied.table).dims[1]
    x, prefix = matmul.input[0], tied.matmul
    graph.initializer.append(numpy_helper.from_array(_int64([-1, hidden]), f"{prefix}/shape_2d"))
    graph.initializer.append(numpy_helper.from_array(_int64([-1]), f"{prefix}/minus_one"))
    _replace_node(graph, matmul, [
        helper.make_node("Reshape", [x, f"{prefix}/shape_2d"], [f"{prefix}/flat"], name=f"{prefix}/Reshape2D"),
        helper.make_node("Gemm", [f"{prefix}/flat", tied.table], [f"{prefix}/projected"], name=f"{prefix}/Gemm",
                         transB=1),
        helper.make_node("Shape", [x], [f"{prefix}/x_shape"], name=f"{prefix}/Shape", end=-1),
        helper.make_node("Concat", [f"{prefix}/x_shape", f"{prefix}/minus_one"], [f"{prefix}/out_shape"],
                         name=f"{prefix}/OutShape", axis=0),
        helper.make_node("Reshape", [f"{prefix}/projected", f"{prefix}/out_shape"], [matmul.output[0]],
                         name=f"{prefix}/Reshape3D"),
    ])
    graph.node.remove(transpose)


def untie_for_quantizer(model: onnx.ModelProto, tied: TiedHead) -> str:
    """Give the head MatMul a constant [hidden, vocab] weight the quantizer can read; returns its name."""
    from onnx import numpy_helper

    graph = model.graph
    table = numpy_helper.to_array(initializer(graph, tied.table))
    name = f"{tied.table}.T"
    graph.initializer.append(numpy_helper.from_array(table.T.copy(), name))
    matmul, transpose = _node(graph, tied.matmul), _node(graph, tied.transpose)
    matmul.input[1] = name
    graph.node.remove(transpose)
    return name


def retie_quantized(model: onnx.ModelProto, tied: TiedHead, bits: int, block_size: int) -> None:
    """The embedding lookup reads the output projection's MatMulNBits weight: the table is stored once."""
    graph = model.graph
    head = next(n for n in graph.node if n.op_type == "MatMulNBits" and n.output[0] == "logits")
    _gather_packed(graph, _node(graph, tied.gather), head.input[1], head.input[2], bits, block_size)
    graph.initializer.remove(initializer(graph, tied.table))


def quantize_embedding(model: onnx.ModelProto, bits: int, block_size: int) -> None:
    """An untied embedding table packed the MatMulNBits way (uint8), read by GatherBlockQuantized.

    onnxruntime's own Gather quantizer writes INT4 tensors, which the .ort format cannot hold.
    """
    from onnx import numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 DefaultWeightOnlyQuantizer)

    graph = model.graph
    gather = next(n for n in graph.node if n.op_type == "Gather" and "input_ids" in n.input)
    table = initializer(graph, gather.input[0])
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=bits)
    packed, scales, _ = DefaultWeightOnlyQuantizer(config).qbits_block_quant(numpy_helper.to_array(table).T.copy())
    graph.initializer.append(numpy_helper.from_array(packed, f"{table.name}_Q{bits}"))
    graph.initializer.append(numpy_helper.from_array(scales, f"{table.name}_scales"))
    _gather_packed(graph, gather, f"{table.name}_Q{bits}", f"{table.name}_scales", bits, block_size)
    graph.initializer.remove(table)


def _gather_packed(graph: onnx.GraphProto, gather: onnx.NodeProto, packed: str, scales: str, bits: int,
                   block_size: int) -> None:
    """Replace `gather` by GatherBlockQuantized over a [rows, blocks, bytes] MatMulNBits-packed table.

    The table is gathered in its 3D form (quantized along the last axis) and the rows flattened
    after: reshaping the table itself would be constant-folded into a second copy (seen in the
    .ort file). Only the small scales tensor is reshaped. Uint8 data uses MatMulNBits' default
    zero point, so symmetric packing means no zero-point tensor.
    """
    from onnx import helper, numpy_helper

    rows, blocks, _ = initializer(graph, packed).dims
    prefix = gather.name
    graph.initializer.append(numpy_helper.from_array(_int64([rows, blocks, 1]), f"{prefix}/scales_shape"))
    graph.initializer.append(numpy_helper.from_array(_int64([0, 0, -1]), f"{prefix}/rows_shape"))
    _replace_node(graph, gather, [
        helper.make_node("Reshape", [scales, f"{prefix}/scales_shape"], [f"{prefix}/scales"],
                         name=f"{prefix}/ReshapeScales"),
        helper.make_node("GatherBlockQuantized", [packed, gather.input[1], f"{prefix}/scales"],
                         [f"{prefix}/blocks"], name=f"{prefix}/GatherBlockQuantized", domain="com.microsoft",
                         gather_axis=0, quantize_axis=2, block_size=block_size, bits=bits),
        helper.make_node("Reshape", [f"{prefix}/blocks", f"{prefix}/rows_shape"], [gather.output[0]],
                         name=f"{prefix}/FlattenRows"),
    ])


def topological_sort(graph: onnx.GraphProto) -> None:
    """Order nodes so each comes after its inputs' producers (ORT's mobile tools require it; the
    fp16 converter appends its input Casts at the end)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise SlmkitError(f"The graph has a cycle or a missing input near node '{pending[0].name}'.")
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
    del graph.node[:]
    graph.node.extend(ordered)


def _int64(values: list[int]):
    import numpy as np

    return np.array(values, dtype=np.int64)
