"""torchvision and timm models exported to ONNX by PyTorch's own exporter (torch.onnx,
TorchScript-based, opset 17 unless --opset), then read by convcalc and measured against the
frameworks (pretrained=False: nothing is downloaded):

- params: `convcalc check model.onnx` against sum(p.numel()) of the PyTorch model (the
  export keeps BatchNorm as BatchNormalization, TrainingMode.PRESERVE on an eval model, so
  the file holds the model's own parameters; with --fold the exporter folds it into the
  convs, as its default does, and the file has fewer: BN's weight and bias become conv
  biases; models with parameters their eval forward never uses, GoogLeNet's auxiliary
  heads, differ by those);
- output: `convcalc run model.onnx` (the file's own weights) against onnxruntime's output on
  the same input (max |difference| relative to the output's scale; the goal is under 1e-4);
- or why it cannot be imported (the importer's one-line error).

Run: python benchmarks/measure_onnx_exports.py [--opset 17] [NAME ...]
     (torchvision:NAME or timm:NAME; needs torch, torchvision, timm, onnxruntime)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

MODELS = ["torchvision:resnet18", "torchvision:resnet50", "torchvision:mobilenet_v2",
          "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0",
          "torchvision:densenet121", "torchvision:squeezenet1_1", "torchvision:shufflenet_v2_x1_0",
          "torchvision:googlenet", "torchvision:mnasnet1_0", "torchvision:regnet_y_400mf",
          "torchvision:convnext_tiny", "torchvision:alexnet", "torchvision:vgg11_bn",
          "timm:dla34", "timm:ghostnet_100", "timm:mixnet_s", "timm:res2net50_26w_4s",
          "timm:cspdarknet53", "timm:rexnet_100", "timm:dpn68", "timm:resnest14d",
          "timm:skresnet18", "timm:nf_resnet26", "timm:convnextv2_atto", "timm:regnetz_b16",
          "timm:efficientnetv2_rw_t", "timm:gernet_s", "timm:hrnet_w18_small", "timm:selecsls42b"]


def build(name: str):
    import torch
    kind, model_name = name.split(":")
    torch.manual_seed(0)
    if kind == "torchvision":
        import torchvision
        model = getattr(torchvision.models, model_name)(weights=None)
        shape = (3, 224, 224)
    else:
        import timm
        model = timm.create_model(model_name, pretrained=False)
        shape = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    return model.eval(), shape


def measure(name: str, opset: int, folder: Path, keep_bn: bool) -> str:
    import numpy as np
    import onnxruntime as ort
    import torch

    import convcalc
    from convcalc.interop import ImportFailure

    model, shape = build(name)
    path = folder / f"{name.replace(':', '_')}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, *shape), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], dynamic_axes={"x": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE if keep_bn else
                          torch.onnx.TrainingMode.EVAL)
    theirs_params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    try:
        report = convcalc.check(str(path))
    except ImportFailure as err:
        return f"{name:<34} not imported: {str(err).split(': ', 1)[-1][:150]}"
    took = time.perf_counter() - start
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    ours = convcalc.run(str(path), x).output
    diff = float(np.abs(ours - expected).max() / max(np.abs(expected).max(), 1e-12))
    params = report.totals.params
    mark = "=" if params == theirs_params else f"!= {theirs_params:,}"
    return (f"{name:<34} {len(report.layers):>4} layers  params {params:>11,} {mark:<3} "
            f"MACs {report.totals.macs / 1e9:>7.3f} G  run/ort {diff:.1e}  check {took:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--fold", action="store_true",
                        help="let the exporter fold BatchNorm into the convs (its eval-mode "
                             "default): the file then has fewer parameters than the model")
    parser.add_argument("names", nargs="*", default=MODELS)
    args = parser.parse_args()
    import torch
    print(f"torch {torch.__version__}, opset {args.opset}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.names:
            try:
                print(measure(name, args.opset, Path(folder), not args.fold), flush=True)
            except Exception as err:  # noqa: BLE001 - a model the exporter or timm refuses
                print(f"{name:<34} not measured: {type(err).__name__}: {str(err)[:150]}",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
