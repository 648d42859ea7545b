"""Statistics of every layer's output over a whole image set, and the runs that split the
set over processes (`run --jobs N`) or machines (`run --dask ADDRESS`).

Per layer: the count of values, min, max, mean and standard deviation of the finite ones,
the count of non-finite ones (NaN, +-inf), and a histogram on fixed bin edges. They merge
exactly whatever the split: count, min, max, the non-finite count and the histogram are
exact (integers, and min/max); mean and variance merge by Chan, Golub and LeVeque's
parallel formula (the sum of squared deviations M2: M2 = M2a + M2b + d^2 na nb / n), in
float64, so that a split changes them only by float64 rounding.

The histogram's edges do not depend on the data (so histograms of any two parts add): the
magnitudes from 2^-24 to 2^24 in octaves, each split into 8 equal bins (a float with a
3-bit mantissa: every bin is within 12.5 % of its lower edge), mirrored for negatives, plus
one bin for |x| < 2^-24 (zero included) and one for each sign's overflow. That is what int8
calibration reads: the range that holds all but a fraction of the values, per layer, at
about 1/8-octave resolution, without a second pass.

Folded BatchNorms (the executor's default) have no output of their own: their conv's row
holds the values after the norm, as `run`'s table does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LOW, HIGH, SUB = -24, 24, 8  # octaves 2^LOW .. 2^HIGH, SUB bins each
LEVELS = (HIGH - LOW) * SUB  # magnitude bins between 2^LOW and 2^HIGH
BINS = 2 * LEVELS + 3  # negative overflow, -levels, |x| < 2^LOW, +levels, positive overflow


def bin_edges() -> np.ndarray:
    """The BINS - 1 inner edges, ascending: bin i is [edges[i-1], edges[i]) (np.histogram's
    convention), the first and last unbounded, the middle one [-2^LOW, 2^LOW) (zero)."""
    levels = np.array([_level_edge(k) for k in range(LEVELS + 1)])
    return np.concatenate([-levels[::-1], levels])


def _level_edge(k: int) -> float:
    octave, step = divmod(k, SUB)
    return 2.0 ** (LOW + octave) * (1 + step / SUB)


def histogram(values: np.ndarray) -> np.ndarray:
    """Counts in the fixed bins of finite float values, by their exponent and top three
    mantissa bits (np.frexp: |x| = m 2^e, m in [0.5, 1)): O(n), no search."""
    magnitude = np.abs(values)  # float32 stays float32: frexp is exact in either
    mantissa, exponent = np.frexp(magnitude)
    step = (mantissa * 2 - 1) * SUB
    level = (exponent.astype(np.int64) - 1 - LOW) * SUB + np.floor(step).astype(np.int64)
    level = np.where(magnitude < 2.0 ** LOW, -1, np.minimum(level, LEVELS))  # LEVELS: overflow
    # bins are [lower, upper) on both sides, as np.histogram's: a negative value on an edge
    # (-1.0, a tanh's saturation) belongs to the bin of smaller magnitude
    level = level - ((values < 0) & (step == np.floor(step)) & (magnitude >= 2.0 ** LOW))
    index = np.where(level < 0, LEVELS + 1,
                     np.where(values < 0, LEVELS - level, LEVELS + 2 + level))
    return np.bincount(index.reshape(-1), minlength=BINS).astype(np.int64)


@dataclass
class LayerStats:
    """One layer's values over the inputs seen so far."""

    count: int = 0  # finite values
    nonfinite: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    mean: float = 0.0
    m2: float = 0.0  # the sum of squared deviations from the mean
    counts: np.ndarray = field(default_factory=lambda: np.zeros(BINS, np.int64))

    @classmethod
    def of(cls, values: np.ndarray) -> "LayerStats":
        flat = np.asarray(values).reshape(-1)
        finite = np.isfinite(flat)
        good = flat if finite.all() else flat[finite]
        if good.size == 0:
            return cls(nonfinite=int(flat.size))
        wide = good.astype(np.float64)
        mean = float(wide.mean())
        centred = wide - mean
        return cls(int(good.size), int(flat.size - good.size), float(good.min()),
                   float(good.max()), mean, float(np.dot(centred, centred)), histogram(good))

    def merge(self, other: "LayerStats") -> "LayerStats":
        """Chan et al.'s pairwise combination; exact for everything but mean and M2."""
        n = self.count + other.count
        if not other.count or not self.count:
            base = self if self.count else other
            return LayerStats(base.count, self.nonfinite + other.nonfinite, base.minimum,
                              base.maximum, base.mean, base.m2, self.counts + other.counts)
        delta = other.mean - self.mean
        return LayerStats(n, self.nonfinite + other.nonfinite,
                          min(self.minimum, other.minimum), max(self.maximum, other.maximum),
                          self.mean + delta * other.count / n,
                          self.m2 + other.m2 + delta * delta * self.count * other.count / n,
                          self.counts + other.counts)

    def magnitude_below(self, fraction: float) -> float | None:
        """An upper bound of the `fraction` quantile of |x| (the upper edge of the bin where
        the cumulative count of |x| reaches it): the clipping range int8 calibration wants."""
        if not self.count:
            return None
        zero = LEVELS + 1
        by_level = self.counts[zero + 1:][::1].copy()  # positive levels, then overflow
        by_level[:LEVELS + 1] += self.counts[:zero][::-1]  # negatives by magnitude
        cumulative = self.counts[zero] + np.cumsum(by_level)
        level = int(np.searchsorted(cumulative, fraction * self.count))
        if level >= LEVELS:
            return max(abs(self.minimum), abs(self.maximum))
        return min(_level_edge(level + 1), max(abs(self.minimum), abs(self.maximum)))

    @property
    def std(self) -> float | None:
        """The population standard deviation (PyTorch's std(unbiased=False))."""
        return (self.m2 / self.count) ** 0.5 if self.count else None

    def to_dict(self) -> dict:
        edges = bin_edges()
        lower = np.concatenate([[-np.inf], edges])
        upper = np.concatenate([edges, [np.inf]])
        nonzero = np.flatnonzero(self.counts)
        return {"count": self.count, "nonfinite": self.nonfinite,
                "min": self.minimum if self.count else None,
                "max": self.maximum if self.count else None,
                "mean": self.mean if self.count else None, "std": self.std,
                "abs_quantile_bounds": {q: self.magnitude_below(float(q))
                                        for q in ("0.999", "0.9999")},
                "histogram": [[_edge(lower[i]), _edge(upper[i]), int(self.counts[i])]
                              for i in nonzero]}


