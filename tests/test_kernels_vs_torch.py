"""Differential tests: every NumPy kernel against torch.nn.functional on the same data.

The kernels take channels-last arrays (N, *spatial, C); the oracle gets the same data
channels-first. float32 throughout; tolerance rtol 1e-4, atol 1e-5 of the output's scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcalc.executor import kernels as K

torch = pytest.importorskip("torch")
F = torch.nn.functional


# ---------------------------------------------------------------------------- helpers

def first(x: np.ndarray):
    """channels-last numpy (N, *S, C) -> channels-first torch (N, C, *S)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


def last(t) -> np.ndarray:
    """channels-first torch (N, C, *S) -> channels-last numpy (N, *S, C)."""
    return np.moveaxis(t.detach().numpy(), 1, -1)


def check(actual, expected) -> None:
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.float32, actual.dtype
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def data(*shape, seed=0, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def torch_pads(pairs) -> tuple[int, ...]:
    """((b1, a1), (b2, a2), ...) -> F.pad's (b_last, a_last, ..., b1, a1)."""
    return tuple(v for pair in reversed(pairs) for v in pair)


TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_MAXPOOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
TORCH_AVGPOOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
TORCH_UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}
TORCH_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
TORCH_ADAPTIVE_MAX = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}


def double(a: np.ndarray):
    """float64 tensor of float32 data. The conv oracles run in float64: besides being exact
    to float32, this avoids a torch 2.13 CPU float32 (oneDNN) conv3d fault that returned
    garbage (~1e38) for x (2, 1, 2, 4, 5), w (1, 1, 1, 1, 3), stride (1, 1, 3) in this test."""
    return torch.from_numpy(np.asarray(a, np.float64))


def torch_conv(x, w, b, stride, pairs, dilation, groups, padding_mode):
    """Oracle: F.pad (zeros -> constant) then F.convNd with zero padding, in float64."""
    mode = "constant" if padding_mode == "zeros" else padding_mode
    xt = F.pad(first(x).double(), torch_pads(pairs), mode=mode)
    bt = None if b is None else double(b)
    out = TORCH_CONV[x.ndim - 2](xt, double(w), bt, stride, 0, dilation, groups)
    return last(out).astype(np.float32)


# ---------------------------------------------------------------------------- conv

