"""The executor against independent oracles.

Every layer kind runs as a one-layer (or tiny) spec through the runner and is compared with
the loop reference (tests/oracle/reference.py: channels-first, float64, plain loops) and with
torch.nn.functional (float32), within 1e-4 of the output's scale; `--verify`'s direct
references must agree too. Then: BatchNorm folding, the seeds' worked examples, liveness
(the measured peak equals the analysis' walk), the memory guard, weights, and a property
test: over random layer configurations the executed shape equals the analysed shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.analysis import Options, analyze_text
from convcalc.executor.runner import Executor, RunError, check_memory, estimate_bytes
from convcalc.executor.verify import TOLERANCE, verifier
from convcalc.executor.weights import expected_weights, initial_weights
from convcalc.layers import REGISTRY
from layout_cases import LAYOUT_CASES
from oracle import reference as R

try:
    import torch
    F = torch.nn.functional
except ImportError:  # the torch comparisons skip; the loop reference still runs
    torch = F = None


# -- helpers ---------------------------------------------------------------------------------

def to_last(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if x.ndim > 2 else x


def to_first(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


def analyzed(text: str, input_shape=None):
    report = analyze_text(text, "case.yaml", Options(input_shape=input_shape))
    errors = [d.format() for d in report.diagnostics if d.severity.value == "error"]
    assert not errors, errors
    return report


def random_weights(report, seed: int = 1) -> dict[str, np.ndarray]:
    """Weights with non-trivial values everywhere, BatchNorm statistics included."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in expected_weights(report).items():
        if name.endswith("num_batches_tracked"):
            out[name] = np.zeros(shape, np.int64)
        elif name.endswith("running_var"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    return out


def assert_close(got, expected, what=""):
    expected = np.asarray(expected, np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    scale = max(float(np.abs(expected).max()), 1e-6)
    error = float(np.abs(got.astype(np.float64) - expected).max())
    assert error <= 1e-4 * scale, f"{what}: error {error:.3g} at scale {scale:.3g}"


@dataclass
class Case:
    id: str
    input: tuple[int, ...]  # per sample, channels-first (the spec's input)
    layers: str  # YAML list items, one per line
    reference: Callable  # (x channels-first float64, weights) -> expected
    torch: Callable | None = None  # (x channels-first tensor, weights as tensors) -> tensor

    @property
    def spec(self) -> str:
        items = "\n".join(f"  - {line.strip()}" for line in self.layers.strip().splitlines())
        return f"input: {list(self.input)}\nlayers:\n{items}\n"


def run_case(case: Case, fold: bool = True, verify: bool = True):
    report = analyzed(case.spec)
    weights = random_weights(report)
    x = np.random.default_rng(7).standard_normal((2, *case.input)).astype(np.float32) * 2
    executor = Executor(report, weights, fold=fold)
    check = verifier(executor) if verify else None
    result = executor.run(to_last(x), check=check)
    return report, weights, x, result


def pad_t(x, pairs, mode="constant", value=0.0):
    """F.pad with (before, after) pairs in axis order (F.pad wants them last axis first)."""
    flat = [p for pair in reversed(pairs) for p in pair]
    return F.pad(x, flat, mode=mode, value=value) if mode == "constant" else F.pad(x, flat, mode=mode)


# -- the cases: every layer kind -------------------------------------------------------------

def _unfold_local(x, w, b, kernel, stride, pairs):
    """locally-connected in torch: unfold the patches, one weight bank per position."""
    cols = F.unfold(pad_t(x, pairs), kernel, stride=stride)  # (N, Cin*kh*kw, L)
    out_hw, cout = w.shape[:2], w.shape[2]
    bank = w.reshape(out_hw[0] * out_hw[1], cout, -1)  # (L, Cout, Cin*kh*kw)
    out = torch.einsum("ncl,loc->nol", cols, bank).reshape(x.shape[0], cout, *out_hw)
    return out + b


def _coords_t(x, with_r):
    grids = torch.meshgrid(*(torch.linspace(-1, 1, n) if n > 1 else torch.full((1,), -1.0)
                             for n in x.shape[2:]), indexing="ij")
    extra = list(grids) + ([torch.sqrt(sum(g * g for g in grids))] if with_r else [])
    stacked = torch.stack(extra).expand(x.shape[0], *torch.stack(extra).shape)
    return torch.cat([x, stacked], dim=1)


def _unpool_t(pool, unpool, x, kernel, size=None):
    out, idx = pool(x, kernel, return_indices=True)
    return unpool(out, idx, kernel, output_size=size)


def _unpool_r(x, kernel, size=None):
    out, idx = R.max_pool(x, kernel, return_indices=True)
    return R.max_unpool(out, idx, kernel, output_size=size)


W = "l.weight"
B = "l.bias"
ACT = {"relu": "", "relu6": "", "leaky_relu": ", negative_slope: 0.2", "elu": ", alpha: 0.5",
       "silu": "", "hardswish": "", "hardsigmoid": "", "sigmoid": "", "tanh": ""}
TORCH_ACT = {"relu": F and F.relu, "relu6": F and F.relu6,
             "leaky_relu": F and (lambda t: F.leaky_relu(t, 0.2)),
             "elu": F and (lambda t: F.elu(t, 0.5)), "silu": F and F.silu,
             "hardswish": F and F.hardswish, "hardsigmoid": F and F.hardsigmoid,
             "sigmoid": torch and torch.sigmoid, "tanh": torch and torch.tanh}
REF_ACT = {"relu": R.relu, "relu6": R.relu6, "leaky_relu": lambda x: R.leaky_relu(x, 0.2),
           "elu": lambda x: R.elu(x, 0.5), "silu": R.silu, "hardswish": R.hardswish,
           "hardsigmoid": R.hardsigmoid, "sigmoid": R.sigmoid, "tanh": R.tanh}

CASES = [
    # convolutions
    Case("conv2d", (3, 9, 11), "{type: conv2d, name: l, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}",
         lambda x, w: R.conv(x, w[W], w[B], 2, 1),
         lambda x, w: F.conv2d(x, w[W], w[B], 2, 1)),
    Case("conv1d_asymmetric_dilated", (4, 13),
         "{type: conv1d, name: l, out_channels: 6, kernel_size: 3, stride: 2, padding: [[2, 1]], dilation: 2}",
         lambda x, w: R.conv(x, w[W], w[B], 2, ((2, 1),), 2),
         lambda x, w: F.conv1d(pad_t(x, [(2, 1)]), w[W], w[B], 2, 0, 2)),
    Case("conv2d_asymmetric", (2, 8, 9),
         "{type: conv2d, name: l, out_channels: 3, kernel_size: [2, 3], stride: [2, 1], padding: [[0, 1], [1, 2]], dilation: [1, 2], bias: false}",
         lambda x, w: R.conv(x, w[W], None, (2, 1), ((0, 1), (1, 2)), (1, 2)),
         lambda x, w: F.conv2d(pad_t(x, [(0, 1), (1, 2)]), w[W], None, (2, 1), 0, (1, 2))),
    *[Case(f"conv2d_{mode}", (2, 6, 7),
           f"{{type: conv2d, name: l, out_channels: 3, kernel_size: 3, padding: 2, padding_mode: {mode}}}",
           lambda x, w, mode=mode: R.conv(x, w[W], w[B], 1, 2, padding_mode=mode),
           lambda x, w, mode=mode: F.conv2d(pad_t(x, [(2, 2), (2, 2)], mode), w[W], w[B]))
      for mode in ("reflect", "replicate", "circular")],
    Case("conv2d_same_even_kernel", (2, 7, 6), "{type: conv2d, name: l, out_channels: 3, kernel_size: 4, padding: same}",
         lambda x, w: R.conv(x, w[W], w[B], 1, "same"),
         lambda x, w: F.conv2d(x, w[W], w[B], 1, "same")),
    Case("conv2d_groups", (4, 7, 7), "{type: conv2d, name: l, out_channels: 6, kernel_size: [3, 1], groups: 2, padding: 1}",
         lambda x, w: R.conv(x, w[W], w[B], 1, 1, groups=2),
         lambda x, w: F.conv2d(x, w[W], w[B], 1, 1, groups=2)),
    Case("conv2d_depthwise", (4, 8, 8), "{type: conv2d, name: l, out_channels: 8, kernel_size: 3, groups: 4, stride: 2, padding: 1}",
         lambda x, w: R.conv(x, w[W], w[B], 2, 1, groups=4),
         lambda x, w: F.conv2d(x, w[W], w[B], 2, 1, groups=4)),
    Case("conv3d", (2, 5, 6, 7), "{type: conv3d, name: l, out_channels: 3, kernel_size: [3, 2, 3], stride: [1, 2, 2], padding: 1}",
         lambda x, w: R.conv(x, w[W], w[B], (1, 2, 2), 1),
         lambda x, w: F.conv3d(x, w[W], w[B], (1, 2, 2), 1)),
    Case("conv_transpose1d", (3, 6), "{type: conv_transpose1d, name: l, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}",
         lambda x, w: R.conv_transpose(x, w[W], w[B], 2, 1, 1),
         lambda x, w: F.conv_transpose1d(x, w[W], w[B], 2, 1, 1)),
    Case("conv_transpose2d_groups_dilated", (4, 5, 4),
         "{type: conv_transpose2d, name: l, out_channels: 6, kernel_size: [3, 2], stride: [2, 3], padding: [1, 0], output_padding: [1, 0], dilation: 2, groups: 2}",
         lambda x, w: R.conv_transpose(x, w[W], w[B], (2, 3), (1, 0), (1, 0), groups=2, dilation=2),
         lambda x, w: F.conv_transpose2d(x, w[W], w[B], (2, 3), (1, 0), (1, 0), 2, 2)),
    Case("conv_transpose2d_asymmetric", (2, 4, 5),
         "{type: conv_transpose2d, name: l, out_channels: 3, kernel_size: 3, stride: 2, padding: [[0, 1], [1, 0]]}",
         lambda x, w: R.conv_transpose(x, w[W], w[B], 2, ((0, 1), (1, 0))),
         lambda x, w: F.conv_transpose2d(x, w[W], w[B], 2)[:, :, 0:-1, 1:]),
    Case("conv_transpose3d_tiling", (2, 3, 2, 3), "{type: conv_transpose3d, name: l, out_channels: 2, kernel_size: 2, stride: 2}",
         lambda x, w: R.conv_transpose(x, w[W], w[B], 2),
         lambda x, w: F.conv_transpose3d(x, w[W], w[B], 2)),
    Case("locally_connected2d", (2, 5, 6), "{type: locally_connected2d, name: l, out_channels: 3, kernel_size: 2, padding: [[1, 0], [0, 1]], stride: [1, 2]}",
         lambda x, w: R.locally_connected(x, w[W], w[B], (1, 2), ((1, 0), (0, 1))),
         lambda x, w: _unfold_local(x, w[W], w[B], 2, (1, 2), [(1, 0), (0, 1)])),
    Case("locally_connected1d", (3, 9), "{type: locally_connected1d, name: l, out_channels: 2, kernel_size: 3, stride: 2}",
         lambda x, w: R.locally_connected(x, w[W], w[B], 2)),
    Case("locally_connected3d", (1, 3, 4, 4), "{type: locally_connected3d, name: l, out_channels: 2, kernel_size: 2, bias: false}",
         lambda x, w: R.locally_connected(x, w[W], None)),
    # pooling
    Case("maxpool2d_ceil", (3, 9, 10), "{type: maxpool2d, kernel_size: 3, stride: 2, padding: 1, ceil_mode: true}",
         lambda x, w: R.max_pool(x, 3, 2, 1, ceil_mode=True),
         lambda x, w: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    Case("maxpool1d_dilated", (2, 11), "{type: maxpool1d, kernel_size: 3, stride: 2, padding: 1, dilation: 2}",
         lambda x, w: R.max_pool(x, 3, 2, 1, 2),
         lambda x, w: F.max_pool1d(x, 3, 2, 1, 2)),
    Case("maxpool3d", (2, 4, 5, 6), "{type: maxpool3d, kernel_size: 2}",
         lambda x, w: R.max_pool(x, 2), lambda x, w: F.max_pool3d(x, 2)),
    Case("avgpool2d_exclude_pad_ceil", (3, 9, 10),
         "{type: avgpool2d, kernel_size: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
         lambda x, w: R.avg_pool(x, 3, 2, 1, True, False),
         lambda x, w: F.avg_pool2d(x, 3, 2, 1, True, False)),
    Case("avgpool1d_include_pad_ceil", (2, 10), "{type: avgpool1d, kernel_size: 4, stride: 3, padding: 2, ceil_mode: true}",
         lambda x, w: R.avg_pool(x, 4, 3, 2, True, True),
         lambda x, w: F.avg_pool1d(x, 4, 3, 2, True, True)),
    Case("avgpool2d_divisor", (2, 6, 6), "{type: avgpool2d, kernel_size: 2, divisor_override: 3}",
         lambda x, w: R.avg_pool(x, 2, divisor_override=3),
         lambda x, w: F.avg_pool2d(x, 2, divisor_override=3)),
    Case("avgpool3d", (2, 4, 4, 5), "{type: avgpool3d, kernel_size: [2, 2, 3], stride: 1, padding: [1, 0, 1]}",
         lambda x, w: R.avg_pool(x, (2, 2, 3), 1, (1, 0, 1)),
         lambda x, w: F.avg_pool3d(x, (2, 2, 3), 1, (1, 0, 1))),
    Case("adaptive_avgpool2d", (3, 7, 9), "{type: adaptive_avgpool2d, output_size: [3, 4]}",
         lambda x, w: R.adaptive_avg_pool(x, (3, 4)),
         lambda x, w: F.adaptive_avg_pool2d(x, (3, 4))),
    Case("adaptive_avgpool1d", (2, 10), "{type: adaptive_avgpool1d, output_size: 3}",
         lambda x, w: R.adaptive_avg_pool(x, 3), lambda x, w: F.adaptive_avg_pool1d(x, 3)),
    Case("adaptive_avgpool3d", (2, 5, 4, 6), "{type: adaptive_avgpool3d, output_size: [2, null, 4]}",
         lambda x, w: R.adaptive_avg_pool(x, (2, None, 4)),
         lambda x, w: F.adaptive_avg_pool3d(x, (2, None, 4))),
    Case("adaptive_maxpool1d", (2, 10), "{type: adaptive_maxpool1d, output_size: 4}",
         lambda x, w: R.adaptive_max_pool(x, 4), lambda x, w: F.adaptive_max_pool1d(x, 4)),
    Case("adaptive_maxpool2d", (2, 7, 5), "{type: adaptive_maxpool2d, output_size: [3, 2]}",
         lambda x, w: R.adaptive_max_pool(x, (3, 2)), lambda x, w: F.adaptive_max_pool2d(x, (3, 2))),
    Case("adaptive_maxpool3d", (2, 4, 5, 3), "{type: adaptive_maxpool3d, output_size: 2}",
         lambda x, w: R.adaptive_max_pool(x, 2), lambda x, w: F.adaptive_max_pool3d(x, 2)),
    Case("global_avgpool", (4, 5, 6), "{type: global_avgpool}",
         lambda x, w: x.mean(axis=(2, 3)), lambda x, w: x.mean(dim=(2, 3))),
    Case("global_maxpool_keepdim", (4, 3, 5, 6), "{type: global_maxpool, keepdim: true}",
         lambda x, w: x.max(axis=(2, 3, 4), keepdims=True),
         lambda x, w: x.amax(dim=(2, 3, 4), keepdim=True)),
    Case("max_unpool2d", (3, 6, 8), "{type: maxpool2d, name: pool, kernel_size: 2}\n{type: max_unpool2d, kernel_size: 2, indices: pool}",
         lambda x, w: _unpool_r(x, 2),
         lambda x, w: _unpool_t(F.max_pool2d, F.max_unpool2d, x, 2)),
    Case("max_unpool2d_output_size", (2, 7, 7),
         "{type: maxpool2d, name: pool, kernel_size: 2}\n{type: max_unpool2d, kernel_size: 2, indices: pool, output_size: [7, 7]}",
         lambda x, w: _unpool_r(x, 2, (7, 7)),
         lambda x, w: _unpool_t(F.max_pool2d, F.max_unpool2d, x, 2, (7, 7))),
    Case("max_unpool1d", (2, 8), "{type: maxpool1d, name: pool, kernel_size: 2}\n{type: max_unpool1d, kernel_size: 2, indices: pool}",
         lambda x, w: _unpool_r(x, 2),
         lambda x, w: _unpool_t(F.max_pool1d, F.max_unpool1d, x, 2)),
    Case("max_unpool3d", (2, 4, 4, 6), "{type: maxpool3d, name: pool, kernel_size: 2}\n{type: max_unpool3d, kernel_size: 2, indices: pool}",
         lambda x, w: _unpool_r(x, 2),
         lambda x, w: _unpool_t(F.max_pool3d, F.max_unpool3d, x, 2)),
    # resampling
    Case("upsample_nearest", (2, 4, 5), "{type: upsample, scale_factor: 2}",
         lambda x, w: R.upsample(x, scale_factor=2),
         lambda x, w: F.interpolate(x, scale_factor=2)),
    Case("upsample_nearest_size", (2, 4, 5), "{type: upsample, size: [7, 8]}",
         lambda x, w: R.upsample(x, size=(7, 8)), lambda x, w: F.interpolate(x, size=(7, 8))),
    Case("upsample_bilinear", (2, 4, 5), "{type: upsample, scale_factor: 2, mode: bilinear}",
         lambda x, w: R.upsample(x, scale_factor=2, mode="bilinear"),
         lambda x, w: F.interpolate(x, scale_factor=2, mode="bilinear")),
    Case("upsample_bilinear_align_corners", (2, 4, 5),
         "{type: upsample, size: [7, 9], mode: bilinear, align_corners: true}",
         lambda x, w: R.upsample(x, size=(7, 9), mode="bilinear", align_corners=True),
         lambda x, w: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)),
    Case("upsample_linear", (2, 6), "{type: upsample, scale_factor: 3, mode: linear}",
         lambda x, w: R.upsample(x, scale_factor=3, mode="linear"),
         lambda x, w: F.interpolate(x, scale_factor=3, mode="linear")),
    Case("upsample_trilinear", (2, 3, 4, 2), "{type: upsample, size: [5, 6, 4], mode: trilinear}",
         lambda x, w: R.upsample(x, size=(5, 6, 4), mode="trilinear"),
         lambda x, w: F.interpolate(x, size=(5, 6, 4), mode="trilinear")),
    Case("pad_constant", (2, 4, 5), "{type: pad, padding: [[1, 2], [0, 3]], value: 0.5}",
         lambda x, w: R.pad(x, ((1, 2), (0, 3)), value=0.5),
         lambda x, w: pad_t(x, [(1, 2), (0, 3)], value=0.5)),
    *[Case(f"pad_{mode}", (2, 4, 5), f"{{type: pad, padding: [[1, 2], [3, 0]], mode: {mode}}}",
           lambda x, w, mode=mode: R.pad(x, ((1, 2), (3, 0)), mode),
           lambda x, w, mode=mode: pad_t(x, [(1, 2), (3, 0)], mode))
      for mode in ("reflect", "replicate", "circular")],
    Case("pad1d", (2, 5), "{type: pad, padding: [[2, 1]], mode: reflect}",
         lambda x, w: R.pad(x, ((2, 1),), "reflect"), lambda x, w: pad_t(x, [(2, 1)], "reflect")),
    Case("crop_size", (2, 6, 7), "{type: crop, size: [3, 4]}",
         lambda x, w: R.center_crop(x, (3, 4)), lambda x, w: x[:, :, 1:4, 1:5]),
    Case("crop_to_concat", (2, 8, 8),
         "{type: conv2d, name: l, out_channels: 3, kernel_size: 3}\n{type: crop, name: c, inputs: [input], to: l}\n{type: concat, inputs: [c, l]}",
         lambda x, w: R.concat([R.center_crop(x, (6, 6)), R.conv(x, w[W], w[B])]),
         lambda x, w: torch.cat([x[:, :, 1:7, 1:7], F.conv2d(x, w[W], w[B])], 1)),
    # normalisation
    Case("batchnorm2d_after_conv", (3, 6, 6),
         "{type: conv2d, name: c, out_channels: 4, kernel_size: 3, bias: false}\n{type: batchnorm2d, name: l}",
         lambda x, w: R.batch_norm(R.conv(x, w["c.weight"]), w["l.running_mean"],
                                   w["l.running_var"], w[W], w[B]),
         lambda x, w: F.batch_norm(F.conv2d(x, w["c.weight"]), w["l.running_mean"],
                                   w["l.running_var"], w[W], w[B])),
    Case("conv_transpose_bn", (4, 4, 4),
         "{type: conv_transpose2d, name: c, out_channels: 6, kernel_size: 3, stride: 2, groups: 2}\n{type: batchnorm2d, name: l}",
         lambda x, w: R.batch_norm(R.conv_transpose(x, w["c.weight"], w["c.bias"], 2, groups=2),
                                   w["l.running_mean"], w["l.running_var"], w[W], w[B]),
         lambda x, w: F.batch_norm(F.conv_transpose2d(x, w["c.weight"], w["c.bias"], 2, groups=2),
                                   w["l.running_mean"], w["l.running_var"], w[W], w[B])),
    Case("batchnorm1d_flat", (2, 3), "{type: flatten}\n{type: batchnorm1d, name: l, eps: 0.001}",
         lambda x, w: R.batch_norm(x.reshape(len(x), 6), w["l.running_mean"], w["l.running_var"],
                                   w[W], w[B], 1e-3),
         lambda x, w: F.batch_norm(torch.flatten(x, 1), w["l.running_mean"], w["l.running_var"],
                                   w[W], w[B], eps=1e-3)),
    Case("batchnorm1d_sequence", (4, 7), "{type: batchnorm1d, name: l, affine: false}",
         lambda x, w: R.batch_norm(x, w["l.running_mean"], w["l.running_var"]),
         lambda x, w: F.batch_norm(x, w["l.running_mean"], w["l.running_var"])),
    Case("batchnorm3d", (3, 3, 4, 5), "{type: batchnorm3d, name: l}",
         lambda x, w: R.batch_norm(x, w["l.running_mean"], w["l.running_var"], w[W], w[B]),
         lambda x, w: F.batch_norm(x, w["l.running_mean"], w["l.running_var"], w[W], w[B])),
    Case("batchnorm2d_batch_statistics", (3, 4, 5), "{type: batchnorm2d, name: l, track_running_stats: false}",
         lambda x, w: R.batch_norm(x, x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)), w[W], w[B]),
         lambda x, w: F.batch_norm(x, None, None, w[W], w[B], training=True)),
    Case("groupnorm", (6, 4, 5), "{type: groupnorm, name: l, num_groups: 3}",
         lambda x, w: R.group_norm(x, 3, w[W], w[B]),
         lambda x, w: F.group_norm(x, 3, w[W], w[B])),
    Case("groupnorm_no_affine", (4, 9), "{type: groupnorm, num_groups: 2, affine: false}",
         lambda x, w: R.group_norm(x, 2), lambda x, w: F.group_norm(x, 2)),
    Case("local_response_norm", (6, 4, 4), "{type: local_response_norm, size: 3, alpha: 0.01, beta: 0.75, k: 2.0}",
         lambda x, w: R.local_response_norm(x, 3, 0.01, 0.75, 2.0),
         lambda x, w: F.local_response_norm(x, 3, 0.01, 0.75, 2.0)),
    Case("local_response_norm_even", (5, 3, 3), "{type: local_response_norm, size: 4, alpha: 0.1}",
         lambda x, w: R.local_response_norm(x, 4, 0.1),
         lambda x, w: F.local_response_norm(x, 4, 0.1)),
    # element-wise
    *[Case(f"act_{name}", (3, 4, 5), f"{{type: {name}{ACT[name]}}}",
           lambda x, w, name=name: REF_ACT[name](x),
           lambda x, w, name=name: TORCH_ACT[name](x)) for name in ACT],
    Case("gelu", (3, 4, 5), "{type: gelu}", lambda x, w: R.gelu(x), lambda x, w: F.gelu(x)),
    Case("gelu_tanh", (3, 4, 5), "{type: gelu, approximate: tanh}",
         lambda x, w: R.gelu(x, "tanh"), lambda x, w: F.gelu(x, approximate="tanh")),
    Case("softmax_channels", (5, 3, 4), "{type: softmax}",
         lambda x, w: R.softmax(x, 1), lambda x, w: F.softmax(x, 1)),
    Case("softmax_last", (5, 3, 4), "{type: softmax, dim: -1}",
         lambda x, w: R.softmax(x, -1), lambda x, w: F.softmax(x, -1)),
    Case("softmax_flat", (2, 5), "{type: flatten}\n{type: softmax}",
         lambda x, w: R.softmax(x.reshape(len(x), 10), 1),
         lambda x, w: F.softmax(torch.flatten(x, 1), 1)),
    Case("dropout_identity", (3, 4), "{type: dropout, p: 0.3}\n{type: identity}",
         lambda x, w: x, lambda x, w: x),
    # dense
    Case("flatten_linear", (3, 4, 5), "{type: flatten}\n{type: linear, name: l, out_features: 7}",
         lambda x, w: R.linear(x.reshape(len(x), -1), w[W], w[B]),
         lambda x, w: F.linear(torch.flatten(x, 1), w[W], w[B])),
    Case("flatten_start_dim_2", (3, 4, 5), "{type: flatten, start_dim: 2}",
         lambda x, w: x.reshape(len(x), 3, 20), lambda x, w: torch.flatten(x, 2)),
    Case("linear_last_axis", (3, 6), "{type: linear, name: l, out_features: 4, bias: false}",
         lambda x, w: R.linear(x, w[W]), lambda x, w: F.linear(x, w[W])),
    # merges and channel layout
    Case("add", (3, 5, 5), "{type: conv2d, name: l, out_channels: 3, kernel_size: 3, padding: 1}\n{type: add, inputs: [l, input]}",
         lambda x, w: R.add(R.conv(x, w[W], w[B], 1, 1), x),
         lambda x, w: F.conv2d(x, w[W], w[B], 1, 1) + x),
    Case("add_broadcast_channels", (3, 5, 5),
         "{type: conv2d, name: l, out_channels: 1, kernel_size: 1}\n{type: add, inputs: [input, l]}",
         lambda x, w: R.add(x, R.conv(x, w[W], w[B])),
         lambda x, w: x + F.conv2d(x, w[W], w[B])),
    Case("add_broadcast_rank", (3, 4, 3), "{type: global_avgpool, name: g}\n{type: add, inputs: [input, g]}",
         lambda x, w: R.add(x, x.mean(axis=(2, 3)).reshape(len(x), 1, 1, 3)),
         lambda x, w: x + x.mean(dim=(2, 3)).reshape(len(x), 1, 1, 3)),
    Case("mul_squeeze_excite", (4, 5, 6),
         "{type: global_avgpool, name: g, keepdim: true}\n{type: sigmoid, name: s}\n{type: mul, inputs: [input, s]}",
         lambda x, w: R.mul(x, R.sigmoid(x.mean(axis=(2, 3), keepdims=True))),
         lambda x, w: x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))),
    Case("concat_spatial", (2, 3, 4), "{type: relu, name: r}\n{type: concat, dim: 2, inputs: [input, r, input]}",
         lambda x, w: R.concat([x, R.relu(x), x], axis=2),
         lambda x, w: torch.cat([x, F.relu(x), x], 2)),
    Case("channel_shuffle", (6, 3, 3), "{type: channel_shuffle, groups: 3}",
         lambda x, w: R.channel_shuffle(x, 3), lambda x, w: F.channel_shuffle(x, 3)),
    Case("coord_channels_r", (2, 4, 5), "{type: coord_channels, with_r: true}",
         lambda x, w: R.coord_channels(x, True), lambda x, w: _coords_t(x, True)),
    Case("coord_channels_1d", (2, 6), "{type: coord_channels}",
         lambda x, w: R.coord_channels(x), lambda x, w: _coords_t(x, False)),
    Case("coord_channels_3d", (1, 2, 3, 4), "{type: coord_channels}",
         lambda x, w: R.coord_channels(x), lambda x, w: _coords_t(x, False)),
]

