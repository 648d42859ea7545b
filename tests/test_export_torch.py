"""`export_pytorch`: a spec -> one torch file, proven against PyTorch running it.

For every layer kind a minimal spec is exported; PyTorch's output of the file's Net, with the
weights `convcalc run --save-weights` writes (loaded with strict=True), must equal
`convcalc run`'s within 1e-4 of the output's scale. The files are clean under `ruff check`;
spec -> file -> `convcalc import` (torch.fx) gives back the same params, MACs and shapes
under the same layer names; specs/resnet50.yaml's file takes torchvision's own resnet50.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

import convcalc  # noqa: E402
from convcalc.api import as_analysis  # noqa: E402
from convcalc.executor.weights import initial_weights  # noqa: E402
from convcalc.interop.torch_emit import EMITTERS, NOT_EXPORTED  # noqa: E402
from convcalc.interop.torch_export import ExportError, export_pytorch  # noqa: E402
from convcalc.interop.torch_table import MODULES  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"

# kind -> (input, layers): the smallest spec that exercises it (several for the conventions)
C3 = [3, 9, 10]
CASES: dict[str, tuple[list, list]] = {
    "conv1d": ([3, 17], [{"type": "conv1d", "out_channels": 4, "kernel_size": 3, "stride": 2,
                          "padding": [[1, 2]]}]),
    "conv2d": (C3, [{"type": "conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2,
                     "padding": "same", "dilation": 1}]),
    "conv3d": ([2, 5, 6, 7], [{"type": "conv3d", "out_channels": 3, "kernel_size": [3, 1, 3],
                               "padding": "same", "groups": 1, "bias": False}]),
    "conv_transpose1d": ([3, 7], [{"type": "conv_transpose1d", "out_channels": 2,
                                   "kernel_size": 4, "stride": 2, "padding": [[1, 2]]}]),
    "conv_transpose2d": (C3, [{"type": "conv_transpose2d", "out_channels": 4, "kernel_size": 3,
                               "stride": 2, "padding": 1, "output_padding": 1}]),
    "conv_transpose3d": ([2, 3, 4, 5], [{"type": "conv_transpose3d", "out_channels": 2,
                                         "kernel_size": 2, "stride": 2}]),
    "maxpool1d": ([3, 11], [{"type": "maxpool1d", "kernel_size": 3, "stride": 2,
                             "ceil_mode": True}]),
    "maxpool2d": ([3, 13, 13], [{"type": "maxpool2d", "kernel_size": 2, "stride": 1,
                                 "padding": [[0, 1], [0, 1]]}]),  # Darknet's 2x2/1: 13 -> 13
    "maxpool3d": ([2, 5, 6, 7], [{"type": "maxpool3d", "kernel_size": 3, "stride": 2,
                                  "padding": "same"}]),
    "avgpool1d": ([3, 11], [{"type": "avgpool1d", "kernel_size": 3, "stride": 2, "padding": 1,
                             "count_include_pad": False}]),
    "avgpool2d": (C3, [{"type": "avgpool2d", "kernel_size": 3, "stride": 2, "ceil_mode": True,
                        "divisor_override": 5}]),
    "avgpool3d": ([2, 5, 6, 7], [{"type": "avgpool3d", "kernel_size": 2}]),
    "max_unpool1d": ([3, 11], [{"type": "maxpool1d", "name": "pool", "kernel_size": 3,
                                "stride": 2, "padding": 1},
                               {"type": "max_unpool1d", "kernel_size": 3, "stride": 2,
                                "padding": 1, "indices": "pool", "output_size": 11}]),
    "max_unpool2d": ([3, 9, 10], [{"type": "maxpool2d", "name": "pool", "kernel_size": 2,
                                   "ceil_mode": True},
                                  {"type": "conv2d", "out_channels": 3, "kernel_size": 3,
                                   "padding": 1},
                                  {"type": "max_unpool2d", "kernel_size": 2, "indices": "pool",
                                   "output_size": [9, 10]}]),
    "max_unpool3d": ([2, 4, 4, 6], [{"type": "maxpool3d", "name": "pool", "kernel_size": 2},
                                    {"type": "max_unpool3d", "kernel_size": 2,
                                     "indices": "pool"}]),
    "adaptive_avgpool1d": ([3, 11], [{"type": "adaptive_avgpool1d", "output_size": 4}]),
    "adaptive_avgpool2d": (C3, [{"type": "adaptive_avgpool2d", "output_size": [3, None]}]),
    "adaptive_avgpool3d": ([2, 5, 6, 7], [{"type": "adaptive_avgpool3d", "output_size": 2}]),
    "adaptive_maxpool1d": ([3, 11], [{"type": "adaptive_maxpool1d", "output_size": 4}]),
    "adaptive_maxpool2d": (C3, [{"type": "adaptive_maxpool2d", "output_size": 4}]),
    "adaptive_maxpool3d": ([2, 5, 6, 7], [{"type": "adaptive_maxpool3d", "output_size": 3}]),
    "global_avgpool": (C3, [{"type": "global_avgpool"}]),
    "global_maxpool": (C3, [{"type": "global_maxpool", "keepdim": True}]),
    "batchnorm1d": ([3, 11], [{"type": "batchnorm1d", "eps": 1e-3}]),
    "batchnorm2d": (C3, [{"type": "batchnorm2d"}]),
    "batchnorm3d": ([2, 5, 6, 7], [{"type": "batchnorm3d", "affine": False}]),
    "instancenorm1d": ([3, 11], [{"type": "instancenorm1d", "affine": True}]),
    "instancenorm2d": (C3, [{"type": "instancenorm2d"}]),
    "instancenorm3d": ([2, 5, 6, 7], [{"type": "instancenorm3d"}]),
    "groupnorm": ([4, 5, 6], [{"type": "groupnorm", "num_groups": 2}]),
    "layernorm": (C3, [{"type": "layernorm", "normalized_shape": [9, 10]}]),
    "layernorm2d": (C3, [{"type": "layernorm2d"}]),
    "local_response_norm": ([6, 5, 5], [{"type": "local_response_norm", "size": 3}]),
    "linear": ([3, 2, 6], [{"type": "linear", "out_features": 5}]),
    "flatten": (C3, [{"type": "flatten"}, {"type": "linear", "out_features": 3}]),
    "relu": (C3, [{"type": "relu"}]), "relu6": (C3, [{"type": "relu6"}]),
    "leaky_relu": (C3, [{"type": "leaky_relu", "negative_slope": 0.2}]),
    "elu": (C3, [{"type": "elu", "alpha": 0.5}]), "gelu": (C3, [{"type": "gelu", "approximate": "tanh"}]),
    "silu": (C3, [{"type": "silu"}]), "hardswish": (C3, [{"type": "hardswish"}]),
    "hardsigmoid": (C3, [{"type": "hardsigmoid"}]), "sigmoid": (C3, [{"type": "sigmoid"}]),
    "tanh": (C3, [{"type": "tanh"}]), "mish": (C3, [{"type": "mish"}]),
    "softplus": (C3, [{"type": "softplus", "beta": 2.0}]),
    "hardtanh": (C3, [{"type": "hardtanh", "min_val": -0.5}]),
    "prelu": (C3, [{"type": "prelu", "num_parameters": 3}]),
    "softmax": (C3, [{"type": "softmax", "dim": 1}]),
    "log_softmax": (C3, [{"type": "log_softmax", "dim": -1}]),
    "dropout": (C3, [{"type": "dropout", "p": 0.3}]), "identity": (C3, [{"type": "identity"}]),
    "channel_shuffle": ([6, 4, 4], [{"type": "channel_shuffle", "groups": 3}]),
    "pixel_shuffle": ([8, 3, 4], [{"type": "pixel_shuffle", "upscale_factor": 2}]),
    "depth_to_space": ([8, 3, 4], [{"type": "depth_to_space", "upscale_factor": 2}]),
    "pixel_unshuffle": ([2, 4, 6], [{"type": "pixel_unshuffle", "downscale_factor": 2}]),
    "space_to_depth": ([2, 4, 6], [{"type": "space_to_depth", "downscale_factor": 2}]),
    "add": (C3, [{"type": "conv2d", "name": "a", "out_channels": 3, "kernel_size": 1},
                 {"type": "add", "inputs": ["a", "input"]}]),
    "mul": (C3, [{"type": "mul", "other": 2.5}]),
    "sub": (C3, [{"type": "sigmoid", "name": "s"}, {"type": "sub", "inputs": ["input", "s"]}]),
    "div": (C3, [{"type": "div", "other": 4.0}]),
    "pow": (C3, [{"type": "sigmoid"}, {"type": "pow", "exponent": 2.0}]),
    "rsub": (C3, [{"type": "rsub", "other": 1.0}]),
    "rdiv": (C3, [{"type": "sigmoid"}, {"type": "rdiv", "other": 1.0}]),
    "rpow": (C3, [{"type": "rpow", "other": 2.0}]),
    "concat": (C3, [{"type": "relu", "name": "r"}, {"type": "concat", "inputs": ["input", "r"]}]),
    "stack": (C3, [{"type": "relu", "name": "r"}, {"type": "stack", "inputs": ["input", "r"],
                                                   "dim": 1}]),
    "matmul": ([2, 4, 4], [{"type": "relu", "name": "r"}, {"type": "matmul",
                                                           "inputs": ["input", "r"]}]),
    "bmm": ([2, 4, 4], [{"type": "relu", "name": "r"}, {"type": "bmm", "inputs": ["input", "r"]}]),
    "upsample": (C3, [{"type": "upsample", "scale_factor": 2, "mode": "bilinear",
                       "align_corners": False}]),
    "pad": (C3, [{"type": "pad", "padding": [[1, 2], [0, 3]], "mode": "reflect"}]),
    "crop": ([3, 12, 12], [{"type": "maxpool2d", "name": "p", "kernel_size": 2},
                           {"type": "crop", "inputs": ["input"], "to": "p"}]),
    "slice": (C3, [{"type": "slice", "dim": 2, "start": 1, "end": 8, "step": 2}]),
    "reshape": (C3, [{"type": "reshape", "shape": [3, 90]}]),
    "view": (C3, [{"type": "view", "shape": [-1]}]),
    "permute": (C3, [{"type": "permute", "dims": [0, 2, 3, 1]}]),
    "transpose": (C3, [{"type": "transpose", "dim0": 2, "dim1": 3}]),
    "unflatten": ([12, 5], [{"type": "unflatten", "dim": 1, "sizes": [3, 4]}]),
    "sum": (C3, [{"type": "sum", "dim": [2]}]),
    "mean": (C3, [{"type": "mean", "dim": [2, 3], "keepdim": True}]),
    "amax": (C3, [{"type": "amax", "dim": [1]}]), "max": (C3, [{"type": "max", "dim": [3]}]),
    "amin": (C3, [{"type": "amin", "dim": [2]}]), "min": (C3, [{"type": "min", "dim": [1]}]),
    "split": ([5, 4, 4], [{"type": "split", "name": "s", "split_size_or_sections": [2, 3]},
                          {"type": "relu", "name": "r", "inputs": ["s.1"]},
                          {"type": "mul", "inputs": ["s.0", "s.0"]},
                          {"type": "concat", "inputs": ["r", "mul_2"]}]),
    "chunk": ([5, 4, 4], [{"type": "chunk", "name": "c", "chunks": 2},
                          {"type": "concat", "inputs": ["c.1", "c.0"]}]),
    # kinds PyTorch has no module for: classes the file defines (torch_helpers.py)
    "layer_scale": (C3, [{"type": "layer_scale"}]),
    "channel_bias": ([4, 7], [{"type": "channel_bias"}]),
    "scalar_affine": (C3, [{"type": "scalar_affine"}]),
    "global_response_norm": ([5, 4, 6], [{"type": "global_response_norm"}]),
    "blur_pool2d": (C3, [{"type": "blur_pool2d", "filt_size": 4, "stride": 2}]),
    "coord_channels": ([2, 5, 6], [{"type": "coord_channels", "with_r": True}]),
    "locally_connected1d": ([3, 9], [{"type": "locally_connected1d", "out_channels": 2,
                                      "kernel_size": 3, "stride": 2, "padding": [[1, 2]]}]),
    "locally_connected2d": ([2, 6, 5], [{"type": "locally_connected2d", "out_channels": 3,
                                         "kernel_size": [3, 2], "padding": 1}]),
    "locally_connected3d": ([2, 4, 4, 3], [{"type": "locally_connected3d", "out_channels": 2,
                                            "kernel_size": 2, "bias": False}]),
}

VARIANTS: dict[str, tuple[list, list]] = {  # more forms of the kinds above
    "layer_scale_torchvision": ([4, 5, 6], [{"type": "layer_scale", "name": "layer_scale",
                                             "param": "", "keepdim": True}]),
    "layer_scale_bare_flat": ([4, 5, 6], [{"type": "layer_scale", "param": ""}]),
    "channel_bias_keepdim": ([4, 5, 6], [{"type": "channel_bias", "keepdim": True}]),
    "scalar_affine_no_bias": (C3, [{"type": "scalar_affine", "bias": False}]),
    "grn_channels_last": ([4, 5, 6], [{"type": "global_response_norm", "channels_last": True}]),
    "blur_constant": (C3, [{"type": "blur_pool2d", "pad_mode": "constant", "stride": 1}]),
    "coord_1d": ([2, 7], [{"type": "coord_channels"}]),
    "std_conv": (C3, [{"type": "conv2d", "out_channels": 4, "kernel_size": 3,
                       "weight_standardization": "std", "ws_eps": 1e-5}]),
    "scaled_std_conv": (C3, [{"type": "conv2d", "out_channels": 4, "kernel_size": 3,
                              "groups": 1, "stride": 2, "padding": 1, "bias": False,
                              "weight_standardization": "scaled", "ws_gamma": 1.7}]),
    "std_conv1d_same": ([3, 11], [{"type": "conv1d", "out_channels": 2, "kernel_size": 4,
                                   "stride": 2, "padding": "same",
                                   "weight_standardization": "std"}]),
}


def spec_of(kind: str) -> dict:
    shape, layers = CASES[kind]
    return {"name": kind, "input": shape, "layers": layers}


def load(text: str, path: Path):
    """The exported file as a module, imported as a user would."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def saved_weights(spec) -> dict:
    """What `convcalc run SPEC --save-weights W.npz` writes (the same seeded initialisation),
    with non-trivial BatchNorm statistics."""
    weights = initial_weights(as_analysis(convcalc.check(spec)), 0)
    rng = np.random.default_rng(3)
    for key in weights:
        value = np.asarray(weights[key])
        if value.dtype.kind == "f" and value.size and np.all(value == value.flat[0]) and \
                not key.endswith(("running_var", ".weight")):  # a constant fill would hide a
            weights[key] = rng.normal(0, 0.5, value.shape).astype(np.float32)  # wrong axis
        elif key.endswith("running_mean"):
            weights[key] = rng.normal(0, 0.3, weights[key].shape).astype(np.float32)
        elif key.endswith("running_var") or key.endswith(".weight") and weights[key].ndim == 1:
            weights[key] = rng.uniform(0.5, 1.5, weights[key].shape).astype(np.float32)
    return weights


