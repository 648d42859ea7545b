"""Which ONNX DepthToSpace / SpaceToDepth mode equals convcalc's pixel_shuffle /
pixel_unshuffle (docs/spec.md), with onnx's reference evaluator as the oracle: CRD is
PyTorch's order; DCR (DepthToSpace's default, SpaceToDepth's only order before opset 25)
is not. And the ONNX conformance examples shipped with `onnx` reproduced by the executor.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from convcalc.analysis import Options, analyze_text  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402


def onnx_run(op: str, x: np.ndarray, **attrs) -> np.ndarray:
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    value = helper.make_tensor_value_info
    graph = helper.make_graph([node], "g", [value("x", TensorProto.FLOAT, None)],
                              [value("y", TensorProto.FLOAT, None)])
    return ReferenceEvaluator(helper.make_model(graph)).run(None, {"x": x})[0]


def convcalc_run(layer: str, x: np.ndarray) -> np.ndarray:
    text = f"input: {list(x.shape[1:])}\nlayers:\n  - {layer}\n"
    report = analyze_text(text, "case.yaml", Options())
    out = Executor(report, {}).run(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).output
    return out.transpose(0, 3, 1, 2)


X8 = np.random.default_rng(0).standard_normal((2, 8, 3, 5)).astype(np.float32)
X3 = np.random.default_rng(1).standard_normal((2, 3, 4, 6)).astype(np.float32)


def test_depth_to_space_crd_is_pixel_shuffle_and_dcr_is_not():
    ours = convcalc_run("{type: depth_to_space, upscale_factor: 2}", X8)
    assert np.array_equal(ours, onnx_run("DepthToSpace", X8, blocksize=2, mode="CRD"))
    assert not np.array_equal(ours, onnx_run("DepthToSpace", X8, blocksize=2, mode="DCR"))


def test_space_to_depth_default_order_is_not_pixel_unshuffle():
    ours = convcalc_run("{type: space_to_depth, downscale_factor: 2}", X3)
    assert not np.array_equal(ours, onnx_run("SpaceToDepth", X3, blocksize=2))
    c, r = X3.shape[1], 2  # ONNX's channel (i*r + j)*C + c is ours c*r^2 + i*r + j
    order = [ch * r * r + i * r + j for i in range(r) for j in range(r) for ch in range(c)]
    assert np.array_equal(ours[:, order], onnx_run("SpaceToDepth", X3, blocksize=2))


@pytest.mark.parametrize("name", ["export_crd_mode_example"])
def test_onnx_conformance_example_of_depth_to_space_crd(name, monkeypatch):
    from onnx.backend.test.case.node import depthtospace
    cases = []
    monkeypatch.setattr(depthtospace, "expect",
                        lambda node, inputs, outputs, name: cases.append((inputs, outputs)))
    getattr(depthtospace.DepthToSpace, name)()
    ((x,), (y,)), = cases
    assert np.array_equal(convcalc_run("{type: pixel_shuffle, upscale_factor: 2}", x), y)
