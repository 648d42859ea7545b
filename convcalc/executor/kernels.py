"""NumPy compute kernels of the executor: pure functions on channels-last float32 arrays.

An activation is x (N, *spatial, C) with 1, 2 or 3 spatial axes; weights use PyTorch
layouts; padding is ((before, after), ...) per spatial axis; every function follows the
PyTorch definition (tests/test_kernels_vs_torch.py checks each against torch.nn.functional).

    conv(x, weight, bias, stride, padding, dilation, groups=1, padding_mode="zeros")
        weight (Cout, Cin/groups, *k) or conv_prepared_weight(weight, groups)
    conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups=1)
        weight (Cin, Cout/groups, *k) or conv_transpose_prepared_weight(weight, groups)
    locally_connected(x, weight, bias, kernel_size, stride, padding)
        weight (*out, Cout, Cin, *k), bias (Cout, *out)
    max_pool, avg_pool, adaptive_avg_pool, adaptive_max_pool, max_unpool
    upsample(x, size, mode, align_corners), channel_shuffle, coord_channels, pad
    batch_norm, group_norm, local_response_norm, linear, softmax, log_softmax, ACTIVATIONS[name](x, **params)

The implementations live in kernels_common (pad, the window view), kernels_conv,
kernels_pool, kernels_resample and kernels_pointwise; this module is the public surface.
"""

from convcalc.executor.kernels_common import pad, window_view
from convcalc.executor.kernels_conv import (
    ConvWeight, conv, conv_prepared_weight, conv_transpose, conv_transpose_prepared_weight,
    locally_connected,
)
from convcalc.executor.kernels_pointwise import (
    ACTIVATIONS, batch_norm, group_norm, linear, local_response_norm, log_softmax, softmax,
)
from convcalc.executor.kernels_pool import (
    adaptive_avg_pool, adaptive_max_pool, avg_pool, max_pool, max_unpool,
)
from convcalc.executor.kernels_resample import channel_shuffle, coord_channels, upsample

__all__ = [
    "ACTIVATIONS", "ConvWeight", "adaptive_avg_pool", "adaptive_max_pool", "avg_pool",
    "batch_norm", "channel_shuffle", "conv", "conv_prepared_weight", "conv_transpose",
    "conv_transpose_prepared_weight", "coord_channels", "group_norm", "linear",
    "local_response_norm", "locally_connected", "log_softmax", "max_pool", "max_unpool", "pad", "softmax",
    "upsample", "window_view",
]
