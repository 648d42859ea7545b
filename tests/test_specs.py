"""The spec library (specs/*.yaml) against published figures and against PyTorch.

Every number below is typed from its source (docs: /work/shared/design/CONVENTIONS.md), never
read back from a spec's own `expect`, so a spec and its expectation cannot drift together.
The PyTorch oracle builds each network in plain torch.nn (torchvision does not import beside
the CPU build here) on the meta device: shapes, parameter counts, state_dict keys and
FlopCounterMode's count need no arithmetic on real tensors, so even U-Net at 572 is instant.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import OrderedDict
from functools import cache
from pathlib import Path

import pytest

from convcalc.analysis import Report, analyze_file, analyze_text
from convcalc.diagnostics import Severity

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "specs"
SPEC_FILES = sorted(SPEC_DIR.glob("*.yaml"))
LIBRARY = ("lenet5", "alexnet", "alexnet_227", "vgg16", "resnet18", "resnet50", "mobilenet_v2",
           "unet", "yolov3_tiny", "dcgan_generator")


@cache
def report(name: str) -> Report:
    return analyze_file(SPEC_DIR / f"{name}.yaml")


def errors(rep: Report) -> list[str]:
    return [d.format() for d in rep.diagnostics if d.severity == Severity.ERROR]


def spatial(rep: Report, layer: str) -> tuple[int, ...]:
    return rep.layer(layer).output_shape[1:]


# -- every spec analyses cleanly ------------------------------------------------------------

def test_the_library_has_every_network():
    assert {p.stem for p in SPEC_FILES} >= set(LIBRARY)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_analyses_without_errors(path):
    rep = analyze_file(path)
    assert errors(rep) == []
    assert rep.layers and all(layer.output_shape for layer in rep.layers)


# YOLOv3-tiny's 2x2 stride-1 pool pads after (Darknet), so the 13x13 path's centres sit half
# a cell (16 px) off conv8's where route 20 concatenates them: a real property of the model.
KNOWN_WARNINGS = {"yolov3_tiny": [("misaligned-merge", "route20")]}


@pytest.mark.parametrize("name", LIBRARY)
def test_published_network_has_no_unexpected_warning(name):
    """Otherwise infos only: padding rows left unread, ResNet's 1x1 stride-2 shortcuts."""
    rep = report(name)
    found = [(d.code, d.layer) for d in rep.diagnostics if d.severity != Severity.INFO]
    assert found == KNOWN_WARNINGS.get(name, [])


