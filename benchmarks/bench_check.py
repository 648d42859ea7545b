"""Time `convcalc check` as a whole process, as a user and a CI job see it.

- specs/resnet50.yaml (target: under 0.3 s wall on the project's 2-core machine), beside the
  bare interpreter start-up (`python -c pass`), the floor no CLI can beat;
- generated chains of 1,000 / 10,000 / 100,000 layers (conv, batchnorm, relu, with a residual
  add every 4 layers), as json and as the table (targets at 10,000: json under 0.5 s, table
  under 1.5 s), to show that time grows linearly with the layer count; beside each wall time
  the process's CPU time (user + sys), steadier than wall time on a shared machine;
- the import of torch, for scale: what a torchinfo run pays before it starts.

Run: python benchmarks/bench_check.py [--sizes 1000 10000 100000]  (best of N runs each)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


CPU: list[float] = []  # the CPU seconds of the last best_of's best run


def best_of(cmd: list[str], runs: int = 5) -> float:
    times, cpu = [], []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(runs):
        before = os.times()
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                              env=env)
        times.append(time.perf_counter() - start)
        after = os.times()
        cpu.append(after.children_user - before.children_user
                   + after.children_system - before.children_system)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{cmd} failed: {proc.stderr.decode()[-400:]}")
    CPU[:] = [cpu[times.index(min(times))]]
    return min(times)


def chain_spec(layers: int) -> str:
    lines = ["input: [16, 32, 32]", "layers:"]
    for i in range(0, layers, 4):
        lines += [f"  - {{type: conv2d, name: c{i}, out_channels: 16, kernel_size: 3, padding: 1}}",
                  f"  - {{type: batchnorm2d, name: b{i}}}",
                  f"  - {{type: relu, name: r{i}}}",
                  f"  - {{type: add, name: a{i}, inputs: [r{i}, {'input' if i == 0 else f'a{i - 4}'}]}}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    py = sys.executable
    print(f"{'what':<48} {'seconds':>8} {'CPU s':>7} {'ms / 1k layers':>15}")

    def row(what: str, cmd: list[str], n: int | None = None, runs: int = 5) -> None:
        seconds = best_of(cmd, runs)
        per = f"{seconds / n * 1e3 * 1e3:.1f}" if n else ""
        print(f"{what:<48} {seconds:8.3f} {CPU[0]:7.3f} {per:>15}", flush=True)

    row("python -c pass (floor)", [py, "-c", "pass"])
    resnet = ROOT / "specs" / "resnet50.yaml"
    if resnet.exists():
        row("convcalc check resnet50.yaml", [py, "-m", "convcalc", "check", str(resnet)])
        row("  same, --format json", [py, "-m", "convcalc", "check", str(resnet), "-f", "json"])
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"chain{n}.yaml"
            path.write_text(chain_spec(n))
            runs = 3 if n <= 10000 else 1
            for fmt in ("json", "table"):
                row(f"convcalc check, {n:,}-layer chain ({fmt})",
                    [py, "-m", "convcalc", "check", str(path), "-f", fmt], n, runs)
    import importlib.util
    if importlib.util.find_spec("torch"):
        row("python -c 'import torch' (for scale)", [py, "-c", "import torch"], runs=3)


if __name__ == "__main__":
    main()
