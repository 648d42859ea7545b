"""ONNX files on the command line: import, check, rf, sizes and run take an .onnx file;
what cannot be imported is one error listing every operator (exit 2); hostile files get
one line, never a traceback."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from test_import_onnx import build, node, rand  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from convcalc.cli import _register_commands, app  # noqa: E402
from convcalc.interop import ImportFailure  # noqa: E402
from convcalc.interop.onnx_import import import_onnx  # noqa: E402


def cli(*args):
    _register_commands()
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def small(tmp_path, dims=(1, 3, 8, 8), name="m.onnx"):
    nodes = [node("Conv", ["x", "conv1.weight", "conv1.bias"], "c", pads=[1, 1, 1, 1]),
             node("Relu", ["c"], "r"), node("GlobalAveragePool", ["r"], "g"),
             node("Flatten", ["g"], "f"), node("Gemm", ["f", "fc.weight", "fc.bias"], transB=1)]
    inits = {"conv1.weight": rand(4, 3, 3, 3), "conv1.bias": rand(4),
             "fc.weight": rand(5, 4), "fc.bias": rand(5)}
    return build(tmp_path / name, nodes, None, inits, 13, dims)


def test_import_writes_spec_and_weights(tmp_path):
    path = small(tmp_path)
    result = cli("import", path, "-o", tmp_path / "m.yaml", "--weights-out", tmp_path / "w.npz")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "m.yaml").read_text()
    assert "{type: conv2d, name: conv1, out_channels: 4, kernel_size: 3, padding: 1}" in text
    saved = np.load(tmp_path / "w.npz")
    assert set(saved.files) == {"conv1.weight", "conv1.bias", "fc.weight", "fc.bias"}
    assert saved["fc.weight"].dtype == np.float32
    assert cli("check", tmp_path / "m.yaml").exit_code == 0


def test_every_command_takes_an_onnx_file(tmp_path):
    from PIL import Image
    path = small(tmp_path)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img.png")
    for args in (["check", path], ["check", path, "--input", "16x16"], ["rf", path],
                 ["sizes", path], ["run", path, tmp_path / "img.png"]):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
    result = cli("check", path, "--format", "json")
    assert '"file": "' in result.output and "m.onnx" in result.output


def test_run_uses_the_files_weights(tmp_path):
    """run without --weights computes with the ONNX file's weights: the same output as
    the imported weights given explicitly."""
    path = small(tmp_path)
    cli("import", path, "-o", tmp_path / "m.yaml", "--weights-out", tmp_path / "w.npz")
    from PIL import Image
    Image.fromarray(np.arange(192, dtype=np.uint8).reshape(8, 8, 3)).save(tmp_path / "i.png")
    a = cli("run", path, tmp_path / "i.png", "--out", tmp_path / "a")
    b = cli("run", tmp_path / "m.yaml", tmp_path / "i.png", "--weights", tmp_path / "w.npz",
            "--out", tmp_path / "b")
    assert a.exit_code == b.exit_code == 0, a.output + b.output
    outs = [np.load(next((tmp_path / d).glob("*.npy"))) for d in "ab"]
    assert np.array_equal(*outs)


def test_symbolic_sizes_need_input(tmp_path):
    path = small(tmp_path, ("N", 3, "H", "W"))
    with pytest.raises(ImportFailure, match="symbolic sizes") as err:
        import_onnx(path)
    assert "--input 3x224x224" in err.value.hint
    assert import_onnx(path, (20, 24)).spec["input"] == [3, 20, 24]
    result = cli("check", path)
    assert result.exit_code == 2 and "symbolic" in result.output
    assert cli("check", path, "--input", "3x32x32").exit_code == 0


def test_vector_input_is_refused_in_one_line(tmp_path):
    """[N, F] with a batch axis N has no spatial axis; a fixed [1, 5] is read as one sample
    (its axis 0 as data: tests/test_import_onnx_data_axis.py)."""
    path = build(tmp_path / "v.onnx", [node("Relu", ["x"])], None, in_dims=["N", 5])
    expect_one_line(path, "at least one spatial axis")


def test_unsupported_lists_every_operator(tmp_path):
    nodes = [node("Conv", ["x", "w"], "c"), node("Erf", ["c"], "t1"), node("Erf", ["t1"], "t2"),
             node("Sin", ["t2"], "s"), node("Hardmax", ["s"])]
    path = build(tmp_path / "u.onnx", nodes, (1, 3, 4, 4), {"w": rand(2, 3, 1, 1)})
    result = cli("import", path, "-o", tmp_path / "u.yaml")
    assert result.exit_code == 2
    line = result.output.strip()
    assert "cannot import 4 node(s)" in line and "Erf x2 (erf_t1, erf_t2)" in line \
        and "Sin x1 (sin_s)" in line and "Hardmax x1" in line
    assert not (tmp_path / "u.yaml").exists()


def test_diagnostics_name_the_file_and_layer(tmp_path):
    """A finding on an imported model names the .onnx file and the layer, not a line of the
    generated YAML."""
    nodes = [node("Conv", ["x", "w"], "y", strides=[2, 2])]
    path = build(tmp_path / "s.onnx", nodes, (1, 3, 8, 8), {"w": rand(2, 3, 3, 3)})
    result = cli("check", path)
    assert f"{path}: warning[" in result.output and "conv_y" in result.output


def hostile(tmp_path, mutate, name="h.onnx"):
    path = small(tmp_path, name=name)
    model = onnx.load(str(path))
    mutate(model, path)
    onnx.save(model, str(path)) if model is not None else None
    return path


def expect_one_line(path, match):
    result = cli("check", path)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and match in result.output, \
        result.output


def test_truncated_and_empty_files(tmp_path):
    path = small(tmp_path)
    data = path.read_bytes()
    (tmp_path / "t.onnx").write_bytes(data[:len(data) // 2])
    expect_one_line(tmp_path / "t.onnx", "not a readable ONNX model")
    (tmp_path / "e.onnx").write_bytes(b"")
    expect_one_line(tmp_path / "e.onnx", "graph has no nodes")
    expect_one_line(tmp_path / "missing.onnx", "cannot read")


def test_huge_initializer_is_refused(tmp_path):
    def mutate(model, path):
        tensor = model.graph.initializer[0]
        del tensor.dims[:]
        tensor.dims.extend([2**20, 2**20])
    expect_one_line(hostile(tmp_path, mutate), "more than convcalc reads")

    def mismatch(model, path):
        model.graph.initializer[0].dims[0] = 400
    expect_one_line(hostile(tmp_path, mismatch, "m2.onnx"), "but holds")


def test_external_data_outside_the_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 4096)
    inner = tmp_path / "models"
    inner.mkdir()

    def mutate(model, path):
        tensor = model.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "../secret.bin"), ("offset", "0")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    expect_one_line(hostile(inner, mutate), "outside the model's folder; refused")


def test_external_data_beside_the_model_loads(tmp_path):
    path = small(tmp_path)
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.data", size_threshold=0)
    assert (tmp_path / "m.data").exists()
    assert import_onnx(path).weights["conv1.weight"].shape == (4, 3, 3, 3)


def test_external_data_of_another_size_is_refused(tmp_path):
    """Found by the fuzzer: external data with no length is the rest of its file; a file
    larger than the tensor was read whole and failed in a reshape (exit 3)."""
    (tmp_path / "w.bin").write_bytes(b"\0" * 8192)

    def mutate(model, path):
        tensor = model.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "w.bin"
    expect_one_line(hostile(tmp_path, mutate), "gives it 8192 bytes from offset 0")


def test_names_from_pytorch_scopes(tmp_path):
    """PyTorch's exporter names nodes by module scope: /layer1/layer1.0/conv1/Conv is the
    layer layer1.0.conv1 (its weights keep the state_dict names)."""
    nodes = [helper.make_node("Conv", ["x", "onnx::Conv_1"], ["a"],
                              name="/layer1/layer1.0/conv1/Conv"),
             helper.make_node("Relu", ["a"], ["b"], name="/layer1/layer1.0/Relu"),
             helper.make_node("Add", ["a", "b"], ["y"], name="/layer1/layer1.0/Add")]
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rand(2, 3, 1, 1), "onnx::Conv_1")])
    path = tmp_path / "n.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    imported = import_onnx(path)
    assert [layer["name"] for layer in imported.spec["layers"]] == [
        "layer1.0.conv1", "layer1.0.relu", "layer1.0.add"]
    assert set(imported.weights) == {"layer1.0.conv1.weight"}
