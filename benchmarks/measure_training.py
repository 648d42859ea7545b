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

Prints a markdown table per network. On the CPU PyTorch keeps no allocator statistics, so the
step's peak is measured as resident memory (`step_rss`): an upper bound, holding the
allocator's slack and the kernels' scratch buffers too.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
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


def _status(field: str) -> int:
    with open("/proc/self/status") as stream:
        line = next(line for line in stream if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def step_rss(model, shape, batch: int, optimizer: str) -> int | None:
    """The resident memory a second step adds at its highest (Linux: the peak is reset
    through /proc/self/clear_refs, then read as VmHWM), plus what it holds from before (the
    parameters, buffers, input and optimizer state): a proxy for the step's peak that also
    holds the allocator's slack and the kernels' scratch memory, which convcalc does not
    count, and frees the gradients between steps (zero_grad's default), which convcalc
    counts as held for the whole step."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        return None
    model.train()
    x = torch.randn(batch, *shape)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {"sgd": lambda: torch.optim.SGD(params, lr=0.01),
           "momentum": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9),
           "adam": lambda: torch.optim.Adam(params), "adamw": lambda: torch.optim.AdamW(params),
           }[optimizer]()
    model(x).float().sum().backward()  # a first step creates the optimizer's state
    opt.step()
    opt.zero_grad()  # PyTorch's default since 2.0: the gradients are freed (set to None)
    state = sum(v.nbytes for entry in opt.state_dict()["state"].values()
                for v in entry.values() if torch.is_tensor(v))
    held = sum(t.nbytes for t in [*model.parameters(), *model.buffers()]) + x.nbytes + state
    with open("/proc/self/clear_refs", "w") as stream:
        stream.write("5")
    base = _status("VmRSS")
    model(x).float().sum().backward()  # the second step, measured
    opt.step()
    return _status("VmHWM") - base + held


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
    rss = step_rss(model, shape, batch, optimizer)  # first: a fresh step, nothing cached
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
              "n/a" if rss is None else f"{mib(rss)} (resident: + allocator slack, scratch)"))


def main() -> None:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:  # glibc: large blocks mapped and
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"  # unmapped, so that resident memory
        os.execv(sys.executable, [sys.executable, *sys.argv])  # follows what is alive
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
