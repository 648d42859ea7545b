"""Time `convcalc check model.onnx` as a whole process, beside what it cannot avoid.

- `python -c "import onnx"` alone: the floor of any ONNX reader in Python (onnx imports
  ml_dtypes, whose extension module takes most of it);
- `convcalc check resnet50.yaml`, the same network written as a spec, for scale;
- `convcalc check resnet50.onnx`: load, onnx.shape_inference, constant folding,
  conversion, verification against shape inference, and the analysis.

The ONNX file is torchvision's resnet50 (random weights) exported by torch.onnx.export
(legacy exporter, opset 17, BatchNorm kept) into a temporary folder, or the file named on
the command line (then torch is not needed). The timed processes never import torch.

Run: python benchmarks/bench_import.py [model.onnx]   (best of N runs each; prints a table)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench_check import best_of  # the same timing as the YAML benchmark (this folder)

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.0  # seconds, the target for `check resnet50.onnx` without torch


def export_resnet50(folder: Path) -> Path:
    import torch
    import torchvision
    path = folder / "resnet50.onnx"
    model = torchvision.models.resnet50(weights=None).eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), dynamo=False,
                      opset_version=17, input_names=["x"], dynamic_axes={"x": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    return path


def measure(model: Path) -> list[tuple[str, float]]:
    py = sys.executable
    rows = [("python -c pass (floor)", best_of([py, "-c", "pass"])),
            ('python -c "import onnx"', best_of([py, "-c", "import onnx"])),
            ('python -c "import torch" (not paid)', best_of([py, "-c", "import torch"], 3))]
    spec = ROOT / "specs" / "resnet50.yaml"
    if spec.exists():
        rows.append(("convcalc check resnet50.yaml", best_of([py, "-m", "convcalc", "check",
                                                              str(spec)])))
    rows.append((f"convcalc check {model.name}", best_of([py, "-m", "convcalc", "check",
                                                          str(model)])))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(sys.argv[1]) if len(sys.argv) > 1 else export_resnet50(Path(tmp))
        rows = measure(model)
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"{name:{width}}  {seconds * 1000:7.0f} ms")
    total = rows[-1][1]
    print(f"target {TARGET:.1f} s: {'met' if total < TARGET else 'NOT met'} "
          f"({total:.2f} s, of which importing onnx {rows[1][1]:.2f} s)")


if __name__ == "__main__":
    main()
