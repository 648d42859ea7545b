"""Import a dozen timm CNNs (pretrained=False: nothing is downloaded) through torch.fx and
measure each against PyTorch itself:

- params: the imported spec's against sum(p.numel()) of the model (parameters the
  eval-mode forward never uses are reported apart);
- MACs: the spec's against torch.utils.flop_counter.FlopCounterMode / 2 (it counts conv,
  transposed conv, linear and matmul, torchvision's convention);
- output: `convcalc run` with the model's own weights against the model's output
  (max |difference| relative to the output's scale; the goal is under 1e-4);
- or why it cannot be imported (the importer's one-line error).

Run: python benchmarks/measure_timm.py [NAME ...]   (needs timm: pip install 'convcalc[timm]')
"""

from __future__ import annotations

import sys
import time

MODELS = ["resnet50", "efficientnet_b0", "mobilenetv3_large_100", "densenet121", "dla34",
          "regnetx_002", "ghostnet_100", "vgg11", "mixnet_s", "res2net50_26w_4s",
          "cspdarknet53", "convnext_atto", "rexnet_100", "dpn68", "resnest14d", "skresnet18"]


def measure(name: str) -> str:
    import numpy as np
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from convcalc.analysis import analyze_text
    from convcalc.executor.runner import Executor
    from convcalc.interop import ImportFailure
    from convcalc.interop.spec_text import to_yaml
    from convcalc.interop.torch_import import import_module

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    shape = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    start = time.perf_counter()
    try:
        imported = import_module(model, shape, f"timm:{name}")
    except ImportFailure as err:
        return f"| {name} | no | {err.message[:300]} |"
    seconds = time.perf_counter() - start
    report = analyze_text(to_yaml(imported.spec), name)
    total = sum(p.numel() for p in model.parameters())
    unused = sum(p.numel() for k, p in model.named_parameters() if k not in imported.weights)
    x = torch.randn(1, *shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        theirs = model(x).numpy()
    macs = counter.get_total_flops() // 2
    result = Executor(report, imported.weights).run(
        np.ascontiguousarray(np.moveaxis(x.numpy(), 1, -1)), report)
    error = float(np.abs(result.output - theirs).max() / np.abs(theirs).max())
    params_ok = "=" if report.totals.params + unused == total else "!="
    macs_ok = "=" if report.totals.macs == macs else "!="
    return (f"| {name} | yes, {len(report.layers)} layers, {seconds:.1f} s | params "
            f"{report.totals.params:,} {params_ok} {total:,}"
            + (f" (unused {unused:,})" if unused else "")
            + f"; MACs {report.totals.macs:,} {macs_ok} {macs:,}; output rel. error "
            f"{error:.1e} |")


def main() -> None:
    names = sys.argv[1:] or MODELS
    print("| model | imported | measured against PyTorch |")
    print("| --- | --- | --- |")
    for name in names:
        try:
            print(measure(name), flush=True)
        except Exception as err:  # noqa: BLE001 - a measurement script: report and go on
            print(f"| {name} | error | {type(err).__name__}: {str(err)[:200]} |", flush=True)


if __name__ == "__main__":
    main()
