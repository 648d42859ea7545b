"""The parts of the `onnx` package an import needs, without the cost of `import onnx`.

`import onnx` runs onnx/__init__.py, which imports onnx.helper -> ml_dtypes, whose extension
module alone takes about 0.6 s: more than everything else `convcalc check model.onnx` does.
What an import needs is the protobuf classes (onnx.onnx_ml_pb2) and the C++ shape inference
(onnx.onnx_cpp2py_export), and neither needs the package's __init__. So, when onnx has not
been imported yet, the package module is created without running its __init__, those two
submodules are imported into it, and the first access to anything else (`onnx.load`,
`from onnx import helper`, a later `import onnx` anywhere in the process) runs the __init__
then, into the same module: the package is then exactly what `import onnx` gives.

Tensors of the common data types are read here (raw_data or the typed fields, as
onnx.numpy_helper.to_array does); others go through onnx.numpy_helper (tests compare the
two for every type read here).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np

# TensorProto data type -> (NumPy dtype, the typed field holding it without raw_data)
DTYPES: dict[int, tuple[str, str]] = {
    1: ("<f4", "float_data"), 2: ("u1", "int32_data"), 3: ("i1", "int32_data"),
    4: ("<u2", "int32_data"), 5: ("<i2", "int32_data"), 6: ("<i4", "int32_data"),
    7: ("<i8", "int64_data"), 9: ("?", "int32_data"), 11: ("<f8", "double_data"),
    12: ("<u4", "uint64_data"), 13: ("<u8", "uint64_data"),
}
FLOAT16 = 10  # held as uint16 bit patterns in int32_data without raw_data
EXTERNAL = 1  # TensorProto.DataLocation


def proto():
    """onnx.onnx_ml_pb2 (ModelProto, TensorProto, ...), importing as little as possible."""
    _lite_package()
    import onnx.onnx_ml_pb2 as pb
    return pb


def _lite_package() -> None:
    if "onnx" in sys.modules:
        return
    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError("No module named 'onnx'", name="onnx")
    package = importlib.util.module_from_spec(spec)

    def complete(name: str):  # PEP 562: the first other attribute runs onnx/__init__.py
        del package.__dict__["__getattr__"]
        spec.loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = complete
    sys.modules["onnx"] = package
    try:
        import onnx.onnx_cpp2py_export  # noqa: F401 - the C++ side, checked to load
        import onnx.onnx_ml_pb2  # noqa: F401
    except BaseException:
        sys.modules.pop("onnx", None)
        raise


def load_bytes(data: bytes):
    """A ModelProto from its serialised bytes (onnx.load_model_from_string's check that
    every byte was read, included)."""
    from google.protobuf.message import DecodeError
    model = proto().ModelProto()
    decoded = model.ParseFromString(data)
    if decoded is not None and decoded != len(data):
        raise DecodeError(f"Protobuf decoding consumed too few bytes: {decoded} out of "
                          f"{len(data)}")
    return model


def infer_shapes(model, check_type: bool = False, strict_mode: bool = False,
                 data_prop: bool = False):
    """onnx.shape_inference.infer_shapes, calling the same C++ function directly."""
    proto()
    import onnx.onnx_cpp2py_export.shape_inference as inference
    return load_bytes(inference.infer_shapes(model.SerializeToString(), check_type,
                                             strict_mode, data_prop))


def attribute_value(attr) -> Any:
    """onnx.helper.get_attribute_value for the attribute types ops carry."""
    if attr.ref_attr_name:
        raise ValueError(f"Cannot get value of reference attribute {attr.name}")
    kind = attr.type
    simple = {1: "f", 2: "i", 3: "s", 4: "t", 5: "g", 11: "sparse_tensor", 13: "tp"}
    if kind in simple:
        return getattr(attr, simple[kind])
    lists = {6: "floats", 7: "ints", 8: "strings", 9: "tensors", 10: "graphs",
             12: "sparse_tensors", 14: "type_protos"}
    if kind in lists:
        return list(getattr(attr, lists[kind]))
    if kind == 0:
        return None
    raise ValueError(f"Unsupported ONNX attribute: {attr.name}")


def to_array(tensor) -> np.ndarray:
    """onnx.numpy_helper.to_array: read here for the common types, else by onnx."""
    dims = tuple(tensor.dims)
    if tensor.data_location == EXTERNAL or tensor.data_type not in (*DTYPES, FLOAT16):
        from onnx import numpy_helper
        return numpy_helper.to_array(tensor)
    if tensor.data_type == FLOAT16:
        dtype, field = "<f2", "int32_data"
    else:
        dtype, field = DTYPES[tensor.data_type]
    if tensor.HasField("raw_data"):  # read-only over its own bytes, as numpy_helper's
        return np.frombuffer(tensor.raw_data, dtype=dtype).reshape(dims)
    values = getattr(tensor, field)
    if tensor.data_type == FLOAT16:
        return np.asarray(values, dtype="<u2").view("<f2").reshape(dims)
    return np.asarray(values, dtype=dtype).reshape(dims)


NP_TO_ONNX = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3,
              np.dtype(np.uint16): 4, np.dtype(np.int16): 5, np.dtype(np.int32): 6,
              np.dtype(np.int64): 7, np.dtype(np.bool_): 9, np.dtype(np.float16): 10,
              np.dtype(np.float64): 11, np.dtype(np.uint32): 12, np.dtype(np.uint64): 13}


def from_array(array: np.ndarray, name: str):
    """onnx.numpy_helper.from_array for the common types (raw little-endian data)."""
    array = np.asarray(array)
    data_type = NP_TO_ONNX.get(array.dtype)
    if data_type is None:
        from onnx import numpy_helper
        return numpy_helper.from_array(array, name)
    tensor = proto().TensorProto()
    tensor.name = name
    tensor.data_type = data_type
    tensor.dims.extend(array.shape)
    tensor.raw_data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return tensor


def value_info(name: str, elem_type: int, shape: list[int] | None):
    """onnx.helper.make_tensor_value_info: a typed value, its shape unknown when None."""
    info = proto().ValueInfoProto()
    info.name = name
    tensor_type = info.type.tensor_type
    tensor_type.elem_type = elem_type
    if shape is not None:
        tensor_type.shape.SetInParent()
        for size in shape:
            tensor_type.shape.dim.add().dim_value = size
    return info


def np_dtype(data_type: int) -> np.dtype:
    """onnx.helper.tensor_dtype_to_np_dtype for the common types."""
    if data_type in DTYPES:
        return np.dtype(DTYPES[data_type][0])
    if data_type == FLOAT16:
        return np.dtype(np.float16)
    from onnx import helper
    return helper.tensor_dtype_to_np_dtype(data_type)
