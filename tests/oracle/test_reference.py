"""Tests of the loop references themselves: seeds' worked examples, hand-computed
numbers, and differential checks against torch.nn.functional (float64, rtol 1e-10)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from . import reference as R

RTOL = 1e-10


def assert_close(actual, expected, rtol=RTOL):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-13 * scale)


def rand(rng, *shape):
    return rng.standard_normal(shape)


# =========================================================================== seeds

SEED001_X = np.array(
    [[1, 2, 3, 4, 5], [6, 7, 8, 2, 3], [2, 5, 9, 9, 5], [4, 8, 8, 2, 1]], dtype=float
)
SEED001_K = np.array([[1, 1, 1], [2, 1, 2], [3, 2, 1]], dtype=float)

SEED003_IMG = np.array(
    [
        [35, 40, 41, 45, 50],
        [40, 40, 42, 46, 52],
        [42, 46, 50, 55, 55],
        [48, 52, 56, 58, 60],
        [56, 60, 65, 70, 75],
    ],
    dtype=float,
)


def test_seed001_first_output_and_whole_map():
    out = R.conv(SEED001_X[None, None], SEED001_K[None, None])
    assert out.shape == (1, 1, 2, 3)
    # by hand, row by row of the 3x3 window times the kernel rows:
    # (0,0): 1+2+3 + 2*6+7+2*8 + 3*2+2*5+9 = 6 + 35 + 25 = 66
    # (0,1): 2+3+4 + 2*7+8+2*2 + 3*5+2*9+9 = 9 + 26 + 42 = 77
    # (0,2): 3+4+5 + 2*8+2+2*3 + 3*9+2*9+5 = 12 + 24 + 50 = 86
    # (1,0): 6+7+8 + 2*2+5+2*9 + 3*4+2*8+8 = 21 + 27 + 36 = 84
    # (1,1): 7+8+2 + 2*5+9+2*9 + 3*8+2*8+2 = 17 + 37 + 42 = 96
    # (1,2): 8+2+3 + 2*9+9+2*5 + 3*8+2*2+1 = 13 + 37 + 29 = 79
    assert out[0, 0, 0, 0] == 66
    np.testing.assert_array_equal(out[0, 0], [[66, 77, 86], [84, 96, 79]])


def test_seed003_shift_kernel_takes_pixel_above():
    k = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=float)
    out = R.conv(SEED003_IMG[None, None], k[None, None], padding=1)[0, 0]
    assert out.shape == (5, 5)
    assert out[2, 2] == 42
    expected = np.vstack([np.zeros((1, 5)), SEED003_IMG[:-1]])
    np.testing.assert_array_equal(out, expected)


def test_seed002_one_d_example():
    w = np.array([1.0, 0.0, -1.0])[None, None]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])[None, None]
    # padded [0 1 2 3 4 5 0]; y[j] = xp[j] - xp[j+2]
    s1 = R.conv(x, w, padding=1, stride=1)[0, 0]
    s2 = R.conv(x, w, padding=1, stride=2)[0, 0]
    np.testing.assert_array_equal(s1, [-2, -2, -2, -2, 4])
    np.testing.assert_array_equal(s2, [-2, -2, 4])
    assert R.conv_output_size(5, 3, 1, 1, 1) == 5
    assert R.conv_output_size(5, 3, 2, 1, 1) == 3
    # S=3 "does not fit": (5 - 3 + 2) = 4 is not a multiple of 3, the formula floors
    assert (5 - 3 + 2) % 3 != 0
    assert R.conv_output_size(5, 3, 3, 1, 1) == 2


@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_seed002_seven_by_seven(stride, expected):
    assert R.conv_output_size(7, 3, stride, 0, 0) == expected
    out = R.conv(np.ones((1, 1, 7, 7)), np.ones((1, 1, 3, 3)), stride=stride)
    assert out.shape == (1, 1, expected, expected)
    assert np.all(out == 9)


def test_seed002_alexnet_conv1_sizes_and_unshared_parameters():
    assert R.conv_output_size(227, 11, 4, 0, 0) == 55
    assert (224 - 11) / 4 + 1 == 54.25
    assert R.conv_output_size(224, 11, 4, 0, 0) == 54
    assert R.conv_output_size(224, 11, 4, 1, 2) == 55  # total pad 3 split 1/2 fits exactly
    assert (224 + 3 - 11) % 4 == 0
    assert 96 * 11 * 11 * 3 + 96 == 34_944
    # locally connected conv1: weight (*out, Cout, Cin, *k), bias (Cout, *out)
    w_shape = (55, 55, 96, 3, 11, 11)
    b_shape = (96, 55, 55)
    assert math.prod(w_shape) + math.prod(b_shape) == 290_400 * 364 == 105_705_600


# =========================================================================== by hand


def test_conv_output_size_formula_cases():
    assert R.conv_output_size(5, 3) == 3  # i - k + 1
    assert R.conv_output_size(5, 4, 1, 2, 2) == 6  # i - k + 2p + 1
    assert R.conv_output_size(9, 3, 1, 1, 1) == 9  # half padding
    assert R.conv_output_size(5, 3, 1, 2, 2) == 7  # full padding
    assert R.conv_output_size(5, 3, 2) == 2  # floor((5-3)/2)+1
    assert R.conv_output_size(7, 3, 1, 0, 0, 2) == 3  # k_eff = 5
    assert R.conv_output_size(10, 3, 2) == 4  # floor(4.5)
    assert R.conv_transpose_output_size(2, 3, 2) == 5
    assert R.conv_transpose_output_size(3, 3, 2, 1, 1, 1, 1) == 6


def test_pool_output_size_ceil_rule():
    assert R.pool_output_size(5, 2, 2) == 2
    assert R.pool_output_size(5, 2, 2, ceil_mode=True) == 3  # last window starts at 4
    # ceil would give 3 but the 3rd window would start at 6 >= 5 + 1: clipped to 2
    assert R.pool_output_size(5, 3, 3, 1, 1, ceil_mode=True) == 2
    assert R.pool_output_size(6, 2, 4, 1, 1, ceil_mode=True) == 2
    assert R.pool_output_size(13, 2, 1, 0, 1) == 13


def test_conv_transpose_hand():
    x = np.array([1.0, 2.0])[None, None]
    k = np.array([1.0, 1.0, 1.0])[None, None]
    np.testing.assert_array_equal(R.conv_transpose(x, k, stride=2)[0, 0], [1, 1, 3, 2, 2])
    np.testing.assert_array_equal(R.conv_transpose(x, k, stride=2, padding=1)[0, 0], [1, 3, 2])
    np.testing.assert_array_equal(
        R.conv_transpose(x, k, stride=2, output_padding=1)[0, 0], [1, 1, 3, 2, 2, 0]
    )
    np.testing.assert_array_equal(
        R.conv_transpose(x, k, stride=2, padding=((0, 2),))[0, 0], [1, 1, 3]
    )
    # dilation 2: x[0] paints 0, 2, 4 and x[1] paints 2, 4, 6 -> [1 0 3 0 3 0 2]
    np.testing.assert_array_equal(
        R.conv_transpose(x, k, stride=2, dilation=2)[0, 0], [1, 0, 3, 0, 3, 0, 2]
    )


def test_max_pool_hand():
    x = np.array([1.0, 3.0, 2.0, 5.0, 4.0])[None, None]
    out, idx = R.max_pool(x, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(out[0, 0], [3, 5, 4])
    np.testing.assert_array_equal(idx[0, 0], [1, 3, 4])
    out, idx = R.max_pool(np.ones((1, 1, 4, 4)), 2, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])  # ties: first in the window


def test_avg_pool_hand_ceil_and_count_include_pad():
    x = np.arange(1.0, 7.0)[None, None]  # [1 2 3 4 5 6]
    # windows start at -1, 1, 3, 5; the last one [5, 8) is clipped to the padded end 7
    inc = R.avg_pool(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=True)[0, 0]
    exc = R.avg_pool(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False)[0, 0]
    np.testing.assert_allclose(inc, [3 / 3, 9 / 3, 15 / 3, 6 / 2], rtol=1e-15)
    np.testing.assert_allclose(exc, [3 / 2, 9 / 3, 15 / 3, 6 / 1], rtol=1e-15)
    over = R.avg_pool(x, 3, 2, padding=1, ceil_mode=True, divisor_override=5)[0, 0]
    np.testing.assert_allclose(over, [3 / 5, 9 / 5, 15 / 5, 6 / 5], rtol=1e-15)


def test_adaptive_hand():
    x = np.arange(5.0)[None, None]  # windows [0,2) [1,4) [3,5)
    np.testing.assert_allclose(R.adaptive_avg_pool(x, 3)[0, 0], [0.5, 2.0, 3.5])
    out, idx = R.adaptive_max_pool(x, 3, return_indices=True)
    np.testing.assert_array_equal(out[0, 0], [1, 3, 4])
    np.testing.assert_array_equal(idx[0, 0], [1, 3, 4])


def test_upsample_hand():
    x = np.array([0.0, 1.0])[None, None]
    np.testing.assert_allclose(
        R.upsample(x, size=4, mode="linear", align_corners=False)[0, 0], [0, 0.25, 0.75, 1]
    )
    np.testing.assert_allclose(
        R.upsample(x, size=4, mode="linear", align_corners=True)[0, 0], [0, 1 / 3, 2 / 3, 1]
    )
    np.testing.assert_array_equal(R.upsample(x, scale_factor=2)[0, 0], [0, 0, 1, 1])
    y = np.arange(5.0)[None, None]
    np.testing.assert_array_equal(R.upsample(y, size=3)[0, 0], [0, 1, 3])  # floor(d*5/3)


def test_max_unpool_hand():
    x = np.array([3.0, 5.0, 4.0])[None, None]
    idx = np.array([1, 3, 4])[None, None]
    np.testing.assert_array_equal(R.max_unpool(x, idx, 2, output_size=(5,))[0, 0], [0, 3, 0, 5, 4])
    assert R.max_unpool(x, idx, 2).shape == (1, 1, 6)


def test_center_crop_channel_shuffle_coord_hand():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    np.testing.assert_array_equal(R.center_crop(x, 3)[0, 0], x[0, 0, 1:4, 1:4])
    np.testing.assert_array_equal(R.center_crop(x, (2, 4))[0, 0], x[0, 0, 1:3, 0:4])  # odd: extra cut at end
    unet = R.center_crop(np.zeros((1, 2, 64, 64)), 56)
    assert unet.shape == (1, 2, 56, 56)

    c = np.arange(6.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(R.channel_shuffle(c, 2)[0, :, 0], [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(R.channel_shuffle(c, 3)[0, :, 0], [0, 2, 4, 1, 3, 5])

    out = R.coord_channels(np.zeros((1, 1, 2, 3)), with_r=True)
    assert out.shape == (1, 4, 2, 3)
    np.testing.assert_array_equal(out[0, 1], [[-1, -1, -1], [1, 1, 1]])
    np.testing.assert_array_equal(out[0, 2], [[-1, 0, 1], [-1, 0, 1]])
    np.testing.assert_allclose(out[0, 3], [[2**0.5, 1, 2**0.5], [2**0.5, 1, 2**0.5]])
    one_d = R.coord_channels(np.zeros((2, 3, 5)))
    assert one_d.shape == (2, 4, 5)
    np.testing.assert_allclose(one_d[1, 3], [-1, -0.5, 0, 0.5, 1])
    assert R.coord_channels(np.zeros((1, 1, 1)))[0, 1, 0] == -1


def test_pad_hand():
    x = np.array([1.0, 2.0, 3.0])[None, None]
    np.testing.assert_array_equal(R.pad(x, ((2, 2),), "reflect")[0, 0], [3, 2, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(R.pad(x, ((2, 2),), "replicate")[0, 0], [1, 1, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(R.pad(x, ((2, 2),), "circular")[0, 0], [2, 3, 1, 2, 3, 1, 2])
    np.testing.assert_array_equal(R.pad(x, ((1, 2),), "constant", 7)[0, 0], [7, 1, 2, 3, 7, 7])
    np.testing.assert_array_equal(R.pad(x, ((-1, 1),))[0, 0], [2, 3, 0])


def test_add_mul_concat_hand():
    a = np.array([[1.0], [2.0]])
    b = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(R.add(a, b), [[11, 21, 31], [12, 22, 32]])
    np.testing.assert_array_equal(R.mul(a, b), [[10, 20, 30], [20, 40, 60]])
    with pytest.raises(ValueError):
        R.add(np.zeros(2), np.zeros(3))
    np.testing.assert_array_equal(R.concat([a, a + 2], axis=0)[:, 0], [1, 2, 3, 4])


def test_locally_connected_with_shared_weights_is_conv():
    rng = np.random.default_rng(7)
    x = rand(rng, 2, 3, 6, 5)
    w = rand(rng, 4, 3, 3, 2)
    b = rand(rng, 4)
    ref = R.conv(x, w, b, stride=(2, 1), padding=((1, 0), (0, 1)))
    out_sp = ref.shape[2:]
    w_lc = np.broadcast_to(w, out_sp + w.shape).copy()
    b_lc = np.broadcast_to(b[:, None, None], (4,) + out_sp).copy()
    lc = R.locally_connected(x, w_lc, b_lc, stride=(2, 1), padding=((1, 0), (0, 1)))
    assert_close(lc, ref)


def test_activations_hand():
    x = np.array([-3.0, -1.0, 0.0, 2.0, 7.0])
    np.testing.assert_array_equal(R.relu(x), [0, 0, 0, 2, 7])
    np.testing.assert_array_equal(R.relu6(x), [0, 0, 0, 2, 6])
    np.testing.assert_allclose(R.hardsigmoid(x), [0, 2 / 6, 0.5, 5 / 6, 1])
    np.testing.assert_allclose(R.hardswish(x), [0, -2 / 6, 0, 10 / 6, 7])
    np.testing.assert_allclose(R.leaky_relu(x), [-0.03, -0.01, 0, 2, 7])
    np.testing.assert_allclose(R.sigmoid(np.array([0.0, -800.0, 800.0])), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(R.softmax(np.array([[0.0, math.log(3.0)]]), axis=1), [[0.25, 0.75]])


def test_group_norm_and_lrn_hand():
    x = np.array([1.0, 3.0])[None, :, None]  # one group of two values: mean 2, var 1
    np.testing.assert_allclose(R.group_norm(x, 1, eps=0.0)[0, :, 0], [-1, 1])
    # LRN size 2: channel c sees c-1 and c; divisor is size even at the edge
    y = np.array([1.0, 2.0])[None, :, None]
    out = R.local_response_norm(y, 2, alpha=2.0, beta=1.0, k=1.0)[0, :, 0]
    np.testing.assert_allclose(out, [1 / (1 + 1 * 1), 2 / (1 + (1 + 4))])


# =========================================================================== torch


# torch is optional: the tests below take the `torch` fixture and skip without it, while
# the seed and hand-computed tests above still run.  Nothing here changes torch's global
# state (no set_default_dtype): every tensor is built from float64 NumPy arrays.


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def T(a):
    import torch as _torch

    return _torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def N(t):
    return t.detach().numpy()


def torch_pad_arg(pairs):
    """Our (before, after) pairs in axis order -> torch.F.pad's flat, last-axis-first tuple."""
    flat = []
    for b, a in reversed(pairs):
        flat += [b, a]
    return tuple(flat)



