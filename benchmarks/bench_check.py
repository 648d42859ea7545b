"""Time `convcalc check` as a whole process, as a user and a CI job see it.

- specs/resnet50.yaml (target: under 0.3 s wall on the project's 2-core machine), beside the
  bare interpreter start-up (`python -c pass`), the floor no CLI can beat;
- generated chains of 1,000 / 5,000 / 10,000 layers (conv, batchnorm, relu, with a residual
  add every 4 layers), to show that time grows linearly with the layer count;
- the import of torch, for scale: what a torchinfo run pays before it starts.

Run: python benchmarks/bench_check.py  (best of N runs each; prints a table)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_of(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{cmd} failed: {proc.stderr.decode()[-400:]}")
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
    py = sys.executable
    rows = [("python -c pass (floor)", best_of([py, "-c", "pass"]), None)]
    resnet = ROOT / "specs" / "resnet50.yaml"
    if resnet.exists():
        rows.append(("convcalc check resnet50.yaml", best_of([py, "-m", "convcalc", "check",
                                                              str(resnet)]), None))
        rows.append(("  same, --format json", best_of([py, "-m", "convcalc", "check", str(resnet),
                                                      "-f", "json"]), None))
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 5000, 10000):
            path = Path(tmp) / f"chain{n}.yaml"
            path.write_text(chain_spec(n))
            t = best_of([py, "-m", "convcalc", "check", str(path), "-f", "json"], runs=3)
            rows.append((f"convcalc check, {n:,}-layer chain (json)", t, n))
    try:
        import importlib.util
        if importlib.util.find_spec("torch"):
            rows.append(("python -c 'import torch' (for scale)",
                         best_of([py, "-c", "import torch"], runs=3), None))
    except ImportError:
        pass
    print(f"{'what':<45} {'seconds':>8} {'ms / 1k layers':>15}")
    for what, seconds, n in rows:
        per = f"{seconds / n * 1e6:.1f}" if n else ""
        print(f"{what:<45} {seconds:8.3f} {per:>15}")


if __name__ == "__main__":
    main()
