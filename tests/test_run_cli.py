"""`convcalc run` as a user runs it: images in, tables and files out, one-line errors.

Oracles: the seeds' worked examples (66; 42 at the centre), the loop reference for the edge
map of the bundled photo, Pillow's own pixel values for the image formats, and the ImageNet
mean/std formula.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcalc.cli import _register_commands, app
from convcalc.executor.images import read_image
from oracle import reference as R

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "convcalc" / "data" / "images" / "chelsea.png"
EDGES = ROOT / "specs" / "edges.yaml"
SEED_001 = [[1, 2, 3, 4, 5], [6, 7, 8, 2, 3], [2, 5, 9, 9, 5], [4, 8, 8, 2, 1]]
SEED_003 = [[35, 40, 41, 45, 50], [40, 40, 42, 46, 52], [42, 46, 50, 55, 55],
            [48, 52, 56, 58, 60], [56, 60, 65, 70, 75]]

_register_commands()


def invoke(*args):
    result = CliRunner().invoke(app, ["run", *map(str, args)])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcalc: error: "), result.stderr
    return lines[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the seeds' examples through the command -------------------------------------------------

def test_seed_001_gives_66(tmp_path):
    spec = write(tmp_path, "seed1.yaml", "input: [1, 4, 5]\nlayers:\n  - {type: conv2d, "
                 "out_channels: 1, kernel_size: 3, weights: [[1, 1, 1], [2, 1, 2], [3, 2, 1]]}\n")
    np.save(tmp_path / "x.npy", np.array([SEED_001], np.float32))
    result = invoke(spec, tmp_path / "x.npy", "--out", tmp_path / "out", "--verify")
    assert result.exit_code == 0, result.output
    out = np.load(tmp_path / "out" / "x.out.npy")
    assert out.shape == (1, 2, 3) and out[0, 0, 0] == 66


def test_seed_001_from_a_16_bit_png(tmp_path):
    """A 16-bit PNG is scaled by 1/65535: the first output is 66 * 1000 / 65535."""
    spec = write(tmp_path, "seed1.yaml", "input: [1, 4, 5]\nlayers:\n  - {type: conv2d, "
                 "out_channels: 1, kernel_size: 3, weights: [[1, 1, 1], [2, 1, 2], [3, 2, 1]]}\n")
    Image.fromarray(np.array(SEED_001, np.uint16) * 1000).save(tmp_path / "seed.png")
    assert Image.open(tmp_path / "seed.png").mode == "I;16"
    result = invoke(spec, tmp_path / "seed.png", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "seed.out.npy")[0, 0, 0] == pytest.approx(66000 / 65535, rel=1e-6)


def test_seed_003_shift_up_gives_42_at_the_centre(tmp_path):
    spec = write(tmp_path, "shift.yaml", "input: [1, 5, 5]\nlayers:\n  - {type: conv2d, "
                 "out_channels: 1, kernel_size: 3, padding: 1, weights: shift_up}\n")
    np.save(tmp_path / "gimp.npy", np.array([SEED_003], np.float32))
    result = invoke(spec, tmp_path / "gimp.npy", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    out = np.load(tmp_path / "gimp.out.npy")[0]
    assert out[2, 2] == 42
    assert (out[1:] == np.array(SEED_003)[:-1]).all() and (out[0] == 0).all()


# -- the edge map of the bundled photo -------------------------------------------------------

def test_edges_spec_turns_the_bundled_photo_into_an_edge_map(tmp_path):
    result = invoke(EDGES, PHOTO, "--out", tmp_path, "--verify")
    assert result.exit_code == 0, result.output
    picture = Image.open(tmp_path / "chelsea.out.png")
    assert picture.size == (300, 200) and picture.mode == "L"
    pixels = np.asarray(picture)
    assert pixels.min() == 0 and pixels.max() == 255 and 10 < pixels.mean() < 120
    # the loop reference on a crop: luma, blur, sobel x and y, tanh(4 * energy)
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"), np.float64)[40:60, 100:130] / 255
    luma = (rgb @ [0.299, 0.587, 0.114])[None, None]
    blur = R.conv(luma, np.array([[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]]) / 16)
    gx = R.conv(blur, np.array([[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]], float))
    gy = R.conv(blur, np.array([[[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]]], float))
    expected = np.tanh(4 * (gx ** 2 + gy ** 2))[0, 0]  # valid convs: rows 42..57, cols 102..127
    got = np.load(tmp_path / "chelsea.out.npy")[0, 42:58, 102:128]
    assert np.abs(got - expected).max() < 1e-5


def test_runs_at_the_image_size_when_the_network_allows_it(tmp_path):
    Image.open(PHOTO).resize((50, 40)).save(tmp_path / "small.jpg")
    result = invoke(EDGES, tmp_path / "small.jpg", "--format", "json")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["runs"][0]
    assert run["input_shape"] == [3, 40, 50]
    assert run["layers"][-1]["produced"] == run["layers"][-1]["predicted"] == [1, 40, 50]


def test_an_image_the_network_cannot_take_suggests_resize(tmp_path):
    spec = write(tmp_path, "fc.yaml", "input: [3, 8, 8]\nlayers:\n  - {type: conv2d, "
                 "out_channels: 2, kernel_size: 3}\n  - flatten\n  - {type: linear, out_features: 4}\n")
    Image.open(PHOTO).resize((10, 10)).save(tmp_path / "ten.png")
    line = one_line_error(invoke(spec, tmp_path / "ten.png"))
    assert "--resize 8x8" in line and "linear_2.weight would be [4, 128]" in line
    result = invoke(spec, tmp_path / "ten.png", "--resize", "8x8", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"]


# -- images ----------------------------------------------------------------------------------

@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_read_exactly(tmp_path, rgb, suffix):
    path = tmp_path / f"x{suffix}"
    Image.fromarray(rgb).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    assert np.array_equal(read_image(path, 3), rgb / np.float32(255))


def test_jpeg_reads_close(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=100)
    got = read_image(tmp_path / "x.jpg", 3)
    assert got.shape == (6, 8, 3) and got.dtype == np.float32 and 0 <= got.min() <= got.max() <= 1


def test_modes_convert_to_the_spec_channels(tmp_path, rgb):
    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "l.png")
    assert np.array_equal(read_image(tmp_path / "l.png", 3), np.repeat(gray[..., None], 3, -1) / np.float32(255))
    rgba = np.concatenate([rgb, np.full((6, 8, 1), 7, np.uint8)], -1)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png", 3), rgb / np.float32(255))
    assert np.array_equal(read_image(tmp_path / "a.png", 4), rgba / np.float32(255))
    luma = read_image(tmp_path / "a.png", 1)[..., 0]
    assert np.abs(luma - (rgb / 255) @ [0.299, 0.587, 0.114]).max() < 1e-6
    palette = Image.fromarray(rgb).convert("P")
    palette.save(tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png", 3), np.asarray(palette.convert("RGB")) / np.float32(255))
    deep = (gray.astype(np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert np.allclose(read_image(tmp_path / "d.png", 1)[..., 0], gray / 255, atol=1e-6)


def test_normalize_imagenet(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "id.yaml", "input: [3, 6, 8]\nlayers:\n  - identity\n")
    assert invoke(spec, tmp_path / "x.png", "--normalize", "imagenet", "--out", tmp_path).exit_code == 0
    expected = (rgb / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert np.abs(np.moveaxis(np.load(tmp_path / "x.out.npy"), 0, -1) - expected).max() < 1e-5


def test_folder_runs_in_batches(tmp_path, rgb):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.roll(rgb, index)).save(folder / f"{index}.png")
    spec = write(tmp_path, "c.yaml", "input: [3, 6, 8]\nlayers:\n  - {type: conv2d, name: c1, "
                 "out_channels: 8, kernel_size: 3, padding: 1}\n  - relu\n  - {type: conv2d, "
                 "out_channels: 3, kernel_size: 1}\n")
    result = invoke(spec, folder, "--batch-size", "2", "--format", "json", "--out", tmp_path / "o",
                    "--save-layer", "c1")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and len(report["runs"][0]["inputs"]) == 3
    assert Image.open(tmp_path / "o" / "2.out.png").mode == "RGB"
    grid = Image.open(tmp_path / "o" / "2.c1.png")  # 8 channel maps, 3 columns, 2-pixel gaps
    assert grid.size == (3 * 8 + 2 * 2, 3 * 6 + 2 * 2)
    assert np.load(tmp_path / "o" / "2.c1.npy").shape == (8, 6, 8)


# -- weights ---------------------------------------------------------------------------------

SMALL = "input: [3, 6, 8]\nlayers:\n  - {type: conv2d, name: conv, out_channels: 4, kernel_size: 3}\n  - {type: batchnorm2d, name: bn}\n"


def test_saved_weights_round_trip(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "s.yaml", SMALL)
    assert invoke(spec, tmp_path / "x.png", "--seed", "3", "--save-weights", tmp_path / "w.npz",
                  "--out", tmp_path / "a").exit_code == 0
    with np.load(tmp_path / "w.npz") as saved:
        assert sorted(saved.files) == ["bn.bias", "bn.num_batches_tracked", "bn.running_mean",
                                       "bn.running_var", "bn.weight", "conv.bias", "conv.weight"]
    assert invoke(spec, tmp_path / "x.png", "--weights", tmp_path / "w.npz", "--out", tmp_path / "b").exit_code == 0
    assert invoke(spec, tmp_path / "x.png", "--seed", "4", "--out", tmp_path / "c").exit_code == 0
    a, b, c = (np.load(tmp_path / d / "x.out.npy") for d in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("change,words", [
    (lambda w: w.update({"conv.weight": np.zeros((4, 2, 3, 3), np.float32)}),
     ["conv.weight", "expected shape [4, 3, 3, 3]", "got [4, 2, 3, 3]"]),
    (lambda w: w.pop("bn.running_var"), ["missing", "bn.running_var"]),
    (lambda w: w.update({"fc.weight": np.zeros(3, np.float32)}), ["unexpected", "fc.weight"]),
    (lambda w: w.update({"conv.bias": np.array(["a", "b", "c", "d"])}), ["conv.bias", "dtype"]),
])
def test_bad_weights_are_named(tmp_path, rgb, change, words):
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "s.yaml", SMALL)
    assert invoke(spec, tmp_path / "x.png", "--save-weights", tmp_path / "w.npz").exit_code == 0
    weights = dict(np.load(tmp_path / "w.npz"))
    change(weights)
    np.savez(tmp_path / "bad.npz", **weights)
    line = one_line_error(invoke(spec, tmp_path / "x.png", "--weights", tmp_path / "bad.npz"))
    assert all(word in line for word in words), line


def test_pickled_weights_are_refused(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "s.yaml", SMALL)
    np.savez(tmp_path / "p.npz", **{"conv.weight": np.array([object()], dtype=object)})
    assert "cannot read weights" in one_line_error(invoke(spec, tmp_path / "x.png", "--weights",
                                                          tmp_path / "p.npz"))


# -- user errors: one line, a hint, exit 2 ---------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (["missing.png"], ["does not exist"]),
    (["notimage.png"], ["not an image"]),
    (["x.png", "--max-memory", "1KiB"], ["--max-memory", "hint"]),
    (["x.png", "--max-memory", "lots"], ["--max-memory", "2GiB"]),
    (["x.png", "--save-layer", "bnn"], ["bnn", "did you mean 'bn'"]),
    (["x.png", "--resize", "8"], ["--resize"]),
    (["x.png", "--weights", "none.npz"], ["none.npz", "does not exist"]),
])
def test_user_errors_are_one_line(tmp_path, rgb, args, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    (tmp_path / "notimage.png").write_text("hello")
    spec = write(tmp_path, "s.yaml", SMALL)
    line = one_line_error(invoke(spec, *args))
    assert all(word in line for word in words), line


def test_a_spec_with_errors_is_refused(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "bad.yaml", SMALL.replace("kernel_size: 3", "kernel_size: 9"))
    line = one_line_error(invoke(spec, tmp_path / "x.png"))
    assert "bad.yaml has errors" in line and "convcalc check" in line


def test_errors_in_a_real_process_have_no_traceback(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-m", "convcalc", "run", str(EDGES), str(tmp_path / "no.png")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("convcalc: error: ") and proc.stderr.count("\n") == 1


def test_check_does_not_import_numpy():
    code = ("import atexit, sys; atexit.register(lambda: print('numpy' in sys.modules, "
            "'PIL' in sys.modules)); sys.argv = ['convcalc', 'check', %r]; "
            "from convcalc.cli import main; main()" % str(EDGES))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "False False", proc.stdout + proc.stderr


# -- failed checks: exit 1 -------------------------------------------------------------------

def test_verify_catches_a_wrong_layer(tmp_path, rgb, monkeypatch):
    from convcalc.layers.conv import Conv
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "s.yaml", SMALL)
    forward = Conv.forward
    monkeypatch.setattr(Conv, "forward", lambda self, *a: forward(self, *a) * 1.01)
    result = invoke(spec, tmp_path / "x.png", "--verify", "--format", "json")
    assert result.exit_code == 1
    layers = json.loads(result.stdout)["runs"][0]["layers"]
    assert layers[0]["rel_error"] > 1e-3 and not json.loads(result.stdout)["ok"]


def test_a_shape_other_than_predicted_exits_1(tmp_path, rgb, monkeypatch):
    from convcalc.layers.activation import Elementwise
    Image.fromarray(rgb).save(tmp_path / "x.png")
    spec = write(tmp_path, "r.yaml", "input: [3, 6, 8]\nlayers:\n  - relu\n")
    monkeypatch.setattr(Elementwise, "forward", lambda self, inputs, p, r: inputs[0][:, 1:])
    result = invoke(spec, tmp_path / "x.png")
    assert result.exit_code == 1 and "✗" in result.stdout and "differ" in result.stdout


def test_output_names_never_collide():
    from pathlib import Path
    from convcalc.executor.session import output_stems
    files = [Path("a/c.png"), Path("a/c.jpg"), Path("a/d.png"), Path("b/c.png")]
    stems = output_stems(files)
    assert stems == {Path("a/c.png"): "c.png", Path("a/c.jpg"): "c.jpg", Path("a/d.png"): "d",
                     Path("b/c.png"): "c.png_1"}
    assert len(set(stems.values())) == len(files)


def test_verify_fails_on_non_finite_outputs(tmp_path):
    from convcalc.analysis import analyze_file
    from convcalc.executor.weights import initial_weights, save_weights
    spec = ROOT / "specs" / "lenet5.yaml"
    weights = initial_weights(analyze_file(spec), 0)
    name = next(k for k in weights if k.endswith(".weight"))
    weights[name] = weights[name].copy()
    weights[name].flat[0] = np.nan  # a NaN in the first conv spreads to the logits
    save_weights(tmp_path / "nan.npz", weights)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((1, 32, 32), np.float32))
    result = invoke(spec, tmp_path / "x.npy", "--weights", tmp_path / "nan.npz", "--verify")
    assert result.exit_code == 1 and "non-finite values" in result.output
