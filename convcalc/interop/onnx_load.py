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
    opset = _opset(model, source)
    check_graph(model.graph, source)
    _check_tensors(model, path)
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
    newest = _newest_opset()
    if opset > newest:
        raise ImportFailure(source, f"opset {opset} is newer than the onnx package here knows "
                            f"({newest}): its operators' meaning is unknown",
                            "upgrade onnx, or export the model at an older opset")
    return int(opset)


def _newest_opset() -> int:
    """The newest ai.onnx opset of the installed onnx (its C++ schemas: no `import onnx`)."""
    from convcalc.interop.onnx_lite import proto
    proto()
    import onnx.onnx_cpp2py_export as compiled
    return int(compiled.defs.schema_version_map()[""][1])


def all_tensors(graph):
    """Every TensorProto of a graph: initializers, and node attributes' tensors (Constant
    values), in subgraphs too (If, Loop, Scan bodies)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("sparse_tensor"):
                yield attribute.sparse_tensor.values
                yield attribute.sparse_tensor.indices
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from all_tensors(sub)


STORED = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def _check_tensors(model, path: Path) -> None:
    """Declared sizes must match the data a tensor holds; external data must lie in the
    model's folder, for every tensor (initializers and Constant values alike). Then the
    external data is read, from that folder only."""
    from convcalc.interop.onnx_lite import EXTERNAL
    source, folder = str(path), path.resolve().parent
    external = False
    for tensor in all_tensors(model.graph):
        what = f"tensor {tensor.name or '(unnamed)'}"
        count = math.prod(tensor.dims)
        if any(d < 0 for d in tensor.dims) or count > MAX_TENSOR_ELEMENTS:
            raise ImportFailure(source, f"{what} declares {list(tensor.dims)}"
                                " elements, more than convcalc reads", "is the file damaged?")
        if tensor.data_type not in ITEM_BYTES:
            raise ImportFailure(source, f"{what} has data type {tensor.data_type} (TensorProto),"
                                " which convcalc does not read: numbers of 1 to 8 bytes",
                                "is the file damaged?")
        if tensor.data_location == EXTERNAL:
            external = True
            _check_external(tensor, folder, count, source)
        elif tensor.HasField("raw_data"):
            if tensor.data_type in ITEM_BYTES and len(tensor.raw_data) != count * ITEM_BYTES[
                    tensor.data_type]:
                raise ImportFailure(source, f"{what} declares {list(tensor.dims)}"
                                    f" but holds {len(tensor.raw_data)} bytes",
                                    "the file is damaged; export it again")
        else:
            held = max(len(getattr(tensor, name)) for name in STORED)
            if held != count:
                raise ImportFailure(source, f"{what} declares {list(tensor.dims)} but holds "
                                    f"{held} value(s)", "the file is damaged; export it again")
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
    what = f"tensor {tensor.name or '(unnamed)'}"
    if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
        raise ImportFailure(source, f"{what} points to external data "
                            f"{location!r} outside the model's folder; refused",
                            "keep external data files beside the .onnx file")
    if not target.is_file():
        raise ImportFailure(source, f"{what}: its external data "
                            f"{location} is missing", "copy it beside the .onnx file")
    try:
        offset = int(info.get("offset", 0) or 0)
        length = None if info.get("length") is None else int(info["length"])
    except ValueError:
        raise ImportFailure(source, f"{what}: external data offset {info.get('offset')!r} and "
                            f"length {info.get('length')!r} are not whole numbers",
                            "the file is damaged; export it again") from None
    need = count * ITEM_BYTES.get(tensor.data_type, 1)
    size = target.stat().st_size
    given = size - offset if length is None else length  # no length: the rest of the file
    if offset < 0 or offset + min(given, need) > size or given != need:
        held = max(0, min(given, size - offset))
        raise ImportFailure(source, f"{what}: {location} gives it {held} bytes from offset "
                            f"{offset}, where its {list(tensor.dims)} elements take {need}",
                            "the external data does not belong to this model")


def check_graph(graph, source: str) -> None:
    """ONNX graphs list their nodes in topological order: every input a node reads is the
    graph's input, an initializer or an earlier node's output, and no two nodes write one
    tensor. A node reading a later output is a cycle (or a damaged file)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    later = {o: n.name or n.op_type for n in graph.node for o in n.output}
    for node in graph.node:
        name = node.name or node.op_type
        for tensor in node.input:
            if tensor in known:
                continue
            if tensor in later:
                raise ImportFailure(source, f"node {name} reads {tensor}, which node "
                                    f"{later[tensor]} computes after it: the graph has a cycle "
                                    "or is not in topological order", "export it again")
            raise ImportFailure(source, f"node {name} reads {tensor}, which no node computes",
                                "the file is damaged; export it again")
        for tensor in node.output:
            if tensor and tensor in known:
                raise ImportFailure(source, f"node {name} writes {tensor}, which an earlier "
                                    "node or the graph's input already holds",
                                    "the file is damaged; export it again")
            known.add(tensor)
