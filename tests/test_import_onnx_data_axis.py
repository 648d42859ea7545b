"""ONNX graphs whose axis 0 is data, not a batch (interop/onnx_data_axis.py): a 2-D input,
a transpose, reshape, slice, reduction, split or concat across axis 0. Such a graph, with
fixed sizes and no operator that needs a batch axis, is imported with its whole input as one
sample; run equals onnxruntime's output. A graph with a conv keeps axis 0 as its batch."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402
from onnx_oracle import assert_close, convcalc_run, onnxruntime_run  # noqa: E402
from test_import_onnx import build, node, rand  # noqa: E402

from convcalc.interop import ImportFailure  # noqa: E402
from convcalc.interop.onnx_import import import_onnx  # noqa: E402

CASES = {
    "gemm 2-D": ([node("Gemm", ["x", "w", "b"], transB=1, alpha=0.5, beta=2.0)], (3, 5),
                 {"w": rand(4, 5), "b": rand(1, 4)}, 17, ["linear"]),
    "gemm transA": ([node("Gemm", ["x", "w", "b"], transA=1)], (5, 3),
                    {"w": rand(5, 4), "b": rand(4)}, 17, ["permute", "linear"]),
    "matmul 2-D + add": ([node("MatMul", ["x", "w"], "m"), node("Add", ["m", "b"])], (3, 5),
                         {"w": rand(5, 4), "b": rand(4)}, 17, ["linear"]),
    "transpose": ([node("Transpose", ["x"], perm=[2, 0, 1])], (3, 4, 5), {}, 17,
                  ["permute"]),
    "reshape across axis 0": ([node("Reshape", ["x", "s"])], (2, 3, 4),
                              {"s": np.array([4, 0, -1], np.int64)}, 17, ["reshape"]),
    "flatten axis 0": ([node("Flatten", ["x"], axis=0)], (2, 3, 4), {}, 17, ["reshape"]),
    "slice axis 0": ([node("Slice", ["x", "st", "en", "ax"])], (6, 4, 5),
                     {"st": np.array([1, -3], np.int64), "en": np.array([5, 99], np.int64),
                      "ax": np.array([0, 2], np.int64)}, 17, ["slice", "slice"]),
    "reduce all": ([node("ReduceMean", ["x"], keepdims=1)], (3, 4, 5), {}, 17, ["mean"]),
    "reduce axis 0 (opset 13)": ([node("ReduceSum", ["x", "a"])], (3, 4, 5),
                                 {"a": np.array([0], np.int64)}, 13, ["sum"]),
    "reduce attribute axes (opset 11)": ([node("ReduceMax", ["x"], axes=[-3, 1])], (3, 4, 5),
                                         {}, 11, ["amax"]),
    "softmax axis 0": ([node("Softmax", ["x"], axis=0)], (3, 4), {}, 17, ["softmax"]),
    "coerced softmax (opset 11)": ([node("Softmax", ["x"], axis=0)], (3, 1), {}, 11,
                                   ["softmax"]),
    "layernorm from axis 0": ([node("LayerNormalization", ["x", "g", "b"], axis=0)], (3, 4),
                              {"g": rand(3, 4), "b": rand(3, 4)}, 17, ["layernorm"]),
    "squeeze and unsqueeze axis 0": ([node("Unsqueeze", ["x", "a"], "u"),
                                      node("Squeeze", ["u", "a"])], (3, 4),
                                     {"a": np.array([0], np.int64)}, 17, ["reshape", "reshape"]),
    "concat axis 0": ([node("Relu", ["x"], "r"), node("Concat", ["x", "r"], axis=0)], (2, 3),
                      {}, 17, ["relu", "concat"]),
    "pad (opset 11)": ([node("Pad", ["x", "p"])], (3, 4, 5),
                       {"p": np.array([0, 1, 0, 0, 2, 0], np.int64)}, 11, ["pad"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_axis_0_as_data_equals_onnxruntime(tmp_path, name):
    nodes, shape, inits, opset, kinds = CASES[name]
    path = build(tmp_path / "m.onnx", nodes, shape, inits, opset)
    imported = import_onnx(path)
    assert not imported.batch_axis and imported.spec["input"] == list(shape)
    assert any("axis 0 of x is data" in n for n in imported.notes)
    x = rand(*shape)
    report, ours = convcalc_run(path, x)
    assert_close(ours, onnxruntime_run(path, x))
    assert [layer.type for layer in report.layers] == kinds


def test_split_part_as_the_output(tmp_path):
    """The graph's output is one part of a split: an identity of that part ends the spec."""
    nodes = [node("Split", ["x"], ["p0", "y"], axis=0, num_outputs=2)]
    path = build(tmp_path / "m.onnx", nodes, (4, 3), None, 18)
    x = rand(4, 3)
    report, ours = convcalc_run(path, x)
    assert_close(ours, onnxruntime_run(path, x))
    assert [layer.type for layer in report.layers][-1] == "identity"


def test_a_graph_that_can_keep_its_batch_axis_keeps_it(tmp_path):
    """Per-sample ops on a fixed batch of 3: axis 0 stays the batch (read as 1)."""
    path = build(tmp_path / "m.onnx", [node("Relu", ["x"])], (3, 4, 5))
    imported = import_onnx(path)
    assert imported.batch_axis and imported.spec["input"] == [4, 5]


def test_a_conv_graph_never_reads_axis_0_as_data(tmp_path):
    """A conv needs its batch axis: a transpose across it stays refused, by its reason."""
    nodes = [node("Conv", ["x", "w"], "c", pads=[1, 1, 1, 1]), node("Transpose", ["c"], perm=[1, 0, 2, 3])]
    path = build(tmp_path / "m.onnx", nodes, (2, 3, 8, 8), {"w": rand(4, 3, 3, 3)})
    with pytest.raises(ImportFailure, match="moves the batch axis"):
        import_onnx(path)


def test_symbolic_axis_0_is_a_batch(tmp_path):
    """A symbolic axis 0 (N) is a batch axis: a transpose across it is refused."""
    path = build(tmp_path / "m.onnx", [node("Transpose", ["x"], perm=[1, 0, 2])], None,
                 in_dims=["N", 4, 5])
    with pytest.raises(ImportFailure, match="moves the batch axis"):
        import_onnx(path)


def test_a_1d_input_is_refused_in_one_line(tmp_path):
    graph = helper.make_graph([node("Relu", ["x"])], "t",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ImportFailure, match="has shape \\[5\\]"):
        import_onnx(tmp_path / "m.onnx")


def test_an_op_without_a_rule_is_refused(tmp_path):
    """Tile has no rule to move its repeats by one axis: refused, never guessed."""
    nodes = [node("Transpose", ["x"], "t", perm=[1, 0]), node("Tile", ["t", "r"])]
    path = build(tmp_path / "m.onnx", nodes, (2, 3), {"r": np.array([1, 2], np.int64)})
    with pytest.raises(ImportFailure):
        import_onnx(path)
