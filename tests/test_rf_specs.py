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
