"""convcalc/interop/onnx_lite.py against the onnx package itself: tensors, attributes and
value infos read or built without `import onnx` equal onnx.numpy_helper's and onnx.helper's;
`convcalc check model.onnx` never imports ml_dtypes (0.6 s of `import onnx`), and the
package completed afterwards is the whole onnx package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import AttributeProto, TensorProto, helper, numpy_helper  # noqa: E402
from test_import_onnx_cli import small  # noqa: E402

from convcalc.interop import onnx_lite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TYPES = {TensorProto.FLOAT: np.float32, TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8,
         TensorProto.UINT16: np.uint16, TensorProto.INT16: np.int16,
         TensorProto.INT32: np.int32, TensorProto.INT64: np.int64, TensorProto.BOOL: np.bool_,
         TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64,
         TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64}


def values(dtype, shape=(2, 3)):
    rng = np.random.default_rng(0)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("data_type", sorted(TYPES))
@pytest.mark.parametrize("raw", [True, False])
def test_to_array_equals_numpy_helper(data_type, raw):
    array = values(TYPES[data_type])
    if raw:
        tensor = numpy_helper.from_array(array, "t")
    else:  # the typed fields (float_data, int32_data, ...) as helper.make_tensor fills them
        tensor = helper.make_tensor("t", data_type, array.shape, array.flatten().tolist())
    theirs, ours = numpy_helper.to_array(tensor), onnx_lite.to_array(tensor)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


def test_to_array_of_a_scalar_and_of_another_type():
    scalar = numpy_helper.from_array(np.array(3, np.int64), "s")
    assert onnx_lite.to_array(scalar).shape == () and onnx_lite.to_array(scalar) == 3
    bf16 = helper.make_tensor("b", TensorProto.BFLOAT16, [2], [1.0, 2.0])  # through onnx
    assert np.array_equal(onnx_lite.to_array(bf16).astype(np.float32),
                          numpy_helper.to_array(bf16).astype(np.float32))


@pytest.mark.parametrize("dtype", sorted({np.dtype(t).name for t in TYPES.values()}))
def test_from_array_equals_numpy_helper(dtype):
    array = values(np.dtype(dtype), (3, 1, 2))
    ours, theirs = onnx_lite.from_array(array, "w"), numpy_helper.from_array(array, "w")
    assert np.array_equal(numpy_helper.to_array(ours), numpy_helper.to_array(theirs))
    assert (ours.data_type, list(ours.dims)) == (theirs.data_type, list(theirs.dims))


@pytest.mark.parametrize("shape", [None, [], [1, 3, 224, 224]])
def test_value_info_equals_helper(shape):
    ours = onnx_lite.value_info("x", TensorProto.FLOAT, shape)
    theirs = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    assert ours.SerializeToString() == theirs.SerializeToString()


def test_attribute_value_equals_helper():
    node = helper.make_node("Op", ["x"], ["y"], f=0.5, i=3, s="SAME_UPPER", ints=[1, 2],
                            floats=[0.5, 1.5], strings=["a", "b"],
                            t=numpy_helper.from_array(np.ones(2, np.float32), "v"),
                            g=helper.make_graph([], "g", [], []))
    for attr in node.attribute:
        assert onnx_lite.attribute_value(attr) == helper.get_attribute_value(attr), attr.name
    ref = AttributeProto(name="r", ref_attr_name="alpha", type=AttributeProto.FLOAT)
    with pytest.raises(ValueError):
        onnx_lite.attribute_value(ref)


def test_infer_shapes_equals_onnx(tmp_path):
    model = onnx.load(str(small(tmp_path)))
    ours = onnx_lite.infer_shapes(model, data_prop=True)
    theirs = onnx.shape_inference.infer_shapes(model, data_prop=True)
    assert ours.SerializeToString() == theirs.SerializeToString()


def test_check_of_an_onnx_file_does_not_import_the_onnx_package(tmp_path):
    """`import onnx` imports ml_dtypes (0.6 s); check needs only the protobuf classes and
    shape inference. Afterwards, `import onnx` in the same process is the whole package."""
    path = small(tmp_path)
    code = ("import sys\nfrom convcalc.cli import main\n"
            f"sys.argv = ['convcalc', 'check', {str(path)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "heavy = sorted(m for m in ('ml_dtypes', 'onnx.helper', 'onnx.numpy_helper',"
            " 'onnx.reference') if m in sys.modules)\n"
            "import onnx\nfrom onnx import helper, numpy_helper\n"
            "assert onnx.load is not None and helper.make_node and numpy_helper.to_array\n"
            "assert onnx.load(sys.argv[2]).graph.node[0].op_type == 'Conv'\n"
            "print('HEAVY', heavy, 'EXIT', code)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY [] EXIT 0" in result.stdout, result.stdout[-500:]
