"""Data-set statistics (convcalc/executor/dataset.py, `run --stats`, `--jobs`, `--dask`):
against NumPy computing the same figures over all values at once (the oracle), and split any
way over batches, processes and a Dask cluster, giving the same result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import convcalc
from convcalc.executor.dataset import (BINS, DatasetStats, LayerStats, Shard, bin_edges,
                                       histogram, merge_results, run_processes, run_shard,
                                       shards)

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "specs" / "lenet5.yaml"


def _oracle(values: np.ndarray) -> dict:
    flat = values.reshape(-1).astype(np.float64)
    good = flat[np.isfinite(flat)]
    edges = np.concatenate([[-np.inf], bin_edges(), [np.inf]])
    return {"count": good.size, "nonfinite": flat.size - good.size, "min": good.min(),
            "max": good.max(), "mean": good.mean(), "std": good.std(),
            "counts": np.histogram(good, bins=edges)[0]}


def _assert_matches(found: LayerStats, oracle: dict) -> None:
    assert (found.count, found.nonfinite) == (oracle["count"], oracle["nonfinite"])
    assert (found.minimum, found.maximum) == (oracle["min"], oracle["max"])
    assert found.mean == pytest.approx(oracle["mean"], rel=1e-12, abs=1e-12)
    assert found.std == pytest.approx(oracle["std"], rel=1e-12)
    assert np.array_equal(found.counts, oracle["counts"])


def test_one_array_against_numpy():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(50_000) * 3, rng.standard_normal(1000) * 1e-9,
                             [0.0, -0.0, 1e30, -1e30, np.nan, np.inf, -np.inf]]).astype(np.float32)
    found = LayerStats.of(values)
    _assert_matches(found, _oracle(values))
    assert found.nonfinite == 3 and found.counts.sum() == found.count and len(found.counts) == BINS


def test_bins_are_eight_per_octave_and_mirrored():
    edges = bin_edges()
    positive = edges[edges > 0]
    assert positive[0] == 2.0 ** -24 and positive[-1] == 2.0 ** 24
    assert np.allclose(positive[8::8] / positive[:-8:8], 2.0)  # an octave every 8 edges
    assert np.array_equal(edges, -edges[::-1])
    values = np.array([1.0, 1.1249, 1.125, 3.0, -3.0, -1.0, 0.0, 2.0 ** 24, -(2.0 ** 24)],
                      np.float32)
    counts = histogram(values)
    lower = np.concatenate([[-np.inf], edges])
    assert {float(lower[i]): int(c) for i, c in enumerate(counts) if c} == \
        {1.0: 2, 1.125: 1, 3.0: 1, -3.0: 1, -1.0: 1, -(2.0 ** -24): 1, 2.0 ** 24: 1,
         -(2.0 ** 24): 1}  # [lower, upper) on both sides, as np.histogram
    assert np.array_equal(counts, np.histogram(values, np.concatenate([[-np.inf], edges,
                                                                         [np.inf]]))[0])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_split_merges_to_the_whole(data):
    """min, max, counts, histogram exact; mean and std to float64 rounding; in any order."""
    size = data.draw(st.integers(1, 400))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    values = (rng.standard_normal(size) * 10.0 ** rng.integers(-6, 6)).astype(np.float32)
    if data.draw(st.booleans()):
        values[rng.integers(0, size)] = np.nan
    cuts = sorted(data.draw(st.lists(st.integers(0, size), max_size=6)))
    parts = np.split(values, cuts)
    order = data.draw(st.permutations(range(len(parts))))
    merged = LayerStats()
    for index in order:
        merged = merged.merge(LayerStats.of(parts[index]))
    whole = LayerStats.of(values)
    assert (merged.count, merged.nonfinite) == (whole.count, whole.nonfinite)
    assert np.array_equal(merged.counts, whole.counts)
    if whole.count:
        assert (merged.minimum, merged.maximum) == (whole.minimum, whole.maximum)
        assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-12 * abs(whole.std))
        assert merged.std == pytest.approx(whole.std, rel=1e-9, abs=1e-300)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("set")
    for i in range(7):
        x = np.random.default_rng(i).standard_normal((1, 32, 32)).astype(np.float32) * (i + 1)
        np.save(folder / f"x{i}.npy", x)
    return sorted(str(p) for p in folder.glob("*.npy"))


def _layer_outputs(paths: list[str]) -> dict[str, np.ndarray]:
    """The oracle's values: every layer's output of every input, by convcalc.run with each
    layer kept, one input at a time, concatenated."""
    names = [layer.name for layer in convcalc.check(str(LENET)).layers]
    found: dict[str, list] = {name: [] for name in names}
    for path in paths:
        result = convcalc.run(str(LENET), np.load(path)[None], keep=names)
        for name in names:
            found[name].append(np.asarray(result.outputs[name]).reshape(-1))
    return {name: np.concatenate(arrays) for name, arrays in found.items()}


def test_run_gathers_every_layer_over_the_set(images):
    shard = Shard(str(LENET), images)  # one input at a time, as the oracle's runs
    result = run_shard(shard)
    assert result.stats.inputs == len(images)
    outputs = _layer_outputs(images)
    assert list(result.stats.layers) == list(outputs)
    for name, values in outputs.items():
        _assert_matches(result.stats.layers[name], _oracle(values))


def test_batches_change_only_float32_rounding(images):
    one, three = (run_shard(Shard(str(LENET), images, batch_size=n)).stats for n in (1, 3))
    for name, mine in one.layers.items():
        theirs = three.layers[name]
        assert theirs.count == mine.count and theirs.nonfinite == mine.nonfinite
        assert theirs.mean == pytest.approx(mine.mean, rel=1e-5, abs=1e-6)
        assert theirs.std == pytest.approx(mine.std, rel=1e-5)


def test_processes_give_the_single_process_figures(images):
    base = Shard(str(LENET), images, batch_size=2)
    one = run_shard(base).stats
    groups, two, failed = merge_results(run_processes(shards(base, images, 2), 2))
    assert not failed and two.inputs == one.inputs == len(images)
    assert sum(len(g["images"]) for g in groups) == len(images)
    for name, mine in one.layers.items():
        theirs = two.layers[name]
        assert (theirs.count, theirs.minimum, theirs.maximum, theirs.nonfinite) == \
            (mine.count, mine.minimum, mine.maximum, mine.nonfinite)
        assert np.array_equal(theirs.counts, mine.counts)
        assert theirs.mean == pytest.approx(mine.mean, rel=1e-12, abs=1e-15)
        assert theirs.std == pytest.approx(mine.std, rel=1e-12)


def test_dask_local_cluster_gives_the_single_process_figures(images):
    distributed = pytest.importorskip("dask.distributed")
    from convcalc.executor.dataset import run_dask
    base = Shard(str(LENET), images)
    one = run_shard(base).stats
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        _, found, failed = merge_results(run_dask(shards(base, images, 4), client))
    assert not failed and found.inputs == len(images)
    for name, mine in one.layers.items():
        assert (found.layers[name].count, found.layers[name].minimum) == (mine.count, mine.minimum)
        assert np.array_equal(found.layers[name].counts, mine.counts)
        assert found.layers[name].std == pytest.approx(mine.std, rel=1e-12)


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convcalc", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_cli_stats_json_and_jobs(images, tmp_path):
    folder = Path(images[0]).parent
    one = _cli("run", LENET, folder, "--stats", "-f", "json")
    two = _cli("run", LENET, folder, "--jobs", "2", "-f", "json")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    a, b = json.loads(one.stdout)["dataset"], json.loads(two.stdout)["dataset"]
    assert a["inputs"] == b["inputs"] == len(images)
    for name, mine in a["layers"].items():
        theirs = b["layers"][name]
        assert (theirs["count"], theirs["min"], theirs["max"], theirs["histogram"]) == \
            (mine["count"], mine["min"], mine["max"], mine["histogram"])
        assert theirs["std"] == pytest.approx(mine["std"], rel=1e-12)
    table = _cli("run", LENET, folder, "--stats")
    assert table.returncode == 0 and "statistics over 7 input(s)" in table.stdout
    refused = _cli("run", LENET, folder, "--jobs", "2", "--out", tmp_path / "o")
    assert refused.returncode == 2 and "--jobs" in refused.stderr
    assert not (tmp_path / "o").exists()


def test_cli_dask_scheduler_unreachable_is_one_line(images):
    pytest.importorskip("dask.distributed")
    done = _cli("run", LENET, Path(images[0]).parent, "--dask", "tcp://127.0.0.1:9")
    assert done.returncode == 2 and "cannot reach the scheduler" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_dataset_stats_merge_keeps_layer_order():
    a, b = DatasetStats(), DatasetStats()
    a.observe("x", np.ones(3, np.float32))
    b.observe("y", np.zeros(2, np.float32))
    b.observe("x", np.full(2, 3.0, np.float32))
    merged = a.merge(b)
    assert list(merged.layers) == ["x", "y"] and merged.layers["x"].count == 5
    assert merged.layers["x"].mean == pytest.approx(1.8)


def test_api_and_dask_bag_give_the_same_statistics(images):
    one = convcalc.dataset_stats(LENET, images)
    two = convcalc.dataset_stats(LENET, [Path(images[0]).parent], jobs=2)
    assert one.inputs == two.inputs == len(images)
    bag = pytest.importorskip("dask.bag")
    import dask
    with dask.config.set(scheduler="synchronous"):
        three = convcalc.dataset_stats_bag(LENET, bag.from_sequence(images, npartitions=3))
    for found in (two, three):
        assert list(found.layers) == list(one.layers)
        for name, mine in one.layers.items():
            assert (found.layers[name].count, found.layers[name].maximum) == (mine.count, mine.maximum)
            assert np.array_equal(found.layers[name].counts, mine.counts)
            assert found.layers[name].std == pytest.approx(mine.std, rel=1e-12)
