"""The small torch.nn.Module classes an exported file defines for the kinds PyTorch has no
module for: each is written into the file that uses it (the file needs torch only), reads as
the published module it follows (timm's LayerScale2d, GlobalResponseNorm, BlurPool2d,
StdConv2d/ScaledStdConv2d; CoordConv's coordinate channels; Keras' LocallyConnected), and
holds its parameters under the names convcalc's weights use, so that the weights of
`convcalc run --save-weights` load with strict=True. Each class names its kind in
`convcalc_kind`: `convcalc import` of the file reads it as that one layer (torch_table.py).
"""

from __future__ import annotations

LAYER_SCALE = '''
class LayerScale(nn.Module):
    """x * gamma[c] on the channel axis (dim 1), as timm's LayerScale2d."""

    convcalc_kind = "layer_scale"

    def __init__(self, channels, init_values=1e-5, keepdim=False, ndim=2, name="gamma"):
        super().__init__()
        shape = (channels, *(1,) * ndim) if keepdim else (channels,)
        self.name = name
        self.register_parameter(name, nn.Parameter(torch.full(shape, float(init_values))))

    def forward(self, x):
        return x * getattr(self, self.name).reshape(-1, *(1,) * (x.dim() - 2))
'''

CHANNEL_BIAS = '''
class ChannelBias(nn.Module):
    """x + bias[c] on the channel axis (dim 1): a per-channel bias on its own."""

    convcalc_kind = "channel_bias"

    def __init__(self, channels, keepdim=False, ndim=2, name="bias"):
        super().__init__()
        shape = (channels, *(1,) * ndim) if keepdim else (channels,)
        self.name = name
        self.register_parameter(name, nn.Parameter(torch.zeros(shape)))

    def forward(self, x):
        return x + getattr(self, self.name).reshape(-1, *(1,) * (x.dim() - 2))
'''

SCALAR_AFFINE = '''
class ScalarAffine(nn.Module):
    """x * weight + bias with one learned number each (NFNet's skipinit gain)."""

    convcalc_kind = "scalar_affine"

    def __init__(self, bias=True, weight_init=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(float(weight_init)))
        self.bias = nn.Parameter(torch.tensor(float(bias_init))) if bias else None

    def forward(self, x):
        return x * self.weight + self.bias if self.bias is not None else x * self.weight
'''

GRN = '''
class GlobalResponseNorm(nn.Module):
    """timm's GlobalResponseNorm (ConvNeXt-V2): x + bias + weight * x * Nx, with
    Nx = Gx / (mean over channels of Gx + eps), Gx = ||x||_2 over the spatial axes."""

    convcalc_kind = "global_response_norm"

    def __init__(self, dim, eps=1e-6, channels_last=False):
        super().__init__()
        self.eps, self.channels_last = eps, channels_last
        self.channel_dim = -1 if channels_last else 1
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        if self.channels_last:
            spatial, channel, shape = tuple(range(1, x.dim() - 1)), -1, (1,) * (x.dim() - 1) + (-1,)
        else:
            spatial, channel, shape = tuple(range(2, x.dim())), 1, (1, -1) + (1,) * (x.dim() - 2)
        gx = x.norm(p=2, dim=spatial, keepdim=True)
        nx = gx / (gx.mean(dim=channel, keepdim=True) + self.eps)
        return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * nx)
'''

BLUR_POOL = '''
class BlurPool2d(nn.Module):
    """timm's BlurPool2d: a fixed binomial blur per channel, then a stride (Zhang 2019)."""

    convcalc_kind = "blur_pool2d"

    def __init__(self, channels, filt_size=3, stride=2, pad_mode="reflect"):
        super().__init__()
        taps = torch.tensor([math.comb(filt_size - 1, k) for k in range(filt_size)],
                            dtype=torch.float64) / 2 ** (filt_size - 1)
        filt = (taps[:, None] * taps[None, :]).float()
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1), persistent=False)
        self.filt_size, self.stride, self.pad_mode = filt_size, stride, pad_mode
        self.padding = ((stride - 1) + (filt_size - 1)) // 2

    def forward(self, x):
        x = F.pad(x, (self.padding,) * 4, mode=self.pad_mode)
        return F.conv2d(x, self.filt, stride=self.stride, groups=x.shape[1])
'''

