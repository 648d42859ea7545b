"""The layout, slicing, reduction and constant-arithmetic converters on one small net that
uses each PyTorch spelling, against PyTorch's own output and shapes. Skipped where this
convcalc lacks the kinds they map onto."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

from convcalc.analysis import analyze_text  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402
from convcalc.interop.spec_text import to_yaml  # noqa: E402
from convcalc.interop.torch_import import import_module  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402

NEEDED = {"slice", "split", "chunk", "reshape", "permute", "transpose", "sum", "mean",
          "layer_scale", "sub", "rsub", "pow", "layernorm", "layernorm2d", "matmul", "stack",
          "pixel_shuffle"}
needs_kinds = pytest.mark.skipif(not NEEDED <= set(REGISTRY),
                                 reason="the layout and math kinds are not registered")


class Everything(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(32) + 0.5)  # timm: x.mul(gamma.reshape(1,-1,1,1))
        self.beta = nn.Parameter(torch.rand(32) - 0.5)  # timm GRN's bias.view(1, -1, 1, 1)
        self.norm = nn.LayerNorm(32)
        self.fc = nn.Linear(32, 16)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        x = self.conv(x)
        a, b = x.chunk(2, dim=1)                       # parts
        c, d, e = torch.split(x, [4, 4, 8], 1)
        y = torch.cat([a * 0.5, 1 - b, c ** 2, d / 4, e - 1.0], 1)
        y = y.mul(self.gamma.reshape(1, -1, 1, 1))     # layer scale
        y = y + self.beta.view(1, -1, 1, 1)            # a per-channel bias
        z = self.fc(self.norm(y.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        z = z[:, 2:14, 1:, :-1] + y[:, :12, 1:, 1:]    # slices on several axes
        attention = torch.matmul(z.flatten(2).transpose(1, 2), z.flatten(2))  # (L, L)
        w = attention.softmax(-1).sum(dim=1, keepdim=True).view(1, 1, 7, 7)
        s = torch.stack([z.mean((2, 3)), z.amax(dim=(2, 3))], dim=2).view(1, -1, 1, 1)
        return self.shuffle(z * w).sum(1, keepdim=True) + s.sum(1, keepdim=True)


@needs_kinds
def test_every_spelling_imports_and_runs_as_pytorch():
    torch.manual_seed(0)
    model = Everything().eval()
    imported = import_module(model, (3, 8, 8))
    kinds = {layer["type"] for layer in imported.spec["layers"]}
    assert {"chunk", "split", "mul", "rsub", "pow", "div", "sub", "layer_scale", "channel_bias",
            "permute",
            "layernorm", "slice", "matmul", "transpose", "stack", "reshape", "sum",
            "global_avgpool", "global_maxpool", "pixel_shuffle"} <= kinds
    names = {layer["name"] for layer in imported.spec["layers"]}
    assert {"gamma", "beta"} <= names and {"gamma", "beta"} <= set(imported.weights)  # the keys
    assert_runs_as_pytorch(model, imported, (1, 3, 8, 8), 1e-4)


def assert_runs_as_pytorch(model, imported, shape, tolerance: float) -> None:
    """The imported spec, run by convcalc with the model's state_dict, gives the model's
    output within `tolerance` of its largest value."""
    report = analyze_text(to_yaml(imported.spec), "imported")
    assert report.ok
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    result = Executor(report, weights).run(np.moveaxis(x, 1, -1).copy(), report)
    assert result.ok
    ours = np.moveaxis(result.output, -1, 1)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= tolerance * np.abs(theirs).max()


def test_batch_axis_is_refused():
    class Batchy(nn.Module):
        def forward(self, x):
            return x[1:] + torch.cat([x, x], 0)[:1] + x.sum(0) + x.view(-1)[:1]

    with pytest.raises(Exception, match="cannot import 6 node") as err:
        import_module(Batchy(), (3, 4, 4))
    for words in ("slicing the batch axis x3", "concatenating along the batch axis x1 (cat)",
                  "dim [0] includes the batch axis x1 (sum_1)",
                  "a reshape that merges the batch axis with others x1 (view)"):
        assert words in str(err.value)


def test_a_reshape_fixed_at_the_traced_size_is_said():
    """x.view(N, C, H * W) holds H * W of the traced input: a note names it (another size
    needs a new import); a flatten (x.view(N, -1)) holds no size and gets no note."""
    class Tokens(torch.nn.Module):
        def __init__(self, flat: bool):
            super().__init__()
            self.conv, self.flat = torch.nn.Conv2d(3, 4, 1), flat

        def forward(self, x):
            x = self.conv(x)
            n, c, h, w = x.shape
            return x.view(n, -1) if self.flat else x.view(n, c, h * w)

    notes = import_module(Tokens(False).eval(), (3, 6, 5)).notes
    assert any("1 reshape(s) hold sizes fixed at input 3x6x5 (view)" in n for n in notes), notes
    notes = import_module(Tokens(True).eval(), (3, 6, 5)).notes
    assert not any("reshape(s) hold sizes" in n for n in notes), notes


class Unpooling(nn.Module):
    """Both spellings of max-pool indices: the modules (MaxPool2d(return_indices=True),
    MaxUnpool2d) and the functions (F.max_pool1d_with_indices through return_indices=True,
    F.max_unpool1d with output_size=v.size(), N and C included, not the default 88)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.unpool = nn.MaxUnpool2d(3, stride=2, padding=1)

    def forward(self, x):
        y, where = self.pool(x)
        up = self.unpool(self.conv(y), where, output_size=x.shape[2:])
        v = x.flatten(2)
        z, at = F.max_pool1d(v, 4, return_indices=True)
        back = F.max_unpool1d(z * 2, at, 4, output_size=v.size()).unflatten(2, (9, 10))
        return up + back


def test_max_pool_indices_import_and_run_as_pytorch():
    torch.manual_seed(0)
    model = Unpooling().eval()
    imported = import_module(model, (4, 9, 10))
    layers = {layer["name"]: layer for layer in imported.spec["layers"]}
    unpools = [layer for layer in layers.values() if layer["type"].startswith("max_unpool")]
    assert [layer["indices"] for layer in unpools] == ["pool", "max_pool1d_with_indices"]
    assert unpools[0]["output_size"] == [9, 10] and unpools[1]["output_size"] == [90]
    assert_runs_as_pytorch(model, imported, (2, 4, 9, 10), 1e-5)


def test_indices_read_by_anything_but_an_unpool_are_refused():
    class Peek(nn.Module):
        def forward(self, x):
            y, where = F.max_pool2d(x, 2, return_indices=True)
            return y + where

    with pytest.raises(Exception, match="reads the indices of max-pool max_pool2d_with_indices"):
        import_module(Peek(), (3, 4, 4))