def assert_runs_alike(spec, tmp_path: Path, name: str = "exported") -> None:
    module = load(export_pytorch(spec), tmp_path / f"{name}.py")
    weights = saved_weights(spec)
    net = module.Net().eval()
    expected = {k: tuple(v.shape) for k, v in weights.items()}
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()},
                        strict=True)
    shape = convcalc.check(spec).input_shape
    x = np.random.default_rng(1).normal(size=(2, *shape)).astype(np.float32)
    ours = convcalc.run(spec, x, weights=weights).output
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    assert theirs.shape == ours.shape
    scale = max(float(np.abs(ours).max()), 1e-6)
    assert float(np.abs(theirs - ours).max()) <= 1e-4 * scale


@pytest.mark.parametrize("kind", sorted(CASES))
def test_kind_runs_as_convcalc_does(kind, tmp_path):
    assert_runs_alike(spec_of(kind), tmp_path, f"kind_{kind}")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_runs_as_convcalc_does(name, tmp_path):
    shape, layers = VARIANTS[name]
    assert_runs_alike({"name": name, "input": shape, "layers": layers}, tmp_path, f"variant_{name}")


def test_helper_classes_are_written_once_and_read_as_published():
    """A file defines each helper class it uses once, and the bare torchvision parameter is
    an nn.Parameter named as the layer (CNBlock.layer_scale), not a module."""
    spec = {"name": "h", "input": [4, 6, 6], "layers": [
        {"type": "layer_scale", "name": "a"}, {"type": "layer_scale", "name": "b"},
        {"type": "layer_scale", "name": "layer_scale", "param": "", "keepdim": True},
        {"type": "blur_pool2d", "name": "blur"}]}
    text = export_pytorch(spec)
    assert text.count("class LayerScale(nn.Module):") == 1
    assert text.count("class BlurPool2d(nn.Module):") == 1 and "import math" in text
    assert "self.layer_scale = nn.Parameter(torch.full((4, 1, 1), 1e-05))" in text


