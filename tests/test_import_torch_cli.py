"""`convcalc import MODULE:CALLABLE` as a user meets it: the README's three commands, and
one-line errors with exit 2 for every way a factory can fail, for code fx cannot trace, and
for what convcalc cannot model (every unsupported construct listed, nothing written)."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from convcalc.cli import _register_commands, app  # noqa: E402

NETS = '''
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F


class Small(nn.Module):
    def __init__(self, classes=10, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        y = F.max_pool2d(self.up(y), 2) + y
        y = F.interpolate(y, size=(4, 6), mode="nearest")
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.rnn = nn.GRU(4, 4)

    def forward(self, x):
        x = torch.roll(self.conv(x), 1, 2)
        return torch.roll(x, 1, 3).cumsum(1)


class Sized(nn.Module):
    """Control flow on the input's size (timm's VGG head): fx cannot trace it; a trace can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        if x.shape[-1] > 8:
            x = F.max_pool2d(x, 2)
        return F.relu(self.bn(self.conv(x)))


def broken(**kwargs):
    raise ValueError("no such width\\nsecond line")


def not_a_model():
    return 42
'''


@pytest.fixture()
def nets(tmp_path, monkeypatch):
    """A package of the user's own nets in the working directory, as `python -m` sees it."""
    name = f"usernets_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(NETS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return name


def invoke(*args: str):
    _register_commands()
    return CliRunner().invoke(app, list(args))


def error_line(result) -> str:
    text = result.output.strip()
    assert result.exit_code == 2, text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


def test_readme_commands(tmp_path):
    out, weights = tmp_path / "r18.yaml", tmp_path / "r18.npz"
    result = invoke("import", "torchvision.models:resnet18", "-o", str(out),
                    "--weights-out", str(weights))
    assert result.exit_code == 0, result.output
    assert "69 layers" in result.output and "3x224x224 (the default" in result.output
    assert invoke("check", str(out)).exit_code == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 224, 224), np.float32))
    result = invoke("run", str(out), str(tmp_path / "x.npy"), "--weights", str(weights),
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "x.out.npy").shape == (1000,)


def test_users_own_model_with_kwargs_and_input(nets, tmp_path):
    out = tmp_path / "small.yaml"
    result = invoke("import", f"{nets}:Small", "-o", str(out), "--input", "3x8x12",
                    "--kwargs", '{"classes": 5, "width": 6}')
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "input: [3, 8, 12]" in text and "out_features: 5" in text
    assert "{type: add, name: add, inputs: [max_pool2d, relu]}" in text
    assert "{type: upsample, name: interpolate, mode: nearest, size: [4, 6]}" in text


def test_a_python_file_by_its_path(nets, tmp_path, monkeypatch):
    """`convcalc import path/to/net.py:Net`, as `convcalc export --to pytorch` writes one, from
    another folder: the same spec as the module path; a missing file is one line."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    by_path = invoke("import", f"../{nets}.py:Small", "-o", "a.yaml", "--input", "3x8x12")
    assert by_path.exit_code == 0, by_path.output
    monkeypatch.chdir(tmp_path)
    by_module = invoke("import", f"{nets}:Small", "-o", "b.yaml", "--input", "3x8x12")
    assert by_module.exit_code == 0, by_module.output
    def layers(path):
        text = path.read_text()
        return text[text.index("\nlayers:"):]
    assert layers(elsewhere / "a.yaml") == layers(tmp_path / "b.yaml")
    assert "no file nothere.py" in error_line(invoke("import", "nothere.py:Net", "-o", "c.yaml"))
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize("source, words", [
    ("no_such_module_xyz:net", "no module named 'no_such_module_xyz'"),
    ("{nets}:missing", "has no attribute 'missing'"),
    ("{nets}:broken", "broken(**{}) raised ValueError: no such width"),
    ("{nets}:not_a_model", "returned a int, not a torch.nn.Module"),
    ("{nets}:Small", "--kwargs"),
])
def test_factory_errors(nets, tmp_path, source, words):
    extra = ["--kwargs", '{"colour": 1}'] if source.endswith("Small") else []
    result = invoke("import", source.format(nets=nets), "-o", str(tmp_path / "o.yaml"), *extra)
    assert words in error_line(result)
    assert not (tmp_path / "o.yaml").exists()


def test_untraceable_names_the_construct(nets, tmp_path):
    """Control flow on the input's values: fx cannot trace it, and the exporter's trace is
    another network (checked on other inputs): refused, naming the construct."""
    line = error_line(invoke("import", f"{nets}:Branchy", "-o", str(tmp_path / "o.yaml")))
    assert "torch.fx cannot trace it" in line and "control flow" in line
    assert "the trace is not the model" in line
    assert f"{nets}.py:" in line and "if x.sum() > 0:" in line


def test_untraceable_by_fx_is_traced_by_the_onnx_exporter(nets, tmp_path):
    """The fallback: torch.onnx's tracer, the ONNX importer; the names and state_dict keys of
    the model, its own output, and a note that says how it was read."""
    out, weights = tmp_path / "sized.yaml", tmp_path / "sized.npz"
    result = invoke("import", f"{nets}:Sized", "-o", str(out), "--input", "3x16x16",
                    "--weights-out", str(weights))
    assert result.exit_code == 0, result.output
    assert "torch.fx could not trace it" in result.output and "if x.shape[-1] > 8:" in result.output
    module = sys.modules[nets] if nets in sys.modules else __import__(nets)
    model = module.Sized().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    import convcalc
    from convcalc.interop import import_model
    imported = import_model(f"{nets}:Sized", input=(3, 16, 16))
    assert {layer["name"] for layer in imported.spec["layers"]} >= {"conv", "bn"}
    assert set(np.load(weights).files) == set(model.state_dict())
    x = np.random.default_rng(5).standard_normal((2, 3, 16, 16)).astype(np.float32)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    ours = convcalc.run(str(out), x, weights=state).output
    assert np.allclose(ours, theirs, atol=1e-5)


def test_unsupported_lists_every_construct(nets, tmp_path):
    line = error_line(invoke("import", f"{nets}:Odd", "-o", str(tmp_path / "o.yaml")))
    assert "cannot import 3 node(s)" in line
    assert "function torch.roll x2 (roll, roll_1)" in line
    assert "method Tensor.cumsum x1 (cumsum)" in line
    assert not (tmp_path / "o.yaml").exists()


def test_wrong_input_size_is_an_error(tmp_path):
    line = error_line(invoke("import", "torchvision.models:resnet18", "-o",
                             str(tmp_path / "o.yaml"), "--input", "1x64x64"))
    assert "1x1x64x64 failed" in line and "--input" in line


def test_without_torch_one_line_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    line = error_line(invoke("import", "torchvision.models:resnet18", "-o",
                             str(tmp_path / "o.yaml")))
    assert "needs torch" in line and "pip install 'convcalc[torch]'" in line