# (id, in_spatial, cin, cout, kernel, stride, pad pairs, dilation, groups, mode, bias)
CONV_CASES = [
    ("1d-basic", (7,), 3, 4, (3,), 1, ((1, 1),), 1, 1, "zeros", True),
    ("1d-stride>k", (11,), 2, 3, (3,), 4, ((0, 0),), 1, 1, "zeros", True),
    ("1d-dil-asym", (9,), 2, 2, (3,), 2, ((0, 2),), 2, 1, "zeros", False),
    ("1d-reflect", (6,), 2, 2, (3,), 1, ((2, 1),), 1, 1, "reflect", True),
    ("1d-circular", (5,), 2, 4, (4,), 1, ((3, 2),), 1, 2, "circular", True),
    ("2d-basic", (5, 6), 3, 4, (3, 3), 1, ((1, 1), (1, 1)), 1, 1, "zeros", True),
    ("2d-stride2-odd", (7, 5), 2, 3, (3, 3), 2, ((1, 1), (1, 1)), 1, 1, "zeros", True),
    ("2d-stride>k", (9, 8), 2, 2, (2, 3), (3, 4), ((0, 0), (1, 1)), 1, 1, "zeros", True),
    ("2d-rect-dil", (8, 9), 2, 3, (3, 2), (1, 2), ((2, 2), (1, 0)), (2, 3), 1, "zeros", True),
    ("2d-asym", (6, 6), 3, 2, (3, 3), 2, ((0, 1), (1, 0)), 1, 1, "zeros", True),
    ("2d-reflect", (5, 6), 2, 3, (3, 3), 1, ((1, 1), (2, 1)), 1, 1, "reflect", True),
    ("2d-replicate", (5, 4), 2, 3, (3, 2), (2, 1), ((2, 1), (0, 3)), 1, 1, "replicate", False),
    ("2d-circular", (4, 5), 2, 2, (3, 3), 1, ((1, 2), (2, 2)), (1, 2), 1, "circular", True),
    ("2d-groups", (5, 5), 4, 6, (3, 3), 1, ((1, 1), (1, 1)), 1, 2, "zeros", True),
    ("2d-depthwise", (6, 5), 3, 3, (3, 3), 2, ((1, 1), (1, 1)), 1, 3, "zeros", True),
    ("2d-depthwise-mult", (5, 5), 2, 4, (3, 3), 1, ((1, 1), (1, 1)), 2, 2, "reflect", False),
    ("2d-1x1", (4, 3), 5, 2, (1, 1), 1, ((0, 0), (0, 0)), 1, 1, "zeros", True),
    ("2d-kernel=input", (3, 3), 2, 2, (3, 3), 1, ((0, 0), (0, 0)), 1, 1, "zeros", True),
    ("3d-basic", (4, 4, 3), 2, 2, (3, 3, 2), 1, ((1, 1), (1, 1), (0, 1)), 1, 1, "zeros", True),
    ("3d-stride-groups", (5, 4, 4), 2, 4, (2, 3, 3), (2, 1, 2), ((0, 0), (1, 1), (1, 1)), 1, 2, "zeros", True),
    ("3d-replicate-dil", (4, 5, 4), 1, 2, (2, 2, 2), 1, ((1, 0), (1, 1), (0, 2)), (2, 1, 2), 1, "replicate", True),
]


