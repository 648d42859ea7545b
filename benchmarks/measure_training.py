"""The cost of one training step: `convcalc check --training` against torchinfo's estimate and
against PyTorch measuring the step itself (issue 12's table).

    pip install torchinfo   # not a dependency of convcalc: only this comparison uses it
    python benchmarks/measure_training.py [--batch 8] [--optimizer adam]

For each network (torchvision's resnet50 itself, and specs/unet.yaml written out by
`convcalc export --to pytorch`), one train-mode step with Adam:

- convcalc: `check --training` (json totals);
- torchinfo 1.8: `summary(model, input_size, mode="train")`: its mult-adds, its
  "Forward/backward pass size" (every module's output, counted twice), "Params size" and
  "Estimated Total Size" (input + that pass size + params);
- measured: FlopCounterMode over the forward and over loss.backward() (/ 2, the grouped-conv
  weight-gradient count corrected), the storages saved_tensors_hooks sees, the .grad tensors
  and optimizer.state_dict() after the step (tests/torch_twin.py `measure`).

Prints a markdown table per network. CPU only; the step's real peak is not measured (PyTorch
keeps no allocator statistics on the CPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import convcalc  # noqa: E402
from convcalc.api import export_pytorch  # noqa: E402
from torch_twin import measure  # noqa: E402


def forward_macs(model, shape, batch: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    model.train()
    with counter, torch.no_grad():
        model(torch.randn(batch, *shape))
    return counter.get_total_flops() // 2


def exported(spec: Path):
    """The spec as `convcalc export --to pytorch` writes it, imported."""
    folder = Path(tempfile.mkdtemp())
    path = folder / f"{spec.stem}_net.py"
    path.write_text(export_pytorch(spec))
    loaded = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module.Net()


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def giga(n: float) -> str:
    return f"{n / 1e9:,.2f} G"


def row(what: str, *cells: str) -> str:
    return "| " + " | ".join([what, *cells]) + " |"


def compare(name: str, spec: Path, model, batch: int, optimizer: str) -> None:
    import torchinfo
    report = convcalc.check(spec, batch=batch, training=True, optimizer=optimizer)
    shape = tuple(report.input_shape)
    t = report.training.totals_dict()
    info = torchinfo.summary(model, input_size=(batch, *shape), mode="train", verbose=0)
    pass_bytes = info.total_output_bytes
    info_total = info.total_input + pass_bytes + info.total_param_bytes
    measured = measure(model, shape, batch, optimizer)
    fwd = forward_macs(model, shape, batch)
    params = report.totals.params * 4
    print(f"\n### {name}, input {'x'.join(map(str, shape))}, batch {batch}, {optimizer}\n")
    print(row("", "convcalc `check --training`", f"torchinfo {torchinfo.__version__}",
              f"measured (torch {torch.__version__.split('+')[0]})"))
    print(row("---", "---", "---", "---"))
    print(row("forward MACs (batch)", giga(report.totals.macs * batch),
              giga(info.total_mult_adds), giga(fwd)))
    print(row("backward MACs", giga(t["backward_macs"]), "not estimated",
              giga(measured["backward_macs"])))
    print(row("saved for backward", mib(t["saved_bytes"]),
              f"{mib(pass_bytes)} (every output x2)", mib(measured["saved_bytes"])))
    print(row("parameters", mib(params), mib(info.total_param_bytes),
              mib(sum(p.nbytes for p in model.parameters()))))
    print(row("gradients", mib(t["gradient_bytes"]), "not estimated",
              mib(measured["gradient_bytes"])))
    print(row(f"optimizer state ({optimizer})", mib(t["optimizer_bytes"]), "not estimated",
              mib(measured["optimizer_bytes"])))
    print(row("peak of the step", mib(t["peak_bytes"]), f"{mib(info_total)} (total size)",
              "not measured on the CPU"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args()
    import torchvision
    print(f"convcalc {convcalc.__version__}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}")
    compare("ResNet-50 (torchvision's)", ROOT / "specs" / "resnet50.yaml",
            torchvision.models.resnet50(), args.batch, args.optimizer)
    compare("U-Net (specs/unet.yaml, exported to PyTorch)", ROOT / "specs" / "unet.yaml",
            exported(ROOT / "specs" / "unet.yaml"), max(1, args.batch // 4), args.optimizer)


if __name__ == "__main__":
    main()