COORD_CHANNELS = '''
class CoordChannels(nn.Module):
    """CoordConv's coordinate channels appended after the input's: one per spatial axis, in
    [-1, 1] (-1 on an axis of size 1), and with_r their distance from the centre."""

    convcalc_kind = "coord_channels"

    def __init__(self, with_r=False):
        super().__init__()
        self.with_r = with_r

    def forward(self, x):
        axes = [torch.linspace(-1.0, 1.0, n, dtype=x.dtype, device=x.device) if n > 1
                else torch.full((1,), -1.0, dtype=x.dtype, device=x.device) for n in x.shape[2:]]
        coords = list(torch.meshgrid(*axes, indexing="ij"))
        if self.with_r:
            coords.append(torch.sqrt(sum(c * c for c in coords)))
        extra = torch.stack(coords).unsqueeze(0).expand(x.shape[0], -1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)
'''

LOCALLY_CONNECTED = '''
class LocallyConnected(nn.Module):
    """A conv whose every output position has its own filters (Keras' LocallyConnected):
    weight (*out, Cout, Cin, *kernel), bias (Cout, *out); zero padding (F.pad's order)."""

    convcalc_kind = "locally_connected"

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, out_size,
                 bias=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.out_channels = out_channels
        fan_in = in_channels * math.prod(kernel_size)
        bound = fan_in ** -0.5
        self.weight = nn.Parameter(torch.empty(*out_size, out_channels, in_channels,
                                               *kernel_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, *out_size).uniform_(-bound, bound)) \\
            if bias else None
        out, kern = "ijk"[:len(kernel_size)], "uvw"[:len(kernel_size)]
        self.equation = f"nc{out}{kern},{out}oc{kern}->no{out}"  # batch n, Cin c, Cout o

    def forward(self, x):
        x = F.pad(x, self.padding)
        for axis, (k, s) in enumerate(zip(self.kernel_size, self.stride)):
            x = x.unfold(2 + axis, k, s)  # (N, Cin, *out, *kernel)
        out = torch.einsum(self.equation, x, self.weight)
        return out + self.bias if self.bias is not None else out
'''


def std_conv(n: int) -> str:
    return f'''
class StdConv{n}d(nn.Conv{n}d):
    """timm's StdConv{n}d, and with scaled=True its ScaledStdConv{n}d (a learned gain): the
    weight standardised per output filter at every forward, (w - mean) / sqrt(var + eps)."""

    convcalc_kind = "std_conv"

    def __init__(self, *args, eps=1e-6, scaled=False, gamma=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps, self.gamma = eps, gamma
        self.scale = gamma * self.weight[0].numel() ** -0.5 if scaled else None
        if scaled:
            self.gain = nn.Parameter(torch.ones(self.out_channels, *(1,) * (self.weight.dim() - 1)))

    def forward(self, x):
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)
        if self.scale is not None:
            weight = weight * (self.gain * self.scale)
        return self._conv_forward(x, weight, self.bias)
'''


LAYER_NORM_2D = '''
class LayerNorm2d(nn.LayerNorm):
    """nn.LayerNorm over the channels at every position (torchvision's and timm's
    LayerNorm2d): channels last, normalised, channels back."""

    convcalc_kind = "layernorm2d"

    def forward(self, x):
        last = (0, *range(2, x.dim()), 1)
        back = (0, x.dim() - 1, *range(1, x.dim() - 1))
        x = F.layer_norm(x.permute(last), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(back)
'''


HELPERS: dict[str, str] = {
    "LayerNorm2d": LAYER_NORM_2D,
    "LayerScale": LAYER_SCALE, "ChannelBias": CHANNEL_BIAS, "ScalarAffine": SCALAR_AFFINE,
    "GlobalResponseNorm": GRN, "BlurPool2d": BLUR_POOL, "CoordChannels": COORD_CHANNELS,
    "LocallyConnected": LOCALLY_CONNECTED, **{f"StdConv{n}d": std_conv(n) for n in (1, 2, 3)},
}
"""Helper class name -> its source, written once into a file that uses it."""
