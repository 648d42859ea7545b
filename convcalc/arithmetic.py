"""Convolution arithmetic: every size formula of the project, each written once.

Notation (Dumoulin & Visin, arXiv 1603.07285): i input size, k kernel, s stride,
p_before / p_after padding, d dilation, o output; k_eff = d*(k-1) + 1.
All functions work on one spatial axis and plain integers, so they can be reused by the
analysis, the single-layer calculator and the input-size search alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """k_eff = d*(k-1) + 1"""
    return dilation * (kernel - 1) + 1


def max_pool_padding(kernel: int) -> int:
    """p <= floor(k/2): PyTorch's limit on a pool's padding, of kernel_size itself, not of the
    dilated kernel (max_pool2d(k=3, padding=2, dilation=2) is refused)."""
    return kernel // 2


def conv_output_size(size: int, kernel: int, stride: int = 1, pad_before: int = 0,
                     pad_after: int = 0, dilation: int = 1) -> int:
    """o = floor((i + p_before + p_after - k_eff) / s) + 1  (may be <= 0: the caller reports it)"""
    span = size + pad_before + pad_after - effective_kernel(kernel, dilation)
    return span // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, pad_before: int = 0, pad_after: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """o = floor_or_ceil((i + p_b + p_a - k_eff) / s) + 1; with ceil_mode, PyTorch drops a last
    window that would start in the right padding: if (o-1)*s >= i + p_b then o -= 1."""
    span = size + pad_before + pad_after - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def transposed_output_size(size: int, kernel: int, stride: int = 1, pad_before: int = 0,
                           pad_after: int = 0, dilation: int = 1, output_padding: int = 0) -> int:
    """o = (i-1)*s - p_before - p_after + d*(k-1) + output_padding + 1"""
    return ((size - 1) * stride - pad_before - pad_after + dilation * (kernel - 1)
            + output_padding + 1)


def unpool_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """o = (i-1)*s - 2p + k  (MaxUnpool, the inverse of a max-pool's floor formula)"""
    return (size - 1) * stride - 2 * padding + kernel


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow SAME: o = ceil(i/s); total = max((o-1)*s + k_eff - i, 0); before = total // 2."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def upsample_output_size(size: int, scale_factor: float) -> int:
    """o = floor(i * scale_factor)  (PyTorch nn.Upsample)"""
    return int(size * scale_factor)


def adaptive_window(index: int, in_size: int, out_size: int) -> tuple[int, int]:
    """Adaptive pooling window of output index j: [floor(j*I/O), ceil((j+1)*I/O))."""
    start = (index * in_size) // out_size
    end = -(-((index + 1) * in_size) // out_size)
    return start, end


def adaptive_reads(in_size: int, out_size: int) -> int:
    """sum_j (end_j - start_j) over adaptive windows = I + O - gcd(I, O): every input once,
    plus one shared element for each j in 1..O-1 with O not dividing j*I."""
    return in_size + out_size - math.gcd(in_size, out_size)


def max_residue(a: int, b: int, m: int, count: int) -> int:
    """max_{0 <= j < count} (a*j + b) mod m: m - g + (b mod g), g = gcd(a, m), once j covers a
    period m / g (every caller's windows do); fewer j are enumerated."""
    g = math.gcd(a, m)
    if count >= m // g:
        return m - g + b % g
    return max((a * j + b) % m for j in range(count))


def min_residue(a: int, b: int, m: int, count: int) -> int:
    """min_{0 <= j < count} (a*j + b) mod m: b mod gcd(a, m) over a full period."""
    g = math.gcd(a, m)
    if count >= m // g:
        return b % g
    return min((a * j + b) % m for j in range(count))


def sampled_rf(stride: Fraction, offset: Fraction, count: int, nearest: bool):
    """(k, s, p) of the tightest receptive-field step holding every output j's source rows
    [floor(x_j), floor(x_j) if nearest else ceil(x_j)], x_j = j*s + offset, j < count:
    p = max_j frac(x_j) - offset; reach = offset - min_j frac(x_j) (nearest) or
    offset + max_j (ceil(x_j) - x_j); k = reach + p + 1 (enclosing_rf, in closed form)."""
    m = stride.denominator * offset.denominator  # x_j = (a*j + b) / m
    a, b = stride.numerator * offset.denominator, offset.numerator * stride.denominator
    padding = Fraction(max_residue(a, b, m, count), m) - offset
    if nearest:
        reach = offset - Fraction(min_residue(a, b, m, count), m)
    else:
        reach = offset + Fraction(max_residue(-a % m, -b % m, m, count), m)
    return reach + padding + 1, stride, padding


def adaptive_rf(in_size: int, out_size: int):
    """(k, s, p) enclosing adaptive windows [floor(j*I/O), ceil((j+1)*I/O) - 1]: s = I/O,
    p = (O - g)/O, k = I/O + 2(O - g)/O with g = gcd(I, O) (I=5, O=3: k = 3, p = 2/3)."""
    g = math.gcd(in_size, out_size)
    padding = Fraction(out_size - g, out_size)
    return Fraction(in_size, out_size) + 2 * padding, Fraction(in_size, out_size), padding


@dataclass(frozen=True)
class Fit:
    """How the windows of a strided layer cover one padded axis.

    `remainder` = (i + p_b + p_a - k_eff) mod s rows at the end of the padded axis are never
    read. Of those, `dropped_rows` are real input and `dropped_padding` are padding.
    `skipped_rows` counts real rows before the last window that no window reads: the gaps
    between windows when stride > k_eff, or the holes of a dilated kernel that no other window fills.
    """

    remainder: int
    dropped_rows: int
    dropped_padding: int
    skipped_rows: int

    @property
    def clean(self) -> bool:
        """No real input row is left unread."""
        return self.dropped_rows == 0 and self.skipped_rows == 0


def fit(size: int, kernel: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0,
        dilation: int = 1) -> Fit:
    """remainder = (i + p_b + p_a - k_eff) mod s; real rows dropped = those of the unread tail."""
    k_eff = effective_kernel(kernel, dilation)
    span = size + pad_before + pad_after - k_eff
    if span < 0:
        return Fit(0, 0, 0, 0)
    remainder = span % stride
    tail_start, last_real = size + pad_before + pad_after - remainder, pad_before + size - 1
    dropped_rows = max(0, last_real - max(tail_start, pad_before) + 1)
    windows = span // stride + 1
    skipped = 0
    if dilation > 1:
        skipped = _real_rows_in_holes(windows, kernel, stride, pad_before, size, dilation)
    elif stride > k_eff:
        skipped = _real_rows_between_windows(windows, k_eff, stride, pad_before, size)
    return Fit(remainder, dropped_rows, remainder - dropped_rows, skipped)


HOLE_CLASSES_LIMIT = 1 << 20  # residue classes `fit` walks to count a dilated kernel's holes


class TooLarge(ValueError):
    """A count this module would need more than O(1)-per-class work for (a dilated kernel
    whose stride, dilation, kernel and window count are all above HOLE_CLASSES_LIMIT)."""


def _real_rows_in_holes(windows: int, kernel: int, stride: int, pad_before: int, size: int,
                        dilation: int) -> int:
    """Real rows x in [p_b, p_b + i) below the last read row that no tap x = j*s + t*d
    (j < windows, t < kernel) reads; counted per residue class, O(min(s, k, d, windows)/g).

    With g = gcd(s, d) only rows x = g*y are ever read. For s' = s/g, d' = d/g (coprime), the
    rows y = t0*d' + s'*z of class t0 (t0 < min(s', k)) are read exactly for
    z in the union over m <= (k - 1 - t0) // s' of [m*d', m*d' + windows - 1]; the roles of
    (s', k) and (d', windows) are symmetric, so the loop runs over the smaller of the two."""
    last_read = (windows - 1) * stride + dilation * (kernel - 1)
    low, high = pad_before, min(pad_before + size, last_read + 1)  # real rows, [low, high)
    if high <= low:
        return 0
    g = math.gcd(stride, dilation)
    y_low, y_high = -(-low // g), (high - 1) // g
    multiples = max(0, y_high - y_low + 1)
    unread = (high - low) - multiples  # rows that are not multiples of g: never read
    s1, d1 = stride // g, dilation // g
    if min(s1, kernel) > min(d1, windows):  # walk the classes of j instead of those of t
        s1, d1, kernel, windows = d1, s1, windows, kernel
    classes = min(s1, kernel)
    if classes > HOLE_CLASSES_LIMIT:
        raise TooLarge(f"{classes} residue classes (more than {HOLE_CLASSES_LIMIT}) of stride "
                       f"{stride}, dilation {dilation} and kernel {kernel}")
    read = 0
    for t0 in range(classes):
        z_low = -(-(y_low - t0 * d1) // s1)
        z_high = (y_high - t0 * d1) // s1
        last_m = (kernel - 1 - t0) // s1
        read += _count_in_periodic_runs(max(z_low, 0), min(z_high, last_m * d1 + windows - 1),
                                        d1, windows)
    return unread + multiples - read


def _count_in_periodic_runs(first: int, last: int, period: int, run: int) -> int:
    """#{z in [first, last]: z mod period < run} (z >= 0): runs [m*period, m*period + run - 1]."""
    if last < first:
        return 0
    if run >= period:
        return last - first + 1

    def upto(n: int) -> int:  # #{0 <= z <= n: z mod period < run}
        return (n + 1) // period * run + min((n + 1) % period, run)
    return upto(last) - upto(first - 1)


def _real_rows_between_windows(windows: int, k_eff: int, stride: int, pad_before: int,
                               size: int) -> int:
    """Real rows x in the gaps between windows: x mod s >= k_eff, x < (windows-1)*s."""
    def gap_rows_below(n: int) -> int:  # rows x in [0, n) with x mod s >= k_eff
        return (n // stride) * (stride - k_eff) + max(0, n % stride - k_eff)

    first_real = pad_before
    end = min(pad_before + size, (windows - 1) * stride)
    return max(0, gap_rows_below(end) - gap_rows_below(first_real)) if end > first_real else 0


def fitting_sizes(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                  dilation: int = 1) -> tuple[int, int]:
    """The nearest input sizes below and above `size` with (i + p - k_eff) a multiple of s."""
    k_eff = effective_kernel(kernel, dilation)
    remainder = (size + pad_before + pad_after - k_eff) % stride
    below = size - remainder
    above = size + (stride - remainder) % stride
    return below, above


def fitting_total_padding(size: int, kernel: int, stride: int, pad_total: int,
                          dilation: int = 1) -> int:
    """The smallest total padding >= pad_total with (i + P - k_eff) a multiple of s."""
    remainder = (size + pad_total - effective_kernel(kernel, dilation)) % stride
    return pad_total + (stride - remainder) % stride


# -- framework conventions and inverses (used by `convcalc conv/pool/tconv/solve`) ----------

def ceil_div(numerator: int, denominator: int) -> int:
    """ceil(a / b) on integers, exact for any size (no float rounding)."""
    return -(-numerator // denominator)


def caffe_pool_output_size(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    """Caffe pooling: o = ceil((i + 2p - k) / s) + 1, then o -= 1 if p > 0 and (o-1)*s >= i + p
    (the last window may not start in the padding; Caffe clips only when it pads)."""
    out = ceil_div(size + 2 * pad - kernel, stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def same_output_size(size: int, stride: int) -> int:
    """TensorFlow / ONNX SAME: o = ceil(i / s), whatever the kernel."""
    return ceil_div(size, stride)


def darknet_maxpool_padding(kernel: int, padding: int | None = None) -> tuple[int, int]:
    """Darknet [maxpool]: `padding` is the total (default size - 1), padding // 2 before, so
    o = floor((i + padding - size) / stride) + 1."""
    total = kernel - 1 if padding is None else padding
    return total // 2, total - total // 2


def transposed_same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1,
                            output_padding: int = 0) -> int:
    """ONNX ConvTranspose auto_pad SAME: o = i*s; total pad = s*(i-1) + output_padding + k_eff - o."""
    return (stride * (size - 1) + output_padding + effective_kernel(kernel, dilation)
            - size * stride)


def keras_transposed_output_size(size: int, kernel: int, stride: int, padding: str,
                                 dilation: int = 1, output_padding: int | None = None) -> int:
    """Keras Conv*DTranspose (deconv_output_length): without output_padding, SAME o = i*s and
    VALID o = i*s + max(k_eff - s, 0); with it, o = (i-1)*s + k_eff - 2*pad + output_padding,
    pad = k_eff // 2 (SAME) or 0 (VALID)."""
    k_eff = effective_kernel(kernel, dilation)
    if output_padding is None:
        return size * stride + (max(k_eff - stride, 0) if padding == "valid" else 0)
    pad = k_eff // 2 if padding == "same" else 0
    return (size - 1) * stride + k_eff - 2 * pad + output_padding


def conv_total_padding_range(size: int, out: int, kernel: int, stride: int = 1,
                             dilation: int = 1) -> tuple[int, int]:
    """Total paddings P with floor((i + P - k_eff) / s) + 1 = o: (o-1)*s <= i + P - k_eff < o*s,
    i.e. P from (o-1)*s + k_eff - i to o*s + k_eff - i - 1 (clip at 0 yourself)."""
    k_eff = effective_kernel(kernel, dilation)
    return (out - 1) * stride + k_eff - size, out * stride + k_eff - size - 1


def transposed_inverse_output_padding(size: int, kernel: int, stride: int, pad_before: int = 0,
                                      pad_after: int = 0, dilation: int = 1) -> int:
    """a = (i + p_b + p_a - k_eff) mod s: the output_padding that makes a transposed conv with the
    same k, s, p, d give back the conv's input size i (Dumoulin & Visin, relationship 14)."""
    return (size + pad_before + pad_after - effective_kernel(kernel, dilation)) % stride