CASES += [Case(*case) for case in LAYOUT_CASES]  # slicing, layout, reductions, matmul, stack


def test_every_layer_kind_has_a_case():
    from test_kinds_math import CASES as MATH_CASES
    used = {node.type for case in CASES + MATH_CASES for node in analyzed(case.spec).graph.nodes}
    assert set(REGISTRY) - used == set()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_kind_matches_loop_reference(case):
    report, weights, x, result = run_case(case)
    assert result.ok, [(r.name, r.predicted, r.produced) for r in result.layers]
    expected = case.reference(x.astype(np.float64), {k: v.astype(np.float64) if v.dtype.kind == "f"
                                                    else v for k, v in weights.items()})
    assert_close(to_first(result.output), expected, case.id)
    worst = max(r.error[1] for r in result.layers)
    assert worst <= TOLERANCE, f"--verify's direct reference disagrees: {worst:.3g}"


@pytest.mark.parametrize("case", [c for c in CASES if c.torch], ids=lambda c: c.id)
def test_kind_matches_torch(case):
    pytest.importorskip("torch")
    report, weights, x, result = run_case(case, verify=False)
    tensors = {k: torch.from_numpy(v) for k, v in weights.items()}
    with torch.no_grad():
        expected = case.torch(torch.from_numpy(x), tensors).numpy()
    assert result.output.dtype == np.float32
    assert_close(to_first(result.output), expected, case.id)


