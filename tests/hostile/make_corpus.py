"""Write the binary half of the hostile corpus (images, weights, ONNX files, Python modules)
into a folder: `python tests/hostile/make_corpus.py DIR`, or `build(Path)` from the tests and
the fuzzer. Binary cases are generated here, deterministically, rather than committed.

Every file is small: the "huge" cases declare sizes they do not hold (a PNG header of
20000x20000, an .npy header of 1e12 elements, an ONNX initializer of 2^40 elements)."""

from __future__ import annotations

import io
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RNG_SEED = 15


# -- images ---------------------------------------------------------------------------------

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")


def images(folder: Path) -> None:
    from PIL import Image
    rng = np.random.default_rng(RNG_SEED)
    good = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(good).save(folder / "good.png")
    data = (folder / "good.png").read_bytes()
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not a picture\n")
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "big20k.png").write_bytes(header_only_png(20000, 20000))
    (folder / "header_only.png").write_bytes(header_only_png(300, 200))
    (folder / "zero_width.png").write_bytes(header_only_png(0, 10))
    Image.fromarray(good[..., 0]).save(folder / "gray.png")
    Image.fromarray((good[..., 0].astype(np.uint16) * 257)).save(folder / "gray16.png")
    Image.fromarray(good).convert("P").save(folder / "palette.png")
    Image.fromarray(good).convert("LA").save(folder / "la.png")
    Image.fromarray(good).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(good).convert("1").save(folder / "bilevel.png")
    Image.fromarray(good).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(good[:1, :1]).save(folder / "one_pixel.png")
    frames = [Image.fromarray(np.roll(good, k, 0)) for k in range(3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    np.save(folder / "digit.npy", rng.random((1, 32, 32), dtype=np.float32))
    np.save(folder / "digit_f64.npy", rng.random((1, 32, 32)))
    np.save(folder / "digit_int.npy", rng.integers(0, 9, (1, 32, 32)))
    np.save(folder / "digit_bool.npy", rng.random((1, 32, 32)) > 0.5)
    np.save(folder / "digit_complex.npy", rng.random((1, 32, 32)) * 1j)
    np.save(folder / "digit_1d.npy", rng.random(32, dtype=np.float32))
    np.save(folder / "digit_5d.npy", rng.random((1, 1, 1, 32, 32), dtype=np.float32))
    np.save(folder / "digit_empty.npy", np.zeros((1, 0, 32), np.float32))
    np.save(folder / "digit_object.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    inf = rng.random((1, 32, 32), dtype=np.float32)
    inf[0, 1, 1] = np.inf
    np.save(folder / "digit_inf.npy", inf)
    (folder / "huge_header.npy").write_bytes(npy_header((1, 1_000_000, 1_000_000)))


# -- weights --------------------------------------------------------------------------------

def npy_header(shape, descr: str = "<f4") -> bytes:
    """An .npy header declaring `shape`, with no data after it."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    text += " " * (118 - len(text)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def npy_bytes(value: np.ndarray, allow_pickle: bool = False) -> bytes:
    stream = io.BytesIO()
    np.save(stream, value, allow_pickle=allow_pickle)
    return stream.getvalue()


def lenet_weights() -> dict[str, np.ndarray]:
    from convcalc.analysis import analyze_file
    from convcalc.executor.weights import initial_weights
    return initial_weights(analyze_file(ROOT / "specs" / "lenet5.yaml"), 0)


def write_npz(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for key, data in members.items():
            archive.writestr(f"{key}.npy", data)


def weights(folder: Path) -> None:
    good = lenet_weights()
    np.savez(folder / "good.npz", **good)
    data = (folder / "good.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(data[: len(data) // 2])
    (folder / "not_a_zip.npz").write_text("PK but not really\n")
    members = {key: npy_bytes(value) for key, value in good.items()}
    variants = {
        "bad_member": {"c1.weight": b"not a .npy array"},
        "huge_member": {"c1.weight": npy_header((1_000_000, 1_000_000))},
        "pickled_member": {"c1.weight": npy_bytes(np.array([object()] * 3, dtype=object),
                                                  allow_pickle=True)},
        "wrong_shape": {"c1.weight": npy_bytes(np.zeros((6, 1, 3, 3), np.float32))},
        "int_member": {"c1.weight": npy_bytes(np.zeros((6, 1, 5, 5), np.int64))},
        "complex_member": {"c1.weight": npy_bytes(np.zeros((6, 1, 5, 5), np.complex64))},
        "string_member": {"c1.weight": npy_bytes(np.array(["a"] * 6))},
        "nan_member": {"c1.weight": npy_bytes(np.full((6, 1, 5, 5), np.nan, np.float32))},
        "extra_member": {"ghost.weight": npy_bytes(np.zeros(3, np.float32))},
        "scalar_member": {"c1.bias": npy_bytes(np.float32(1.0))},
    }
    for name, replace in variants.items():
        write_npz(folder / f"{name}.npz", {**members, **replace})
    write_npz(folder / "missing_member.npz",
              {k: v for k, v in members.items() if k != "c1.weight"})
    write_npz(folder / "empty.npz", {})
    # a member whose name climbs out of the archive: must never be used as a path
    with zipfile.ZipFile(folder / "traversal.npz", "w") as archive:
        for key, value in members.items():
            archive.writestr(f"{key}.npy", value)
        archive.writestr("../../escape.npy", npy_bytes(np.zeros(1, np.float32)))


# -- ONNX -----------------------------------------------------------------------------------

def onnx_small(opset: int = 13, dims=(1, 3, 8, 8)):
    """Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm, with its weights."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(RNG_SEED)

    def rand(*shape):
        return rng.uniform(-1, 1, shape).astype(np.float32)

    nodes = [helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c"], name="conv1",
                              pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1)]
    inits = {"conv1.weight": rand(4, 3, 3, 3), "conv1.bias": rand(4),
             "fc.weight": rand(5, 4), "fc.bias": rand(5)}
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _external(tensor, location: str, offset: str | None = None, length: str | None = None):
    from onnx import TensorProto
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value


def onnx_files(folder: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    def save(model, name: str, where: Path = folder) -> None:
        where.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(model.SerializeToString())

    save(onnx_small(), "good.onnx")
    data = onnx_small().SerializeToString()
    (folder / "truncated.onnx").write_bytes(data[: len(data) * 2 // 3])
    (folder / "text.onnx").write_text("ir_version: 8\nnot a protobuf\n")
    (folder / "empty.onnx").write_bytes(b"")

    model = onnx_small()
    model.graph.initializer[0].dims[:] = [2**20, 2**20, 1, 1]
    save(model, "huge_initializer.onnx")

    model = onnx_small()
    model.graph.initializer[0].ClearField("raw_data")
    model.graph.initializer[0].dims[:] = [4, 3, 3, 3]
    save(model, "empty_initializer.onnx")

    model = onnx_small()  # relu reads the pool's output, the pool reads relu's: a cycle
    model.graph.node[1].input[0] = "g"
    save(model, "cycle.onnx")

    model = onnx_small()
    model.graph.node[1].input[0] = "r"  # relu reads its own output
    save(model, "self_loop.onnx")

    model = onnx_small()
    model.graph.node[1].domain = "com.example.evil"
    model.opset_import.append(helper.make_opsetid("com.example.evil", 1))
    save(model, "unknown_domain.onnx")

    model = onnx_small()
    model.graph.node[1].op_type = "NoSuchOp"
    save(model, "unknown_op.onnx")

    model = onnx_small(opset=99)
    save(model, "future_opset.onnx")
    save(onnx_small(opset=1), "ancient_opset.onnx")

    model = onnx_small()  # MaxPool's kernel_shape is required
    model.graph.node[2].op_type = "MaxPool"
    save(model, "missing_attribute.onnx")

    model = onnx_small()  # conv without its weight input
    del model.graph.node[0].input[1:]
    save(model, "missing_input.onnx")

    model = onnx_small()
    model.graph.node[0].input[1] = "no_such_tensor"
    save(model, "dangling_input.onnx")

    model = onnx_small()
    model.graph.node[0].attribute.append(helper.make_attribute("strides", [0, 0]))
    save(model, "zero_stride.onnx")

    model = onnx_small()
    model.graph.node[0].attribute.append(helper.make_attribute("dilations", [2**62, 2**62]))
    save(model, "huge_dilation.onnx")

    model = onnx_small()
    del model.graph.node[0].attribute[:]
    model.graph.node[0].attribute.append(helper.make_attribute("pads", [1, 1]))
    save(model, "short_pads.onnx")

    model = onnx_small()
    model.graph.node[0].attribute.append(helper.make_attribute("kernel_shape", "3x3"))
    save(model, "string_attribute.onnx")

    model = onnx_small(dims=(1, 3, 0, 8))
    save(model, "zero_input_dim.onnx")
    model = onnx_small(dims=(1, 3, -5, 8))
    save(model, "negative_input_dim.onnx")
    model = onnx_small(dims=(1, 3, 2**40, 2**40))
    save(model, "huge_input_dim.onnx")
    model = onnx_small(dims=("N", 3, "H", "W"))
    save(model, "symbolic.onnx")

    model = onnx_small()
    del model.graph.node[:]
    save(model, "no_nodes.onnx")

    model = onnx_small()
    del model.graph.input[:]
    save(model, "no_inputs.onnx")

    model = onnx_small()
    model.graph.initializer[0].data_type = TensorProto.STRING
    save(model, "string_initializer.onnx")

    model = onnx_small()
    model.graph.initializer[1].data_type = 0  # UNDEFINED
    save(model, "undefined_type.onnx")

    model = onnx_small()  # two nodes writing the same tensor
    model.graph.node[1].output[0] = "c"
    save(model, "duplicate_output.onnx")

    model = onnx_small()  # a Constant node whose tensor points outside the folder
    constant = helper.make_tensor("k", TensorProto.FLOAT, [1], [1.0])
    _external(constant, "../secret.bin", "0", "4")
    model.graph.node.insert(0, helper.make_node("Constant", [], ["k"], name="k", value=constant))
    save(model, "constant_outside.onnx", folder / "models")

    (folder / "secret.bin").write_bytes(b"\0" * 4096)
    cases = {
        "external_parent.onnx": ("../secret.bin", None, None),
        "external_absolute.onnx": (str((folder / "secret.bin").resolve()), None, None),
        "external_missing.onnx": ("absent.bin", None, None),
        "external_empty_location.onnx": ("", None, None),
        "external_bad_offset.onnx": ("weights.bin", "abc", None),
        "external_negative_offset.onnx": ("weights.bin", "-4096", None),
        "external_short.onnx": ("weights.bin", "4000", None),
        "external_symlink.onnx": ("link.bin", None, None),
        "external_folder.onnx": ("sub", None, None),
        "external_dev.onnx": ("../../../../../../dev/zero", None, None),
    }
    models = folder / "models"
    models.mkdir(exist_ok=True)
    (models / "weights.bin").write_bytes(b"\0" * 4096)
    (models / "sub").mkdir(exist_ok=True)
    link = models / "link.bin"
    if not link.is_symlink():
        link.symlink_to(folder / "secret.bin")
    for name, (location, offset, length) in cases.items():
        model = onnx_small()
        _external(model.graph.initializer[0], location, offset, length)
        save(model, name, models)
    assert onnx.load(str(folder / "good.onnx")).graph.node


# -- Python modules for `import MODULE:CALLABLE` ------------------------------------------

FACTORIES = '''"""Factories for `convcalc import hostile_factories:NAME` (the hostile corpus)."""
import sys

import torch


def raises():
    raise RuntimeError("the factory failed on purpose")


def returns_int():
    return 42


def returns_none():
    return None


def exits():
    sys.exit(3)


def exits_zero():
    sys.exit(0)


def interrupts():
    raise KeyboardInterrupt


def base_exception():
    class Odd(BaseException):
        pass
    raise Odd("not an Exception")


def recursion():
    return recursion()


def prints():
    print("noise on stdout")
    print("noise on stderr", file=sys.stderr)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())


def good():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())


class ForwardRaises(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        raise ValueError("forward failed on purpose")


class Branchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


class ForwardExits(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        sys.exit(3)


def forward_raises():
    return ForwardRaises()


def branchy():
    return Branchy()


def forward_exits():
    return ForwardExits()


not_callable = 7
'''

BROKEN_MODULE = 'raise ImportError("this module fails to import on purpose")\n'
EXITING_MODULE = 'import sys\nsys.exit(3)\n'


def modules(folder: Path) -> None:
    (folder / "hostile_factories.py").write_text(FACTORIES)
    (folder / "broken_module.py").write_text(BROKEN_MODULE)
    (folder / "exiting_module.py").write_text(EXITING_MODULE)


def build(folder: Path) -> Path:
    """Write every generated case into `folder` (created); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    images(folder)
    weights(folder)
    shutil.copy(folder / "good.npz", folder / "good_npz_named.npy")
    onnx_files(folder)
    modules(folder)
    for text in (HERE / "files").glob("*"):
        shutil.copy(text, folder / text.name)
    (folder / "out").mkdir(exist_ok=True)  # where cases write
    (folder / "specs").mkdir(exist_ok=True)
    for spec in (ROOT / "specs").glob("*.yaml"):
        shutil.copy(spec, folder / "specs" / spec.name)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile/make_corpus.py DIR")
    sys.path.insert(0, str(ROOT))
    print(build(Path(sys.argv[1])))
