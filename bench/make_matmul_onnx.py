"""Write bench/matmul.onnx: one float32 MatMul of two inputs, to measure peak GEMM speed.

Run with Debian's python3-onnx: python3 bench/make_matmul_onnx.py
"""

from pathlib import Path

import onnx
from onnx import TensorProto, helper

a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["m", "k"])
b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["k", "n"])
c = helper.make_tensor_value_info("c", TensorProto.FLOAT, ["m", "n"])
graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", [a, b], [c])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, str(Path(__file__).resolve().parent / "matmul.onnx"))