@pytest.mark.parametrize("mode,factor", [("bilinear", 1.5), ("nearest", 1.3), ("nearest", 2.5),
                                         ("bilinear", 0.7), ("bilinear", 1.1)])
def test_upsample_non_integer_scale_is_pytorchs(mode, factor):
    """PyTorch maps dst -> src with 1/scale_factor when a scale factor is given; with a
    non-integer one that differs from in/out."""
    torch_ = pytest.importorskip("torch")
    case = Case(f"upsample_{mode}_{factor}", (2, 5, 7),
                f"{{type: upsample, scale_factor: {factor}, mode: {mode}}}",
                lambda x, w: R.upsample(x, scale_factor=factor, mode=mode))
    report, weights, x, result = run_case(case, verify=True)
    expected = F.interpolate(torch_.from_numpy(x), scale_factor=factor, mode=mode).numpy()
    assert_close(to_first(result.output), expected)
    assert_close(to_first(result.output), case.reference(x, weights))  # the loop oracle too


# -- BatchNorm folding -----------------------------------------------------------------------

FOLDING = """
input: [3, 10, 10]
layers:
  - {type: conv2d, name: conv, out_channels: 5, kernel_size: 3, stride: 2, padding: 1}
  - {type: batchnorm2d, name: bn}
  - {type: relu, name: relu}
  - {type: conv2d, name: dw, out_channels: 5, kernel_size: 3, groups: 5, padding: 1, bias: false}
  - {type: batchnorm2d, name: bn2}
  - {type: add, inputs: [bn2, relu]}
"""


