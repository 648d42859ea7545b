"""The arithmetic and statistics kinds (layers/pointwise.py, norm_stats.py, arith.py, add
and mul with a constant) against independent oracles, as test_executor.py does for the
others: each runs as a tiny spec through the runner, with `--verify`'s direct reference,
and is compared with a float64 NumPy formula written here from the definition and with
torch.nn.functional. Then their state_dict names and shapes against PyTorch's and timm's
own modules, and their spec errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcalc.analysis import Options, analyze_text
from oracle import reference as R
from test_executor import Case, W, B, assert_close, run_case, torch, F
from convcalc.executor.verify import TOLERANCE


# -- float64 formulas, channels-first (N, C, *spatial) ---------------------------------------

def _norm(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def _channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(np.minimum(beta * x, 50))) / beta)


def _grn(x, w, b, eps=1e-6):
    g = np.sqrt((x * x).sum(axis=(2, 3), keepdims=True))
    return x + _channel(b, 4) + _channel(w, 4) * x * (g / (g.mean(axis=1, keepdims=True) + eps))


def _t_grn(x, w, b, eps=1e-6):
    g = x.norm(p=2, dim=(2, 3), keepdim=True)
    return x + b.view(1, -1, 1, 1) + w.view(1, -1, 1, 1) * x * (g / (g.mean(1, keepdim=True) + eps))


def _t_ln2d(x, w, b, eps=1e-6):
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w, b, eps).permute(0, 3, 1, 2)


def _t_instance(x, w, mean=None, var=None, affine=True):
    return F.instance_norm(x, mean, var, w[W] if affine else None, w[B] if affine else None,
                           use_input_stats=mean is None)


RM, RV = "l.running_mean", "l.running_var"


def _blur(size, channels):
    """timm BlurPool2d's filter: the outer product of C(n-1, k) / 2^(n-1), per channel."""
    from math import comb
    taps = np.array([comb(size - 1, k) for k in range(size)], np.float64) / 2 ** (size - 1)
    return np.broadcast_to(np.outer(taps, taps), (channels, 1, size, size)).copy()


def _std(w):
    flat = w.reshape(len(w), -1)
    return ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-6)).reshape(w.shape)


def _t_std(w, gain=None):
    """timm StdConv2d / ScaledStdConv2d: F.batch_norm of the weight in training mode."""
    return F.batch_norm(w.reshape(1, w.shape[0], -1), None, None, weight=gain, training=True,
                        momentum=0.0, eps=1e-6).reshape_as(w)


def _bn(v, w):
    return ((v - _channel(w["n.running_mean"], 4)) / np.sqrt(_channel(w["n.running_var"], 4) + 1e-5)
            * _channel(w["n.weight"], 4) + _channel(w["n.bias"], 4))

