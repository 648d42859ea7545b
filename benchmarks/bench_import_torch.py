"""What `convcalc import torchvision.models:resnet50` costs beyond importing torch.

Measured in one run, as whole processes (best of N each):
- `python -c "import torch, torchvision"`: what any PyTorch tool pays first;
- `convcalc --help`: the CLI's own start (typer, rich), paid by every convcalc command;
- the same plus building resnet50 (torchvision's initialisation of 25.6 M weights);
- `convcalc import torchvision.models:resnet50 -o OUT.yaml`: the whole command;
and, inside one process, the stages of the import (build, trace, ShapeProp, conversion,
convcalc's verifying analysis, YAML). Target: the import adds under 1 s to `import torch`.

Run: python benchmarks/bench_import_torch.py [--runs N] [--model NAME]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's convcalc, for the in-process stages


def best_of(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-400:]}")
    return min(times)


def stages(model_name: str) -> list[tuple[str, float]]:
    """The import's stages in this process (torch already imported)."""
    import torch
    import torchvision

    from convcalc.interop import torch_import as ti
    from convcalc.interop.spec_text import to_yaml
    rows, start = [], time.perf_counter()

    def mark(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        rows.append((name, now - start))
        start = now

    model = torchvision.models.get_model(model_name, weights=None).eval()
    mark("build the model (torchvision)")
    traced = ti._trace(model, model_name)
    mark("torch.fx trace")
    values = ti._propagate(traced, ti.DEFAULT_INPUT, model_name, torch)
    mark("ShapeProp at 1x3x224x224")
    converted = ti.Conversion(traced, values, model_name).run()
    mark("conversion")
    spec = {"name": model_name, "input": list(ti.DEFAULT_INPUT), "layers": converted.layers}
    ti.verify(spec, converted, model_name)
    mark("verify: convcalc's analysis")
    to_yaml(spec)
    mark("YAML text")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="resnet50")
    args = parser.parse_args()
    py, source = sys.executable, f"torchvision.models:{args.model}"
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.yaml")
        rows = [
            ("import torch, torchvision", best_of(
                [py, "-c", "import torch, torchvision"], args.runs)),
            ("convcalc --help (the CLI's own start, no torch)", best_of(
                [py, "-m", "convcalc", "--help"], args.runs)),
            (f"  + build {args.model}", best_of(
                [py, "-c", f"import torchvision; torchvision.models.{args.model}()"], args.runs)),
            (f"convcalc import {source}", best_of(
                [py, "-m", "convcalc", "import", source, "-o", out], args.runs)),
        ]
    base, whole = rows[0][1], rows[3][1]
    for name, seconds in rows:
        print(f"{name:52s} {seconds:6.2f} s")
    verdict = "under 1 s: OK" if whole - base < 1 else "OVER the 1 s target"
    print(f"{'the import adds to import torch, torchvision':52s} {whole - base:6.2f} s  {verdict}")
    print("\nstages in one process:")
    found = stages(args.model)
    for name, seconds in found:
        print(f"  {name:50s} {seconds:6.3f} s")
    fx = sum(seconds for name, seconds in found[1:])
    print(f"  {'the import proper (all but building the model)':50s} {fx:6.3f} s")


if __name__ == "__main__":
    main()