@pytest.mark.parametrize(
    "spatial, cin, cout, kernel, stride, pairs, dilation, groups, mode, use_bias",
    [c[1:] for c in CONV_CASES],
    ids=[c[0] for c in CONV_CASES],
)
def test_conv_vs_torch(torch, spatial, cin, cout, kernel, stride, pairs, dilation, groups, mode, use_bias):
    F = torch.nn.functional
    rng = np.random.default_rng(hash((spatial, cin, cout)) % 2**32)
    x = rand(rng, 2, cin, *spatial)
    w = rand(rng, cout, cin // groups, *kernel)
    b = rand(rng, cout) if use_bias else None
    ours = R.conv(x, w, b, stride=stride, padding=pairs, dilation=dilation, groups=groups, padding_mode=mode)

    # torch: padding done by F.pad (any mode, asymmetric), then an unpadded conv
    tmode = "constant" if mode == "zeros" else mode
    xt = F.pad(T(x), torch_pad_arg(pairs), mode=tmode)
    fn = getattr(F, f"conv{len(spatial)}d")
    ref = fn(xt, T(w), None if b is None else T(b), stride=stride, dilation=dilation, groups=groups)
    assert_close(ours, N(ref))

    # symmetric zero padding also through torch's own padding argument
    if mode == "zeros" and all(p == q for p, q in pairs):
        ref2 = fn(T(x), T(w), None if b is None else T(b), stride=stride,
                  padding=tuple(p for p, _ in pairs), dilation=dilation, groups=groups)
        assert_close(ours, N(ref2))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize(
    "spatial, kernel, dilation",
    [((7,), (4,), 1), ((6, 5), (2, 3), (1, 2)), ((4, 4, 3), (2, 3, 2), 1)],
)
def test_conv_same_padding_vs_torch(torch, spatial, kernel, dilation):
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    x = rand(rng, 1, 2, *spatial)
    w = rand(rng, 3, 2, *kernel)
    ours = R.conv(x, w, padding="same", dilation=dilation)
    ref = getattr(F, f"conv{len(spatial)}d")(T(x), T(w), padding="same", dilation=dilation)
    assert ours.shape[2:] == spatial
    assert_close(ours, N(ref))
    assert_close(R.conv(x, w, padding="valid", dilation=dilation),
                 N(getattr(F, f"conv{len(spatial)}d")(T(x), T(w), padding="valid", dilation=dilation)))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv_padding_mode_vs_torch_module(torch, mode):
    rng = np.random.default_rng(11)
    m = torch.nn.Conv2d(2, 3, 3, stride=2, padding=(1, 2), padding_mode=mode, dtype=torch.float64)
    x = rand(rng, 1, 2, 6, 5)
    ours = R.conv(x, N(m.weight), N(m.bias), stride=2, padding=(1, 2), padding_mode=mode)
    assert_close(ours, N(m(T(x))))


# (id, in_spatial, cin, cout_per_group, kernel, stride, padding, output_padding, dilation, groups)
CONVT_CASES = [
    ("1d-s2", (4,), 2, 3, (3,), 2, 0, 0, 1, 1),
    ("1d-pad-op", (5,), 2, 2, (4,), 3, 1, 2, 1, 1),
    ("1d-dil", (3,), 1, 2, (3,), 1, 1, 1, 2, 1),
    ("2d-s2-k4-p1", (3, 4), 3, 2, (4, 4), 2, 1, 0, 1, 1),
    ("2d-s2-k3-p1-op1", (3, 3), 2, 2, (3, 3), 2, 1, 1, 1, 1),
    ("2d-stride>k", (3, 2), 2, 2, (2, 2), 3, 0, (2, 1), 1, 1),
    ("2d-rect-dil", (3, 4), 2, 3, (2, 3), (1, 2), (1, 0), (0, 1), (2, 1), 1),
    ("2d-groups", (3, 3), 4, 3, (3, 3), 2, 1, 1, 1, 2),
    ("2d-depthwise", (4, 3), 3, 1, (3, 3), 1, 1, 0, 1, 3),
    ("3d", (2, 3, 2), 2, 2, (3, 2, 2), (2, 1, 2), (1, 0, 0), (1, 0, 1), 1, 1),
    ("3d-groups-dil", (2, 2, 3), 2, 1, (2, 2, 2), 1, 0, 0, (1, 2, 1), 2),
]


@pytest.mark.parametrize(
    "spatial, cin, cout_g, kernel, stride, padding, output_padding, dilation, groups",
    [c[1:] for c in CONVT_CASES],
    ids=[c[0] for c in CONVT_CASES],
)
def test_conv_transpose_vs_torch(torch, spatial, cin, cout_g, kernel, stride, padding, output_padding, dilation, groups):
    F = torch.nn.functional
    rng = np.random.default_rng(len(spatial) * 100 + cin)
    x = rand(rng, 2, cin, *spatial)
    w = rand(rng, cin, cout_g, *kernel)
    b = rand(rng, cout_g * groups)
    ours = R.conv_transpose(x, w, b, stride=stride, padding=padding,
                            output_padding=output_padding, groups=groups, dilation=dilation)
    ref = getattr(F, f"conv_transpose{len(spatial)}d")(T(x), T(w), T(b), stride=stride, padding=padding,
                                  output_padding=output_padding, groups=groups, dilation=dilation)
    assert_close(ours, N(ref))


def test_conv_transpose_asymmetric_padding_is_a_crop_of_torch(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    x = rand(rng, 1, 2, 3, 4)
    w = rand(rng, 2, 3, 3, 3)
    b = rand(rng, 3)
    full = N(F.conv_transpose2d(T(x), T(w), T(b), stride=2, output_padding=1))
    ours = R.conv_transpose(x, w, b, stride=2, padding=((0, 2), (1, 0)), output_padding=1)
    assert_close(ours, full[:, :, 0:-2, 1:])


def test_conv_transpose_is_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> with the same weight (torch-free check)."""
    rng = np.random.default_rng(9)
    x = rand(rng, 1, 4, 7, 6)
    w = rand(rng, 6, 2, 3, 2)  # conv: Cin 4 -> Cout 6, groups 2
    cx = R.conv(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    y = rand(rng, *cx.shape)
    op = tuple(i - o for i, o in zip(x.shape[2:], (R.conv_transpose_output_size(
        cx.shape[2], 3, 2, 1, 1), R.conv_transpose_output_size(cx.shape[3], 2, 1, 1, 1, 2))))
    ty = R.conv_transpose(y, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, output_padding=op)
    assert ty.shape == x.shape
    assert math.isclose(float(np.sum(cx * y)), float(np.sum(x * ty)), rel_tol=1e-12)


@pytest.mark.parametrize(
    "spatial, kernel, stride, pairs, dilation",
    [
        ((6, 5), (3, 2), (2, 1), ((1, 0), (0, 1)), 1),
        ((5, 6), (2, 2), (3, 3), ((0, 0), (0, 0)), (2, 1)),
    ],
)
def test_locally_connected_vs_torch_per_position(torch, spatial, kernel, stride, pairs, dilation):
    """Each output pixel of the unshared layer equals that pixel of a torch conv run with
    the pixel's own weight."""
    F = torch.nn.functional
    rng = np.random.default_rng(13)
    cin, cout = 2, 3
    x = rand(rng, 2, cin, *spatial)
    out_sp = tuple(R.conv_output_size(i, k, s, b, a, d) for i, k, s, (b, a), d in
                   zip(spatial, kernel, stride, pairs, (dilation,) * 2 if isinstance(dilation, int) else dilation))
    w = rand(rng, *out_sp, cout, cin, *kernel)
    b = rand(rng, cout, *out_sp)
    ours = R.locally_connected(x, w, b, stride=stride, padding=pairs, dilation=dilation)
    xt = F.pad(T(x), torch_pad_arg(pairs))
    for oy in range(out_sp[0]):
        for ox in range(out_sp[1]):
            full = N(F.conv2d(xt, T(w[oy, ox]), T(b[:, oy, ox]), stride=stride, dilation=dilation))
            assert_close(ours[:, :, oy, ox], full[:, :, oy, ox])


# --------------------------------------------------------------------------- pooling


# (id, spatial, kernel, stride, padding, dilation, ceil_mode)
MAXPOOL_CASES = [
    ("1d", (7,), 2, None, 0, 1, False),
    ("1d-ceil", (7,), 2, 2, 0, 1, True),
    ("1d-ceil-clip", (5,), 3, 3, 1, 1, True),
    ("1d-stride>k", (10,), 2, 3, 1, 1, False),
    ("2d-2x2", (6, 5), 2, 2, 0, 1, False),
    ("2d-3x3s2p1", (7, 6), 3, 2, 1, 1, False),
    ("2d-ceil-odd", (5, 7), 2, 2, 0, 1, True),
    ("2d-ceil-clip", (6, 5), (2, 3), (4, 3), 1, 1, True),
    ("2d-dilation", (7, 8), 3, (1, 2), 1, 2, False),
    ("2d-dilation-ceil", (8, 7), (2, 3), 2, (1, 0), (3, 2), True),
    ("2d-yolo-s1", (5, 5), 2, 1, 0, 1, False),
    ("3d", (4, 5, 4), 2, 2, 0, 1, True),
    ("3d-pad-dil", (5, 4, 5), 3, (2, 1, 2), 1, (1, 1, 2), False),
]


@pytest.mark.parametrize(
    "spatial, kernel, stride, padding, dilation, ceil_mode",
    [c[1:] for c in MAXPOOL_CASES], ids=[c[0] for c in MAXPOOL_CASES],
)
def test_max_pool_vs_torch(torch, spatial, kernel, stride, padding, dilation, ceil_mode):
    F = torch.nn.functional
    rng = np.random.default_rng(17)
    x = rand(rng, 2, 2, *spatial)
    out, idx = R.max_pool(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    ref, ref_idx = getattr(F, f"max_pool{len(spatial)}d")(T(x), kernel, stride, padding, dilation,
                                             ceil_mode=ceil_mode, return_indices=True)
    assert_close(out, N(ref))
    np.testing.assert_array_equal(idx, N(ref_idx))


def test_max_pool_ties_and_nan_vs_torch(torch):
    F = torch.nn.functional
    x = np.array([[1.0, 1.0, 2.0, 2.0, 0.0], [3.0, 3.0, np.nan, 1.0, 0.0],
                  [np.nan, 5.0, np.nan, 7.0, 7.0]])[None]
    x = x.reshape(1, 1, 3, 5)
    out, idx = R.max_pool(x, 2, 1, return_indices=True)
    ref, ref_idx = F.max_pool2d(T(x), 2, 1, return_indices=True)
    np.testing.assert_array_equal(out, N(ref))  # NaN == NaN in assert_array_equal
    np.testing.assert_array_equal(idx, N(ref_idx))


# (id, spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVGPOOL_CASES = [
    ("1d", (7,), 3, 2, 1, False, True, None),
    ("1d-exclude", (7,), 3, 2, 1, False, False, None),
    ("1d-ceil-incl", (6,), 3, 2, 1, True, True, None),
    ("1d-ceil-excl", (6,), 3, 2, 1, True, False, None),
    ("2d-2x2", (6, 4), 2, None, 0, False, True, None),
    ("2d-3x3s2p1-incl", (7, 6), 3, 2, 1, False, True, None),
    ("2d-3x3s2p1-excl", (7, 6), 3, 2, 1, False, False, None),
    ("2d-ceil-incl", (5, 6), (3, 2), (2, 2), (1, 1), True, True, None),
    ("2d-ceil-excl", (5, 6), (3, 2), (2, 2), (1, 1), True, False, None),
    ("2d-ceil-clip", (6, 5), (2, 3), (4, 3), 1, True, True, None),
    ("2d-stride>k", (8, 9), 2, 3, 1, False, False, None),
    ("2d-divisor", (5, 5), 3, 2, 1, True, True, 4),
    ("3d-incl", (4, 5, 3), 2, (2, 2, 1), (1, 0, 1), True, True, None),
    ("3d-excl", (5, 4, 5), 3, 2, 1, True, False, None),
    ("3d-divisor", (4, 4, 4), 2, 2, 0, False, False, 3),
]


@pytest.mark.parametrize(
    "spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor",
    [c[1:] for c in AVGPOOL_CASES], ids=[c[0] for c in AVGPOOL_CASES],
)
def test_avg_pool_vs_torch(torch, spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor):
    F = torch.nn.functional
    rng = np.random.default_rng(19)
    x = rand(rng, 2, 2, *spatial)
    ours = R.avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    kwargs = dict(ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    if len(spatial) > 1:
        kwargs["divisor_override"] = divisor
    ref = getattr(F, f"avg_pool{len(spatial)}d")(T(x), kernel, stride, padding, **kwargs)
    assert_close(ours, N(ref))


ADAPTIVE_CASES = [
    ((7,), 3), ((5,), 5), ((3,), 5), ((10,), 4), ((1,), 3),
    ((7, 5), (3, 2)), ((4, 6), 1), ((5, 5), (5, 7)), ((6, 7), (4, None)),
    ((5, 4, 3), (2, 3, 2)), ((3, 3, 4), 1),
]


@pytest.mark.parametrize("spatial, size", ADAPTIVE_CASES)
def test_adaptive_pools_vs_torch(torch, spatial, size):
    F = torch.nn.functional
    rng = np.random.default_rng(23)
    x = rand(rng, 2, 3, *spatial)
    nd = len(spatial)
    avg_fn = getattr(F, f"adaptive_avg_pool{nd}d")
    max_fn = getattr(F, f"adaptive_max_pool{nd}d")
    assert_close(R.adaptive_avg_pool(x, size), N(avg_fn(T(x), size)))
    out, idx = R.adaptive_max_pool(x, size, return_indices=True)
    ref, ref_idx = max_fn(T(x), size, return_indices=True)
    assert_close(out, N(ref))
    np.testing.assert_array_equal(idx, N(ref_idx))


@pytest.mark.parametrize(
    "spatial, kernel, stride, padding, output_size",
    [
        ((7,), 2, 2, 0, None),
        ((7,), 2, 2, 0, (7,)),
        ((6, 4), 2, 2, 0, None),
        ((6, 5), 2, 2, 0, (6, 5)),  # odd size: the default 6x4 cannot hold index 26 of 6x5
        ((5, 7), 3, 2, 1, (5, 7)),
        ((5, 7), 2, 2, 0, (5, 7)),
        ((4, 6, 2), 2, 2, 0, None),
        ((4, 5, 4), 2, 2, 0, (4, 5, 4)),
    ],
)
def test_max_unpool_vs_torch(torch, spatial, kernel, stride, padding, output_size):
    F = torch.nn.functional
    rng = np.random.default_rng(29)
    nd = len(spatial)
    x = rand(rng, 2, 2, *spatial)
    pooled, idx = getattr(F, f"max_pool{nd}d")(T(x), kernel, stride, padding, return_indices=True)
    unpool_fn = getattr(F, f"max_unpool{nd}d")
    ref = unpool_fn(pooled, idx, kernel, stride, padding, output_size=output_size)
    ours = R.max_unpool(N(pooled), N(idx), kernel, stride, padding, output_size=output_size)
    assert_close(ours, N(ref))


# --------------------------------------------------------------------------- upsampling

UPSAMPLE_CASES = [
    ("nearest-1d-x2", (5,), dict(scale_factor=2, mode="nearest")),
    ("nearest-1d-5to7", (5,), dict(size=7, mode="nearest")),
    ("nearest-1d-7to3", (7,), dict(size=3, mode="nearest")),
    ("nearest-1d-sf1.5", (5,), dict(scale_factor=1.5, mode="nearest")),
    ("nearest-1d-sf1.3", (6,), dict(scale_factor=1.3, mode="nearest")),
    ("nearest-1d-sf0.5", (7,), dict(scale_factor=0.5, mode="nearest")),
    ("nearest-2d-size", (3, 4), dict(size=(5, 9), mode="nearest")),
    ("nearest-2d-sf", (3, 4), dict(scale_factor=(2, 3), mode="nearest")),
    ("nearest-3d", (2, 3, 2), dict(size=(4, 5, 3), mode="nearest")),
    ("nearest-exact-1d", (5,), dict(size=7, mode="nearest-exact")),
    ("nearest-exact-2d", (4, 5), dict(size=(3, 8), mode="nearest-exact")),
    ("linear-ac0", (5,), dict(size=8, mode="linear", align_corners=False)),
    ("linear-ac1", (5,), dict(size=8, mode="linear", align_corners=True)),
    ("linear-down-ac0", (7,), dict(size=3, mode="linear", align_corners=False)),
    ("linear-to1-ac1", (4,), dict(size=1, mode="linear", align_corners=True)),
    ("linear-sf1.5-ac0", (5,), dict(scale_factor=1.5, mode="linear", align_corners=False)),
    ("linear-sf2.5-ac1", (3,), dict(scale_factor=2.5, mode="linear", align_corners=True)),
    ("linear-sf1.1-same-size", (4,), dict(scale_factor=1.1, mode="linear", align_corners=False)),
    ("bilinear-sf-one-axis-same", (4, 3), dict(scale_factor=(1.1, 2.0), mode="bilinear", align_corners=False)),
    ("nearest-1d-sf1.1-same-size", (4,), dict(scale_factor=1.1, mode="nearest")),
    ("nearest-3d-sf-same-size", (4, 2, 3), dict(scale_factor=(1.1, 2.1, 1.3), mode="nearest")),
    ("bilinear-ac0", (3, 4), dict(size=(5, 7), mode="bilinear", align_corners=False)),
    ("bilinear-ac1", (3, 4), dict(size=(5, 7), mode="bilinear", align_corners=True)),
    ("bilinear-x2-ac0", (3, 3), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ("bilinear-down-ac1", (6, 5), dict(size=(4, 2), mode="bilinear", align_corners=True)),
    ("bilinear-sf-ac0", (4, 5), dict(scale_factor=(1.5, 0.6), mode="bilinear", align_corners=False)),
    ("trilinear-ac0", (2, 3, 2), dict(size=(3, 5, 4), mode="trilinear", align_corners=False)),
    ("trilinear-ac1", (2, 3, 2), dict(size=(3, 5, 4), mode="trilinear", align_corners=True)),
]


@pytest.mark.parametrize("spatial, kwargs", [c[1:] for c in UPSAMPLE_CASES], ids=[c[0] for c in UPSAMPLE_CASES])
def test_upsample_vs_torch(torch, spatial, kwargs):
    F = torch.nn.functional
    rng = np.random.default_rng(31)
    x = rand(rng, 2, 2, *spatial)
    ours = R.upsample(x, **kwargs)
    ref = F.interpolate(T(x), **kwargs)
    assert_close(ours, N(ref))


def test_upsample_scale_factor_is_not_recomputed(torch):
    """torch (recompute_scale_factor unset) maps with 1/scale_factor, not in/out: for 6 -> 7
    (scale 1.3) that moves some nearest sources; with recompute it matches size=7."""
    F = torch.nn.functional
    x = np.arange(6.0)[None, None]
    by_factor = R.upsample(x, scale_factor=1.3)[0, 0]
    by_size = R.upsample(x, size=7)[0, 0]
    np.testing.assert_array_equal(by_factor, N(F.interpolate(T(x), scale_factor=1.3))[0, 0])
    np.testing.assert_array_equal(
        by_size, N(F.interpolate(T(x), scale_factor=1.3, recompute_scale_factor=True))[0, 0]
    )
    assert not np.array_equal(by_factor, by_size)


def test_upsample_torch_2d_nearest_quirk_is_not_followed(torch):
    """torch 2.13's 2-D nearest kernel (only that one) special-cases an axis whose output size
    equals the input size (copy) or twice it (dst // 2), even when a non-integer
    scale_factor says otherwise; the 1-D and 3-D kernels and the reference use
    floor(dst / scale_factor).  The two agree whenever size= is given or the factor is an
    integer.  This records the divergence rather than copying it."""
    F = torch.nn.functional
    x = np.arange(4.0)[None, None]
    ours = R.upsample(x, scale_factor=1.1)[0, 0]  # 4 -> floor(4.4) = 4
    np.testing.assert_array_equal(ours, [0, 0, 1, 2])  # floor(dst / 1.1)
    np.testing.assert_array_equal(N(F.interpolate(T(x), scale_factor=1.1))[0, 0], ours)
    two_d = N(F.interpolate(T(x[:, :, None, :]), scale_factor=(1.0, 1.1)))[0, 0, 0]
    np.testing.assert_array_equal(two_d, [0, 1, 2, 3])  # torch 2-D: copied

    y = np.arange(5.0)[None, None]
    ours = R.upsample(y, scale_factor=2.1)[0, 0]  # 5 -> 10 = 2 * 5
    np.testing.assert_array_equal(ours, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4])  # floor(dst / 2.1)
    np.testing.assert_array_equal(N(F.interpolate(T(y), scale_factor=2.1))[0, 0], ours)
    two_d = N(F.interpolate(T(y[:, :, None, :]), scale_factor=(1.0, 2.1)))[0, 0, 0]
    np.testing.assert_array_equal(two_d, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])  # torch 2-D: dst // 2


@pytest.mark.parametrize(
    "spatial, kernel, stride, padding, dilation",
    [((1,), 2, 3, 1, 2), ((1, 5), (2, 2), (3, 2), (1, 1), (2, 2)), ((3, 1, 2), 2, (1, 3, 2), (0, 1, 0), (1, 2, 1))],
)
def test_max_pool_window_wholly_in_padding_vs_torch(torch, spatial, kernel, stride, padding, dilation):
    """With dilation a window can hold only padding taps: torch returns -inf and, as index,
    the first tap at or after 0 on each axis (possibly past the input's end)."""
    F = torch.nn.functional
    x = np.random.default_rng(83).standard_normal((1, 2, *spatial))
    out, idx = R.max_pool(x, kernel, stride, padding, dilation, return_indices=True)
    ref, ref_idx = getattr(F, f"max_pool{len(spatial)}d")(T(x), kernel, stride, padding, dilation, return_indices=True)
    assert np.isneginf(out).any()
    np.testing.assert_array_equal(out, N(ref))
    np.testing.assert_array_equal(idx, N(ref_idx))


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("spatial", [(5,), (3, 4), (2, 3, 2)])
def test_batch_norm_vs_torch(torch, spatial):
    F = torch.nn.functional
    rng = np.random.default_rng(37)
    c = 3
    x = rand(rng, 2, c, *spatial)
    mean, var = rand(rng, c), rng.uniform(0.2, 3.0, c)
    w, b = rand(rng, c), rand(rng, c)
    for eps in (1e-5, 1e-3):
        ours = R.batch_norm(x, mean, var, w, b, eps)
        ref = F.batch_norm(T(x), T(mean), T(var), T(w), T(b), training=False, eps=eps)
        assert_close(ours, N(ref))
    assert_close(R.batch_norm(x, mean, var), N(F.batch_norm(T(x), T(mean), T(var), training=False)))


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
@pytest.mark.parametrize("spatial", [(4,), (3, 4), (2, 2, 3)])
def test_group_norm_vs_torch(torch, groups, spatial):
    F = torch.nn.functional
    rng = np.random.default_rng(41)
    x = rand(rng, 2, 6, *spatial) * 3 + 1
    w, b = rand(rng, 6), rand(rng, 6)
    assert_close(R.group_norm(x, groups, w, b), N(F.group_norm(T(x), groups, T(w), T(b))))
    assert_close(R.group_norm(x, groups, eps=1e-3), N(F.group_norm(T(x), groups, eps=1e-3)))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("spatial", [(4,), (3, 2), (2, 2, 2)])
def test_local_response_norm_vs_torch(torch, size, spatial):
    F = torch.nn.functional
    rng = np.random.default_rng(43)
    x = rand(rng, 2, 6, *spatial) * 2
    for alpha, beta, k in ((1e-4, 0.75, 1.0), (0.5, 0.6, 2.0)):
        ours = R.local_response_norm(x, size, alpha, beta, k)
        ref = F.local_response_norm(T(x), size, alpha, beta, k)
        assert_close(ours, N(ref))


# --------------------------------------------------------------------------- dense, activations


@pytest.mark.parametrize("lead", [(3,), (2, 3), ()])
def test_linear_vs_torch(torch, lead):
    F = torch.nn.functional
    rng = np.random.default_rng(47)
    x = rand(rng, *lead, 5)
    w, b = rand(rng, 4, 5), rand(rng, 4)
    assert_close(R.linear(x, w, b), N(F.linear(T(x), T(w), T(b))))
    assert_close(R.linear(x, w), N(F.linear(T(x), T(w))))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_vs_torch(torch, axis):
    F = torch.nn.functional
    rng = np.random.default_rng(53)
    x = rand(rng, 3, 4, 2) * 10
    x[0, 0, 0] = 700.0  # would overflow without the max shift
    assert_close(R.softmax(x, axis), N(F.softmax(T(x), dim=axis)))


ACT_CASES = [  # (our name, our kwargs, torch function given (torch, F))
    ("relu", {}, lambda torch, F: F.relu),
    ("relu6", {}, lambda torch, F: F.relu6),
    ("leaky_relu", {}, lambda torch, F: F.leaky_relu),
    ("leaky_relu", {"negative_slope": 0.2}, lambda torch, F: lambda t: F.leaky_relu(t, 0.2)),
    ("elu", {}, lambda torch, F: F.elu),
    ("elu", {"alpha": 0.7}, lambda torch, F: lambda t: F.elu(t, 0.7)),
    ("gelu", {}, lambda torch, F: F.gelu),
    ("gelu", {"approximate": "tanh"}, lambda torch, F: lambda t: F.gelu(t, approximate="tanh")),
    ("gelu_tanh", {}, lambda torch, F: lambda t: F.gelu(t, approximate="tanh")),
    ("silu", {}, lambda torch, F: F.silu),
    ("hardswish", {}, lambda torch, F: F.hardswish),
    ("hardsigmoid", {}, lambda torch, F: F.hardsigmoid),
    ("sigmoid", {}, lambda torch, F: torch.sigmoid),
    ("tanh", {}, lambda torch, F: torch.tanh),
]


@pytest.mark.parametrize("name, kwargs, get_fn", ACT_CASES, ids=[f"{c[0]}{c[1] or ''}" for c in ACT_CASES])
def test_activations_vs_torch(torch, name, kwargs, get_fn):
    fn = get_fn(torch, torch.nn.functional)
    rng = np.random.default_rng(59)
    x = np.concatenate([rand(rng, 40) * 4, [-40.0, -6.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 6.0, 40.0]])
    x = x.reshape(1, 7, 7)
    assert_close(R.activation(x, name, **kwargs), N(fn(T(x))))


# --------------------------------------------------------------------------- structural


PAD_CASES = [
    ("constant", ((2, 1),), (5,)),
    ("constant", ((0, 3), (2, 0)), (3, 4)),
    ("constant", ((1, 1), (0, 2), (3, 0)), (2, 3, 2)),
    ("reflect", ((2, 3),), (5,)),
    ("reflect", ((1, 2), (3, 0)), (4, 5)),
    ("reflect", ((1, 0), (2, 1), (0, 2)), (3, 4, 3)),
    ("replicate", ((4, 1),), (3,)),
    ("replicate", ((2, 3), (0, 1)), (3, 2)),
    ("replicate", ((1, 2), (2, 0), (0, 3)), (2, 3, 2)),
    ("circular", ((3, 2),), (4,)),
    ("circular", ((2, 3), (1, 3)), (3, 4)),
    ("circular", ((1, 1), (2, 0), (0, 2)), (2, 3, 3)),
]


@pytest.mark.parametrize("mode, pairs, spatial", PAD_CASES)
def test_pad_vs_torch(torch, mode, pairs, spatial):
    F = torch.nn.functional
    rng = np.random.default_rng(61)
    x = rand(rng, 2, 2, *spatial)
    kwargs = {"value": 1.5} if mode == "constant" else {}
    ours = R.pad(x, pairs, mode, **kwargs)
    ref = F.pad(T(x), torch_pad_arg(pairs), mode=mode, **kwargs)
    assert_close(ours, N(ref))


@pytest.mark.parametrize("groups, spatial", [(2, (3, 2)), (3, (4,)), (6, (2, 2, 2)), (1, (3,))])
def test_channel_shuffle_vs_torch(torch, groups, spatial):
    rng = np.random.default_rng(67)
    x = rand(rng, 2, 6, *spatial)
    ref = torch.nn.ChannelShuffle(groups)(T(x))
    assert_close(R.channel_shuffle(x, groups), N(ref))


@pytest.mark.parametrize("spatial", [(5,), (3, 4), (2, 3, 4), (1, 3)])
def test_coord_channels_vs_torch_linspace(torch, spatial):
    x = np.random.default_rng(71).standard_normal((2, 3, *spatial))
    out = R.coord_channels(x, with_r=True)
    grids = torch.meshgrid(*[torch.linspace(-1, 1, s, dtype=torch.float64) for s in spatial], indexing="ij")
    radius = torch.sqrt(sum(g**2 for g in grids))
    ref = torch.cat([T(x)] + [g.expand(2, 1, *spatial) for g in grids]
                    + [radius.expand(2, 1, *spatial)], dim=1)
    assert_close(out, N(ref))
    assert_close(R.coord_channels(x), N(ref[:, : 3 + len(spatial)]))


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((2, 3, 4, 4), (2, 3, 4, 4)), ((2, 3, 4, 4), (1, 3, 1, 1)), ((3, 1, 5), (4, 1)), ((2, 1, 3), ()), ((1,), (2, 2))],
)
def test_add_mul_vs_torch(torch, a_shape, b_shape):
    rng = np.random.default_rng(73)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    assert_close(R.add(a, b), N(torch.add(T(a), T(b))))
    assert_close(R.mul(a, b), N(torch.mul(T(a), T(b))))


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_concat_vs_torch(torch, axis):
    rng = np.random.default_rng(79)
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for j, s in enumerate(shapes):
        s[axis] += j
    xs = [rng.standard_normal(s) for s in shapes]
    assert_close(R.concat(xs, axis), N(torch.cat([T(v) for v in xs], dim=axis)))