def test_every_kind_exports_or_says_why():
    """A new kind fails here until it has an emitter (and a case above) or a stated reason."""
    for kind in REGISTRY:
        assert (kind in EMITTERS) != (kind in NOT_EXPORTED), kind
        if kind in EMITTERS:
            assert kind in CASES, f"{kind} has an emitter but no case in CASES"


def test_every_module_written_is_one_the_importer_reads():
    """The table's way back: each nn class the exporter writes is in torch_table.MODULES."""
    for kind in sorted(CASES):
        text = export_pytorch(spec_of(kind))
        for used in set(__import__("re").findall(r"nn\.([A-Z]\w+)\(", text)):
            assert used in MODULES or used in ("Module", "Sequential", "ModuleList",
                                               "ModuleDict", "Parameter"), (kind, used)


def test_tf_same_stride_two_is_an_explicit_pad():
    text = export_pytorch(spec_of("conv2d"))
    assert "F.pad(x, (0, 1, 0, 0))" in text and "padding=(1, 0)" in text  # at 9x10
    assert 'padding="same"' not in text


def test_avgpool_same_without_pads_is_refused():
    spec = {"name": "p", "input": [3, 9, 9], "layers": [
        {"type": "avgpool2d", "name": "pool", "kernel_size": 2, "padding": "same",
         "count_include_pad": False}]}
    with pytest.raises(ExportError, match=r"layer pool \(avgpool2d: .*count_include_pad"):
        export_pytorch(spec)


