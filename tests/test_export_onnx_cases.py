"""`convcalc export --to onnx`: every layer kind exported from a minimal spec and run in
onnxruntime (an independent implementation of ONNX), compared with `convcalc run`.

The minimal specs are tests/test_executor.py's cases (one or more per layer kind, the same
ones the executor is checked against PyTorch with), so a kind added there is exported here.
"""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from test_executor import CASES, analyzed, random_weights  # noqa: E402
from test_kinds_math import CASES as MATH_CASES  # noqa: E402

from convcalc import api as convcalc  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402

ALL_CASES = CASES + MATH_CASES


def ort_run(model, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def assert_close(got, expected, what=""):
    expected = np.asarray(expected, np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    scale = max(float(np.abs(expected).max()), 1e-6)
    error = float(np.abs(got.astype(np.float64) - expected).max())
    assert error <= 1e-4 * scale, f"{what}: error {error:.3g} at scale {scale:.3g}"


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_kind_exports_and_matches_run(case):
    report = analyzed(case.spec)
    weights = random_weights(report)
    model = convcalc.export_onnx(case.spec, weights=weights)
    names = {init.name for init in model.graph.initializer}
    assert set(weights) <= names  # the state_dict names, exactly
    x = np.random.default_rng(7).standard_normal((2, *case.input)).astype(np.float32) * 2
    expected = convcalc.run(case.spec, x, weights=weights).output
    assert_close(ort_run(model, x), expected, case.id)
    one = convcalc.run(case.spec, x[:1], weights=weights).output  # the batch axis is dynamic
    assert_close(ort_run(model, x[:1]), one, case.id + " batch 1")


def test_every_kind_is_covered():
    used = {node.type for case in ALL_CASES for node in analyzed(case.spec).graph.nodes}
    assert set(REGISTRY) - used == set()


# -- networks of the kinds the issue measures outside the repository ---------------------------

NETWORKS = {
    "classifier_1d": """
input: [2, 64]
layers:
  - {type: conv1d, out_channels: 8, kernel_size: 7, stride: 2, padding: 3}
  - {type: batchnorm1d}
  - relu
  - {type: maxpool1d, kernel_size: 3, stride: 2, padding: 1}
  - {type: conv1d, out_channels: 16, kernel_size: 3, padding: 1, dilation: 2}
  - gelu
  - {type: adaptive_avgpool1d, output_size: 3}
  - flatten
  - {type: linear, out_features: 5}
""",
    "video_3d": """
input: [3, 6, 17, 17]
layers:
  - {type: conv3d, out_channels: 8, kernel_size: [3, 5, 5], stride: [1, 2, 2], padding: [1, 2, 2]}
  - {type: batchnorm3d}
  - relu
  - {type: maxpool3d, kernel_size: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1], ceil_mode: true}
  - {type: conv3d, out_channels: 8, kernel_size: 3, padding: 1, groups: 8}
  - {type: avgpool3d, kernel_size: 2, ceil_mode: true}
  - {type: global_avgpool}
  - {type: linear, out_features: 4}
""",
    "dcgan_like_generator": """
input: [16, 1, 1]
layers:
  - {type: conv_transpose2d, out_channels: 32, kernel_size: 4, bias: false}
  - {type: batchnorm2d}
  - relu
  - {type: conv_transpose2d, out_channels: 16, kernel_size: 4, stride: 2, padding: 1, bias: false}
  - {type: batchnorm2d}
  - relu
  - {type: conv_transpose2d, out_channels: 3, kernel_size: 5, stride: 2, padding: 2, output_padding: 1}
  - tanh
""",
    "aspp_bilinear": """
input: [3, 33, 33]
layers:
  - {type: conv2d, name: stem, out_channels: 8, kernel_size: 3, stride: 2, padding: same}
  - relu
  - {type: conv2d, name: b1, out_channels: 4, kernel_size: 1}
  - {type: conv2d, name: b2, inputs: relu_1, out_channels: 4, kernel_size: 3, padding: 3, dilation: 3}
  - {type: conv2d, name: b3, inputs: relu_1, out_channels: 4, kernel_size: 3, padding: 6, dilation: 6}
  - {type: global_avgpool, name: gp, inputs: relu_1, keepdim: true}
  - {type: conv2d, name: b4, out_channels: 4, kernel_size: 1}
  - {type: upsample, name: b4_up, size: [17, 17], mode: bilinear, align_corners: false}
  - {type: concat, inputs: [b1, b2, b3, b4_up]}
  - {type: conv2d, out_channels: 5, kernel_size: 1}
  - {type: upsample, scale_factor: 2, mode: bilinear, align_corners: true}
""",
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_networks_match_run_in_onnxruntime(name):
    text = NETWORKS[name].lstrip()
    report = convcalc.check(text)
    assert not report.failing(), [d.format() for d in report.failing()]
    model = convcalc.export_onnx(text, seed=4)
    x = np.random.default_rng(3).standard_normal((3, *report.input_shape)).astype(np.float32)
    assert_close(ort_run(model, x), convcalc.run(text, x, seed=4).output, name)