CASES = [
    # normalisation
    Case("layernorm2d", (6, 4, 5), "{type: layernorm2d, name: l}",
         lambda x, w: _norm(x, 1, 1e-6) * _channel(w[W], 4) + _channel(w[B], 4),
         lambda x, w: _t_ln2d(x, w[W], w[B])),
    Case("layernorm2d_no_affine_1d", (5, 7), "{type: layernorm2d, eps: 0.00001, affine: false}",
         lambda x, w: _norm(x, 1, 1e-5),
         lambda x, w: F.layer_norm(x.transpose(1, 2), (5,), eps=1e-5).transpose(1, 2)),
    Case("layernorm_trailing_two", (3, 4, 5), "{type: layernorm, name: l, normalized_shape: [4, 5]}",
         lambda x, w: _norm(x, (2, 3), 1e-5) * w[W] + w[B],
         lambda x, w: F.layer_norm(x, (4, 5), w[W], w[B])),
    Case("layernorm_all_no_bias", (3, 4, 5),
         "{type: layernorm, name: l, normalized_shape: [3, 4, 5], bias: false, eps: 0.001}",
         lambda x, w: _norm(x, (1, 2, 3), 1e-3) * w[W],
         lambda x, w: F.layer_norm(x, (3, 4, 5), w[W], None, 1e-3)),
    Case("layernorm_flat_no_affine", (3, 3),
         "{type: flatten}\n{type: layernorm, normalized_shape: 9, elementwise_affine: false}",
         lambda x, w: _norm(x.reshape(len(x), 9), 1, 1e-5),
         lambda x, w: F.layer_norm(x.flatten(1), (9,))),
    Case("instancenorm2d_affine", (4, 5, 6), "{type: instancenorm2d, name: l, affine: true}",
         lambda x, w: _norm(x, (2, 3), 1e-5) * _channel(w[W], 4) + _channel(w[B], 4),
         lambda x, w: _t_instance(x, w)),
    Case("instancenorm1d", (3, 8), "{type: instancenorm1d, num_features: 3}",
         lambda x, w: _norm(x, 2, 1e-5), lambda x, w: _t_instance(x, w, affine=False)),
    Case("instancenorm3d_running", (2, 3, 4, 3),
         "{type: instancenorm3d, name: l, affine: true, track_running_stats: true}",
         lambda x, w: ((x - _channel(w[RM], 5)) / np.sqrt(_channel(w[RV], 5) + 1e-5)
                       * _channel(w[W], 5) + _channel(w[B], 5)),
         lambda x, w: _t_instance(x, w, w[RM], w[RV])),
    Case("global_response_norm", (5, 4, 6), "{type: global_response_norm, name: l}",
         lambda x, w: _grn(x, w[W], w[B]), lambda x, w: _t_grn(x, w[W], w[B])),
    # activations with parameters
    Case("prelu_per_channel", (4, 3, 5), "{type: prelu, name: l, num_parameters: 4}",
         lambda x, w: np.where(x >= 0, x, _channel(w[W], 4) * x),
         lambda x, w: F.prelu(x, w[W])),
    Case("prelu_one", (3, 6), "{type: prelu, name: l}",
         lambda x, w: np.where(x >= 0, x, w[W][0] * x), lambda x, w: F.prelu(x, w[W])),
    Case("mish", (3, 4, 5), "{type: mish}",
         lambda x, w: x * np.tanh(_softplus(x)), lambda x, w: F.mish(x)),
    Case("softplus", (3, 4, 5), "{type: softplus, beta: 2, threshold: 3}",
         lambda x, w: _softplus(x, 2.0, 3.0), lambda x, w: F.softplus(x, 2, 3)),
    Case("hardtanh", (3, 4, 5), "{type: hardtanh, min_val: -0.5, max_val: 2}",
         lambda x, w: np.clip(x, -0.5, 2), lambda x, w: F.hardtanh(x, -0.5, 2)),
    # learned scales
    Case("layer_scale_timm", (4, 3, 5), "{type: layer_scale, name: l}",
         lambda x, w: x * _channel(w["l.gamma"], 4),
         lambda x, w: x * w["l.gamma"].view(1, -1, 1, 1)),
    Case("layer_scale_torchvision", (4, 3, 5),
         "{type: layer_scale, name: l, param: '', keepdim: true}",
         lambda x, w: x * w["l"][None], lambda x, w: x * w["l"]),
    Case("channel_bias", (4, 3, 5), "{type: channel_bias, name: l}",
         lambda x, w: x + _channel(w["l.bias"], 4),
         lambda x, w: x + w["l.bias"].view(1, -1, 1, 1)),
    Case("channel_bias_bare_1d", (3, 6), "{type: channel_bias, name: l, param: '', keepdim: true}",
         lambda x, w: x + w["l"][None], lambda x, w: x + w["l"]),
    Case("scalar_affine", (3, 4), "{type: scalar_affine, name: l}",
         lambda x, w: x * w[W] + w[B], lambda x, w: x * w[W] + w[B]),
    Case("scalar_affine_no_bias", (3, 4), "{type: scalar_affine, name: l, bias: false}",
         lambda x, w: x * w[W], lambda x, w: x * w[W]),
    # arithmetic with a constant, and of two inputs
    Case("add_constant", (3, 4), "{type: add, other: 1.5}",
         lambda x, w: x + 1.5, lambda x, w: torch.add(x, 1.5)),
    Case("mul_constant", (3, 4), "{type: mul, other: 0.17}",
         lambda x, w: x * 0.17, lambda x, w: torch.mul(x, 0.17)),
    Case("sub_constant", (3, 4), "{type: sub, other: 0.25}",
         lambda x, w: x - 0.25, lambda x, w: torch.sub(x, 0.25)),
    Case("div_constant", (3, 4), "{type: div, other: 3}",
         lambda x, w: x / 3, lambda x, w: torch.div(x, 3)),
    Case("pow_constant", (3, 4), "{type: pow, exponent: 3}",
         lambda x, w: x ** 3, lambda x, w: torch.pow(x, 3.0)),
    Case("rsub", (3, 4), "{type: rsub, other: 1}",
         lambda x, w: 1 - x, lambda x, w: torch.rsub(x, 1.0)),
    Case("rdiv", (3, 4), "{type: sigmoid}\n{type: rdiv, other: 2}",
         lambda x, w: 2 / (1 / (1 + np.exp(-x))), lambda x, w: 2.0 / torch.sigmoid(x)),
    Case("rpow", (3, 4), "{type: rpow, other: 2}",
         lambda x, w: 2.0 ** x, lambda x, w: 2.0 ** x),
    Case("sub_two_inputs_broadcast", (3, 4, 5),
         "{type: global_avgpool, name: g, keepdim: true}\n{type: sub, inputs: [input, g]}",
         lambda x, w: x - x.mean(axis=(2, 3), keepdims=True),
         lambda x, w: torch.sub(x, x.mean(dim=(2, 3), keepdim=True))),
    Case("div_two_inputs", (3, 4), "{type: sigmoid, name: s}\n{type: div, inputs: [input, s]}",
         lambda x, w: x * (1 + np.exp(-x)), lambda x, w: torch.div(x, torch.sigmoid(x))),
    # fixed filters, standardised convs, pools with TensorFlow SAME padding
    Case("blur_pool2d", (3, 9, 8), "{type: blur_pool2d}",
         lambda x, w: R.conv(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect"),
                             _blur(3, 3), None, 2, groups=3),
         lambda x, w: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"),
                               torch.from_numpy(_blur(3, 3)).to(x.dtype), None, 2, groups=3)),
    Case("blur_pool2d_5_constant", (2, 9, 10), "{type: blur_pool2d, filt_size: 5, stride: 1, pad_mode: constant}",
         lambda x, w: R.conv(x, _blur(5, 2), None, 1, 2, groups=2),
         lambda x, w: F.conv2d(x, torch.from_numpy(_blur(5, 2)).to(x.dtype), None, 1, 2, groups=2)),
    Case("conv2d_std", (4, 7, 6), "{type: conv2d, name: l, out_channels: 5, kernel_size: 3, padding: 1, weight_standardization: std}",
         lambda x, w: R.conv(x, _std(w[W]), w[B], 1, 1),
         lambda x, w: F.conv2d(x, _t_std(w[W]), w[B], 1, 1)),
    Case("conv2d_scaled_std", (4, 7, 6),
         "{type: conv2d, name: l, out_channels: 4, kernel_size: 3, stride: 2, groups: 2, weight_standardization: scaled, ws_gamma: 1.7}",
         lambda x, w: R.conv(x, _std(w[W]) * w["l.gain"] * 1.7 / np.sqrt(18), w[B], 2, groups=2),
         lambda x, w: F.conv2d(x, _t_std(w[W], w["l.gain"].view(-1) * 1.7 / 18 ** 0.5), w[B], 2, groups=2)),
    Case("conv2d_std_then_batchnorm", (3, 6, 6),
         "{type: conv2d, name: l, out_channels: 4, kernel_size: 3, bias: false, weight_standardization: std}\n{type: batchnorm2d, name: n}",
         lambda x, w: _bn(R.conv(x, _std(w[W])), w),
         lambda x, w: F.batch_norm(F.conv2d(x, _t_std(w[W])), w["n.running_mean"], w["n.running_var"], w["n.weight"], w["n.bias"])),
    Case("maxpool2d_same", (3, 7, 8), "{type: maxpool2d, kernel_size: 3, stride: 2, padding: same}",
         lambda x, w: R.max_pool(x, 3, 2, ((1, 1), (0, 1))),
         lambda x, w: F.max_pool2d(F.pad(x, (0, 1, 1, 1), value=-float("inf")), 3, 2)),
    Case("avgpool2d_same_timm", (3, 7, 8), "{type: avgpool2d, kernel_size: 3, stride: 2, padding: same}",
         lambda x, w: R.avg_pool(x, 3, 2, ((1, 1), (0, 1))),
         lambda x, w: F.avg_pool2d(F.pad(x, (0, 1, 1, 1)), 3, 2)),
    Case("avgpool1d_same_tf", (3, 10), "{type: avgpool1d, kernel_size: 4, stride: 3, padding: same, count_include_pad: false}",
         lambda x, w: R.avg_pool(x, 4, 3, ((1, 2),), count_include_pad=False),
         lambda x, w: F.avg_pool1d(F.pad(x, (1, 2)), 4, 3)
         / F.avg_pool1d(F.pad(torch.ones_like(x), (1, 2)), 4, 3)),
    Case("pow_two_inputs", (3, 4), "{type: sigmoid, name: s}\n{type: pow, inputs: [s, input]}",
         lambda x, w: (1 / (1 + np.exp(-x))) ** x, lambda x, w: torch.pow(torch.sigmoid(x), x)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kind_matches_formula_and_verify(case):
    report, weights, x, result = run_case(case)
    assert result.ok, [(r.name, r.predicted, r.produced) for r in result.layers]
    expected = case.reference(x.astype(np.float64), {k: v.astype(np.float64)
                                                    for k, v in weights.items()})
    from test_executor import to_first
    assert_close(to_first(result.output), expected, case.id)
    worst = max(r.error[1] for r in result.layers)
    assert worst <= TOLERANCE, f"--verify's direct reference disagrees: {worst:.3g}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kind_matches_torch(case):
    pytest.importorskip("torch")
    from test_executor import to_first
    report, weights, x, result = run_case(case, verify=False)
    tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()}
    with torch.no_grad():
        expected = case.torch(torch.from_numpy(x), tensors).numpy()
    assert_close(to_first(result.output), expected, case.id)