def test_spec_with_errors_is_one_line():
    spec = {"name": "bad", "input": [3, 8, 8], "layers": [{"type": "conv2d", "out_channels": 4,
                                                           "kernel_size": 11}]}
    with pytest.raises(ExportError) as err:
        export_pytorch(spec)
    assert "\n" not in str(err.value) and "has errors" in str(err.value)


RUNNABLE = sorted(p.name for p in SPECS.glob("*.yaml"))  # every shipped spec exports and runs
FAST = ["yolov3_tiny.yaml", "edges.yaml", "dcgan_generator.yaml", "lenet5.yaml"]  # under ~5 s
FAST_RUN = ["mobilenet_v2.yaml", "edges.yaml", "dcgan_generator.yaml", "lenet5.yaml"]


def ruff_clean(paths: list[Path]) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    done = subprocess.run([ruff, "check", "--no-cache", "--isolated", "--select", "E,F,W",
                           "--line-length", "120", *map(str, paths)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_files_are_ruff_clean(tmp_path):
    paths = []
    for name in RUNNABLE:
        path = tmp_path / name.replace(".yaml", ".py")
        path.write_text(export_pytorch(SPECS / name))
        paths.append(path)
    for kind in sorted(CASES):
        path = tmp_path / f"kind_{kind}.py"
        path.write_text(export_pytorch(spec_of(kind)))
        paths.append(path)
    ruff_clean(paths)


def test_resnet50_reads_like_torchvision():
    text = export_pytorch(SPECS / "resnet50.yaml")
    assert "class Bottleneck(nn.Module)" in text and "class Net(nn.Module)" in text
    assert "self.layer1 = nn.Sequential(" in text and "x = self.layer1(x)" in text
    assert "nn.Conv2d(in_channels, planes, 1, bias=False)" in text


def reaching_output(graph) -> set[str]:
    nodes = {node.name: node for node in graph.nodes}
    live, todo = set(), [graph.nodes[-1].name]
    while todo:
        name = todo.pop()
        if name in nodes and name not in live:
            live.add(name)
            todo.extend(nodes[name].inputs)
    return live


def round_trip(name, tmp_path: Path) -> None:
    """spec -> PyTorch file -> convcalc import (torch.fx) -> check: the same params, MACs and
    shapes, layer by layer under the same names (functional layers are named by fx)."""
    from convcalc.interop.torch_import import import_module
    path = SPECS / name if isinstance(name, str) else name
    name = name if isinstance(name, str) else "mini.yaml"
    original = convcalc.check(path)
    module = load(export_pytorch(path), tmp_path / f"rt_{name.replace('.yaml', '')}.py")
    imported = import_module(module.Net().eval(), original.input_shape, f"{name}:Net")
    again = convcalc.check(imported.spec)
    assert again.ok, again.failing()
    live = reaching_output(original.graph)  # a second head (yolov3-tiny's) is not computed
    mine = {layer.name: layer for layer in original.layers if layer.name in live}
    assert again.totals.params == sum(layer.params for layer in mine.values())
    assert again.totals.macs == sum(layer.macs for layer in mine.values())
    assert again.output_shape == original.output_shape
    theirs = {layer.name: layer for layer in again.layers}
    weighted = [n for n, layer in mine.items() if layer.params]
    assert weighted and all(n in theirs for n in weighted), set(weighted) - set(theirs)
    for n in mine:
        if n in theirs:
            assert theirs[n].output_shape == mine[n].output_shape, n
            assert theirs[n].params == mine[n].params, n


MINI = yaml.safe_load("""
name: mini_resnet
input: [3, 32, 32]
blocks:
  basic:
    args: {planes: 8}
    layers:
      - {type: conv2d, name: conv1, out_channels: "${planes}", kernel_size: 3, padding: 1, bias: false}
      - {type: batchnorm2d, name: bn1}
      - {type: relu, name: relu}
      - {type: conv2d, name: conv2, out_channels: "${planes}", kernel_size: 3, padding: 1, bias: false}
      - {type: batchnorm2d, name: bn2}
      - {type: add, name: add, inputs: [bn2, input]}
  down:
    args: {planes: 8, stride: 2}
    layers:
      - {type: conv2d, name: conv1, out_channels: "${planes}", kernel_size: 3, stride: "${stride}", padding: 1}
      - {type: batchnorm2d, name: bn1}
      - {type: conv2d, name: downsample.0, inputs: [input], out_channels: "${planes}", kernel_size: 1,
         stride: "${stride}", bias: false}
      - {type: batchnorm2d, name: downsample.1}
      - {type: add, name: add, inputs: [bn1, downsample.1]}
layers:
  - {type: conv2d, name: stem, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: basic, name: layer1, planes: 8, repeat: 2}
  - {type: down, name: layer2.0, planes: 16}
  - {type: basic, name: layer2, planes: 16, repeat: {count: 2, start: 1}}
  - {type: down, name: layer3.0, planes: 32, stride: 1}
  - {type: global_avgpool, name: pool}
  - {type: linear, name: fc, out_features: 10}
""")


def test_blocks_become_classes_and_repeats_sequentials(tmp_path):
    text = export_pytorch(MINI)
    assert "class Basic(nn.Module):" in text and "def __init__(self, planes):" in text
    assert "class Down(nn.Module):" in text and "def __init__(self, in_channels, planes, stride):" in text
    assert "self.layer1 = nn.Sequential(Basic(planes=8), Basic(planes=8))" in text
    assert "self.downsample = nn.Sequential(" in text and "x = self.layer2(x)" in text
    assert_runs_alike(MINI, tmp_path, "mini")
    round_trip(MINI, tmp_path)


SEGNET = yaml.safe_load("""
name: segnet_mini
input: [3, 15, 16]
layers:
  - {type: conv2d, name: enc.conv1, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: maxpool2d, name: enc.pool1, kernel_size: 2}
  - {type: conv2d, name: enc.conv2, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: maxpool2d, name: enc.pool2, kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}
  - {type: max_unpool2d, name: dec.unpool2, kernel_size: 3, stride: 2, padding: 1,
     indices: enc.pool2, output_size: [7, 8]}
  - {type: conv2d, name: dec.conv2, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: max_unpool2d, name: dec.unpool1, kernel_size: 2, indices: enc.pool1,
     output_size: [15, 16]}
  - {type: add, name: skip, inputs: [dec.unpool1, enc.conv1]}
""")


def test_max_unpool_reads_the_indices_its_pool_returns(tmp_path):
    """SegNet's pattern: each max-pool returns (output, indices), the decoder's unpools read
    them far downstream; the file runs as convcalc does and imports back as the same layers."""
    text = export_pytorch(SEGNET)
    assert '"pool1": nn.MaxPool2d(2, stride=2, return_indices=True),' in text, text
    assert "x, enc_pool1_indices = self.enc.pool1(enc_conv1)" in text, text
    assert "self.dec.unpool1(x, enc_pool1_indices, output_size=(15, 16))" in text, text
    assert_runs_alike(SEGNET, tmp_path, "segnet")
    round_trip(SEGNET, tmp_path)
    from convcalc.interop.torch_import import import_module
    module = load(text, tmp_path / "segnet_back.py")
    back = import_module(module.Net().eval(), (3, 15, 16), "segnet:Net").spec["layers"]
    unpools = {layer["name"]: layer["indices"] for layer in back if "unpool" in layer["type"]}
    assert unpools == {"dec.unpool2": "enc.pool2", "dec.unpool1": "enc.pool1"}


def test_max_unpool_after_an_uneven_pad_is_refused():
    """Indices after an explicit F.pad would count positions in the padded input."""
    spec = {"name": "u", "input": [2, 8, 8], "layers": [
        {"type": "maxpool2d", "name": "pool", "kernel_size": 2, "stride": 1,
         "padding": [[0, 1], [0, 1]]},
        {"type": "max_unpool2d", "name": "up", "kernel_size": 2, "stride": 1,
         "indices": "pool", "output_size": [8, 8]}]}
    with pytest.raises(ExportError, match="layer pool .*indices are used") as err:
        export_pytorch(spec)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", FAST)
def test_round_trip_through_import(name, tmp_path):
    round_trip(name, tmp_path)


HELPER_KINDS = ["layer_scale", "channel_bias", "scalar_affine", "global_response_norm",
                "blur_pool2d", "coord_channels", "locally_connected1d", "locally_connected2d",
                "locally_connected3d", "layernorm2d"]


@pytest.mark.parametrize("name", HELPER_KINDS + sorted(VARIANTS))
def test_helper_classes_import_back_as_their_kind(name, tmp_path):
    """The classes an exported file defines are one layer each again through `convcalc
    import` (their convcalc_kind), with the same figures and names."""
    shape, layers = CASES[name] if name in CASES else VARIANTS[name]
    first = {"type": f"conv{len(shape) - 1}d", "out_channels": shape[0], "kernel_size": 1}
    layers = [{"name": f"l{i}", **layer} for i, layer in enumerate([first, *layers])]
    spec = {"name": name, "input": shape, "layers": layers}
    round_trip(spec, tmp_path)
    from convcalc.interop.torch_import import import_module
    module = load(export_pytorch(spec), tmp_path / f"back_{name}.py")
    imported = import_module(module.Net().eval(), tuple(shape), f"{name}:Net")
    kinds = [layer["type"] for layer in imported.spec["layers"] if layer["type"] != "pad"]
    assert kinds == [layer["type"] for layer in layers], imported.spec["layers"]  # TF SAME: a pad


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(RUNNABLE) - set(FAST)))
def test_round_trip_through_import_zoo(name, tmp_path):
    round_trip(name, tmp_path)


