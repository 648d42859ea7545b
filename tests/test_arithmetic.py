"""The formulas of convcalc.arithmetic against two oracles nobody here wrote: the relationships
of Dumoulin & Visin (arXiv 1603.07285), evaluated in the test as printed in the paper, and a
brute-force enumeration of sliding windows over an explicit list of rows."""

import itertools
import math

import pytest

from convcalc import arithmetic as ar


def windows_brute(i, k, s, pb, pa, d):
    """Slide a dilated window over the padded rows; return (count, rows read)."""
    rows = list(range(i + pb + pa))
    k_eff = d * (k - 1) + 1
    starts = [x for x in rows[::s] if x + k_eff <= len(rows)]
    read = {x + t * d for x in starts for t in range(k)}
    return len(starts), read


SMALL = list(itertools.product(range(1, 12), range(1, 5), range(1, 4), range(0, 3), range(1, 3)))


# -- Dumoulin & Visin, relationships 1-15, each with the paper's own worked numbers ---------

def test_relationship_1_no_padding_unit_stride():
    # o = i - k + 1; the paper's example: i = 4, k = 3 -> 2
    assert ar.conv_output_size(4, 3) == 2
    for i, k in itertools.product(range(3, 30), range(1, 4)):
        assert ar.conv_output_size(i, k) == i - k + 1


def test_relationship_2_padding_unit_stride():
    # o = i - k + 2p + 1; the paper: i = 5, k = 4, p = 2 -> 6
    assert ar.conv_output_size(5, 4, 1, 2, 2) == 6
    for i, k, p in itertools.product(range(3, 20), range(1, 6), range(0, 4)):
        assert ar.conv_output_size(i, k, 1, p, p) == i - k + 2 * p + 1