def test_folding_changes_nothing_but_the_plan():
    report = analyzed(FOLDING)
    weights = random_weights(report)
    x = to_last(np.random.default_rng(3).standard_normal((2, 3, 10, 10)).astype(np.float32))
    folded, plain = Executor(report, weights), Executor(report, weights, fold=False)
    assert [[n.name for n in s.nodes] for s in folded.steps][:2] == [["conv", "bn"], ["relu"]]
    assert ["dw", "bn2"] in [[n.name for n in s.nodes] for s in folded.steps]
    assert len(plain.steps) == len(report.layers)
    assert_close(folded.run(x).output, plain.run(x).output.astype(np.float64))
    rows = {r.name: r for r in folded.run(x).layers}
    assert rows["conv"].folded_into == "bn" and rows["conv"].ok


def test_transposed_conv_folds_too():
    case = next(c for c in CASES if c.id == "conv_transpose_bn")
    report, weights, x, result = run_case(case)
    assert result.layers[0].folded_into == "l"


def test_no_folding_when_the_conv_output_is_read_elsewhere_or_kept():
    text = FOLDING.replace("- {type: add, inputs: [bn2, relu]}", "- {type: add, inputs: [bn2, dw]}")
    report = analyzed(text)
    weights = random_weights(report)
    steps = [[n.name for n in s.nodes] for s in Executor(report, weights).steps]
    assert ["dw"] in steps and ["bn2"] in steps  # dw is read by bn2 and by add
    kept = Executor(analyzed(FOLDING), weights, keep=["conv"])
    assert ["conv"] in [[n.name for n in s.nodes] for s in kept.steps]


