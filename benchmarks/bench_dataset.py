"""`convcalc run` over an image set, as a process (issue 13):

- memory: the peak RSS of `run SPEC FOLDER --stats` over 1,000 and 10,000 generated inputs
  (flat: bounded by the batch, not by the number of inputs);
- processes: the wall time of `--jobs 1` over `--jobs 2` on the same set, both with
  `--stats` and batches of 8 (near-linear is about 2 on a 2-core machine; `--jobs 1` has
  both cores' BLAS threads, each of 2 jobs one), with the load average, because the
  machine may be shared.

    python benchmarks/bench_dataset.py [--small 1000] [--large 10000] [--spec specs/resnet18.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_set(folder: Path, count: int, shape) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.standard_normal(shape).astype(np.float32)
    for i in range(count):
        np.save(folder / f"x{i:05d}.npy", base + np.float32(i % 97) / 97)


def run(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes of the child) of one `convcalc run`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convcalc", "run", *args], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--jobs-set", type=int, default=256)
    parser.add_argument("--spec", default="specs/resnet18.yaml")
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for count in (args.small, args.large):  # RSS is per child, so each run is fresh
            make_set(tmp / f"set{count}", count, (1, 32, 32))
            script = (f"import resource, subprocess, sys; subprocess.run([sys.executable, '-m', "
                      f"'convcalc', 'run', 'specs/lenet5.yaml', '{tmp / f'set{count}'}', '--stats', "
                      f"'--batch-size', '16', '-f', 'json'], stdout=subprocess.DEVNULL, check=True); "
                      f"print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            start = time.perf_counter()
            rss = int(subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                                     capture_output=True, text=True).stdout) * 1024
            print(f"lenet5 --stats over {count:>6,} inputs: peak RSS {rss / 2**20:7.1f} MiB, "
                  f"{time.perf_counter() - start:6.1f} s", flush=True)
        make_set(tmp / "jobs", args.jobs_set, (3, 96, 96))
        times = {}
        for jobs in (1, 2, 1, 2):  # interleaved: load from other processes hits both
            wall, _ = run([args.spec, str(tmp / "jobs"), "--jobs", str(jobs), "--stats",
                           "--batch-size", "8", "-f", "json"])
            times.setdefault(jobs, []).append(wall)
        one, two = min(times[1]), min(times[2])
        print(f"{args.spec} over {args.jobs_set} inputs of 3x96x96: --jobs 1 {one:.1f} s, "
              f"--jobs 2 {two:.1f} s: throughput x{one / two:.2f} "
              f"(load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
