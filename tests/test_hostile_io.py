"""A hostile corpus for the files and options of `run`, `rf` and `check` (issue 8): each case
runs the command line as a user does, in a subprocess limited to 4 GiB of address space.

Errors end with exit 1 or 2 and exactly one line on stderr (never a traceback), within 20 s;
cases that must succeed end with exit 0; in every case no file that existed before is changed.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
PHOTO = ROOT / "convcalc" / "data" / "images" / "chelsea.png"
LIMIT = 4 * 2**30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def convcalc(*args, cwd: Path, shell: str | None = None):
    """(exit status, stdout, stderr, seconds) of `python -m convcalc ARGS` (or a shell line)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
           "COLUMNS": "80"}
    command = (["bash", "-c", shell] if shell else
               [sys.executable, "-m", "convcalc", *map(str, args)])
    start = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def snapshot(folder: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def assert_untouched(before: dict[Path, str]) -> None:
    for path, digest in before.items():
        assert path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest, path


def assert_one_line_error(status, out, err, seconds, codes=(1, 2)):
    assert status in codes, (status, err)
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err + out and "Warning" not in err, err
    assert seconds < 20


# -- files ----------------------------------------------------------------------------------

def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG that declares its size and holds no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def small_png(path: Path, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def lenet_weights(folder: Path) -> dict[str, np.ndarray]:
    from convcalc.analysis import analyze_file
    from convcalc.executor.weights import initial_weights
    return initial_weights(analyze_file(SPECS / "lenet5.yaml"), 0)


def npz_with(path: Path, weights: dict, replace: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in weights.items():
            stream = io.BytesIO()
            np.save(stream, value)
            archive.writestr(f"{key}.npy", replace.get(key, stream.getvalue()))
    return path


def huge_header(shape=(1_000_000, 1_000_000)) -> bytes:
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (118 - len(text)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


@pytest.fixture
def corpus(tmp_path):
    small_png(tmp_path / "good.png")
    header_only_png(tmp_path / "big20k.png", 20000, 20000)
    header_only_png(tmp_path / "big12k.png", 12000, 12000)
    header_only_png(tmp_path / "header_only.png", 300, 200)
    np.save(tmp_path / "digit.npy", np.zeros((1, 32, 32), np.float32))
    nan = np.zeros((1, 32, 32), np.float32)
    nan[0, 5, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    weights = lenet_weights(tmp_path)
    np.savez(tmp_path / "good.npz", **weights)
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[:len(data) // 2])
    npz_with(tmp_path / "bad_member.npz", weights, {"c1.weight": b"not a .npy array"})
    npz_with(tmp_path / "huge_member.npz", weights, {"c1.weight": huge_header()})
    return tmp_path


BIG = "9" * 300
ERRORS = {
    "run a 20000x20000 png": ["run", SPECS / "edges.yaml", "big20k.png"],
    "run a 12000x12000 png": ["run", SPECS / "edges.yaml", "big12k.png"],
    "run a header-only png": ["run", SPECS / "edges.yaml", "header_only.png"],
    "rf a 20000x20000 png": ["rf", SPECS / "edges.yaml", "--image", "big20k.png",
                             "--out", "rf.png"],
    "rf a 12000x12000 png": ["rf", SPECS / "edges.yaml", "--image", "big12k.png",
                             "--out", "rf.png"],
    "rf a header-only png": ["rf", SPECS / "edges.yaml", "--image", "header_only.png",
                             "--out", "rf.png"],
    "truncated npz": ["run", SPECS / "lenet5.yaml", "digit.npy", "--weights", "truncated.npz"],
    "member not npy": ["run", SPECS / "lenet5.yaml", "digit.npy", "--weights",
                       "bad_member.npz"],
    "member of 1e12": ["run", SPECS / "lenet5.yaml", "digit.npy", "--weights",
                       "huge_member.npz"],
    "resize 100000x100000": ["run", SPECS / "edges.yaml", "good.png", "--resize",
                             "100000x100000"],
    "max-memory 1e400": ["run", SPECS / "edges.yaml", "good.png", "--max-memory", "1e400"],
    "seed -1": ["run", SPECS / "edges.yaml", "good.png", "--seed", "-1"],
    "NaN input": ["run", SPECS / "lenet5.yaml", "nan.npy"],
    "rf bad unit at 100000": ["rf", SPECS / "resnet18.yaml", "--input", "100000", "--unit",
                              "a,b"],
    "rf unit outside at 100000": ["rf", SPECS / "vgg16.yaml", "--input", "100000", "--unit",
                                  "1000000,0"],
    "rf --out is the photo": ["rf", SPECS / "edges.yaml", "--image", "good.png", "--out",
                              "good.png"],
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_hostile_inputs_end_in_one_line(corpus, case):
    before = snapshot(corpus)
    status, out, err, seconds = convcalc(*ERRORS[case], cwd=corpus)
    assert_one_line_error(status, out, err, seconds)
    assert err.startswith(("convcalc: error:", "convcalc: warning:")), err
    assert_untouched(before)


@pytest.mark.parametrize("case,words", [
    ("run a 20000x20000 png", ["big20k.png", "89,478,485 pixels"]),
    ("run a header-only png", ["header_only.png"]),
    ("truncated npz", ["truncated.npz"]),
    ("member not npy", ["bad_member.npz", "c1.weight"]),
    ("member of 1e12", ["huge_member.npz", "c1.weight", "[1000000, 1000000]"]),
    ("resize 100000x100000", ["more than --max-memory"]),
    ("max-memory 1e400", ["--max-memory"]),
    ("seed -1", ["--seed"]),
    ("NaN input", ["non-finite", "c1"]),
])
def test_the_line_names_the_cause(corpus, case, words):
    status, _, err, _ = convcalc(*ERRORS[case], cwd=corpus)
    assert all(word in err for word in words), err
    assert status == (1 if case == "NaN input" else 2)


def test_negative_running_var_warns_and_names_the_layer(tmp_path):
    spec = tmp_path / "bn.yaml"
    spec.write_text("input: [2, 4, 4]\nlayers:\n  - {type: conv2d, name: c, out_channels: 2, "
                    "kernel_size: 1}\n  - {type: batchnorm2d, name: bn}\n  - {type: relu}\n")
    np.save(tmp_path / "x.npy", np.ones((2, 4, 4), np.float32))
    from convcalc.analysis import analyze_file
    from convcalc.executor.weights import initial_weights
    weights = initial_weights(analyze_file(spec), 0)
    weights["bn.running_var"] = np.array([-1.0, 1.0], np.float32)
    np.savez(tmp_path / "w.npz", **weights)
    status, out, err, seconds = convcalc("run", spec, "x.npy", "--weights", "w.npz",
                                         cwd=tmp_path)
    assert_one_line_error(status, out, err, seconds, codes=(1,))
    assert "non-finite" in err and "bn" in err and "RuntimeWarning" not in err


def test_a_folder_with_broken_images_runs_the_good_ones_and_names_every_bad_one(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "c.png", "e.png"):
        small_png(folder / name, seed=ord(name[0]))
    (folder / "b_empty.png").write_bytes(b"")
    (folder / "d_fake.png").write_bytes(b"hello, not a png")
    whole = (folder / "a.png").read_bytes()
    (folder / "f_truncated.png").write_bytes(whole[:len(whole) // 2])
    before = snapshot(tmp_path)
    status, out, err, seconds = convcalc("run", SPECS / "edges.yaml", folder, "--out", "out",
                                         cwd=tmp_path)
    assert_one_line_error(status, out, err, seconds, codes=(2,))
    assert all(name in err for name in ("b_empty.png", "d_fake.png", "f_truncated.png")), err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{s}.out.{e}" for s in "ace" for e in ("npy", "png"))
    assert "wrote 6 file(s)" in out and "3 input(s)" in out
    assert_untouched(before)


def test_out_in_the_input_folder_never_overwrites_an_input(tmp_path):
    small_png(tmp_path / "x.png", 1)
    small_png(tmp_path / "x.out.png", 2)
    before = snapshot(tmp_path)
    status, out, err, _ = convcalc("run", SPECS / "edges.yaml", tmp_path, "--out", tmp_path,
                                   cwd=tmp_path)
    assert status == 0 and err == "", err
    assert_untouched(before)
    assert "was taken" in out and (tmp_path / "x_1.out.png").exists()
    # a second run replaces nothing either: the next free name
    before = snapshot(tmp_path)
    assert convcalc("run", SPECS / "edges.yaml", tmp_path / "x.png", "--out", tmp_path,
                    cwd=tmp_path)[0] == 0
    assert_untouched(before)
    assert (tmp_path / "x_2.out.png").exists()


def test_save_layer_named_out_keeps_the_network_output(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("input: [1, 6, 6]\nlayers:\n  - {type: conv2d, name: out, out_channels: 1,"
                    " kernel_size: 3, padding: 1}\n  - {type: relu, name: last}\n")
    small_png(tmp_path / "x.png")
    status, out, err, _ = convcalc("run", spec, "x.png", "--out", "o", "--save-layer", "out",
                                   "--format", "json", cwd=tmp_path)
    assert status == 0, err
    import json
    written = json.loads(out)["written"]
    assert len(written) == len(set(written)) == 4
    assert sorted(Path(p).name for p in written) == sorted(
        ["x.out.npy", "x.out.png", "x.layer.out.npy", "x.layer.out.png"])
    final, layer = np.load(tmp_path / "o" / "x.out.npy"), np.load(tmp_path / "o/x.layer.out.npy")
    assert np.array_equal(final, np.maximum(layer, 0)) and (layer < 0).any()


def test_a_block_name_means_its_output(tmp_path):
    import json
    small_png(tmp_path / "x.png")
    status, out, err, _ = convcalc("rf", SPECS / "resnet18.yaml", "--layer", "layer1",
                                   "--format", "json", cwd=tmp_path)
    assert status == 0, err
    assert json.loads(out)["layer"] == "layer1.1.relu2"
    status, out, err, _ = convcalc("run", SPECS / "resnet18.yaml", "x.png", "--resize", "32x32",
                                   "--save-layer", "layer1.0", "--out", "o", cwd=tmp_path)
    assert status == 0, err
    saved = np.load(tmp_path / "o" / "x.layer1.0.npy")
    assert saved.shape == (64, 8, 8) and saved.min() >= 0  # layer1.0.relu2, after the add


def test_rf_image_without_out_picks_a_free_name(tmp_path):
    small_png(tmp_path / "p.png")
    (tmp_path / "p.rf.png").write_bytes(b"mine")
    before = snapshot(tmp_path)
    status, out, err, _ = convcalc("rf", SPECS / "edges.yaml", "--image", "p.png",
                                   cwd=tmp_path)
    assert status == 0, err
    assert "wrote p.rf_1.png" in out and (tmp_path / "p.rf_1.png").exists()
    assert_untouched(before)


def test_a_closed_pipe_keeps_the_exit_status(tmp_path):
    small_png(tmp_path / "x.png")
    # `true` reads nothing and is gone long before convcalc first writes: every write fails
    for command in (f"run {SPECS / 'resnet18.yaml'} x.png --resize 64x64",
                    f"check {SPECS / 'resnet18.yaml'} --format json"):
        line = (f"{sys.executable} -m convcalc {command} | true; "
                f"echo status=${{PIPESTATUS[0]}} >&2")
        status, out, err, _ = convcalc(cwd=tmp_path, shell=line)
        assert err.strip() == "status=0", err


def test_a_300_digit_input_prints_a_table(tmp_path):
    status, out, err, seconds = convcalc("check", SPECS / "vgg16.yaml", "--input",
                                         f"3x{BIG}x{BIG}", cwd=tmp_path)
    assert status in (0, 1) and "Traceback" not in err and "internal error" not in err, err
    assert seconds < 20 and f"64x{BIG}x{BIG}" in out.replace("\n", "")


def test_non_finite_values_give_valid_json(corpus):
    import json
    status, out, err, _ = convcalc("run", SPECS / "lenet5.yaml", "nan.npy", "--format", "json",
                                   cwd=corpus)
    assert status == 1 and len(err.splitlines()) == 1, err

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    layers = json.loads(out, parse_constant=refuse)["runs"][0]["layers"]
    assert layers[0]["finite"] is False and layers[0]["max"] is None