def test_folding_matches_torch_with_nontrivial_statistics():
    pytest.importorskip("torch")
    report = analyzed(FOLDING)
    weights = random_weights(report)
    x = np.random.default_rng(4).standard_normal((2, 3, 10, 10)).astype(np.float32)
    t = {k: torch.from_numpy(v) for k, v in weights.items()}
    with torch.no_grad():
        a = F.relu(F.batch_norm(F.conv2d(torch.from_numpy(x), t["conv.weight"], t["conv.bias"], 2, 1),
                                t["bn.running_mean"], t["bn.running_var"], t["bn.weight"], t["bn.bias"]))
        b = F.batch_norm(F.conv2d(a, t["dw.weight"], None, 1, 1, 1, 5), t["bn2.running_mean"],
                         t["bn2.running_var"], t["bn2.weight"], t["bn2.bias"])
    assert_close(to_first(Executor(report, weights).run(to_last(x)).output), (a + b).numpy())


# -- the seeds' worked examples --------------------------------------------------------------

SEED_001 = [[1, 2, 3, 4, 5], [6, 7, 8, 2, 3], [2, 5, 9, 9, 5], [4, 8, 8, 2, 1]]
SEED_003 = [[35, 40, 41, 45, 50], [40, 40, 42, 46, 52], [42, 46, 50, 55, 55],
            [48, 52, 56, 58, 60], [56, 60, 65, 70, 75]]


