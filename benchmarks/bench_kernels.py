"""Speed of convcalc's NumPy conv kernel on ResNet-50-like layers, against the machine's
float32 matmul and against PyTorch eager (when torch imports).

    python benchmarks/bench_kernels.py [--repeats 7] [--quick]

GFLOP/s = 2 * MACs / time, best of `repeats` runs. Columns:
  numpy     convcalc.executor.kernels.conv on channels-last data, weights prepared once
  matmul    one float32 np.matmul of the layer's im2col shape (M, K*Cin) @ (K*Cin, Cout):
            what the patch-matrix method could reach if building the patches were free
  torch     torch.nn.functional.conv2d on channels-first data (its default layout)
Each row's runners are interleaved round by round, so load from other processes hits them
alike. The last line sums, over every conv of ResNet-50 (224x224, batch 1), each layer's
best time.

A second table times the kinds the import issue added, at ConvNeXt-Tiny's and CSPDarknet's
shapes, through the executor itself (a one-layer spec, weights prepared once, no statistics)
against what a PyTorch model runs for them: layernorm2d (timm's LayerNorm2d: permute,
F.layer_norm, permute back), ConvNeXt's depthwise 7x7, a linear over channels-last tokens
(its MLP), slices (a CSP channel split, a Focus-style stride-2 slice: views on both sides,
so their times are the per-call overhead) and matmul (an attention-sized batched product).
Issue 13's target: within 1.5x of PyTorch.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convcalc.executor import kernels as K  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the numpy columns still run
    torch = None

# name, input (H, W, Cin), Cout, kernel, stride, padding, groups
LAYERS = [
    ("conv1 7x7/2", (224, 224, 3), 64, 7, 2, 3, 1),
    ("56x56x64 3x3", (56, 56, 64), 64, 3, 1, 1, 1),
    ("56x56x64->256 1x1", (56, 56, 64), 256, 1, 1, 0, 1),
    ("56x56x256->64 1x1", (56, 56, 256), 64, 1, 1, 0, 1),
    ("56x56x256->512 1x1/2", (56, 56, 256), 512, 1, 2, 0, 1),
    ("28x28x128 3x3", (28, 28, 128), 128, 3, 1, 1, 1),
    ("14x14x256 3x3", (14, 14, 256), 256, 3, 1, 1, 1),
    ("7x7x512 3x3", (7, 7, 512), 512, 3, 1, 1, 1),
    ("56x56x128 3x3 g32", (56, 56, 128), 128, 3, 1, 1, 32),
    ("112x112x32 dw 3x3", (112, 112, 32), 32, 3, 1, 1, 32),
    ("56x56x144 dw 3x3/2", (56, 56, 144), 144, 3, 2, 1, 144),
]


def best_times(functions, repeats: int) -> list[float]:
    """Best wall time of each function over `repeats` rounds, the functions interleaved in
    every round so that load from other processes hits them alike."""
    for function in functions:
        function()  # warm-up: allocations, BLAS threads
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for number, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[number] = min(best[number], time.perf_counter() - start)
    return best


def best_time(function, repeats: int) -> float:
    return best_times([function], repeats)[0]


def conv_case(shape, cout, kernel, stride, padding, groups, batch, rng):
    height, width, cin = shape
    x = rng.standard_normal((batch, height, width, cin), dtype=np.float32)
    w = rng.standard_normal((cout, cin // groups, kernel, kernel), dtype=np.float32)
    out = (height + 2 * padding - kernel) // stride + 1, (width + 2 * padding - kernel) // stride + 1
    macs = batch * out[0] * out[1] * cout * (cin // groups) * kernel * kernel
    return x, w, out, macs


def numpy_runner(x, w, stride, padding, groups):
    prepared = K.conv_prepared_weight(w, groups)
    pairs = ((padding, padding), (padding, padding))
    return lambda: K.conv(x, prepared, None, stride, pairs, 1, groups)


def matmul_runner(batch, out, cin, cout, kernel, groups, rng):
    rows, depth = batch * out[0] * out[1], kernel * kernel * cin // groups
    a = rng.standard_normal((groups, rows, depth), dtype=np.float32)
    b = rng.standard_normal((groups, depth, cout // groups), dtype=np.float32)
    return lambda: np.matmul(a, b)


def torch_runner(x, w, stride, padding, groups):
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    wt = torch.from_numpy(w)

    def run():
        with torch.no_grad():
            return F.conv2d(xt, wt, None, stride, padding, 1, groups)
    return run


def layer_table(batches, repeats: int) -> None:
    rng = np.random.default_rng(0)
    header = (f"{'layer':<22}{'N':>3}{'GMAC':>8}{'numpy ms':>10}{'GFLOP/s':>9}"
              f"{'matmul':>9}{'torch ms':>10}{'GFLOP/s':>9}{'np/torch':>9}")
    print(header)
    print("-" * len(header))
    for batch in batches:
        for name, shape, cout, kernel, stride, padding, groups in LAYERS:
            x, w, out, macs = conv_case(shape, cout, kernel, stride, padding, groups, batch, rng)
            runners = [numpy_runner(x, w, stride, padding, groups)]
            depthwise = groups == shape[2]
            if not depthwise:
                runners.append(matmul_runner(batch, out, shape[2], cout, kernel, groups, rng))
            if torch:
                runners.append(torch_runner(x, w, stride, padding, groups))
            times = best_times(runners, repeats)
            t_np, t_mm = times[0], None if depthwise else times[1]
            t_torch = times[-1] if torch else None
            gflops = lambda t: 2 * macs / t / 1e9  # noqa: E731
            row = f"{name:<22}{batch:>3}{macs / 1e9:>8.3f}{t_np * 1e3:>10.2f}{gflops(t_np):>9.1f}"
            row += f"{gflops(t_mm):>9.1f}" if t_mm else f"{'-':>9}"
            if t_torch:
                row += f"{t_torch * 1e3:>10.2f}{gflops(t_torch):>9.1f}{t_np / t_torch:>9.2f}"
            print(row)


def resnet50_convs():
    """(H, Cin, Cout, kernel, stride) of every conv in torchvision's ResNet-50 at 224."""
    layers = [(224, 3, 64, 7, 2)]
    size, cin = 56, 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for block in range(blocks):
            s = stride if block == 0 else 1
            layers.append((size, cin, width, 1, 1))
            layers.append((size, width, width, 3, s))
            out_size = size // s
            layers.append((out_size, width, width * 4, 1, 1))
            if block == 0:
                layers.append((size, cin, width * 4, 1, s))
            size, cin = out_size, width * 4
    return layers


