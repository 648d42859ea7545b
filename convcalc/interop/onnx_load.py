"""Reading an ONNX file safely: one-line errors for what is not a model, and weights read
only from the model's own folder. onnx.load parses the protobuf; nothing in a file runs."""

from __future__ import annotations

import math
from pathlib import Path

from convcalc.interop import ImportFailure

MAX_FILE_BYTES = 2**31  # protobuf's own limit; larger models keep weights as external data
MAX_TENSOR_ELEMENTS = 2**31
MIN_OPSET = 9
ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8,
              16: 2}  # TensorProto data types -> bytes per element


def load_model(path: Path):
    """The ModelProto with its weights loaded and checked, and its ai.onnx opset."""
    source = str(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ImportFailure(source, f"cannot read it: {err.strerror or err}") from None
    if size > MAX_FILE_BYTES:
        raise ImportFailure(source, f"{size} bytes is more than an ONNX protobuf holds (2 GiB)")
    try:
        model = _parse(path)
    except Exception as err:  # noqa: BLE001 - DecodeError and friends: not a model
        raise ImportFailure(source, f"not a readable ONNX model ({type(err).__name__}: the "
                            "file is truncated, or not ONNX)", "export it again") from None
    if not model.graph.node:
        raise ImportFailure(source, "not an ONNX model: the graph has no nodes",
                            "is it the right file?")
    _check_tensors(model, path)
    opset = _opset(model, source)
    return model, opset


def _parse(path: Path):
    """onnx.load(path, load_external_data=False), through onnx_lite for .onnx files."""
    if path.suffix.lower() != ".onnx":  # onnx.load picks a text format by the extension
        import onnx
        return onnx.load(str(path), load_external_data=False)
    from convcalc.interop.onnx_lite import load_bytes
    return load_bytes(path.read_bytes())


def _opset(model, source: str) -> int:
    versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    opset = versions.get("ai.onnx")
    if opset is None:
        raise ImportFailure(source, "the model imports no ai.onnx opset")
    if opset < MIN_OPSET:
        raise ImportFailure(source, f"opset {opset}: convcalc reads opsets {MIN_OPSET} and "
                            "newer", "convert it with onnx.version_converter")
    return int(opset)


def _check_tensors(model, path: Path) -> None:
    """Declared sizes must match the data a tensor holds; external data must lie in the
    model's folder. Then the external data is read."""
    from convcalc.interop.onnx_lite import EXTERNAL
    source, folder = str(path), path.resolve().parent
    external = False
    for tensor in model.graph.initializer:
        count = math.prod(tensor.dims)
        if any(d < 0 for d in tensor.dims) or count > MAX_TENSOR_ELEMENTS:
            raise ImportFailure(source, f"initializer {tensor.name} declares {list(tensor.dims)}"
                                " elements, more than convcalc reads", "is the file damaged?")
        if tensor.data_location == EXTERNAL:
            external = True
            _check_external(tensor, folder, count, source)
        elif tensor.HasField("raw_data") and tensor.data_type in ITEM_BYTES \
                and len(tensor.raw_data) != count * ITEM_BYTES[tensor.data_type]:
            raise ImportFailure(source, f"initializer {tensor.name} declares {list(tensor.dims)}"
                                f" but holds {len(tensor.raw_data)} bytes",
                                "the file is damaged; export it again")
    if external:
        from onnx.external_data_helper import load_external_data_for_model
        try:
            load_external_data_for_model(model, str(folder))
        except Exception as err:  # noqa: BLE001 - unreadable external data
            raise ImportFailure(source, f"cannot read its external data: {err}") from None


def _check_external(tensor, folder: Path, count: int, source: str) -> None:
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    target = (folder / location).resolve()
    if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
        raise ImportFailure(source, f"initializer {tensor.name} points to external data "
                            f"{location!r} outside the model's folder; refused",
                            "keep external data files beside the .onnx file")
    if not target.is_file():
        raise ImportFailure(source, f"initializer {tensor.name}: its external data "
                            f"{location} is missing", "copy it beside the .onnx file")
    offset, length = int(info.get("offset", 0) or 0), info.get("length")
    need = count * ITEM_BYTES.get(tensor.data_type, 1)
    if length is not None and int(length) != need or offset + need > target.stat().st_size:
        raise ImportFailure(source, f"initializer {tensor.name}: {location} holds fewer "
                            f"bytes than its {list(tensor.dims)} elements need",
                            "the external data does not belong to this model")