def test_relationship_3_half_padding():
    # k = 2n + 1, p = floor(k / 2): o = i; the paper: i = 5, k = 3 -> 5
    assert ar.conv_output_size(5, 3, 1, 1, 1) == 5
    for i, n in itertools.product(range(1, 20), range(0, 4)):
        k = 2 * n + 1
        assert ar.conv_output_size(i, k, 1, k // 2, k // 2) == i


def test_relationship_4_full_padding():
    # p = k - 1: o = i + k - 1; the paper: i = 5, k = 3 -> 7
    assert ar.conv_output_size(5, 3, 1, 2, 2) == 7
    for i, k in itertools.product(range(1, 20), range(1, 6)):
        assert ar.conv_output_size(i, k, 1, k - 1, k - 1) == i + k - 1


def test_relationship_5_no_padding_strided():
    # o = floor((i - k) / s) + 1; the paper: i = 5, k = 3, s = 2 -> 2
    assert ar.conv_output_size(5, 3, 2) == 2
    for i, k, s in itertools.product(range(4, 20), range(1, 4), range(1, 4)):
        assert ar.conv_output_size(i, k, s) == math.floor((i - k) / s) + 1


def test_relationship_6_general():
    # o = floor((i + 2p - k) / s) + 1; the paper: i = 5, k = 3, s = 2, p = 1 -> 3 and
    # i = 6 -> 3 as well ("some input units are left out")
    assert ar.conv_output_size(5, 3, 2, 1, 1) == 3
    assert ar.conv_output_size(6, 3, 2, 1, 1) == 3
    for i, k, s, p, d in SMALL:
        if i + 2 * p >= k:
            assert ar.conv_output_size(i, k, s, p, p) == math.floor((i + 2 * p - k) / s) + 1


def test_relationship_7_pooling():
    # o = floor((i - k) / s) + 1
    for i, k, s in itertools.product(range(2, 20), range(1, 4), range(1, 4)):
        if i >= k:
            assert ar.pool_output_size(i, k, s) == math.floor((i - k) / s) + 1


@pytest.mark.parametrize("i_conv,k,p", [(4, 3, 0), (5, 4, 2), (5, 3, 1), (5, 3, 2)])
def test_relationships_8_to_11_transposed_unit_stride(i_conv, k, p):
    # the transpose of a unit-stride conv: o' = i' + (k - 1) - 2p, and it restores i
    o = ar.conv_output_size(i_conv, k, 1, p, p)
    assert ar.transposed_output_size(o, k, 1, p, p) == o + (k - 1) - 2 * p == i_conv


def test_relationship_12_transposed_strided_no_padding():
    # (i - k) a multiple of s: o' = s(i' - 1) + k; the paper: i' = 2, k = 3, s = 2 -> 5
    assert ar.transposed_output_size(2, 3, 2) == 5
    for i, k, s in itertools.product(range(3, 20), range(1, 5), range(1, 4)):
        if i >= k and (i - k) % s == 0:
            o = ar.conv_output_size(i, k, s)
            assert ar.transposed_output_size(o, k, s) == s * (o - 1) + k == i


def test_relationship_13_transposed_strided_padded():
    # (i + 2p - k) a multiple of s: o' = s(i' - 1) + k - 2p; the paper: i' = 3, k = 3, s = 2,
    # p = 1 -> 5
    assert ar.transposed_output_size(3, 3, 2, 1, 1) == 5
    for i, k, s, p, _ in SMALL:
        if i + 2 * p >= k and (i + 2 * p - k) % s == 0:
            o = ar.conv_output_size(i, k, s, p, p)
            assert ar.transposed_output_size(o, k, s, p, p) == s * (o - 1) + k - 2 * p == i


def test_relationship_14_transposed_general_with_a():
    # o' = s(i' - 1) + a + k - 2p with a = (i + 2p - k) mod s; the paper: i' = 3, k = 3, s = 2,
    # p = 1, a = 1 -> 6. PyTorch's output_padding plays the role of a.
    assert ar.transposed_output_size(3, 3, 2, 1, 1, output_padding=1) == 6
    for i, k, s, p, _ in SMALL:
        if i + 2 * p >= k:
            a = (i + 2 * p - k) % s
            o = ar.conv_output_size(i, k, s, p, p)
            assert ar.transposed_output_size(o, k, s, p, p, output_padding=a) == i


def test_relationship_15_dilation():
    # o = floor((i + 2p - k - (k - 1)(d - 1)) / s) + 1; the paper: i = 7, k = 3, d = 2 -> 3
    assert ar.conv_output_size(7, 3, 1, 0, 0, 2) == 3
    for i, k, s, p, d in SMALL:
        if i + 2 * p >= k + (k - 1) * (d - 1):
            expected = math.floor((i + 2 * p - k - (k - 1) * (d - 1)) / s) + 1
            assert ar.conv_output_size(i, k, s, p, p, d) == expected


# -- against explicit windows ----------------------------------------------------------------

@pytest.mark.parametrize("i,k,s,p,d", SMALL)
def test_output_size_counts_windows(i, k, s, p, d):
    for pb, pa in ((p, p), (p, 0), (0, p)):
        if i + pb + pa >= d * (k - 1) + 1:
            assert ar.conv_output_size(i, k, s, pb, pa, d) == windows_brute(i, k, s, pb, pa, d)[0]


@pytest.mark.parametrize("i,k,s,p,d", SMALL)
def test_fit_counts_unread_real_rows(i, k, s, p, d):
    for pb, pa in ((p, p), (p, 0), (0, p), (p, p + 1)):
        if i + pb + pa < d * (k - 1) + 1:
            continue
        count, read = windows_brute(i, k, s, pb, pa, d)
        last = max(read)
        real = set(range(pb, pb + i))
        fit = ar.fit(i, k, s, pb, pa, d)
        assert fit.dropped_rows == len({x for x in real - read if x > last})
        assert fit.skipped_rows == len({x for x in real - read if x < last})
        assert fit.remainder == (i + pb + pa) - 1 - last


def test_pool_ceil_mode_matches_pytorch_rule():
    # PyTorch: ceil, unless the last window would start in the right padding.
    assert ar.pool_output_size(112, 3, 2, 1, 1, ceil_mode=True) == 57
    assert ar.pool_output_size(112, 3, 2, 0, 0, ceil_mode=True) == 56
    assert ar.pool_output_size(5, 2, 2, 1, 1, ceil_mode=True) == 3  # 4th window starts in pad
    assert ar.pool_output_size(6, 2, 2, 1, 1, ceil_mode=True) == 4


def test_same_padding_is_tensorflow_same():
    assert ar.same_padding(224, 3, 2) == (0, 1)  # CONVENTIONS.md: TF SAME at 224, k=3, s=2
    assert ar.same_padding(224, 3, 1) == (1, 1)
    assert ar.same_padding(224, 4, 1) == (1, 2)  # odd total: the extra pad after
    for i, k, s in itertools.product(range(1, 40), range(1, 6), range(1, 4)):
        pb, pa = ar.same_padding(i, k, s)
        assert ar.conv_output_size(i, k, s, pb, pa) == math.ceil(i / s)


def test_alexnet_suggestions():
    # seed 002: 224 with F=11, S=4, P=0 is 54.25: 227 fits; total padding 3 (split 1/2) fits
    assert ar.fitting_sizes(224, 11, 4, 0, 0) == (223, 227)
    assert ar.fitting_total_padding(224, 11, 4, 0) == 3
    assert ar.fit(227, 11, 4).clean and not ar.fit(224, 11, 4).clean


def test_seed_examples():
    # seed 002: 7x7 input, 3x3 filter: stride 1 -> 5, stride 2 -> 3; 1-D W=5, F=3, P=1:
    # S=1 -> 5, S=2 -> 3, S=3 does not fit (4 is not divisible by 3); W=10, F=3, S=2 -> 4.5
    assert ar.conv_output_size(7, 3, 1) == 5 and ar.conv_output_size(7, 3, 2) == 3
    assert ar.conv_output_size(5, 3, 1, 1, 1) == 5 and ar.conv_output_size(5, 3, 2, 1, 1) == 3
    assert ar.fit(5, 3, 3, 1, 1).remainder == 1
    assert ar.fit(10, 3, 2).dropped_rows == 1