def resnet50_stack(repeats: int) -> None:
    """Sum over ResNet-50's convs of each layer's best time (numpy and torch interleaved)."""
    rng = np.random.default_rng(1)
    t_np = t_torch = 0.0
    total_macs = 0
    layers = resnet50_convs()
    for size, cin, cout, kernel, stride in layers:
        x, w, _, macs = conv_case((size, size, cin), cout, kernel, stride, kernel // 2, 1, 1, rng)
        runners = [numpy_runner(x, w, stride, kernel // 2, 1)]
        if torch:
            runners.append(torch_runner(x, w, stride, kernel // 2, 1))
        times = best_times(runners, repeats)
        t_np += times[0]
        t_torch += times[-1] if torch else 0.0
        total_macs += macs
    line = (f"ResNet-50 convs ({len(layers)} layers, {total_macs / 1e9:.3f} GMAC), batch 1, sum of "
            f"per-layer best: numpy {t_np * 1e3:.1f} ms ({2 * total_macs / t_np / 1e9:.0f} GFLOP/s)")
    if torch:
        line += (f", torch {t_torch * 1e3:.1f} ms ({2 * total_macs / t_torch / 1e9:.0f} GFLOP/s), "
                 f"numpy/torch {t_np / t_torch:.2f}")
    print(line)


# name, spec input (C, *spatial), layers, torch function of the channels-first input
def _kind_cases():
    f = F

    def ln2d(x):
        return f.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],)).permute(0, 3, 1, 2)

    dw = torch.randn(96, 1, 7, 7) if torch else None
    fc = torch.randn(384, 96) if torch else None
    return [
        ("layernorm2d 96x56x56", [96, 56, 56], [{"type": "layernorm2d", "name": "k"}], ln2d),
        ("dw 7x7 96x56x56", [96, 56, 56],
         [{"type": "conv2d", "name": "k", "out_channels": 96, "kernel_size": 7, "padding": 3,
           "groups": 96, "bias": False}],
         lambda x: f.conv2d(x, dw, None, 1, 3, 1, 96)),
        ("linear 3136x96->384", [3136, 96],
         [{"type": "linear", "name": "k", "out_features": 384, "bias": False}],
         lambda x: f.linear(x, fc)),
        ("slice ch 0:64 of 128", [128, 56, 56],
         [{"type": "slice", "name": "k", "dim": 1, "start": 0, "end": 64}],
         lambda x: x[:, :64]),  # a view on both sides
        ("slice ::2 of 3x320x320", [3, 320, 320],
         [{"type": "slice", "name": "k", "dim": 3, "step": 2}],
         lambda x: x[..., ::2]),
        ("matmul 8x196x64 @ 64x196", [8, 196, 64],
         [{"type": "transpose", "name": "t", "dim0": 2, "dim1": 3},
          {"type": "matmul", "name": "k", "inputs": ["input", "t"]}],
         lambda x: torch.matmul(x, x.transpose(2, 3))),
    ]


def kinds_table(batches, repeats: int) -> None:
    import convcalc
    from convcalc.executor.runner import Executor
    from convcalc.executor.weights import initial_weights

    header = f"{'kind':<28}{'N':>3}{'numpy ms':>10}{'torch ms':>10}{'np/torch':>9}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(3)
    for batch in batches:
        for name, shape, layers, torch_function in _kind_cases():
            report = convcalc.check({"input": shape, "layers": layers})
            assert report.ok, [d.format() for d in report.diagnostics]
            executor = Executor(report, initial_weights(report, seed=0))
            first = rng.standard_normal((batch, *shape), dtype=np.float32)
            last = np.ascontiguousarray(np.moveaxis(first, 1, -1))  # the executor's layout
            xt = torch.from_numpy(first)

            def theirs(xt=xt, torch_function=torch_function):
                with torch.inference_mode():
                    return torch_function(xt)
            times = best_times([lambda: executor.run(last, stats=False), theirs], repeats)
            print(f"{name:<28}{batch:>3}{times[0] * 1e3:>10.2f}{times[1] * 1e3:>10.2f}"
                  f"{times[0] / times[1]:>9.2f}", flush=True)


def machine_report(repeats: int) -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    t = best_time(lambda: a @ a, repeats)
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"torch {torch.__version__ + f' ({torch.get_num_threads()} threads)' if torch else 'absent'}")
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))}
    print(f"BLAS environment: {env or 'none set'}")
    try:
        import threadpoolctl
        for pool in threadpoolctl.threadpool_info():
            print(f"threadpool: {pool.get('internal_api')} {pool.get('version')} "
                  f"threads={pool.get('num_threads')} arch={pool.get('architecture')}")
    except ImportError:
        print("threadpoolctl: not installed")
    print(f"float32 matmul 2048^3: {2 * 2048**3 / t / 1e9:.0f} GFLOP/s")
    if hasattr(os, "getloadavg"):  # other processes on the machine make every column noisy
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 3 repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    machine_report(repeats)
    layer_table((1,) if args.quick else (1, 8), repeats)
    print()
    resnet50_stack(repeats)
    if torch:
        print()
        kinds_table((1,) if args.quick else (1, 8), repeats)


if __name__ == "__main__":
    main()