# (spatial, Cin, Cout, kernel, stride, padding pairs, dilation, groups, padding_mode)
CONV_CASES = [
    ((9,), 4, 6, (3,), (1,), ((1, 1),), (1,), 1, "zeros"),
    ((17,), 3, 5, (4,), (3,), ((2, 0),), (2,), 1, "reflect"),
    ((8, 8), 8, 16, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, "zeros"),
    ((8, 8), 8, 16, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, "zeros"),
    ((9, 7), 8, 12, (1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 1, "zeros"),
    ((9, 7), 8, 12, (1, 1), (1, 1), ((1, 0), (0, 2)), (1, 1), 2, "zeros"),
    ((15, 15), 3, 8, (7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1), 1, "zeros"),
    ((11, 10), 4, 6, (2, 3), (4, 5), ((0, 1), (2, 0)), (1, 1), 1, "zeros"),  # stride > kernel
    ((12, 13), 4, 4, (3, 3), (1, 2), ((2, 2), (2, 2)), (2, 2), 1, "zeros"),  # dilation
    ((10, 9), 6, 9, (3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2), 3, "zeros"),  # groups, asymmetric
    ((10, 10), 6, 6, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, "reflect"),
    ((10, 10), 6, 6, (3, 3), (2, 2), ((1, 2), (2, 1)), (1, 1), 1, "replicate"),
    ((10, 10), 6, 6, (3, 3), (1, 1), ((2, 1), (1, 2)), (1, 1), 2, "circular"),
    ((12, 12), 8, 8, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 8, "zeros"),  # depthwise
    ((13, 11), 8, 8, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 8, "reflect"),  # depthwise /2
    ((12, 12), 4, 12, (5, 5), (1, 1), ((2, 2), (2, 2)), (2, 2), 4, "zeros"),  # multiplier 3
    ((7, 6, 5), 3, 4, (3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1), 1, "zeros"),
    ((7, 8, 6), 4, 6, (3, 2, 3), (2, 1, 2), ((1, 0), (0, 1), (2, 1)), (1, 2, 1), 2, "replicate"),
    ((6, 6, 6), 4, 4, (3, 3, 3), (1, 2, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1), 4, "circular"),
    ((5, 5), 1, 3, (5, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, "zeros"),  # kernel = input
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}k{c[3]}s{c[4]}g{c[7]}{c[8]}")
def test_conv(case, bias):
    spatial, cin, cout, kernel, stride, pairs, dilation, groups, mode = case
    x = data(2, *spatial, cin, seed=1)
    w = data(cout, cin // groups, *kernel, seed=2)
    b = data(cout, seed=3) if bias else None
    actual = K.conv(x, w, b, stride, pairs, dilation, groups, mode)
    check(actual, torch_conv(x, w, b, stride, pairs, dilation, groups, mode))


@pytest.mark.parametrize("case", CONV_CASES[2:16:3], ids=lambda c: f"{c[0]}k{c[3]}g{c[7]}")
def test_conv_prepared_weight_gives_the_same_result(case):
    spatial, cin, cout, kernel, stride, pairs, dilation, groups, mode = case
    x, w = data(1, *spatial, cin), data(cout, cin // groups, *kernel, seed=4)
    prepared = K.conv_prepared_weight(w, groups)
    np.testing.assert_array_equal(K.conv(x, prepared, None, stride, pairs, dilation, groups, mode),
                                  K.conv(x, w, None, stride, pairs, dilation, groups, mode))


@pytest.mark.parametrize("groups,cout", [(1, 7), (5, 10), (5, 5)], ids=["dense", "grouped", "depthwise"])
@pytest.mark.parametrize("limit", [40_000, 5_000, 1])  # 2 items, a few rows, one row per block
def test_conv_blocking_does_not_change_the_result(monkeypatch, groups, cout, limit):
    """Blocks of batch items or output rows (conv and depthwise) must tile the output exactly."""
    from convcalc.executor import kernels_conv
    monkeypatch.setattr(kernels_conv, "PATCH_BLOCK_BYTES", limit)
    monkeypatch.setattr(kernels_conv, "PATCH_BLOCK_MIN_ROWS", 1)
    monkeypatch.setattr(kernels_conv, "DEPTHWISE_BLOCK_BYTES", limit)
    x, w, b = data(3, 11, 9, 5), data(cout, 5 // groups, 3, 3, seed=5), data(cout, seed=6)
    pairs = ((1, 1), (2, 0))
    expected = torch_conv(x, w, b, (2, 1), pairs, (1, 2), groups, "zeros")
    check(K.conv(x, w, b, (2, 1), pairs, (1, 2), groups), expected)


def test_conv_rejects_empty_output():
    with pytest.raises(ValueError, match="gives output"):
        K.conv(data(1, 4, 4, 2), data(3, 2, 5, 5), None, 1, ((0, 0), (0, 0)), 1)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_conv_property_random_configurations(draw):
    ndim = draw.draw(st.integers(1, 3))
    groups = draw.draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw.draw(st.integers(1, 3))
    cout = groups * draw.draw(st.integers(1, 3))
    kernel = tuple(draw.draw(st.integers(1, 4)) for _ in range(ndim))
    stride = tuple(draw.draw(st.integers(1, 3)) for _ in range(ndim))
    dilation = tuple(draw.draw(st.integers(1, 2)) for _ in range(ndim))
    mode = draw.draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    spatial, pairs = [], []
    for k, d in zip(kernel, dilation):
        size = draw.draw(st.integers(max(2, d * (k - 1) + 1), 9))
        limit = size - 1 if mode == "reflect" else size  # torch's limits on the pad width
        pairs.append((draw.draw(st.integers(0, min(2, limit))), draw.draw(st.integers(0, min(2, limit)))))
        spatial.append(size)
    seed = draw.draw(st.integers(0, 2**16))
    x, w = data(2, *spatial, cin, seed=seed), data(cout, cin // groups, *kernel, seed=seed + 1)
    b = data(cout, seed=seed + 2)
    actual = K.conv(x, w, b, stride, tuple(pairs), dilation, groups, mode)
    check(actual, torch_conv(x, w, b, stride, tuple(pairs), dilation, groups, mode))


# ---------------------------------------------------------------------------- conv_transpose

# (spatial, Cin, Cout, kernel, stride, padding pairs, output_padding, dilation, groups)
CONV_T_CASES = [
    ((7,), 4, 3, (3,), (2,), ((1, 1),), (1,), (1,), 1),
    ((5, 6), 6, 4, (2, 2), (2, 2), ((0, 0), (0, 0)), (0, 0), (1, 1), 1),  # U-Net up-conv
    ((5, 6), 6, 4, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1), (1, 1), 2),  # tiled + output_padding
    ((6, 5), 4, 6, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1), 1),
    ((6, 5), 6, 6, (4, 3), (3, 2), ((2, 2), (0, 0)), (2, 1), (2, 3), 3),
    ((6, 5), 4, 4, (3, 3), (1, 1), ((0, 2), (1, 0)), (0, 0), (1, 1), 1),  # asymmetric (cropped)
    ((4, 5, 3), 4, 2, (3, 2, 3), (2, 2, 1), ((1, 1), (0, 0), (1, 1)), (1, 0, 0), (1, 1, 1), 2),
    ((3, 4, 3), 2, 3, (2, 2, 2), (2, 2, 2), ((0, 0), (0, 0), (0, 0)), (0, 0, 0), (1, 1, 1), 1),
]


@pytest.mark.parametrize("case", CONV_T_CASES, ids=lambda c: f"{c[0]}k{c[3]}s{c[4]}op{c[6]}g{c[8]}")
def test_conv_transpose(case):
    spatial, cin, cout, kernel, stride, pairs, extra, dilation, groups = case
    x, w, b = data(2, *spatial, cin), data(cin, cout // groups, *kernel, seed=6), data(cout, seed=7)
    actual = K.conv_transpose(x, w, b, stride, pairs, extra, dilation, groups)
    op = TORCH_CONV_T[len(spatial)]
    if all(b_ == a_ for b_, a_ in pairs):
        expected = last(op(first(x).double(), double(w), double(b), stride,
                           tuple(p for p, _ in pairs), extra, groups, dilation)).astype(np.float32)
    else:  # torch pads symmetrically only: run unpadded, crop (before, after) per axis
        full = last(op(first(x).double(), double(w), double(b), stride, 0, extra,
                       groups, dilation)).astype(np.float32)
        expected = full[(slice(None),) + tuple(slice(p, n - q) for (p, q), n in
                                               zip(pairs, full.shape[1:-1]))]
    check(actual, expected)


def test_conv_transpose_prepared_weight():
    x, w = data(1, 5, 5, 4), data(4, 3, 3, 3, seed=8)
    prepared = K.conv_transpose_prepared_weight(w, 1)
    np.testing.assert_array_equal(K.conv_transpose(x, prepared, None, 2, ((1, 1),) * 2, 1, 1),
                                  K.conv_transpose(x, w, None, 2, ((1, 1),) * 2, 1, 1))


# ---------------------------------------------------------------------------- locally connected

@pytest.mark.parametrize("spatial,kernel,stride,pairs", [
    ((9,), (3,), (2,), ((1, 0),)),
    ((7, 8), (3, 2), (1, 2), ((1, 1), (0, 1))),
    ((6, 5), (2, 2), (3, 3), ((0, 0), (0, 0))),  # stride > kernel
    ((5, 4, 6), (2, 3, 2), (1, 1, 2), ((0, 1), (1, 0), (0, 0))),
])
@pytest.mark.parametrize("bias", [True, False])
def test_locally_connected(spatial, kernel, stride, pairs, bias):
    cin, cout = 3, 4
    x = data(2, *spatial, cin)
    out = tuple((n + p + q - k) // s + 1 for n, k, s, (p, q) in zip(spatial, kernel, stride, pairs))
    w = data(*out, cout, cin, *kernel, seed=9)
    b = data(cout, *out, seed=10) if bias else None
    patches = F.pad(first(x), torch_pads(pairs))
    for axis, (k, s) in enumerate(zip(kernel, stride)):
        patches = patches.unfold(2 + axis, k, s)  # (N, C, *out, *k)
    letters = "xyz"[:len(spatial)]
    taps = "ijk"[:len(spatial)]
    expected = torch.einsum(f"nc{letters}{taps},{letters}oc{taps}->n{letters}o", patches, torch.from_numpy(w))
    if bias:
        expected = expected + torch.from_numpy(np.moveaxis(b, 0, -1))
    check(K.locally_connected(x, w, b, kernel, stride, pairs), expected.numpy())


# ---------------------------------------------------------------------------- pooling

# (spatial, kernel, stride, padding, dilation, ceil_mode)
MAX_POOL_CASES = [
    ((10,), 3, 2, 1, 1, False),
    ((11,), 2, 3, 1, 2, True),
    ((8, 8), 2, 2, 0, 1, False),
    ((9, 9), 3, 2, 1, 1, True),
    ((4, 4), 2, 3, 1, 1, True),  # ceil clipping: the last window would start in the padding
    ((7, 10), (3, 2), (2, 1), (1, 1), (2, 3), True),
    ((13, 11), 3, 4, 1, 1, False),  # stride > kernel
    ((5, 6, 7), 3, 2, 1, 1, True),
    ((6, 5, 6), (2, 3, 2), (2, 1, 3), (1, 1, 0), (2, 1, 1), False),
]


@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=str)
def test_max_pool_with_indices(case):
    spatial, kernel, stride, padding, dilation, ceil_mode = case
    ndim = len(spatial)
    x = data(2, *spatial, 3, seed=11)
    x[0, ..., 0] = np.round(x[0, ..., 0])  # ties: the first maximum must win
    expected, expected_index = TORCH_MAXPOOL[ndim](first(x), kernel, stride, padding, dilation,
                                                   ceil_mode, return_indices=True)
    pairs = _pairs(padding, ndim)
    actual, index = K.max_pool(x, kernel, stride, pairs, dilation, ceil_mode, return_indices=True)
    check(actual, last(expected))
    np.testing.assert_array_equal(index, last(expected_index))
    check(K.max_pool(x, kernel, stride, pairs, dilation, ceil_mode), last(expected))


def _pairs(padding, ndim):
    values = (padding,) * ndim if isinstance(padding, int) else padding
    return tuple((p, p) for p in values)


def test_max_pool_clipped_ceil_output_size():
    """i=4, k=2, s=3, p=1: ceil gives 3 windows, the third would start in the padding -> 2."""
    out = K.max_pool(data(1, 4, 4, 1), 2, 3, ((1, 1), (1, 1)), 1, ceil_mode=True)
    assert out.shape == (1, 2, 2, 1)


# (spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_POOL_CASES = [
    ((10,), 3, 2, 1, False, True, None),
    ((10,), 4, 3, 2, True, False, None),
    ((8, 8), 2, 2, 0, False, True, None),
    ((9, 9), 3, 2, 1, True, True, None),
    ((9, 9), 3, 2, 1, True, False, None),
    ((4, 4), 2, 3, 1, True, True, None),  # ceil clipping
    ((7, 10), (3, 2), (2, 3), (1, 1), True, False, None),
    ((7, 10), (3, 2), (2, 1), (1, 0), False, True, 5),
    ((5, 6, 7), 3, 2, 1, True, False, None),
    ((5, 6, 7), (2, 3, 3), (2, 3, 1), (1, 1, 0), True, True, None),
    ((6, 6, 6), 2, 2, 0, False, True, 3),
]


@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=str)
def test_avg_pool(case):
    spatial, kernel, stride, padding, ceil_mode, include, divisor = case
    ndim = len(spatial)
    x = data(2, *spatial, 3, seed=12)
    args = (first(x), kernel, stride, padding, ceil_mode, include)
    expected = TORCH_AVGPOOL[ndim](*args) if ndim == 1 else TORCH_AVGPOOL[ndim](*args, divisor)
    actual = K.avg_pool(x, kernel, stride, _pairs(padding, ndim), ceil_mode, include, divisor)
    check(actual, last(expected))


@pytest.mark.parametrize("spatial,output_size", [
    ((10,), (3,)), ((7,), (7,)), ((5,), (8,)),
    ((7, 9), (3, 4)), ((8, 8), (1, 1)), ((6, 5), (4, None)), ((5, 5), (7, 9)),
    ((7, 6, 5), (2, 3, 4)), ((4, 4, 4), (1, 1, 1)),
])
def test_adaptive_pools(spatial, output_size):
    ndim = len(spatial)
    x = data(2, *spatial, 4, seed=13)
    check(K.adaptive_avg_pool(x, output_size), last(TORCH_ADAPTIVE_AVG[ndim](first(x), output_size)))
    check(K.adaptive_max_pool(x, output_size), last(TORCH_ADAPTIVE_MAX[ndim](first(x), output_size)))


@pytest.mark.parametrize("spatial,kernel,stride,padding", [
    ((10,), 2, 2, 0), ((9, 9), 3, 2, 1), ((8, 7), 2, 2, 0), ((6, 6, 5), 2, 2, 0),
])
def test_max_unpool(spatial, kernel, stride, padding):
    ndim = len(spatial)
    x = data(2, *spatial, 3, seed=14)
    pooled, index = TORCH_MAXPOOL[ndim](first(x), kernel, stride, padding, return_indices=True)
    expected = TORCH_UNPOOL[ndim](pooled, index, kernel, stride, padding, output_size=spatial)
    actual = K.max_unpool(last(pooled), last(index), spatial)
    check(actual, last(expected))


# ---------------------------------------------------------------------------- upsample

NEAREST_CASES = [
    ((5,), (7,)), ((4,), (8,)), ((7,), (3,)), ((5, 6), (7, 13)), ((6, 6), (12, 12)),
    ((9, 5), (4, 11)), ((3, 4, 5), (6, 7, 9)),
]
LINEAR_CASES = [
    ((5,), (12,)), ((9,), (4,)), ((1,), (3,)), ((5, 6), (7, 13)), ((6, 6), (12, 12)),
    ((9, 7), (4, 5)), ((3, 4, 5), (6, 7, 9)), ((4, 4, 3), (2, 5, 1)),
]
LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}
UPSAMPLE_CASES = (
    [(spatial, size, "nearest", None) for spatial, size in NEAREST_CASES]
    + [(spatial, size, "nearest-exact", None) for spatial, size in NEAREST_CASES[3:6]]
    + [(spatial, size, LINEAR_MODE[len(spatial)], corners)
       for spatial, size in LINEAR_CASES for corners in (False, True)]
)


@pytest.mark.parametrize("spatial,size,mode,align_corners", UPSAMPLE_CASES, ids=str)
def test_upsample(spatial, size, mode, align_corners):
    x = data(2, *spatial, 3, seed=15)
    expected = F.interpolate(first(x), size=size, mode=mode, align_corners=align_corners)
    check(K.upsample(x, size, mode, align_corners), last(expected))


# ---------------------------------------------------------------------------- normalisation

@pytest.mark.parametrize("spatial", [(7,), (5, 6), (3, 4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm(spatial, affine):
    c = 6
    x = data(2, *spatial, c, seed=16, scale=3.0) + 1.5
    mean, var = data(c, seed=17), np.abs(data(c, seed=18)) + 0.3  # non-trivial statistics
    w, b = (data(c, seed=19), data(c, seed=20)) if affine else (None, None)
    tw = None if w is None else torch.from_numpy(w)
    tb = None if b is None else torch.from_numpy(b)
    expected = F.batch_norm(first(x), torch.from_numpy(mean), torch.from_numpy(var), tw, tb,
                            training=False, eps=1e-3)
    check(K.batch_norm(x, w, b, mean, var, eps=1e-3), last(expected))


@pytest.mark.parametrize("spatial,channels,groups", [
    ((7,), 6, 3), ((5, 6), 8, 2), ((5, 6), 8, 8), ((5, 6), 8, 1), ((3, 4, 5), 6, 2),
])
def test_group_norm(spatial, channels, groups):
    x = data(2, *spatial, channels, seed=21, scale=2.0) + 0.7
    w, b = data(channels, seed=22), data(channels, seed=23)
    expected = F.group_norm(first(x), groups, torch.from_numpy(w), torch.from_numpy(b), eps=1e-5)
    check(K.group_norm(x, groups, w, b), last(expected))
    check(K.group_norm(x, groups, None, None), last(F.group_norm(first(x), groups)))


@pytest.mark.parametrize("spatial", [(7,), (5, 6), (3, 4, 5)])
@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 2.0), (2, 0.1, 0.5, 1.0), (4, 1.0, 1.0, 0.5)])
def test_local_response_norm(spatial, size, alpha, beta, k):
    x = data(2, *spatial, 7, seed=24, scale=2.0)
    expected = F.local_response_norm(first(x), size, alpha, beta, k)
    check(K.local_response_norm(x, size, alpha, beta, k), last(expected))


# ---------------------------------------------------------------------------- dense, softmax

@pytest.mark.parametrize("shape", [(3, 10), (2, 4, 5, 10)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    x, w = data(*shape, seed=25), data(7, shape[-1], seed=26)
    b = data(7, seed=27) if bias else None
    expected = F.linear(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b))
    check(K.linear(x, w, b), expected.numpy())


@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((2, 5, 6, 3), -1), ((2, 5, 6, 3), 1), ((3, 7), 0)])
def test_softmax(shape, axis):
    x = data(*shape, seed=28, scale=30.0)  # large logits: the max-shift must keep exp finite
    check(K.softmax(x, axis), torch.softmax(torch.from_numpy(x), dim=axis).numpy())


# ---------------------------------------------------------------------------- pad, layout

@pytest.mark.parametrize("spatial,pairs", [
    ((6,), ((2, 3),)), ((5, 6), ((1, 2), (3, 0))), ((4, 5, 6), ((1, 0), (2, 2), (0, 3))),
])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad(spatial, pairs, mode):
    x = data(2, *spatial, 3, seed=29)
    if mode == "constant":
        expected = F.pad(first(x), torch_pads(pairs), mode=mode, value=2.5)
        check(K.pad(x, pairs, mode, value=2.5), last(expected))
    else:
        check(K.pad(x, pairs, mode), last(F.pad(first(x), torch_pads(pairs), mode=mode)))


def test_pad_negative_crops():
    x = data(1, 6, 5, 2)
    expected = F.pad(first(x), (1, -1, -2, 0))
    check(K.pad(x, ((-2, 0), (1, -1))), last(expected))


@pytest.mark.parametrize("shape,groups", [((2, 7, 12), 3), ((2, 5, 6, 12), 4), ((1, 3, 4, 5, 6), 2)])
def test_channel_shuffle(shape, groups):
    x = data(*shape, seed=30)
    check(K.channel_shuffle(x, groups), last(torch.nn.ChannelShuffle(groups)(first(x))))


@pytest.mark.parametrize("spatial", [(5,), (4, 6), (3, 1, 4)])
@pytest.mark.parametrize("with_r", [False, True])
def test_coord_channels(spatial, with_r):
    x = data(2, *spatial, 3, seed=31)
    grids = torch.meshgrid(*[torch.linspace(-1, 1, n) if n > 1 else torch.full((1,), -1.0)
                             for n in spatial], indexing="ij")
    extra = list(grids) + ([torch.sqrt(sum(g * g for g in grids))] if with_r else [])
    coords = torch.stack(extra, dim=-1).expand(2, *spatial, len(extra))
    expected = torch.cat([torch.from_numpy(x), coords], dim=-1)
    check(K.coord_channels(x, with_r), expected.numpy())


# ---------------------------------------------------------------------------- activations

ACTIVATION_CASES = [
    ("relu", {}, F.relu), ("relu6", {}, F.relu6),
    ("leaky_relu", {}, F.leaky_relu),
    ("leaky_relu", {"negative_slope": 0.2}, lambda t: F.leaky_relu(t, 0.2)),
    ("elu", {}, F.elu), ("elu", {"alpha": 0.5}, lambda t: F.elu(t, 0.5)),
    ("gelu", {}, F.gelu), ("gelu", {"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
    ("silu", {}, F.silu), ("hardswish", {}, F.hardswish), ("hardsigmoid", {}, F.hardsigmoid),
    ("sigmoid", {}, torch.sigmoid), ("tanh", {}, torch.tanh), ("identity", {}, lambda t: t),
]


@pytest.mark.parametrize("name,params,oracle", ACTIVATION_CASES,
                         ids=[f"{name}{params or ''}" for name, params, _ in ACTIVATION_CASES])
def test_activations(name, params, oracle):
    x = np.concatenate([data(2, 5, 6, 3, seed=32, scale=4.0).ravel(),
                        np.array([-100, -20, -3, -1e-3, 0, 1e-3, 3, 20, 100], np.float32)])
    with np.errstate(over="raise", invalid="raise"):
        actual = K.ACTIVATIONS[name](x, **params)
    check(actual, oracle(torch.from_numpy(x)).numpy())


def test_activations_cover_the_contract():
    assert set(K.ACTIVATIONS) == {"relu", "relu6", "leaky_relu", "elu", "gelu", "silu",
                                  "hardswish", "hardsigmoid", "sigmoid", "tanh", "identity"}