def run_fixed(text: str, image) -> np.ndarray:
    report = analyzed(text)
    executor = Executor(report, initial_weights(report, seed=0))
    result = executor.run(np.asarray(image, np.float32)[None, :, :, None],
                          check=verifier(executor))
    assert result.ok and max(r.error[1] for r in result.layers) <= TOLERANCE
    return result.output[0, :, :, 0]


def test_seed_001_first_output_is_66():
    out = run_fixed("input: [1, 4, 5]\nlayers:\n  - {type: conv2d, out_channels: 1, kernel_size: 3, "
                    "weights: [[1, 1, 1], [2, 1, 2], [3, 2, 1]]}\n", SEED_001)
    assert out.shape == (2, 3) and out[0, 0] == 66
    assert_close(out, R.conv(np.array(SEED_001, float)[None, None],
                             np.array([[[[1, 1, 1], [2, 1, 2], [3, 2, 1]]]], float))[0, 0])


def test_seed_003_shift_up_gives_the_pixel_above():
    out = run_fixed("input: [1, 5, 5]\nlayers:\n  - {type: conv2d, out_channels: 1, kernel_size: 3, "
                    "padding: 1, weights: shift_up}\n", SEED_003)
    assert out[2, 2] == 42
    assert np.array_equal(out[1:], np.array(SEED_003, np.float32)[:-1])  # every pixel: the one above


