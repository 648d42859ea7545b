"""Convolution arithmetic: every size formula of the project, each written once.

Notation (Dumoulin & Visin, arXiv 1603.07285): i input size, k kernel, s stride,
p_before / p_after padding, d dilation, o output; k_eff = d*(k-1) + 1.
All functions work on one spatial axis and plain integers, so they can be reused by the
analysis, the single-layer calculator and the input-size search alike.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def _real_rows_in_holes(windows: int, kernel: int, stride: int, pad_before: int, size: int,
                        dilation: int) -> int:
    """Real rows that no tap j*s + t*d of a dilated window reads (enumerated: dilation is rare)."""
    last_read = (windows - 1) * stride + dilation * (kernel - 1)
    read = bytearray(last_read + 1)
    for t in range(kernel):  # tap t of every window: rows t*d + j*s, j < windows
        start = t * dilation
        read[start:start + (windows - 1) * stride + 1:stride] = b"\1" * windows
    end = min(pad_before + size, last_read + 1)
    return sum(1 for x in range(pad_before, end) if not read[x])


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
