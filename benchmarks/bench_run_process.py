"""`convcalc run` as a whole process against PyTorch's forward of the same batch.

    python benchmarks/bench_run_process.py [--repeats 5] [--batches 1 8] [--models resnet50 vgg16]

The measure of issue 13: the wall time of `convcalc run specs/<model>.yaml FOLDER
--batch-size B` on a folder of B generated 224x224 photos, minus the same command on a
one-layer spec (start-up, imports and image loading cancel), divided by PyTorch eager's
forward of the same batch (torch.nn.functional over the same graph and weights, as
bench_executor's TorchTwin; inference_mode; warmed up), measured in this process in the same
round. Rounds interleave the three so that load from other processes hits them alike; the
ratio printed is the median of the per-round ratios (and the medians of the times). Everything
`run` does counts: weight initialisation, BatchNorm folding, the per-layer statistics, the
table. The float32 matmul GFLOP/s of the run is printed first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_executor import TorchTwin, matmul_gflops, torch  # noqa: E402

from convcalc.analysis import Options, analyze_file  # noqa: E402
from convcalc.executor.weights import initial_weights  # noqa: E402

ONE_LAYER = "input: [3, 224, 224]\nlayers:\n  - {type: relu}\n"


def photos(folder: Path, count: int) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = (rng.random((224, 224, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{index:03d}.png")


def process_seconds(spec: Path, folder: Path, batch: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "convcalc", "run", str(spec), str(folder),
                           "--batch-size", str(batch)], capture_output=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"convcalc run {spec} failed: {proc.stderr.decode()[-500:]}")
    return seconds


def bench(model: str, batch: int, repeats: int, tmp: Path) -> dict:
    spec = ROOT / "specs" / f"{model}.yaml"
    folder, one = tmp / f"photos{batch}", tmp / "one.yaml"
    if not folder.exists():
        photos(folder, batch)
    one.write_text(ONE_LAYER)
    report = analyze_file(spec, Options(batch=batch))
    twin = TorchTwin(report, initial_weights(report, seed=0))
    x = torch.from_numpy(np.random.default_rng(0).random((batch, 3, 224, 224), dtype=np.float32))
    twin(x)  # warm-up
    ours, base, theirs, ratios = [], [], [], []
    for _ in range(repeats):
        ours.append(process_seconds(spec, folder, batch))
        base.append(process_seconds(one, folder, batch))
        start = time.perf_counter()
        twin(x)
        theirs.append(time.perf_counter() - start)
        ratios.append((ours[-1] - base[-1]) / theirs[-1])
    return {"ours": statistics.median(ours), "base": statistics.median(base),
            "torch": statistics.median(theirs), "ratio": statistics.median(ratios),
            "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--models", nargs="+", default=["resnet50", "vgg16"])
    args = parser.parse_args()
    if torch is None:
        raise SystemExit("PyTorch is not installed: there is nothing to compare with")
    print(f"float32 matmul 2048^3: {matmul_gflops():.1f} GFLOP/s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.repeats} interleaved rounds, medians\n")
    header = (f"{'model':<10} {'batch':>5} {'run s':>7} {'1-layer s':>9} {'run - 1-layer':>13} "
              f"{'torch fwd s':>11} {'ratio':>6}   per-round ratios")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for batch in args.batches:
                row = bench(model, batch, args.repeats, Path(tmp))
                print(f"{model:<10} {batch:>5} {row['ours']:>7.2f} {row['base']:>9.2f} "
                      f"{row['ours'] - row['base']:>13.2f} {row['torch']:>11.3f} "
                      f"{row['ratio']:>6.2f}   " + " ".join(f"{r:.2f}" for r in row["ratios"]),
                      flush=True)


if __name__ == "__main__":
    main()