def _weights(spec_layer: str, shape) -> dict:
    text = f"input: {list(shape)}\nlayers:\n  - {spec_layer}\n"
    report = analyze_text(text, "w.yaml", Options())
    assert not [d for d in report.diagnostics if d.severity.value == "error"]
    (layer,) = report.layers
    return {(f"l.{k}" if k else "l"): tuple(w.shape) for k, w in layer.weights.items()}, layer


def _state(module) -> dict:
    return {f"l.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


def test_state_dict_names_and_shapes_equal_pytorch_modules():
    nn = pytest.importorskip("torch").nn
    pairs = [
        ("{type: layernorm, name: l, normalized_shape: [4, 5]}", (3, 4, 5), nn.LayerNorm([4, 5])),
        ("{type: layernorm, name: l, normalized_shape: 5, bias: false}", (3, 4, 5),
         nn.LayerNorm(5, bias=False)),
        ("{type: instancenorm2d, name: l, affine: true, track_running_stats: true}",
         (3, 4, 5), nn.InstanceNorm2d(3, affine=True, track_running_stats=True)),
        ("{type: instancenorm1d, name: l}", (3, 4), nn.InstanceNorm1d(3)),
        ("{type: prelu, name: l, num_parameters: 3}", (3, 4, 5), nn.PReLU(3)),
        ("{type: prelu, name: l}", (3, 4, 5), nn.PReLU()),
    ]
    for text, shape, module in pairs:
        found, layer = _weights(text, shape)
        assert found == _state(module), text
        trainable = sum(w.size for w in layer.weights.values() if w.trainable)
        assert trainable == sum(p.numel() for p in module.parameters()), text
    found, _ = _weights("{type: prelu, name: l}", (3, 4, 5))
    assert float(nn.PReLU().weight.detach()) == 0.25  # the init convcalc's fresh weights use


def _grn_module():
    return pytest.importorskip("timm.layers.grn").GlobalResponseNorm


def test_state_dict_names_equal_timm_and_torchvision():
    pytest.importorskip("torch")
    timm_layers = pytest.importorskip("timm.layers")
    from torchvision.models.convnext import CNBlock
    pairs = [
        ("{type: layernorm2d, name: l}", (6, 4, 4), timm_layers.LayerNorm2d(6)),
        ("{type: global_response_norm, name: l}", (6, 4, 4),
         _grn_module()(6, channels_last=False)),
        ("{type: layer_scale, name: l}", (6, 4, 4), timm_layers.LayerScale(6)),
    ]
    for text, shape, module in pairs:
        assert _weights(text, shape)[0] == _state(module), text
    block = CNBlock(6, 1e-6, 0.0)
    found, _ = _weights("{type: layer_scale, name: l, param: '', keepdim: true}", (6, 4, 4))
    assert found == {"l": tuple(block.layer_scale.shape)}


def test_timm_grn_and_layer_norm_2d_outputs():
    torch_ = pytest.importorskip("torch")
    timm_layers = pytest.importorskip("timm.layers")
    grn = _grn_module()(5, channels_last=False)
    norm = timm_layers.LayerNorm2d(5)
    with torch_.no_grad():
        for p in [*grn.parameters(), *norm.parameters()]:
            p.copy_(torch_.randn(p.shape))
    spec = ("input: [5, 4, 6]\nlayers:\n  - {type: global_response_norm, name: g}\n"
            "  - {type: layernorm2d, name: n}\n")
    from convcalc.executor.runner import Executor
    report = analyze_text(spec, "t.yaml", Options())
    weights = {f"g.{k}": v.numpy() for k, v in grn.state_dict().items()}
    weights.update({f"n.{k}": v.numpy() for k, v in norm.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((2, 5, 4, 6)).astype(np.float32)
    out = Executor(report, weights).run(np.moveaxis(x, 1, -1)).output
    with torch_.no_grad():
        expected = norm(grn(torch_.from_numpy(x))).numpy()
    assert_close(np.moveaxis(out, -1, 1), expected, "timm GRN + LayerNorm2d")


@pytest.mark.parametrize("layers,code", [
    ("{type: add}", "missing-input"),
    ("{type: relu, name: r}\n  - {type: add, other: 1, inputs: [input, r]}", "missing-input"),
    ("{type: sub, inputs: [input, input, input]}", "missing-input"),
    ("{type: rsub}", "invalid-value"),
    ("{type: layernorm, normalized_shape: 3}", "shape-mismatch"),
    ("{type: layernorm, normalized_shape: [0]}", "invalid-value"),
    ("{type: prelu, num_parameters: 2}", "channel-mismatch"),
    ("{type: hardtanh, min_val: 2, max_val: 1}", "invalid-value"),
    ("{type: instancenorm1d}", "rank-mismatch"),
])
def test_spec_errors(layers, code):
    report = analyze_text(f"input: [4, 5, 6]\nlayers:\n  - {layers}\n", "e.yaml", Options())
    codes = [d.code for d in report.diagnostics if d.severity.value == "error"]
    assert code in codes, codes