def _edge(value: float) -> float | str:
    return value if np.isfinite(value) else ("-inf" if value < 0 else "inf")


@dataclass
class DatasetStats:
    """Per layer (in the graph's order) LayerStats, and the number of inputs seen."""

    layers: dict[str, LayerStats] = field(default_factory=dict)
    inputs: int = 0

    def observe(self, name: str, values: np.ndarray) -> None:
        found = LayerStats.of(values)
        self.layers[name] = self.layers[name].merge(found) if name in self.layers else found

    def merge(self, other: "DatasetStats") -> "DatasetStats":
        names = list(self.layers) + [n for n in other.layers if n not in self.layers]
        empty = LayerStats()
        return DatasetStats({n: self.layers.get(n, empty).merge(other.layers.get(n, empty))
                             for n in names}, self.inputs + other.inputs)

    def to_dict(self) -> dict:
        return {"inputs": self.inputs, "histogram_bins": "fixed: 8 per octave of |x| from "
                "2^-24 to 2^24, mirrored for negatives; (-2^-24, 2^-24) one bin",
                "layers": {name: stats.to_dict() for name, stats in self.layers.items()}}


# -- runs over shards of the input set -----------------------------------------------------------

@dataclass
class Shard:
    """What one worker runs: everything a fresh process (or a Dask worker on another machine)
    needs, as plain values; the spec and weights files must be readable where it runs."""

    spec: str
    files: list[str]
    weights: str | None = None
    seed: int = 0
    size: tuple[int, int] | None = None
    batch_size: int = 1
    normalize: str | None = None
    verify: bool = False
    limit: int | None = None


