"""Issue 3's proof on the whole library: for every shipped spec, the receptive field the
analysis gives equals the one measured by running the network on one-pixel impulses
(`convcalc rf --verify`), at a reduced input size where the spec allows one, on the deepest
layer that still has two or more units per axis (so the field is not trivially the image)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convcalc.analysis import Options, analyze_file

pytest.importorskip("numpy")
ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
# smaller inputs that each spec accepts cleanly (convcalc sizes lists them); others run as is
REDUCED = {"alexnet": (3, 96, 96), "vgg16": (3, 64, 64), "resnet18": (3, 64, 64),
           "resnet50": (3, 64, 64), "mobilenet_v2": (3, 64, 64), "unet": (1, 188, 188),
           "yolov3_tiny": (3, 96, 96), "edges": (3, 48, 48), "resnet34": (3, 64, 64),
           "cspdarknet53": (3, 32, 32), "resnet152": (3, 64, 64), "densenet121": (3, 64, 64),
           "convnext_tiny": (3, 32, 32)}


def deepest_layer_with_units(report) -> str:
    """The deepest layer with a known field (ConvNeXt's permutes make the fields after them
    unknown, as docs/rf.md says) and two or more units per axis."""
    spatial = [layer for layer in report.layers
               if layer.output_shape and len(layer.output_shape) > 1
               and min(layer.output_shape[1:]) >= 2 and not layer.receptive_field_unknown]
    return spatial[-1].name


def test_every_spec_is_covered():
    assert {p.stem for p in SPECS} >= set(REDUCED) | {"lenet5", "alexnet_227", "dcgan_generator"}


# hundreds of layers measured, or (convnext_tiny) a whole run for a layer before its first
# permute: tens of seconds each
DEEP = {"resnet152", "densenet121", "convnext_tiny"}


@pytest.mark.parametrize("spec", [pytest.param(p, marks=pytest.mark.slow) if p.stem in DEEP else p
                                  for p in SPECS], ids=lambda p: p.stem)
def test_analysis_equals_measurement(spec):
    shape = REDUCED.get(spec.stem)
    report = analyze_file(spec, Options(input_shape=shape))
    layer = deepest_layer_with_units(report)
    args = [sys.executable, "-m", "convcalc", "rf", str(spec), "--layer", layer, "--verify"]
    if shape:
        args += ["--input", "x".join(map(str, shape))]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "the measurement agrees with the analysis" in proc.stdout
    assert proc.stdout.count(" ok ") >= 4  # rows and columns of several units were measured


def test_units_of_one_layer_share_their_samples():
    """measure_units runs each distinct impulse sample once for all units: a 3x3 box filter
    read at four corner units and the centre, 5 regions whose rows and columns take 3 values
    each, needs the zero input, the whole image and 4 tests per distinct span (25 samples,
    not 5 x 10), and measures each unit's field as the window it is."""
    from fractions import Fraction

    from convcalc.receptive import Region
    from convcalc.rf_measure import measure_units

    seen = []

    def run(x):  # (N, H, W, C) -> a 3x3 valid box sum, (N, H-2, W-2, 1)
        seen.append(len(x))
        s = x.sum(-1)
        out = sum(s[:, i:i + s.shape[1] - 2, j:j + s.shape[2] - 2] for i in range(3)
                  for j in range(3))
        return out[..., None]

    def region(r, c):
        return Region((r, c), (Fraction(r), Fraction(c)), (Fraction(r + 2), Fraction(c + 2)),
                      (Fraction(r + 1), Fraction(c + 1)), (r, c), (r + 2, c + 2))

    units = [(0, 0), (0, 6), (6, 0), (6, 6), (3, 3)]
    found = measure_units(run, (2, 10, 10), [region(*u) for u in units])
    assert sum(seen) == 1 + 1 + 4 * 3 * 2
    for (r, c), axes in zip(units, found):
        assert [a.measured for a in axes] == [(r, r + 2), (c, c + 2)]
        assert all(a.status == "ok" for a in axes)