def test_named_kernel_on_rgb_is_applied_per_channel():
    text = ("input: [3, 6, 7]\nlayers:\n  - {type: conv2d, out_channels: 3, kernel_size: 3, "
            "padding: 1, weights: sobel_x}\n  - {type: conv2d, out_channels: 3, kernel_size: 3, "
            "groups: 3, padding: 1, weights: gaussian_blur}\n")
    report = analyzed(text)
    weights = initial_weights(report)
    x = np.random.default_rng(0).random((1, 3, 6, 7))
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    gauss = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], float) / 16
    per_channel = np.stack([R.conv(x[:, c:c + 1], sobel[None, None], None, 1, 1) for c in range(3)], 1)[:, :, 0]
    expected = np.stack([R.conv(per_channel[:, c:c + 1], gauss[None, None], None, 1, 1)
                         for c in range(3)], 1)[:, :, 0]
    out = Executor(report, weights).run(to_last(x.astype(np.float32))).output
    assert_close(to_first(out), expected)


# -- liveness and memory ---------------------------------------------------------------------

def test_measured_peak_equals_the_analysis_walk():
    """Tensors are freed after their last consumer: the largest live set measured equals the
    analysis' peak (batch 1, nothing folded, nothing kept)."""
    text = """
input: [3, 16, 16]
layers:
  - {type: conv2d, name: a, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: relu, name: b}
  - {type: conv2d, name: c, out_channels: 8, kernel_size: 3, padding: 1}
  - {type: add, name: d, inputs: [c, b]}
  - {type: maxpool2d, kernel_size: 2}
  - {type: conv2d, out_channels: 4, kernel_size: 1}
  - {type: global_avgpool}
"""
    report = analyzed(text)
    result = Executor(report, initial_weights(report), fold=False).run(
        np.zeros((1, 16, 16, 3), np.float32), stats=False)
    assert result.peak_bytes == report.totals.peak_activation_bytes


def test_memory_guard_refuses_with_a_hint():
    report = analyzed("input: [3, 64, 64]\nlayers:\n  - {type: conv2d, out_channels: 64, kernel_size: 3}\n")
    weights = initial_weights(report)
    need = estimate_bytes(report, 8, weights)
    assert need > 8 * report.totals.peak_activation_bytes
    assert check_memory(report, 8, weights, need) == need
    with pytest.raises(RunError) as err:
        check_memory(report, 8, weights, need - 1)
    assert "--max-memory" in str(err.value) and "batch-size" in err.value.hint


# -- weights ---------------------------------------------------------------------------------

