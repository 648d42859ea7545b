"""`convcalc export --to onnx` against onnxruntime: every exported kind and every shipped spec
gives `convcalc run`'s output within 1e-4 of the output's scale; the model passes
onnx.checker (full_check); its batch axis is dynamic; initializers are the state_dict names
`run --save-weights` writes; and spec -> ONNX -> `convcalc import` gives back the spec's
params, MACs, layer shapes and names."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convcalc import api
from convcalc.layers.base import REGISTRY

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from convcalc.interop.onnx_export import EMIT, NOT_EXPORTED, ExportError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
FAST_SPECS = {"lenet5", "edges", "dcgan_generator"}


def onnxruntime_output(model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, what
    scale = max(float(np.abs(want).max()), 1e-6)
    err = float(np.abs(got - want).max()) / scale
    assert err <= 1e-4, f"{what}: relative error {err:.2e}"


def sample(shape, batch=2, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


def compare(source, batch=2) -> None:
    model = api.export_onnx(source, seed=3)
    shape = api.check(source).input_shape
    x = sample(shape, batch)
    assert_close(onnxruntime_output(model, x), api.run(source, x, seed=3).output, str(source)[:80])


# -- every kind, one minimal spec each ---------------------------------------------------------

KIND_SPECS = {
    "conv": ("[3, 9, 11]", ["{type: conv2d, out_channels: 4, kernel_size: [3, 2], stride: 2, padding: [[1, 0], [2, 1]], dilation: [1, 2]}"]),
    "conv_same": ("[3, 10, 9]", ["{type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: same}"]),
    "conv_grouped": ("[4, 8, 8]", ["{type: conv2d, out_channels: 8, kernel_size: 3, groups: 2, bias: false, padding: 1}"]),
    "conv_reflect": ("[2, 8, 8]", ["{type: conv2d, out_channels: 3, kernel_size: 3, padding: 1, padding_mode: reflect}"]),
    "conv_replicate": ("[2, 8, 8]", ["{type: conv2d, out_channels: 3, kernel_size: 3, padding: 2, padding_mode: replicate}"]),
    "conv1d": ("[3, 17]", ["{type: conv1d, out_channels: 4, kernel_size: 5, stride: 3}"]),
    "conv3d": ("[2, 5, 6, 7]", ["{type: conv3d, out_channels: 3, kernel_size: 3, padding: 1}"]),
    "conv_transpose": ("[4, 5, 6]", ["{type: conv_transpose2d, out_channels: 3, kernel_size: 4, stride: 2, padding: 1, output_padding: 1}"]),
    "conv_transpose_grouped": ("[4, 5, 5]", ["{type: conv_transpose2d, out_channels: 6, kernel_size: 3, stride: 2, groups: 2, dilation: 2}"]),
    "conv_transpose1d": ("[3, 7]", ["{type: conv_transpose1d, out_channels: 2, kernel_size: 3, stride: 2}"]),
    "linear": ("[3, 2, 2]", ["flatten", "{type: linear, out_features: 5}"]),
    "broadcast_ranks": ("[4, 5, 6]", ["{type: mean, name: m, dim: [1, 2]}", "{type: add, inputs: [input, m]}"]),
    "linear_on_last_axis": ("[3, 4, 6]", ["{type: linear, out_features: 5, bias: false}"]),
    "batchnorm": ("[4, 5, 5]", ["{type: batchnorm2d}", "relu"]),
    "batchnorm1d": ("[6, 5]", ["{type: batchnorm1d, affine: false}"]),
    "groupnorm": ("[6, 5, 5]", ["{type: groupnorm, num_groups: 3}"]),
    "instancenorm": ("[4, 5, 6]", ["{type: instancenorm2d, affine: true}"]),
    "layernorm": ("[4, 5, 6]", ["{type: layernorm, normalized_shape: [5, 6]}"]),
    "layernorm2d": ("[4, 5, 6]", ["{type: layernorm2d}"]),
    "lrn": ("[7, 5, 5]", ["{type: local_response_norm, size: 3, alpha: 0.01, beta: 0.75, k: 2.0}"]),
    "activations": ("[4, 5, 5]", ["sigmoid", "tanh", "relu6", "{type: leaky_relu, negative_slope: 0.2}",
                                  "{type: elu, alpha: 0.7}", "silu", "mish", "hardswish", "hardsigmoid",
                                  "{type: hardtanh, min_val: -0.5, max_val: 0.8}", "relu", "identity", "dropout"]),
    "softplus": ("[4, 5, 5]", ["{type: softplus, beta: 2.0, threshold: 1.0}"]),
    "gelu": ("[4, 5, 5]", ["gelu"]),
    "gelu_tanh": ("[4, 5, 5]", ["{type: gelu, approximate: tanh}"]),
    "prelu": ("[4, 5, 5]", ["{type: prelu, num_parameters: 4}"]),
    "prelu_shared": ("[4, 5, 5]", ["{type: prelu}"]),
    "softmax": ("[4, 5, 5]", ["{type: softmax, dim: 1}", "{type: log_softmax, dim: -1}"]),
    "maxpool": ("[3, 9, 10]", ["{type: maxpool2d, kernel_size: 3, stride: 2, padding: 1}"]),
    "maxpool_dilated": ("[3, 11, 11]", ["{type: maxpool2d, kernel_size: 3, stride: 2, dilation: 2}"]),
    "maxpool_same": ("[3, 9, 10]", ["{type: maxpool2d, kernel_size: 3, stride: 2, padding: same}"]),
    "maxpool_ceil": ("[3, 10, 10]", ["{type: maxpool2d, kernel_size: 3, stride: 2, ceil_mode: true}"]),
    "avgpool": ("[3, 9, 10]", ["{type: avgpool2d, kernel_size: 3, stride: 2, padding: 1, count_include_pad: false}"]),
    "avgpool_include_pad": ("[3, 9, 10]", ["{type: avgpool2d, kernel_size: 3, stride: 2, padding: 1}"]),
    "avgpool1d": ("[3, 12]", ["{type: avgpool1d, kernel_size: 4}"]),
    "maxpool3d": ("[2, 6, 6, 6]", ["{type: maxpool3d, kernel_size: 2}"]),
    "adaptive": ("[3, 8, 12]", ["{type: adaptive_avgpool2d, output_size: [2, 3]}"]),
    "adaptive_max": ("[3, 8, 12]", ["{type: adaptive_maxpool2d, output_size: 1}"]),
    "global": ("[3, 8, 12]", ["{type: global_avgpool}"]),
    "global_keep": ("[3, 8, 12]", ["{type: global_maxpool, keepdim: true}"]),
    "residual": ("[4, 6, 6]", ["{type: conv2d, name: a, out_channels: 4, kernel_size: 3, padding: 1}",
                               "{type: add, inputs: [a, input]}", "{type: mul, inputs: [add_1, a]}",
                               "{type: sub, inputs: [mul_2, input]}", "{type: div, other: 2.0}"]),
    "constants": ("[4, 6, 6]", ["{type: add, other: 0.5}", "{type: mul, other: -2.0}", "{type: rsub, other: 1.0}",
                                "{type: rdiv, other: 3.0}", "{type: pow, exponent: 2.0}"]),
    "se_gate": ("[4, 6, 6]", ["{type: global_avgpool, name: squeeze, keepdim: true}",
                              "{type: conv2d, out_channels: 4, kernel_size: 1}",
                              "sigmoid", "{type: mul, inputs: [input, sigmoid_2]}"]),
    "concat": ("[4, 6, 6]", ["{type: conv2d, name: a, out_channels: 2, kernel_size: 1}",
                             "{type: concat, inputs: [input, a]}"]),
    "flatten_reshape": ("[4, 6, 6]", ["{type: flatten, start_dim: 2}", "{type: reshape, shape: [6, 4, 6]}",
                                      "{type: view, shape: [-1]}"]),
    "permute_transpose": ("[4, 5, 6]", ["{type: permute, dims: [0, 2, 3, 1]}", "{type: transpose, dim0: 1, dim1: 2}"]),
    "unflatten": ("[12, 5]", ["{type: unflatten, dim: 1, sizes: [3, 4]}"]),
    "upsample_nearest": ("[3, 5, 6]", ["{type: upsample, scale_factor: 2}"]),
    "upsample_bilinear": ("[3, 5, 6]", ["{type: upsample, scale_factor: 2, mode: bilinear}"]),
    "upsample_align": ("[3, 5, 6]", ["{type: upsample, size: [9, 7], mode: bilinear, align_corners: true}"]),
    "upsample_size_nearest": ("[3, 5, 6]", ["{type: upsample, size: [8, 13]}"]),
    "crop": ("[3, 9, 10]", ["{type: crop, size: [5, 6]}"]),
    "crop_to": ("[3, 12, 12]", ["{type: conv2d, name: small, out_channels: 3, kernel_size: 5}",
                                "{type: crop, name: c, inputs: input, to: small}", "{type: add, inputs: [c, small]}"]),
    "slice": ("[8, 6, 6]", ["{type: slice, dim: 1, start: 1, end: 7, step: 2}", "{type: slice, dim: -1, start: -4}"]),
    "pad": ("[3, 5, 6]", ["{type: pad, padding: [[1, 2], [0, 3]], value: 0.5}", "{type: pad, padding: 1, mode: reflect}",
                          "{type: pad, padding: 2, mode: replicate}"]),
    "split": ("[6, 4, 4]", ["{type: split, name: s, split_size_or_sections: [2, 4]}",
                            "{type: conv2d, name: c, inputs: s.1, out_channels: 2, kernel_size: 1}",
                            "{type: concat, inputs: [s.0, c]}"]),
    "chunk": ("[6, 4, 4]", ["{type: chunk, name: s, chunks: 2, dim: 2}", "{type: add, inputs: [s.0, s.1]}"]),
    "reductions": ("[4, 5, 6]", ["{type: mean, dim: [2, 3], keepdim: true}", "{type: sum, dim: 1}"]),
    "amax_amin": ("[4, 5, 6]", ["{type: amax, dim: -1}", "{type: amin, dim: 1, keepdim: true}"]),
    "pixel_shuffle": ("[8, 3, 4]", ["{type: pixel_shuffle, upscale_factor: 2}", "{type: pixel_unshuffle, downscale_factor: 2}"]),
    "channel_shuffle": ("[6, 3, 4]", ["{type: channel_shuffle, groups: 3}"]),
    "matmul": ("[4, 5, 6]", ["{type: permute, name: t, dims: [0, 1, 3, 2]}", "{type: matmul, inputs: [input, t]}"]),
    "layer_scale": ("[4, 5, 6]", ["{type: layer_scale}"]),
    "channel_bias": ("[4, 5, 6]", ["{type: channel_bias}"]),
    "max_unpool": ("[3, 8, 8]", ["{type: maxpool2d, name: p, kernel_size: 2}", "relu",
                                 "{type: max_unpool2d, kernel_size: 2, indices: p}"]),
    "max_unpool_size": ("[3, 9, 9]", ["{type: maxpool2d, name: p, kernel_size: 3, stride: 2}",
                                      "{type: max_unpool2d, kernel_size: 3, stride: 2, indices: p, output_size: [9, 9]}"]),
    "locally_connected": ("[3, 7, 8]", ["{type: locally_connected2d, out_channels: 4, kernel_size: [3, 2], stride: [2, 1], padding: 1}"]),
    "locally_connected1d": ("[2, 9]", ["{type: locally_connected1d, out_channels: 3, kernel_size: 3, bias: false}"]),
    "coord_channels": ("[2, 5, 7]", ["{type: coord_channels, with_r: true}"]),
    "stack": ("[2, 5, 7]", ["{type: relu, name: r}", "{type: stack, inputs: [input, r], dim: 2}"]),
    "stack_last": ("[2, 5, 7]", ["{type: stack, inputs: [input, input], dim: -1}"]),
    "scalar_affine": ("[2, 5, 7]", ["{type: scalar_affine, weight_init: 0.5, bias_init: 0.25}"]),
    "global_response_norm": ("[4, 5, 7]", ["{type: conv2d, out_channels: 4, kernel_size: 1}", "global_response_norm"]),
    "global_response_norm_last": ("[4, 5, 7]", ["{type: conv2d, out_channels: 4, kernel_size: 1}",
                                                "{type: global_response_norm, channels_last: true}"]),
    "blur_pool": ("[3, 9, 10]", ["blur_pool2d", "{type: blur_pool2d, filt_size: 4, stride: 1, pad_mode: constant}"]),
    "space_to_depth": ("[3, 4, 6]", ["{type: space_to_depth, downscale_factor: 2}"]),
}


def spec_text(shape: str, layers: list[str]) -> str:
    return f"input: {shape}\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)


@pytest.mark.parametrize("case", sorted(KIND_SPECS))
def test_each_kind_matches_onnxruntime(case):
    shape, layers = KIND_SPECS[case]
    text = spec_text(shape, layers)
    report = api.check(text)
    assert not report.failing(), [d.format() for d in report.failing()]
    compare(text)


def test_every_kind_is_exported_or_refused_with_a_reason():
    kinds = set(REGISTRY)
    assert kinds <= set(EMIT) | set(NOT_EXPORTED), sorted(kinds - set(EMIT) - set(NOT_EXPORTED))
    tested = set()
    for _shape, layers in KIND_SPECS.values():
        for layer in layers:
            word = layer.split("type: ")[1].split(",")[0].split("}")[0] if "type:" in layer else layer
            tested.add(word.strip())
    assert set(EMIT) - tested <= {"conv2d", "conv3d", "max", "min", "bmm", "depth_to_space", "rpow",
                                 "batchnorm3d", "instancenorm1d", "instancenorm3d", "conv_transpose3d",
                                 "maxpool1d", "avgpool3d", "adaptive_avgpool1d", "adaptive_avgpool3d",
                                 "adaptive_maxpool1d", "adaptive_maxpool3d", "max_unpool1d",
                                 "max_unpool3d", "locally_connected3d"}


def test_a_kind_without_an_export_is_refused_by_name(monkeypatch):
    """A kind missing from EMIT (as a newly added kind would be) is one line naming the layer
    and the kind, never a silently different network."""
    from convcalc.interop import onnx_export
    monkeypatch.delitem(onnx_export.EMIT, "blur_pool2d")
    text = "input: [2, 8, 8]\nlayers:\n  - {type: blur_pool2d, name: blur}\n"
    with pytest.raises(ExportError) as caught:
        api.export_onnx(text)
    assert "blur: blur_pool2d cannot be exported" in str(caught.value) and "\n" not in str(caught.value)


# -- shipped specs ------------------------------------------------------------------------------

def _spec_params():
    return [pytest.param(p, id=p.stem, marks=() if p.stem in FAST_SPECS else pytest.mark.slow) for p in SPECS]


@pytest.mark.parametrize("spec", _spec_params())
def test_shipped_spec_matches_onnxruntime(spec):
    compare(spec)


# the exporter writes layernorm, layernorm2d and gelu as primitive nodes (ReduceMean, Sub,
# Sqrt, Erf, ...), which the importer does not reassemble into those kinds (yet)
NO_ROUND_TRIP: dict[str, str] = {}  # spec stem -> why it cannot round-trip (none today)


def _round_trip_params():
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.xfail(
        reason=NO_ROUND_TRIP[p.id], strict=True)] if p.id in NO_ROUND_TRIP else p.marks)
        for p in _spec_params()]


@pytest.mark.parametrize("spec", _round_trip_params())
def test_round_trip_through_import(spec, tmp_path):
    """spec -> ONNX -> convcalc import -> check: the same params, MACs and shapes, by name."""
    out = tmp_path / "m.onnx"
    onnx.save(api.export_onnx(spec), out)
    back, there = api.check(out), api.check(spec)
    assert back.totals.params == there.totals.params
    assert back.totals.macs == there.totals.macs
    mine = {layer.name: layer for layer in there.layers}
    named = {layer.name: layer for layer in back.layers if layer.name in mine}
    weighted = {n for n, layer in mine.items() if layer.params}
    assert weighted <= set(named), sorted(weighted - set(named))[:5]  # names survive
    for name, layer in named.items():
        assert tuple(layer.output_shape) == tuple(mine[name].output_shape), name
        assert layer.params == mine[name].params, name


# -- the model's contract -----------------------------------------------------------------------

def test_initializers_are_the_saved_weight_names_and_weights_are_used(tmp_path):
    spec = ROOT / "specs" / "resnet18.yaml"
    executor, _ = api.prepare(str(spec), spec.read_text(), None, 5, ())
    model = api.export_onnx(spec, weights=executor.weights)
    names = {i.name for i in model.graph.initializer if "/" not in i.name}
    assert names == set(executor.weights)  # exactly the keys run --save-weights writes
    # the weights given, not the seed's: another seed's export differs, this one matches seed 5
    x = sample((3, 224, 224), 1)
    assert_close(onnxruntime_output(model, x), api.run(spec, x, seed=5).output, "weights")


def test_batch_axis_is_dynamic_and_checker_passes():
    spec = ROOT / "specs" / "lenet5.yaml"
    model = api.export_onnx(spec)
    onnx.checker.check_model(model, full_check=True)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "N"
    for batch in (1, 5):
        x = sample(api.check(spec).input_shape, batch)
        assert_close(onnxruntime_output(model, x), api.run(spec, x).output, f"batch {batch}")


def test_opset_18_writes_reduce_axes_as_inputs():
    text = spec_text(*KIND_SPECS["groupnorm"])
    model = api.export_onnx(text, opset=18)
    assert model.opset_import[0].version == 18
    x = sample((6, 5, 5))
    assert_close(onnxruntime_output(model, x), api.run(text, x).output, "opset 18")


# -- the command --------------------------------------------------------------------------------

def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_writes_a_model_onnxruntime_runs(tmp_path):
    out = tmp_path / "lenet.onnx"
    result = cli("export", ROOT / "specs" / "lenet5.yaml", "--to", "onnx", "-o", out, "--seed", "2")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and out.exists()
    x = sample(api.check(ROOT / "specs" / "lenet5.yaml").input_shape)
    assert_close(onnxruntime_output(onnx.load(out), x), api.run(ROOT / "specs" / "lenet5.yaml", x, seed=2).output, "cli")


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        input: [2, 8, 8]
        layers:
          - {type: conv2d, out_channels: 4, kernel_size: 3}
          - {type: avgpool2d, name: pool, kernel_size: 2, divisor_override: 3}
        """))
    out = tmp_path / "bad.onnx"
    for opset in ("12", "99"):  # too old for convcalc; newer than any opset onnx defines
        result = cli("export", bad, "--to", "onnx", "-o", out, "--opset", opset)
        assert result.returncode == 1 and f"opset {opset}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]
    same = cli("export", bad, "--to", "onnx", "-o", bad)
    assert same.returncode == 2 and "spec itself" in same.stderr
    assert cli("export", bad, "--to", "keras", "-o", out).returncode == 2
    bad.write_text("input: [2, 8, 8]\nlayers:\n  - {type: linear, name: fc, out_features: 3, in_features: 5}\n")
    broken = cli("export", bad, "--to", "onnx", "-o", out)
    assert broken.returncode == 1 and "fc" in broken.stderr and len(broken.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_model_past_protobufs_2_gib_keeps_its_weights_beside_it(tmp_path, monkeypatch):
    """Past protobuf's 2 GiB a model cannot be one file: the weights go to OUT.onnx.data (ONNX
    external data, as torch.onnx.export writes), both checked before either is in place.
    The limit is lowered here so that lenet5 crosses it; the real one is 2**31 - 1 bytes."""
    from typer.testing import CliRunner

    from convcalc.cli import _register_commands, app
    from convcalc.interop import onnx_export
    from convcalc.interop.onnx_import import import_onnx

    _register_commands()
    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 50_000)
    spec = ROOT / "specs" / "lenet5.yaml"
    out = tmp_path / "lenet.onnx"
    result = CliRunner().invoke(app, ["export", str(spec), "--to", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "past protobuf's 2 GiB" in result.output and "lenet.onnx.data" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.onnx", "lenet.onnx.data"]
    assert out.stat().st_size < 50_000 < (tmp_path / "lenet.onnx.data").stat().st_size
    x = sample(api.check(spec).input_shape)
    import onnxruntime as ort
    session = ort.InferenceSession(str(out))
    (theirs,) = session.run(None, {"input": x})
    assert_close(theirs, api.run(spec, x).output, "external data")
    back = import_onnx(out)  # the importer reads the data from the model's folder
    assert api.check(back.spec).totals.params == api.check(spec).totals.params
    # the data file cannot be one the command reads
    spec_copy = tmp_path / "s.onnx.data"
    spec_copy.write_text(spec.read_text())
    refused = CliRunner().invoke(app, ["export", str(spec_copy), "--to", "onnx",
                                       "-o", str(tmp_path / "s.onnx")])
    assert refused.exit_code == 2 and "reads" in refused.output
    assert not (tmp_path / "s.onnx").exists()
    # the API: one ModelProto cannot hold them (one line saying where they can go); save_onnx
    with pytest.raises(ExportError, match="past protobuf's 2 GiB") as err:
        api.export_onnx(spec)
    assert "save_onnx" in err.value.hint
    files = api.save_onnx(spec, tmp_path / "api.onnx")
    assert [p.name for p in files] == ["api.onnx", "api.onnx.data"]
    monkeypatch.undo()
    assert api.save_onnx(spec, tmp_path / "small.onnx") == [tmp_path / "small.onnx"]
    assert not (tmp_path / "small.onnx.data").exists()
