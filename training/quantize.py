"""Dynamic INT8 quantisation of an exported extractor, done with the onnx package.

Weights of every MatMul with a constant right-hand side become int8 with one
symmetric scale per output column, as ONNX Runtime's dynamic quantisation
does. Activations are quantised at run time with one scale per row rather
than per tensor, so a text's result is the same in any batch, and then
multiplied by MatMulInteger. Embedding tables become int8 rows with one
scale per row, gathered and rescaled, so only the rows in use are expanded.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _symmetric_int8(w: np.ndarray, axis: int):
    peak = np.abs(w).max(axis=axis, keepdims=True)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale


def _row_quantized_matmul(base: str, a: str, out: str):
    """Quantise each row of A with its own scale, so a row's result does not
    depend on the other rows of the batch, then multiply in integers.

    Rows become uint8 with zero point 128 (symmetric int8 shifted), which
    MatMulInteger runs with the U8S8 kernels of ONNX Runtime.
    """
    n = lambda suffix: f"{base}_{suffix}"  # noqa: E731
    return [
        helper.make_node("Abs", [a], [n("abs")]),
        helper.make_node("ReduceMax", [n("abs")], [n("peak")], axes=[-1], keepdims=1),
        helper.make_node("Max", [n("peak"), n("eps")], [n("peak_safe")]),
        helper.make_node("Div", [n("peak_safe"), n("c127")], [n("a_scale")]),
        helper.make_node("Div", [a, n("a_scale")], [n("a_div")]),
        helper.make_node("Round", [n("a_div")], [n("a_round")]),
        helper.make_node("Add", [n("a_round"), n("c128")], [n("a_shift")]),
        helper.make_node("Cast", [n("a_shift")], [n("a_q")], to=TensorProto.UINT8),
        helper.make_node("MatMulInteger", [n("a_q"), n("w_int8"), n("a_zero"), n("w_zero")], [n("int32")]),
        helper.make_node("Cast", [n("int32")], [n("float")], to=TensorProto.FLOAT),
        helper.make_node("Mul", [n("float"), n("a_scale")], [n("row_scaled")]),
        helper.make_node("Mul", [n("row_scaled"), n("w_scale")], [out]),
    ]


def _row_constants(base: str):
    return [
        numpy_helper.from_array(np.array(1e-8, np.float32), f"{base}_eps"),
        numpy_helper.from_array(np.array(127.0, np.float32), f"{base}_c127"),
        numpy_helper.from_array(np.array(128.0, np.float32), f"{base}_c128"),
        numpy_helper.from_array(np.array(128, np.uint8), f"{base}_a_zero"),
    ]


def quantize_model(src, dst, min_elements: int = 4096):
    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1

    gather_only: dict[str, bool] = {}
    for node in graph.node:
        for j, name in enumerate(node.input):
            if name in inits:
                ok = node.op_type == "Gather" and j == 0
                gather_only[name] = gather_only.get(name, True) and ok
    new_nodes = []
    drop = set()
    added = []
    for node in graph.node:
        weight = node.input[1] if len(node.input) > 1 else None
        if node.op_type == "MatMul" and weight in inits and consumers.get(weight) == 1:
            w = numpy_helper.to_array(inits[weight])
            if w.ndim == 2 and w.size >= min_elements and w.dtype == np.float32:
                q, scale = _symmetric_int8(w, axis=0)
                base = node.name or weight
                added += [
                    numpy_helper.from_array(q, f"{base}_w_int8"),
                    numpy_helper.from_array(np.zeros(w.shape[1], np.int8), f"{base}_w_zero"),
                    numpy_helper.from_array(scale.reshape(-1), f"{base}_w_scale"),
                    *_row_constants(base),
                ]
                drop.add(weight)
                new_nodes += _row_quantized_matmul(base, node.input[0], node.output[0])
                continue
        table = node.input[0] if node.input else None
        if node.op_type == "Gather" and table in inits and gather_only.get(table):
            w = numpy_helper.to_array(inits[table])
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if w.ndim == 2 and w.size >= min_elements and w.dtype == np.float32 and axis == 0:
                # A table read by several Gathers (text and prompt) is stored once.
                tname = f"{table}_int8"
                if table not in drop:
                    q, scale = _symmetric_int8(w, axis=1)
                    added += [
                        numpy_helper.from_array(q, tname),
                        numpy_helper.from_array(scale, f"{table}_scale"),
                    ]
                    drop.add(table)
                base = node.name or node.output[0]
                ids = node.input[1]
                new_nodes += [
                    helper.make_node("Gather", [tname, ids], [f"{base}_rows_int8"]),
                    helper.make_node("Cast", [f"{base}_rows_int8"], [f"{base}_rows"], to=TensorProto.FLOAT),
                    helper.make_node("Gather", [f"{table}_scale", ids], [f"{base}_row_scale"]),
                    helper.make_node("Mul", [f"{base}_rows", f"{base}_row_scale"], list(node.output)),
                ]
                continue
        new_nodes.append(node)

    kept = [i for i in graph.initializer if i.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    del graph.node[:]
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return model


if __name__ == "__main__":
    quantize_model(sys.argv[1], sys.argv[2])