def test_default_initialisation_is_pytorchs_and_deterministic():
    text = ("input: [16, 8, 8]\nlayers:\n  - {type: conv2d, name: c, out_channels: 32, kernel_size: 3}\n"
            "  - {type: batchnorm2d, name: bn}\n  - {type: flatten}\n  - {type: linear, name: fc, out_features: 10}\n")
    report = analyzed(text)
    first, again, other = (initial_weights(report, seed) for seed in (0, 0, 1))
    bound = 1 / math.sqrt(16 * 9)
    w = first["c.weight"]
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # uniform on [-bound, bound]
    assert np.abs(first["c.bias"]).max() <= bound
    assert np.abs(first["fc.weight"]).max() <= 1 / math.sqrt(32 * 36)
    assert (first["bn.weight"] == 1).all() and (first["bn.bias"] == 0).all()
    assert (first["bn.running_mean"] == 0).all() and (first["bn.running_var"] == 1).all()
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["c.weight"], other["c.weight"])


def test_default_initialisation_matches_torch_bounds():
    """torch's own reset_parameters bound for a transposed conv uses weight.size(1)."""
    pytest.importorskip("torch")
    layer = torch.nn.ConvTranspose2d(6, 4, 3, groups=2)
    report = analyzed("input: [6, 5, 5]\nlayers:\n  - {type: conv_transpose2d, name: t, "
                      "out_channels: 4, kernel_size: 3, groups: 2}\n")
    ours = initial_weights(report)["t.weight"]
    assert ours.shape == tuple(layer.weight.shape)
    bound = float(layer.weight.detach().abs().max())
    assert bound <= 1 / math.sqrt(2 * 9) and np.abs(ours).max() <= 1 / math.sqrt(2 * 9)
    assert np.abs(ours).max() > 0.8 / math.sqrt(2 * 9)


# -- the property: executed shapes always equal the analysed shapes --------------------------

@st.composite
def layer_specs(draw):
    rank = draw(st.integers(1, 3))
    size = draw(st.lists(st.integers(3, 9), min_size=rank, max_size=rank))
    channels = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["conv", "conv_transpose", "maxpool", "avgpool", "upsample",
                                 "adaptive_avgpool", "pad", "locally_connected"]))
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, 1))
    if kind == "conv":
        groups = draw(st.sampled_from([1, channels]))
        layer = (f"{{type: conv{rank}d, out_channels: {groups * draw(st.integers(1, 2))}, kernel_size: {k}, "
                 f"stride: {s}, padding: [{', '.join(f'[{p}, {draw(st.integers(0, 2))}]' for _ in size)}], "
                 f"dilation: {draw(st.integers(1, 2))}, groups: {groups}, "
                 f"padding_mode: {draw(st.sampled_from(['zeros', 'replicate', 'circular']))}}}")
    elif kind == "conv_transpose":
        d = draw(st.integers(1, 2))
        layer = (f"{{type: conv_transpose{rank}d, out_channels: 2, kernel_size: {k}, stride: {s}, "
                 f"padding: {p}, dilation: {d}, output_padding: {draw(st.integers(0, max(s, d) - 1))}}}")
    elif kind in ("maxpool", "avgpool"):
        kk = max(k, 2 * p)
        layer = (f"{{type: {kind}{rank}d, kernel_size: {kk}, stride: {s}, padding: {p}, "
                 f"ceil_mode: {str(draw(st.booleans())).lower()}}}")
    elif kind == "upsample":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]
        layer = (f"{{type: upsample, size: {draw(st.lists(st.integers(1, 12), min_size=rank, max_size=rank))}, "
                 f"mode: {draw(st.sampled_from(['nearest', mode]))}}}")
    elif kind == "adaptive_avgpool":
        layer = f"{{type: adaptive_avgpool{rank}d, output_size: {draw(st.integers(1, 4))}}}"
    elif kind == "pad":
        layer = f"{{type: pad, padding: {p + 1}, mode: {draw(st.sampled_from(['constant', 'replicate']))}}}"
    else:
        layer = f"{{type: locally_connected{rank}d, out_channels: 2, kernel_size: {k}, stride: {s}}}"
    return f"input: {[channels, *size]}\nlayers:\n  - {layer}\n  - {{type: relu}}\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_specs(), st.integers(1, 3))
def test_executed_shape_equals_analysed_shape(text, batch):
    report = analyze_text(text, "random.yaml")
    assume(report.ok)
    x = np.random.default_rng(0).standard_normal((batch, *report.input_shape[1:], report.input_shape[0]))
    executor = Executor(report, initial_weights(report))
    result = executor.run(x.astype(np.float32), check=verifier(executor, samples=8))
    assert [(r.name, r.produced) for r in result.layers] == \
        [(layer.name, layer.output_shape) for layer in report.layers]
    assert result.output.shape[0] == batch
    assert max(r.error[1] for r in result.layers) <= TOLERANCE


def test_runs_at_another_input_size_with_its_own_analysis():
    text = "input: [3, 32, 32]\nlayers:\n  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2}\n  - {type: relu}\n"
    report = analyzed(text)
    executor = Executor(report, initial_weights(report))
    other = analyzed(text, input_shape=(3, 21, 17))
    result = executor.run(np.zeros((1, 21, 17, 3), np.float32), other)
    assert result.ok and result.layers[-1].produced == (4, 10, 8)


def test_every_registered_kind_has_a_direct_reference_for_verify():
    # a new layer kind needs its plain reference in convcalc/executor/verify.py too
    from convcalc.executor.verify import REFERENCES
    from convcalc.layers import REGISTRY
    missing = [name for name, kind in REGISTRY.items()
               if not any(cls in REFERENCES for cls in kind.cls.__mro__)]
    assert missing == []