@pytest.mark.parametrize("name", LIBRARY)
def test_spec_pins_network_figures(name):
    expect = report(name).graph.expect
    assert {"params", "macs", "output"} <= set(expect), f"{name}: network expect is incomplete"


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_cli_check_json_exits_zero(path):
    run = subprocess.run([sys.executable, "-m", "convcalc", "check", str(path.relative_to(ROOT)),
                          "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    (result,) = json.loads(run.stdout)["files"]
    assert result["ok"] is True
    assert result["totals"]["params"] == report(path.stem).totals.params


def test_expect_on_a_block_instance_checks_its_output():
    """The specs pin stage outputs (layer1, up1, ...) with `expect` on block instances."""
    rep = analyze_text("""\
input: [3, 8, 8]
blocks:
  b:
    args: {c: 4}
    layers:
      - {type: conv2d, out_channels: "${c}", kernel_size: 3}
layers:
  - {type: b, name: x, repeat: 2, expect: {shape: [4, 6, 6]}}
""", "net.yaml")
    found = [(d.code, d.layer, d.line) for d in rep.diagnostics]
    # the instance x is both copies: x.0 gives 6, x.1 gives 4, so x's output is [4, 4, 4]
    assert found == [("expectation-failed", "x", 8)]
    assert "[4, 4, 4]" in rep.diagnostics[0].message


# -- published figures (CONVENTIONS.md: torchvision weight metadata at 224x224) ------------

PUBLISHED = [  # name, num_params, GMACs of conv + linear (exact where published exactly)
    ("alexnet", 61_100_840, 714_188_480),
    ("vgg16", 138_357_544, 15_470_264_320),
    ("resnet18", 11_689_512, 1_814_073_344),
    ("resnet50", 25_557_032, 4.089e9),
    ("resnet152", 60_192_808, 11.514e9),
    ("densenet121", 7_978_856, 2.834e9),
    ("mobilenet_v2", 3_504_872, 0.301e9),
]


@pytest.mark.parametrize("name, params, macs", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_params_and_macs(name, params, macs):
    totals = report(name).totals
    assert totals.params == params
    if isinstance(macs, int):
        assert totals.macs == macs
    else:  # published to 3 decimals in GMACs
        assert round(totals.macs / 1e9, 3) == round(macs / 1e9, 3)
    assert report(name).output_shape == (1000,)


VGG16_RF = {  # google-research/receptive_field end-points at 224: (rf, stride, padding)
    "features.0": (3, 1, 1), "features.4": (6, 2, 2), "features.5": (10, 2, 4),
    "features.9": (16, 4, 6), "features.10": (24, 4, 10), "features.12": (32, 4, 14),
    "features.16": (44, 8, 18), "features.17": (60, 8, 26), "features.19": (76, 8, 34),
    "features.23": (100, 16, 42), "features.24": (132, 16, 58), "features.26": (164, 16, 74),
    "features.30": (212, 32, 90),
}


def test_vgg16_receptive_fields():
    rep = report("vgg16")
    if rep.layer("features.0").receptive_field is None:
        pytest.skip("convcalc.receptive is not installed")
    for name, (size, stride, padding) in VGG16_RF.items():
        rf = rep.layer(name).receptive_field
        assert (rf["size"], rf["stride"], rf["padding"]) == \
            ([size] * 2, [stride] * 2, [padding] * 2), name


def test_lenet5():
    rep = report("lenet5")
    assert rep.totals.params == 61_706
    assert [rep.layer(n).params for n in ("c1", "c3", "c5", "f6", "output")] == \
        [156, 2_416, 48_120, 10_164, 850]
    assert rep.output_shape == (10,)


# -- U-Net (Ronneberger et al. 2015, Fig. 1) -------------------------------------------------

UNET_SIZES = {  # layer -> spatial size
    "down1.conv1": 570, "down1.conv2": 568, "pool1": 284,
    "down2.conv1": 282, "down2.conv2": 280, "pool2": 140,
    "down3.conv1": 138, "down3.conv2": 136, "pool3": 68,
    "down4.conv1": 66, "down4.conv2": 64, "pool4": 32,
    "bottom.conv1": 30, "bottom.conv2": 28,
    "up1.upconv": 56, "up1.conv.conv1": 54, "up1.conv.conv2": 52,
    "up2.upconv": 104, "up2.conv.conv2": 100,
    "up3.upconv": 200, "up3.conv.conv2": 196,
    "up4.upconv": 392, "up4.conv.conv2": 388, "final": 388,
}
UNET_CROPS = {"up1.crop": (64, 56), "up2.crop": (136, 104), "up3.crop": (280, 200),
              "up4.crop": (568, 392)}


def test_unet_stage_sizes():
    rep = report("unet")
    assert rep.input_shape == (1, 572, 572)
    assert {n: spatial(rep, n) for n in UNET_SIZES} == {n: (s, s) for n, s in UNET_SIZES.items()}
    for crop, (before, after) in UNET_CROPS.items():
        (source,) = rep.layer(crop).inputs
        assert spatial(rep, source) == (before, before), crop
        assert spatial(rep, crop) == (after, after), crop
        assert rep.layer(crop.replace("crop", "concat")).output_shape[0] == \
            2 * rep.layer(crop).output_shape[0]
    assert rep.output_shape == (2, 388, 388)


def test_unet_has_23_convs():
    kinds = [layer.type for layer in report("unet").layers]
    assert kinds.count("conv2d") + kinds.count("conv_transpose2d") == 23
    assert kinds.count("conv_transpose2d") == 4


# -- YOLOv3-tiny (Darknet printout at 416, BFLOPs = 2 * MACs / 1e9) -------------------------

YOLO_CONVS = [  # layer, filters, output size, BFLOPs
    ("conv0.conv", 16, 416, 0.150), ("conv2.conv", 32, 208, 0.399),
    ("conv4.conv", 64, 104, 0.399), ("conv6.conv", 128, 52, 0.399),
    ("conv8.conv", 256, 26, 0.399), ("conv10.conv", 512, 13, 0.399),
    ("conv12.conv", 1024, 13, 1.595), ("conv13.conv", 256, 13, 0.089),
    ("conv14.conv", 512, 13, 0.399), ("conv15", 255, 13, 0.044),
    ("conv18.conv", 128, 13, 0.011), ("conv21.conv", 256, 26, 1.196),
    ("conv22", 255, 26, 0.088),
]


def test_yolov3_tiny_bflops_per_conv():
    rep = report("yolov3_tiny")
    convs = [layer for layer in rep.layers if layer.type == "conv2d"]
    assert [c.name for c in convs] == [row[0] for row in YOLO_CONVS]
    for name, filters, size, bflops in YOLO_CONVS:
        layer = rep.layer(name)
        assert layer.output_shape == (filters, size, size), name
        assert round(2 * layer.macs / 1e9, 3) == bflops, name


def test_yolov3_tiny_heads_and_routes():
    rep = report("yolov3_tiny")
    assert rep.layer("yolo16").output_shape == (255, 13, 13)
    assert rep.layer("yolo23").output_shape == (255, 26, 26)
    assert rep.output_shape == (255, 26, 26)
    assert rep.layer("pool11").output_shape == (512, 13, 13)  # the 2x2 stride-1 pool keeps 13
    assert rep.layer("route17").output_shape == (256, 13, 13)
    assert rep.layer("route20").output_shape == (384, 26, 26)
    assert rep.layer("upsample19").output_shape == (128, 26, 26)


# -- AlexNet: the paper's 224 does not fit conv1; 227 does ---------------------------------

def test_alexnet_227_fits_every_stride():
    rep = report("alexnet_227")
    assert rep.layer("conv1").output_shape == (96, 55, 55)
    assert rep.layer("conv1").params == 34_944
    assert [d.format() for d in rep.diagnostics if d.code == "invalid-stride"] == []


PAPER_224 = """\
name: alexnet-conv1-paper
input: [3, 224, 224]
layers:
  - {type: conv2d, name: conv1, out_channels: 96, kernel_size: 11, stride: 4}
"""


def test_alexnet_conv1_at_224_warns_and_suggests_227():
    rep = analyze_text(PAPER_224, "paper.yaml")
    (finding,) = [d for d in rep.diagnostics if d.code == "invalid-stride"]
    assert finding.severity == Severity.WARNING
    assert (finding.file, finding.line, finding.column, finding.layer) == \
        ("paper.yaml", 4, 5, "conv1")
    assert "213" in finding.message and "54.25" in finding.message
    assert "227" in finding.hint
    assert rep.layer("conv1").output_shape == (96, 54, 54)


# -- the PyTorch oracle -------------------------------------------------------------------

def torch_models() -> dict:
    """name -> (builder, input shape): the spec library in plain torch.nn, torchvision names."""
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, inp, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = projection(inp, planes, stride)

        def forward(self, x):
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(y + (x if self.downsample is None else self.downsample(x)))

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inp, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(4 * planes)
            self.downsample = projection(inp, 4 * planes, stride)

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(y)))))
            return F.relu(y + (x if self.downsample is None else self.downsample(x)))

    def projection(inp, out, stride):
        if stride == 1 and inp == out:
            return None
        return nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    class ResNet(nn.Module):
        def __init__(self, block, counts):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            inp = 64
            for stage, (count, planes) in enumerate(zip(counts, (64, 128, 256, 512))):
                blocks = []
                for i in range(count):
                    blocks.append(block(inp, planes, 2 if stage and not i else 1))
                    inp = planes * block.expansion
                setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(inp, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    class FeaturesClassifier(nn.Module):  # torchvision's AlexNet and VGG
        def __init__(self, features, pooled, classifier):
            super().__init__()
            self.features = nn.Sequential(*features)
            self.avgpool = nn.AdaptiveAvgPool2d(pooled)
            self.classifier = nn.Sequential(*classifier)

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def alexnet():
        conv = lambda i, o, k, s=1, p=0: nn.Conv2d(i, o, k, s, p)  # noqa: E731
        return FeaturesClassifier(
            [conv(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), conv(64, 192, 5, p=2),
             nn.ReLU(), nn.MaxPool2d(3, 2), conv(192, 384, 3, p=1), nn.ReLU(),
             conv(384, 256, 3, p=1), nn.ReLU(), conv(256, 256, 3, p=1), nn.ReLU(),
             nn.MaxPool2d(3, 2)], 6,
            [nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(),
             nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000)])

    def vgg16():
        features, channels = [], 3
        for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                      512, 512, 512, "M"):
            if width == "M":
                features.append(nn.MaxPool2d(2, 2))
            else:
                features += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
                channels = width
        return FeaturesClassifier(features, 7, [
            nn.Linear(25088, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Dropout(), nn.Linear(4096, 1000)])

    def named(*pairs):
        return nn.Sequential(OrderedDict(pairs))

    def alexnet_227():  # the paper's, Caffe names
        return named(
            ("conv1", nn.Conv2d(3, 96, 11, 4)), ("relu1", nn.ReLU()),
            ("norm1", nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)), ("pool1", nn.MaxPool2d(3, 2)),
            ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)), ("relu2", nn.ReLU()),
            ("norm2", nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0)), ("pool2", nn.MaxPool2d(3, 2)),
            ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)), ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)), ("relu5", nn.ReLU()),
            ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
            ("fc6", nn.Linear(9216, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout()),
            ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout()),
            ("fc8", nn.Linear(4096, 1000)))

    def lenet5():
        return named(
            ("c1", nn.Conv2d(1, 6, 5)), ("c1_tanh", nn.Tanh()), ("s2", nn.AvgPool2d(2)),
            ("c3", nn.Conv2d(6, 16, 5)), ("c3_tanh", nn.Tanh()), ("s4", nn.AvgPool2d(2)),
            ("c5", nn.Conv2d(16, 120, 5)), ("c5_tanh", nn.Tanh()), ("flatten", nn.Flatten()),
            ("f6", nn.Linear(120, 84)), ("f6_tanh", nn.Tanh()), ("output", nn.Linear(84, 10)))

    def conv_bn(inp, out, k=3, stride=1, groups=1, act=nn.ReLU6):
        return nn.Sequential(nn.Conv2d(inp, out, k, stride, (k - 1) // 2, groups=groups,
                                       bias=False), nn.BatchNorm2d(out), act())

    class InvertedResidual(nn.Module):
        def __init__(self, inp, out, stride, expand):
            super().__init__()
            hidden = inp * expand
            layers = [conv_bn(inp, hidden, 1)] if expand != 1 else []
            layers += [conv_bn(hidden, hidden, 3, stride, hidden),
                       nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
            self.conv = nn.Sequential(*layers)
            self.residual = stride == 1 and inp == out

        def forward(self, x):
            return x + self.conv(x) if self.residual else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            features, inp = [conv_bn(3, 32, 3, 2)], 32
            for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
                for i in range(n):
                    features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                    inp = c
            features.append(conv_bn(inp, 1280, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

        def forward(self, x):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))

    class DoubleConv(nn.Module):
        def __init__(self, inp, out):
            super().__init__()
            self.conv1, self.relu1 = nn.Conv2d(inp, out, 3), nn.ReLU()
            self.conv2, self.relu2 = nn.Conv2d(out, out, 3), nn.ReLU()

        def forward(self, x):
            return self.relu2(self.conv2(self.relu1(self.conv1(x))))

    class Up(nn.Module):
        def __init__(self, inp, out):
            super().__init__()
            self.upconv = nn.ConvTranspose2d(inp, out, 2, 2)
            self.conv = DoubleConv(inp, out)

        def forward(self, x, skip):
            x = self.upconv(x)
            top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
            skip = skip[:, :, top:top + x.shape[2], left:left + x.shape[3]]
            return self.conv(torch.cat([skip, x], 1))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = (64, 128, 256, 512)
            for i, (inp, out) in enumerate(zip((1, *widths[:-1]), widths), 1):
                setattr(self, f"down{i}", DoubleConv(inp, out))
                setattr(self, f"pool{i}", nn.MaxPool2d(2))
            self.bottom = DoubleConv(512, 1024)
            for i, out in enumerate(reversed(widths), 1):
                setattr(self, f"up{i}", Up(2 * out, out))
            self.final = nn.Conv2d(64, 2, 1)

        def forward(self, x):
            skips = []
            for i in range(1, 5):
                x = getattr(self, f"down{i}")(x)
                skips.append(x)
                x = getattr(self, f"pool{i}")(x)
            x = self.bottom(x)
            for i in range(1, 5):
                x = getattr(self, f"up{i}")(x, skips[-i])
            return self.final(x)

    class DarknetPool(nn.Module):  # size 2, stride 1, Darknet's padding 1 after
        def forward(self, x):
            return F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=-math.inf), 2, 1)

    class YoloV3Tiny(nn.Module):
        def __init__(self):
            super().__init__()

            def cbl(inp, out, k=3):
                return named(("conv", nn.Conv2d(inp, out, k, 1, k // 2, bias=False)),
                             ("bn", nn.BatchNorm2d(out)), ("leaky", nn.LeakyReLU(0.1)))
            widths = (3, 16, 32, 64, 128, 256, 512)
            for i in range(6):
                setattr(self, f"conv{2 * i}", cbl(widths[i], widths[i + 1]))
                setattr(self, f"pool{2 * i + 1}", nn.MaxPool2d(2, 2) if i < 5 else DarknetPool())
            self.conv12, self.conv13 = cbl(512, 1024), cbl(1024, 256, 1)
            self.conv14, self.conv15 = cbl(256, 512), nn.Conv2d(512, 255, 1)
            self.conv18, self.upsample19 = cbl(256, 128, 1), nn.Upsample(scale_factor=2)
            self.conv21, self.conv22 = cbl(384, 256), nn.Conv2d(256, 255, 1)

        def forward(self, x):
            for i in range(0, 12, 2):
                x = getattr(self, f"conv{i}")(x)
                if i == 8:
                    route8 = x
                x = getattr(self, f"pool{i + 1}")(x)
            route13 = self.conv13(self.conv12(x))
            head13 = self.conv15(self.conv14(route13))
            x = torch.cat([self.upsample19(self.conv18(route13)), route8], 1)
            return head13, self.conv22(self.conv21(x))

    def dcgan_generator(nz=100, ngf=64):
        class Generator(nn.Module):  # the PyTorch DCGAN tutorial's
            def __init__(self):
                super().__init__()
                layers, channels = [], nz
                for i, out in enumerate((ngf * 8, ngf * 4, ngf * 2, ngf)):
                    layers += [nn.ConvTranspose2d(channels, out, 4, 1 if i == 0 else 2,
                                                  0 if i == 0 else 1, bias=False),
                               nn.BatchNorm2d(out), nn.ReLU(True)]
                    channels = out
                layers += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
                self.main = nn.Sequential(*layers)

            def forward(self, x):
                return self.main(x)
        return Generator()

    class DenseLayer(nn.Module):  # torchvision's _DenseLayer at inference
        def __init__(self, channels, growth=32, width=4):
            super().__init__()
            self.norm1, self.relu1 = nn.BatchNorm2d(channels), nn.ReLU()
            self.conv1 = nn.Conv2d(channels, width * growth, 1, bias=False)
            self.norm2, self.relu2 = nn.BatchNorm2d(width * growth), nn.ReLU()
            self.conv2 = nn.Conv2d(width * growth, growth, 3, padding=1, bias=False)

        def forward(self, x):
            new = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
            return torch.cat([x, new], 1)

    def densenet121():  # torchvision.models.densenet121: growth 32, blocks (6, 12, 24, 16)
        layers, channels = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                            nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 64
        for i, count in enumerate((6, 12, 24, 16)):
            for _ in range(count):
                layers.append(DenseLayer(channels))
                channels += 32
            if i < 3:
                layers += [nn.BatchNorm2d(channels), nn.ReLU(),
                           nn.Conv2d(channels, channels // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                   nn.Linear(channels, 1000)]
        return nn.Sequential(*layers)

    return {
        "resnet152": (lambda: ResNet(Bottleneck, (3, 8, 36, 3)), (3, 224, 224)),
        "densenet121": (densenet121, (3, 224, 224)),
        "lenet5": (lenet5, (1, 32, 32)),
        "alexnet": (alexnet, (3, 224, 224)),
        "alexnet_227": (alexnet_227, (3, 227, 227)),
        "vgg16": (vgg16, (3, 224, 224)),
        "resnet18": (lambda: ResNet(Basic, (2, 2, 2, 2)), (3, 224, 224)),
        "resnet50": (lambda: ResNet(Bottleneck, (3, 4, 6, 3)), (3, 224, 224)),
        "mobilenet_v2": (MobileNetV2, (3, 224, 224)),
        "unet": (UNet, (1, 572, 572)),
        "yolov3_tiny": (YoloV3Tiny, (3, 416, 416)),
        "dcgan_generator": (dcgan_generator, (100, 1, 1)),
    }


@cache
def torch_figures(name: str):
    """(params, MACs, state_dict shapes, per-module output shapes) of the torch twin."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    build, shape = torch_models()[name]
    with torch.device("meta"):
        model = build().eval()
    shapes, calls = {}, {}

    def hook(module_name):
        def record(module, args, output):
            calls[module_name] = calls.get(module_name, 0) + 1
            shapes[module_name] = tuple(output.shape[1:])
        return record

    for module_name, module in model.named_modules():
        if module_name:
            module.register_forward_hook(hook(module_name))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape, device="meta"))
    shapes = {n: s for n, s in shapes.items() if calls[n] == 1}  # a shared module is ambiguous
    params = sum(p.numel() for p in model.parameters())
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return params, counter.get_total_flops() // 2, state, shapes


@pytest.mark.parametrize("name", LIBRARY)
def test_torch_twin_params_and_macs(name):
    params, macs, _, _ = torch_figures(name)
    totals = report(name).totals
    assert (totals.params, totals.macs) == (params, macs)


@pytest.mark.parametrize("name", LIBRARY)
def test_torch_twin_state_dict_names_and_shapes(name):
    """Weights saved from the torch twin load by the spec's layer names."""
    _, _, state, _ = torch_figures(name)
    ours = {f"{layer.name}.{key}": tuple(w.shape) for layer in report(name).layers
            for key, w in layer.weights.items()}
    assert ours == state


@pytest.mark.parametrize("name", LIBRARY)
def test_torch_twin_layer_shapes(name):
    _, _, _, shapes = torch_figures(name)
    rep = report(name)
    ours = {layer.name: layer.output_shape for layer in rep.layers}
    common = sorted(set(ours) & set(shapes))
    assert {n: ours[n] for n in common} == {n: shapes[n] for n in common}
    weighted = {layer.name for layer in rep.layers if layer.weights}
    assert weighted <= set(common), f"unmatched weighted layers: {sorted(weighted - set(common))}"


def test_torch_twins_match_the_published_figures():
    """The hand-written torch models are the published ones (CONVENTIONS.md)."""
    for name, params, macs in PUBLISHED:
        got_params, got_macs, _, _ = torch_figures(name)
        assert got_params == params, name
        assert round(got_macs / 1e9, 3) == round(macs / 1e9, 3), name
    assert torch_figures("resnet50")[1] == 4_089_184_256
    assert torch_figures("resnet152")[1] == report("resnet152").totals.macs == 11_513_626_624
    assert torch_figures("densenet121")[1] == report("densenet121").totals.macs == 2_834_161_664
    assert torch_figures("mobilenet_v2")[1] == 300_774_272
    assert torch_figures("dcgan_generator")[0] == 3_576_704
    assert torch_figures("lenet5")[0] == 61_706
    assert torch_figures("alexnet_227")[0] == 60_965_224


@pytest.mark.parametrize("name", ["resnet18", "unet"])
def test_torch_twin_checks_enough_layers(name):
    """The per-layer comparison is not vacuous where the brief requires it."""
    _, _, _, shapes = torch_figures(name)
    convs = [layer.name for layer in report(name).layers if layer.type.startswith("conv")]
    assert set(convs) <= set(shapes)
    assert len(convs) == {"resnet18": 20, "unet": 23}[name]