@dataclass
class ShardResult:
    groups: list[dict]  # Group fields: input_shape, images, rows, memory, seconds
    stats: DatasetStats
    failed: list[tuple[str, str]]


def run_shard(shard: Shard) -> ShardResult:
    """Run one shard in this process: the session of `convcalc run`, with statistics."""
    from convcalc.executor.session import Session
    with np.errstate(all="ignore"):
        session = Session.start(Path(shard.spec), Path(shard.weights) if shard.weights else None,
                                shard.seed, [], shard.limit)
        stats = DatasetStats()
        groups = session.run_all([Path(f) for f in shard.files], shard.size, shard.batch_size,
                                 shard.normalize, shard.verify, None, stats=stats)
    return ShardResult([{"input_shape": g.input_shape, "images": g.images, "rows": g.rows,
                         "memory": g.memory, "seconds": g.seconds} for g in groups],
                       stats, [(str(p), why) for p, why in session.failed])


def shards(base: Shard, files: list[str], count: int) -> list[Shard]:
    """`count` contiguous shards of the files (contiguous: one input size stays together)."""
    count = max(1, min(count, len(files)))
    step = -(-len(files) // count) if files else 1
    from dataclasses import replace
    return [replace(base, files=files[i:i + step]) for i in range(0, len(files), step)] or \
        [replace(base, files=[])]


def run_processes(parts: list[Shard], jobs: int) -> list[ShardResult]:
    """The shards on `jobs` worker processes, each with cores / jobs BLAS threads (so that
    they do not fight over the cores; threadpoolctl). Forked where the platform forks (no
    re-import of the caller's __main__: a script, a notebook or stdin works), else spawned."""
    import concurrent.futures
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    from convcalc.executor.runner import RunError
    threads = max(1, (os.cpu_count() or 1) // jobs)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    try:
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context,
                                                    initializer=_limit_threads,
                                                    initargs=(threads,)) as pool:
            return list(pool.map(run_shard, parts))
    except BrokenProcessPool:
        raise RunError(f"a worker process of --jobs {jobs} died (out of memory, or killed)",
                       "use fewer --jobs or a smaller --batch-size") from None


def _limit_threads(threads: int) -> None:
    """In a worker: BLAS (and OpenMP) thread pools of this many threads."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)  # for pools started later (a spawned worker's)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a dependency; without it the pools keep their size
        return
    global _LIMITS
    _LIMITS = threadpool_limits(threads)  # kept for the worker's life


_LIMITS = None


def run_dask(parts: list[Shard], address: Any) -> list[ShardResult]:
    """The shards as tasks of a Dask cluster: `address` is a scheduler address
    (tcp://host:8786) or a dask.distributed Client."""
    from dask.distributed import Client
    client = address if isinstance(address, Client) else Client(address, timeout="10s")
    try:
        return client.gather(client.map(run_shard, parts, pure=False))
    finally:
        if client is not address:
            client.close()


def merge_results(results: list[ShardResult]) -> tuple[list[dict], DatasetStats, list]:
    """Groups of equal input shape merged (rows as Group.merge does), statistics merged in
    shard order, failures concatenated."""
    from convcalc.executor.session import merge_rows
    groups: dict[tuple, dict] = {}
    stats = DatasetStats()
    failed: list = []
    for result in results:
        stats = stats.merge(result.stats)
        failed += result.failed
        for group in result.groups:
            found = groups.get(group["input_shape"])
            if found is None:
                groups[group["input_shape"]] = {**group, "images": list(group["images"]),
                                                "rows": dict(group["rows"])}
                continue
            found["images"] += group["images"]
            found["memory"] = max(found["memory"], group["memory"])
            found["seconds"] += group["seconds"]
            found["rows"] = merge_rows(found["rows"], group["rows"])
    return list(groups.values()), stats, failed
