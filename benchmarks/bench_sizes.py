"""Speed of `convcalc sizes` over input sizes 1..2048 (square), the budget being one second
for the whole command on specs/resnet50.yaml.

    python benchmarks/bench_sizes.py [--repeats 5] [--spec specs/resnet50.yaml ...]

Columns, best of `repeats` runs:
  command   wall time of `python -m convcalc sizes SPEC` as a user runs it (interpreter
            start, imports, parsing, the scan, printing)
  scan      convcalc.sizes.scan alone on the built graph (the part that grows with the
            range and the depth)
  naive     the same verdicts by re-running every layer's infer for every size, no memo and
            no grouping (--naive; a reference for what the grouping saves)
  clean     how many sizes are clean (the naive loop must agree)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from convcalc.graph import INPUT, build_graph  # noqa: E402
from convcalc.layers.base import LayerError  # noqa: E402
from convcalc.sizes import input_for, scan  # noqa: E402
from convcalc.spec import parse_spec  # noqa: E402

BUDGET_SECONDS = 1.0


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def command_time(spec: Path, high: int, repeats: int) -> float:
    env = {**os.environ, "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "convcalc", "sizes", str(spec), "--range", f"1..{high}"]

    def run():
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env)
        assert proc.returncode in (0, 1), proc.stderr
    return best(run, repeats)


def naive(graph, sizes) -> int:
    """Every layer's infer for every size (the slow reference); returns the clean count."""
    clean = 0
    for size in sizes:
        shapes = {INPUT: input_for(graph, size, None)}
        for node in graph.nodes:
            try:
                result = node.layer.infer([shapes[n] for n in node.inputs],
                                          {p: shapes[n] for p, n in node.refs.items()})
            except LayerError:
                break
            if any(d.code in ("invalid-stride", "skipped-input")
                   and d.severity.value == "warning" for d in result.diagnostics):
                break
            shapes[node.name] = result.shape
        else:
            clean += 1
    return clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", nargs="*", type=Path,
                        default=[ROOT / "specs" / "resnet50.yaml"])
    parser.add_argument("--high", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive", action="store_true", help="also time the naive loop")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, sizes 1..{args.high}")
    print(f"{'spec':28} {'nodes':>5} {'command':>9} {'scan':>8} {'naive':>8} {'clean':>6}")
    over = False
    for spec in args.spec:
        graph = build_graph(parse_spec(spec.read_text(), str(spec)))
        sizes = range(1, args.high + 1)
        scan_s = best(lambda: scan(graph, sizes), args.repeats)
        result = scan(graph, sizes)
        naive_s = best(lambda: naive(graph, sizes), 1) if args.naive else None
        if args.naive:
            assert naive(graph, sizes) == len(result.clean)
        cmd_s = command_time(spec, args.high, args.repeats)
        over |= cmd_s > BUDGET_SECONDS
        naive_text = f"{naive_s:7.3f}s" if naive_s is not None else f"{'-':>8}"
        print(f"{spec.name:28} {len(graph.nodes):5} {cmd_s:8.3f}s {scan_s:7.3f}s {naive_text} "
              f"{len(result.clean):6}")
    print(f"budget: the command under {BUDGET_SECONDS:.1f} s: {'EXCEEDED' if over else 'met'}")
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
