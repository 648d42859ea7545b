"""Speed of the whole executor on real networks, beside the machine's float32 matmul and
PyTorch eager on the same graph.

    python benchmarks/bench_executor.py [--repeats 3] [--batches 1 8] [--models resnet50 ...]

For each spec (specs/<model>.yaml at 224x224) and batch size: the executor's best wall time
over `repeats` runs (BatchNorm folded, weights prepared once, no per-layer statistics), its
GFLOP/s = 2 * MACs / time (MACs of conv and linear layers, the analysis' count), the same for
PyTorch eager (torch.nn.functional, layer by layer over the same graph and weights, channels-
first, inference_mode: what a plain torch.nn twin runs), and ours / torch. Rounds alternate
between the two so load from other processes hits both alike. `matmul` is one float32
np.matmul (2048 x 2048 x 2048) measured in the same run: the machine's practical peak.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from convcalc.analysis import Options, analyze_file  # noqa: E402
from convcalc.executor.runner import Executor  # noqa: E402
from convcalc.executor.weights import initial_weights  # noqa: E402
from convcalc.graph import INPUT  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the numpy columns still run
    torch = None


def matmul_gflops(size: int = 2048, repeats: int = 3) -> float:
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = np.random.default_rng(1).random((size, size), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# -- the same graph in PyTorch eager ---------------------------------------------------------

def _torch_pads(pads):
    """Symmetric pads as conv/pool `padding`; asymmetric ones need an F.pad first."""
    if all(b == a for b, a in pads):
        return tuple(b for b, _ in pads), None
    return 0, [p for pair in reversed(pads) for p in pair]


def _conv(layer, xs, w):
    padding, explicit = _torch_pads(layer.geometry(xs[0].shape[2:])[0])
    x = F.pad(xs[0], explicit) if explicit else xs[0]
    return F.conv2d(x, w["weight"], w.get("bias"), layer.stride, padding, layer.dilation,
                    layer.groups)


def _maxpool(layer, xs, w):
    stride, pads, dilation = layer.geometry(xs[0].shape[2:])
    return F.max_pool2d(xs[0], layer.kernel_size, stride, _torch_pads(pads)[0], dilation,
                        layer.ceil_mode)


TORCH_OPS = {
    "Conv": _conv,
    "BatchNorm": lambda l, xs, w: F.batch_norm(xs[0], w["running_mean"], w["running_var"],
                                               w.get("weight"), w.get("bias"), False, 0.0, l.eps),
    "ReLU": lambda l, xs, w: F.relu(xs[0]),
    "ReLU6": lambda l, xs, w: F.relu6(xs[0]),
    "MaxPool": _maxpool,
    "AdaptiveAvgPool": lambda l, xs, w: F.adaptive_avg_pool2d(xs[0], l.output_size),
    "GlobalAvgPool": lambda l, xs, w: xs[0].mean((2, 3), keepdim=l.keepdim),
    "Flatten": lambda l, xs, w: torch.flatten(xs[0], l.start_dim, l.end_dim),
    "Linear": lambda l, xs, w: F.linear(xs[0], w["weight"], w.get("bias")),
    "Add": lambda l, xs, w: sum(xs[1:], xs[0]),
    "Dropout": lambda l, xs, w: xs[0],
    "Identity": lambda l, xs, w: xs[0],
}


class TorchTwin:
    """The graph run by torch.nn.functional, freeing tensors after their last consumer."""

    def __init__(self, report, weights):
        self.graph = report.graph
        self.weights = {}
        for layer in report.layers:
            self.weights[layer.name] = {s: torch.from_numpy(weights[f"{layer.name}.{s}"])
                                        for s in layer.weights if s != "num_batches_tracked"}
        self.users = {name: len(users) for name, users in self.graph.consumers().items()}

    def __call__(self, x):
        values, remaining = {INPUT: x}, dict(self.users)
        with torch.inference_mode():
            for node in self.graph.nodes:
                op = TORCH_OPS[type(node.layer).__name__]
                values[node.name] = op(node.layer, [values[n] for n in node.inputs],
                                       self.weights[node.name])
                for name in node.inputs:
                    remaining[name] -= 1
                    if remaining[name] == 0:
                        del values[name]
        return values[self.graph.output.name]


# -- the table -------------------------------------------------------------------------------

def bench(model: str, batch: int, repeats: int) -> dict:
    report = analyze_file(ROOT / "specs" / f"{model}.yaml", Options(batch=batch))
    weights = initial_weights(report, seed=0)
    executor = Executor(report, weights)
    x = np.random.default_rng(0).random((batch, 224, 224, 3), dtype=np.float32)
    ours_run = lambda: executor.run(x, stats=False)  # noqa: E731
    runs = [ours_run]
    if torch is not None:
        twin, x_first = TorchTwin(report, weights), torch.from_numpy(np.moveaxis(x, -1, 1).copy())
        runs.append(lambda: twin(x_first))
    for run in runs:
        run()  # warm-up: allocations, BLAS threads
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for index, run in enumerate(runs):
            best[index] = min(best[index], _timed(run))
    row = {"model": model, "batch": batch, "gmacs": report.totals.macs / 1e9, "ours": best[0]}
    if torch is not None:
        row["torch"] = best[1]
        ours, theirs = executor.run(x, stats=False).output, twin(x_first).numpy()
        row["max_rel_diff"] = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--models", nargs="+", default=["resnet50", "vgg16", "mobilenet_v2"])
    args = parser.parse_args()
    peak = matmul_gflops()
    threads = f", torch {torch.__version__} with {torch.get_num_threads()} threads" if torch else ""
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}{threads}")
    print(f"float32 matmul 2048^3: {peak:.1f} GFLOP/s\n")
    header = (f"{'model':<13} {'batch':>5} {'GMACs/im':>8} {'ours ms':>9} {'GFLOP/s':>8} "
              f"{'% matmul':>8} {'torch ms':>9} {'GFLOP/s':>8} {'ours/torch':>10} {'max diff':>9}")
    print(header)
    print("-" * len(header))
    for model in args.models:
        if not (ROOT / "specs" / f"{model}.yaml").exists():
            print(f"{model:<13} (no specs/{model}.yaml)")
            continue
        for batch in args.batches:
            row = bench(model, batch, args.repeats)
            flops = 2 * row["gmacs"] * batch  # GFLOP per batch (the analysis counts a sample)
            line = (f"{model:<13} {batch:>5} {row['gmacs']:>8.2f} {row['ours'] * 1e3:>9.1f} "
                    f"{flops / row['ours']:>8.1f} {100 * flops / row['ours'] / peak:>7.0f}%")
            if "torch" in row:
                line += (f" {row['torch'] * 1e3:>9.1f} {flops / row['torch']:>8.1f} "
                         f"{row['ours'] / row['torch']:>9.2f}x {row['max_rel_diff']:>9.1e}")
            print(line, flush=True)


if __name__ == "__main__":
    main()
