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
