"""Cases of the layout, slicing, reduction, matmul and stack kinds for tests/test_executor.py:
(id, per-sample input, layers, NumPy reference, torch oracle).

The references work on the channels-first (PyTorch-order) input, in float64, with NumPy's
own slicing, reshape and transpose: the executor's channels-last arrays and its index
translation are what is tested. The torch oracles are the PyTorch calls the kinds name.
Odd sizes throughout, so that a swapped axis cannot pass unnoticed.
"""

from __future__ import annotations

import numpy as np

try:
    import torch
except ImportError:
    torch = None


def _relu(x):
    return np.maximum(x, 0)


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _pixel_shuffle(x, r):
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(
        n, c // (r * r), h * r, w * r)


def _pixel_unshuffle(x, r):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(
        n, c * r * r, h // r, w // r)


LAYOUT_CASES = [
    ("slice_channels", (7, 5, 6), "{type: slice, dim: 1, start: 1, end: -2, step: 2}",
     lambda x, w: x[:, 1:-2:2], lambda x, w: x[:, 1:-2:2]),
    ("slice_clamped_width", (3, 5, 11), "{type: slice, dim: -1, start: -100, end: 100, step: 3}",
     lambda x, w: x[..., -100:100:3], lambda x, w: x[..., -100:100:3]),
    ("slice_1d", (3, 11), "{type: slice, dim: 2, start: 2, end: 9}",
     lambda x, w: x[:, :, 2:9], lambda x, w: torch.narrow(x, 2, 2, 7)),
    ("slice_3d_depth", (2, 5, 3, 4), "{type: slice, dim: 2, start: -3, step: 2}",
     lambda x, w: x[:, :, -3::2], lambda x, w: x[:, :, -3::2]),
    ("split_int_parts", (7, 5, 6), """{type: split, name: sp, split_size_or_sections: 3}
        {type: concat, inputs: [sp.2, sp.0]}""",
     lambda x, w: np.concatenate([x[:, 6:], x[:, :3]], 1),
     lambda x, w: torch.cat([torch.split(x, 3, 1)[2], torch.split(x, 3, 1)[0]], 1)),
    ("split_sections_height", (3, 5, 6), """{type: split, name: sp, split_size_or_sections: [2, 3], dim: 2}
        {type: relu, inputs: sp.1}""",
     lambda x, w: _relu(x[:, :, 2:]), lambda x, w: torch.relu(torch.split(x, [2, 3], 2)[1])),
    ("chunk_fewer_parts", (6, 5, 3), """{type: chunk, name: ch, chunks: 4}
        {type: identity, inputs: ch.2}""",
     lambda x, w: x[:, 4:6], lambda x, w: torch.chunk(x, 4, 1)[2]),
    ("reshape_3d", (6, 5, 7), "{type: reshape, shape: [5, -1, 3]}",
     lambda x, w: x.reshape(len(x), 5, -1, 3), lambda x, w: x.reshape(len(x), 5, -1, 3)),
    ("view_flat_then_4d", (6, 5, 7), """{type: view, shape: [-1]}
        {type: view, shape: [2, 3, 5, 7]}""",
     lambda x, w: x.reshape(len(x), 2, 3, 5, 7), lambda x, w: x.view(len(x), 2, 3, 5, 7)),
    ("unflatten_permute_flatten_shuffle", (6, 5, 7), """{type: unflatten, dim: 1, sizes: [2, -1]}
        {type: permute, dims: [0, 2, 1, 3, 4]}
        {type: flatten, start_dim: 1, end_dim: 2}""",
     lambda x, w: x.reshape(len(x), 2, 3, 5, 7).transpose(0, 2, 1, 3, 4).reshape(len(x), 6, 5, 7),
     lambda x, w: torch.flatten(x.unflatten(1, (2, -1)).permute(0, 2, 1, 3, 4), 1, 2)),
    ("permute_channels_last", (6, 5, 7), "{type: permute, dims: [0, 3, 1, -2]}",
     lambda x, w: x.transpose(0, 3, 1, 2), lambda x, w: x.permute(0, 3, 1, 2)),
    ("transpose_channels_width", (6, 5, 7), "{type: transpose, dim0: 1, dim1: -1}",
     lambda x, w: x.swapaxes(1, 3), lambda x, w: x.transpose(1, -1)),
    ("flatten_spatial", (6, 5, 7), "{type: flatten, start_dim: 2}",
     lambda x, w: x.reshape(len(x), 6, 35), lambda x, w: torch.flatten(x, 2)),
    ("flatten_channels_height", (6, 5, 7), "{type: flatten, start_dim: 1, end_dim: -2}",
     lambda x, w: x.reshape(len(x), 30, 7), lambda x, w: torch.flatten(x, 1, -2)),
    ("sum_spatial", (6, 5, 7), "{type: sum, dim: [2, 3]}",
     lambda x, w: x.sum((2, 3)), lambda x, w: torch.sum(x, (2, 3))),
    ("sum_height_drops_axis", (6, 5, 7), "{type: sum, dim: 2}",
     lambda x, w: x.sum(2), lambda x, w: torch.sum(x, 2)),
    ("mean_channels_keepdim", (6, 5, 7), "{type: mean, dim: 1, keepdim: true}",
     lambda x, w: x.mean(1, keepdims=True), lambda x, w: torch.mean(x, 1, keepdim=True)),
    ("amax_width", (6, 5, 7), "{type: amax, dim: -1}",
     lambda x, w: x.max(-1), lambda x, w: torch.amax(x, -1)),
    ("max_everything", (6, 5, 7), "{type: max}",
     lambda x, w: x.max((1, 2, 3)).reshape(len(x), 1),
     lambda x, w: torch.amax(x, (1, 2, 3)).reshape(len(x), 1)),
    ("amin_channels_width", (6, 5, 7), "{type: amin, dim: [1, 3]}",
     lambda x, w: x.min((1, 3)), lambda x, w: torch.amin(x, (1, 3))),
    ("min_3d_keepdim", (3, 4, 5, 3), "{type: min, dim: [-3, -1], keepdim: true}",
     lambda x, w: x.min((2, 4), keepdims=True), lambda x, w: torch.amin(x, (2, 4), keepdim=True)),
    ("stack_new_axis", (6, 5, 7), """{type: relu, name: r}
        {type: stack, dim: 2, inputs: [input, r]}""",
     lambda x, w: np.stack([x, _relu(x)], 2), lambda x, w: torch.stack([x, torch.relu(x)], 2)),
    ("stack_last", (3, 5), "{type: stack, dim: -1}",
     lambda x, w: x[..., None], lambda x, w: torch.stack([x], -1)),
    ("matmul_self_attention", (4, 5, 6), """{type: transpose, name: t, dim0: 2, dim1: 3}
        {type: matmul, inputs: [input, t]}""",
     lambda x, w: x @ x.swapaxes(2, 3), lambda x, w: torch.matmul(x, x.transpose(2, 3))),
    ("bmm_broadcast", (4, 5, 6), """{type: slice, name: s, dim: 1, end: 1}
        {type: transpose, name: t, dim0: 2, dim1: 3}
        {type: reshape, name: m, shape: [6, 5]}
        {type: bmm, inputs: [input, m]}""",
     lambda x, w: x @ x[:, :1].swapaxes(2, 3).reshape(len(x), 1, 6, 5),
     lambda x, w: torch.matmul(x, x[:, :1].transpose(2, 3).reshape(len(x), 1, 6, 5))),
    ("pixel_shuffle", (8, 3, 5), "{type: pixel_shuffle, upscale_factor: 2}",
     lambda x, w: _pixel_shuffle(x, 2), lambda x, w: torch.nn.functional.pixel_shuffle(x, 2)),
    ("depth_to_space", (9, 2, 3), "{type: depth_to_space, upscale_factor: 3}",
     lambda x, w: _pixel_shuffle(x, 3), lambda x, w: torch.nn.functional.pixel_shuffle(x, 3)),
    ("pixel_unshuffle", (2, 6, 9), "{type: pixel_unshuffle, downscale_factor: 3}",
     lambda x, w: _pixel_unshuffle(x, 3), lambda x, w: torch.nn.functional.pixel_unshuffle(x, 3)),
    ("space_to_depth", (3, 4, 6), "{type: space_to_depth, downscale_factor: 2}",
     lambda x, w: _pixel_unshuffle(x, 2), lambda x, w: torch.nn.functional.pixel_unshuffle(x, 2)),
    ("log_softmax_height", (3, 5, 4), "{type: log_softmax, dim: 2}",
     lambda x, w: _log_softmax(x, 2), lambda x, w: torch.log_softmax(x, 2)),
    ("concat_one_input", (3, 5, 4), "{type: concat}",
     lambda x, w: x, lambda x, w: torch.cat([x])),
]