@pytest.mark.parametrize("name", FAST_RUN)
def test_spec_runs_as_convcalc_does(name, tmp_path):
    assert_runs_alike(SPECS / name, tmp_path, f"run_{name.replace('.yaml', '')}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(RUNNABLE) - set(FAST_RUN)))
def test_spec_runs_as_convcalc_does_zoo(name, tmp_path):
    assert_runs_alike(SPECS / name, tmp_path, f"run_{name.replace('.yaml', '')}")


@pytest.mark.slow  # about 10 s
def test_resnet50_takes_torchvisions_weights(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
    exported = load(export_pytorch(SPECS / "resnet50.yaml"), tmp_path / "r50.py").Net().eval()
    exported.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=generator)
    with torch.no_grad():
        ours, theirs = exported(x), reference(x)
    scale = float(theirs.abs().max())
    assert float((ours - theirs).abs().max()) <= 1e-4 * scale


def test_yaml_text_exports_too():
    text = yaml.safe_dump(spec_of("relu"))
    assert "class Net(nn.Module)" in export_pytorch(text)


def test_readme_shows_the_file_as_written(tmp_path):
    """The README's tour exports its alex224.yaml; the class it shows is the real output."""
    import re
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    spec = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "# alex224.yaml" in b)
    shown = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
                 if b.startswith("class Net"))
    (tmp_path / "alex224.yaml").write_text(spec)
    assert shown in export_pytorch(tmp_path / "alex224.yaml")


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "lenet.py"
    result = cli("export", SPECS / "lenet5.yaml", "--to", "pytorch", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    assert out.read_text() == convcalc.api.export_pytorch(str(SPECS / "lenet5.yaml"))
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "torch.Size([1, 10])" in run.stdout, run.stderr


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [2, 9, 9]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: 3}\n"
                   "  - {type: avgpool2d, name: pool, kernel_size: 2, padding: same, "
                   "count_include_pad: false}\n")
    out = tmp_path / "bad.py"
    result = cli("export", bad, "--to", "pytorch", "-o", out)
    assert result.returncode == 1 and "layer pool" in result.stderr and "avgpool2d" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()
    assert cli("export", bad, "--to", "pytorch", "-o", out, "--opset", "13").returncode == 2
