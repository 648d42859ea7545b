"""The layout, slicing, reduction, matmul and stack kinds beyond their values (those are in
tests/test_executor.py against NumPy and torch): split parts in the graph, PyTorch's dims,
clear errors, counts, and receptive fields that are exact or said to be unknown.

Receptive fields through slices, split parts and pixel (un)shuffle are measured by `rf
--verify` (impulses through the executor), an oracle independent of the analysis.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcalc.analysis import Options, analyze_text
from convcalc.cli import _register_commands, app

_register_commands()


def report(text: str):
    return analyze_text(text, "case.yaml", Options())


def errors(text: str) -> list[str]:
    return [f"{d.code} {d.layer}: {d.message}" for d in report(text).diagnostics
            if d.severity.value == "error"]


def spec(*layers: str, input="[6, 9, 7]") -> str:
    return f"input: {input}\nlayers:\n" + "".join(f"  - {line}\n" for line in layers)


def rf(path, *args):
    return CliRunner(env={"COLUMNS": "160"}).invoke(app, ["rf", str(path), *args],
                                                    catch_exceptions=False)


RF_NET = spec(
    "{type: conv2d, name: c1, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}",
    "{type: slice, name: sl, dim: 3, start: 1, end: -1, step: 2}",
    "{type: slice, name: sh, dim: -2, start: -9}",
    "{type: split, name: sp, split_size_or_sections: [4, 4]}",
    "{type: pixel_shuffle, name: ps, upscale_factor: 2, inputs: sp.1}",
    "{type: conv2d, name: c2, out_channels: 4, kernel_size: 3, padding: 1}",
    "{type: pixel_unshuffle, name: pu, downscale_factor: 2}",
    "{type: conv2d, name: c3, out_channels: 4, kernel_size: 3, padding: 1}",
    input="[3, 23, 21]")


@pytest.mark.parametrize("layer", ["sl", "sh", "sp.1", "ps", "c2", "pu", "c3"])
def test_fields_through_slices_and_pixel_shuffles_are_measured_exactly(tmp_path, layer):
    path = tmp_path / "net.yaml"
    path.write_text(RF_NET)
    result = rf(path, "--layer", layer, "--verify", "-f", "json")
    assert result.exit_code == 0, result.output
    assert all(unit["ok"] for unit in json.loads(result.output)["verify"])


def test_slice_field_is_the_step_k1_stride_step_padding_minus_start():
    fields = {layer.name: layer.receptive_field for layer in report(RF_NET).layers}
    assert fields["sl"] == {"size": [3, 3], "stride": [2, 4], "padding": [1, -1]}
    assert fields["sh"]["padding"] == [-5, -1]  # start -9 of 12 rows is row 3: 1 - 3*2
    assert fields["ps"] == {"size": [4, 5], "stride": [1, 2], "padding": [-4, 1]}


def test_split_parts_are_named_by_index_and_read_by_name():
    r = report(spec("{type: split, name: sp, split_size_or_sections: 4}",
                    "{type: concat, inputs: [sp.1, sp.0]}"))
    shapes = {layer.name: layer.output_shape for layer in r.layers}
    assert shapes == {"sp": (6, 9, 7), "sp.1": (2, 9, 7), "sp.0": (4, 9, 7),
                      "concat_1": (6, 9, 7)}


def test_split_errors_name_the_parts():
    whole = errors(spec("{type: chunk, name: ch, chunks: 2}", "relu"))
    assert whole and "'ch' is a chunk: name its parts, ch.0, ch.1" in whole[0]
    missing = errors(spec("{type: chunk, name: ch, chunks: 4}", "{type: relu, inputs: ch.3}"))
    assert missing and "yields 3 parts (.0 to .2); there is no part 3" in missing[0]
    sizes = errors(spec("{type: split, name: sp, split_size_or_sections: [2, 2]}",
                        "{type: relu, inputs: sp.0}"))
    assert sizes and "add up to 4, but the axis has 6" in sizes[0]


def test_dims_count_the_batch_axis_and_dim_0_is_refused():
    assert "is the batch axis" in errors(spec("{type: slice, dim: 0, end: 1}"))[0]
    assert "out of range" in errors(spec("{type: sum, dim: 4}"))[0]
    assert "moves the batch axis" in errors(spec("{type: permute, dims: [1, 0, 2, 3]}"))[0]
    assert "is the batch axis" in errors(spec("{type: transpose, dim0: 0, dim1: 1}"))[0]
    assert "does not hold the input's 378" in errors(spec("{type: reshape, shape: [5, -1]}"))[0]
    assert "empty" in errors(spec("{type: slice, dim: 2, start: 5, end: 2}"))[0]


def test_counts_of_reductions_and_matmul():
    r = report(spec("{type: sum, name: s, dim: [2, 3]}", "{type: mean, name: m, dim: 1, "
                    "inputs: input}", "{type: amax, name: a, dim: -1, inputs: input}",
                    "{type: transpose, name: t, dim0: -1, dim1: -2, inputs: input}",
                    "{type: matmul, name: mm, inputs: [input, t]}"))
    flops = {layer.name: (layer.macs, layer.flops) for layer in r.layers}
    assert flops["s"] == (0, 6 * 62)  # 63 elements per output: 62 adds
    assert flops["m"] == (0, 63 * 6)  # 6 per output: 5 adds and a divide
    assert flops["a"] == (0, 54 * 6)  # 7 per output: 6 comparisons
    assert flops["mm"] == (6 * 9 * 9 * 7, 2 * 6 * 9 * 9 * 7)


UNKNOWN_NET = spec(
    "{type: conv2d, name: c1, out_channels: 8, kernel_size: 3, padding: 1}",
    "{type: transpose, name: t, dim0: 2, dim1: 3}",
    "{type: conv2d, name: c2, out_channels: 8, kernel_size: 3, padding: 1}",
    "{type: add, name: merged, inputs: [c1, c2]}",
    input="[3, 9, 9]")


def test_a_field_after_moved_axes_is_unknown_and_said_so(tmp_path):
    r = report(UNKNOWN_NET)
    layers = {layer.name: layer for layer in r.layers}
    assert layers["c1"].receptive_field is not None
    for name in ("t", "c2", "merged"):  # the merge with a known path is unknown too
        assert layers[name].receptive_field is None
        assert "unknown after transpose 't'" in layers[name].receptive_field_unknown
    assert not [d for d in r.diagnostics if d.code == "misaligned-merge"]
    path = tmp_path / "net.yaml"
    path.write_text(UNKNOWN_NET)
    out = CliRunner().invoke(app, ["check", "-f", "json", str(path)]).output
    merged = json.loads(out)["files"][0]["layers"][-1]
    assert merged["receptive_field"] is None and "transpose 't'" in \
        merged["receptive_field_unknown"]
    table = CliRunner(env={"COLUMNS": "160"}).invoke(app, ["check", str(path)]).output
    assert next(line for line in table.splitlines() if " merged " in line).count("?") == 2
    result = rf(path, "--layer", "c2")
    assert result.exit_code == 2
    assert "receptive field of 'c2' is unknown after transpose 't'" in result.output
    default = rf(path, "-f", "json")  # the last layer whose field is known
    assert default.exit_code == 0 and json.loads(default.output)["layer"] == "c1"


def test_a_gate_reshaped_after_global_pooling_keeps_its_field():
    """ECA: pool -> view/transpose -> conv1d -> transpose -> sigmoid -> mul."""
    r = report(spec(
        "{type: conv2d, name: c1, out_channels: 8, kernel_size: 3, padding: 1}",
        "{type: adaptive_avgpool2d, output_size: 1}",
        "{type: reshape, shape: [1, 8]}",
        "{type: conv1d, out_channels: 1, kernel_size: 3, padding: 1}",
        "{type: reshape, shape: [8, 1, 1]}",
        "{type: sigmoid}",
        "{type: mul, name: gated, inputs: [c1, sigmoid_5]}", input="[3, 9, 9]"))
    gated = r.layer("gated")
    assert gated.receptive_field is not None and gated.receptive_field_unknown is None
    assert gated.receptive_field["size"] == [19, 19]  # the pooled gate sees all: 3 + 2*8


def test_reductions_over_spatial_axes_are_whole():
    r = report(spec("{type: mean, name: m, dim: -1, keepdim: true}",
                    "{type: sum, name: s, dim: [2, 3], inputs: input}", input="[2, 9, 7]"))
    assert r.layer("m").receptive_field == {"size": [1, 7], "stride": [1, 7],
                                            "padding": [0, 0]}
    assert r.layer("s").receptive_field["size"] == [9, 7]


def test_flatten_and_reshape_to_a_vector_are_one_unit_a_partial_flatten_is_unknown():
    r = report(spec("{type: flatten, name: f}", "{type: reshape, name: r, shape: [-1], "
                    "inputs: input}", "{type: flatten, name: p, start_dim: 2, inputs: input}",
                    "{type: flatten, name: same, start_dim: 2, end_dim: 2, inputs: input}"))
    assert r.layer("f").receptive_field == r.layer("r").receptive_field == {
        "size": [9, 7], "stride": [9, 7], "padding": [0, 0]}
    assert r.layer("p").receptive_field is None and "flatten 'p'" in \
        r.layer("p").receptive_field_unknown
    assert r.layer("same").receptive_field["size"] == [1, 1]


def test_kinds_lists_the_new_kinds_with_their_summaries():
    out = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["kinds"]).output
    for name in ("slice", "split", "chunk", "reshape", "view", "unflatten", "permute",
                 "transpose", "sum", "mean", "amax", "amin", "stack", "matmul", "bmm",
                 "pixel_shuffle", "depth_to_space", "pixel_unshuffle", "space_to_depth",
                 "log_softmax"):
        assert f" {name} " in out, name
    assert "x[start : end : step]" in out and "torch.cat([x])" in out
