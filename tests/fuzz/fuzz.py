"""A time-bounded fuzzer over every entry point of convcalc (issue 15); not part of the test
run. It mutates the shipped specs, images, weights and ONNX files (and generates option
values, module paths and API calls), runs each case as a user does (a subprocess, 20 s,
RLIMIT_AS 4 GiB; tests/hostile/harness.py) in a folder of its own, and checks:

- no exit 3 (or any status but 0, 1, 2), no traceback, no raw Python warning;
- no hang (killed at the time limit), no peak memory past --max-memory (plus the
  interpreter's own ~0.5 GiB) or 4 GiB;
- a usage error is one `convcalc: error:` line per error;
- no file written outside --out / -o, none changed or removed unasked (snapshots before and
  after, of the case folder and of the shared seed folder);
- `run` produces every shape it predicted (its JSON output).

    python tests/fuzz/fuzz.py --minutes 20 --work /tmp/convcalc-fuzz [--entry check,run]

Entry points are the ENTRY_POINTS table: a name, a case generator and a predicate saying
whether this convcalc has it. Findings are copied to WORK/findings/ with the command line;
counts go to WORK/summary.json (see tests/fuzz/README.md).
"""

from __future__ import annotations

import argparse
import collections
import copy
import io
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "tests" / "hostile"), str(ROOT)]

import harness  # noqa: E402
import make_corpus  # noqa: E402

INTERESTING = [0, -1, 1, 2, 3, 5, 7, 16, 255, 256, 1023, 2**31 - 1, 2**31, 2**63, 10**18,
               10**30, -(2**63), 1.5, 0.5, -0.0, float("inf"), float("nan"), None, True,
               False, "", "abc", "same", "valid", "${1+1}", "${min()}", "${2**200}", [],
               [1], [0, 0], [3, 3, 3], {}, {"a": 1}, "x" * 300]
OPTION_VALUES = ["0", "-1", "1", "2", "3", "7", "16", "32", "224", "1e18", "1000000000000000000",
                 "9" * 40, "abc", "", "1.5", "nan", "inf", "3x3", "1x2x3", "1x2x3x4", "0:1",
                 "1:0", "-1:2", "1:2,3:4", "same", "valid", "same_upper", "same_lower", "1-4",
                 "1,2,3", "any", "1..5", "5..1", "1..1000000", "0x0", "2GiB", "1e400", "-5MiB",
                 "x", ",", "3,", "1-0", "4-2"]
KIND_NAMES: list[str] = []


def kinds() -> list[str]:
    if not KIND_NAMES:
        from convcalc.layers import REGISTRY
        KIND_NAMES.extend(sorted(REGISTRY))
    return KIND_NAMES


# -- mutators ----------------------------------------------------------------------------------

def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Bit flips, truncation, duplicated or deleted chunks, random bytes, big integers."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not data:
            data = bytearray(rng.randbytes(rng.randint(1, 64)))
        how = rng.randrange(6)
        at = rng.randrange(len(data))
        if how == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif how == 1:
            del data[rng.randrange(len(data)):]
        elif how == 2:
            end = min(len(data), at + rng.randint(1, 64))
            data[at:at] = data[at:end] * rng.randint(1, 8)
        elif how == 3:
            del data[at:at + rng.randint(1, 64)]
        elif how == 4:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            data[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
                                          b"\x00\x00\x00\x00", b"\x80\x00\x00\x00"])
    return bytes(data)


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), item
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield path + (index,), item
            yield from _leaves(item, path + (index,))


def _set(root, path, value):
    target = root
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def mutate_spec(spec: dict, rng: random.Random) -> dict:
    """Structural mutations of a parsed spec: values, keys, kinds, names, order."""
    spec = copy.deepcopy(spec)
    for _ in range(rng.randint(1, 3)):
        layers = spec.get("layers") if isinstance(spec.get("layers"), list) else None
        how = rng.randrange(9)
        leaves = [p for p, _ in itertools.islice(_leaves(spec), 5000)]  # aliases: shared
        if how <= 2 and leaves:
            _set(spec, rng.choice(leaves), rng.choice(INTERESTING))
        elif how == 3 and leaves:  # a number nudged: off by one, doubled, negated
            path = rng.choice(leaves)
            current = _get(spec, path)
            if isinstance(current, int) and not isinstance(current, bool):
                _set(spec, path, rng.choice([current + 1, current - 1, current * 2, -current,
                                             current * 1000]))
        elif how == 4 and layers:
            item = rng.choice(layers)
            if isinstance(item, dict) and item:
                item.pop(rng.choice(list(item)))
        elif how == 5 and layers:
            item = rng.choice(layers)
            if isinstance(item, dict):
                item["type"] = rng.choice(kinds())
        elif how == 6 and layers:
            layers.insert(rng.randrange(len(layers) + 1), copy.deepcopy(rng.choice(layers)))
        elif how == 7 and layers and len(layers) > 1:
            i, j = rng.randrange(len(layers)), rng.randrange(len(layers))
            layers[i], layers[j] = layers[j], layers[i]
        elif layers:
            item = rng.choice(layers)
            names = [x.get("name") for x in layers if isinstance(x, dict) and x.get("name")]
            if isinstance(item, dict):
                item["inputs"] = rng.sample(names + ["input", "ghost"],
                                            k=min(rng.randint(1, 3), len(names) + 2))
        if rng.random() < 0.1:
            spec["input"] = rng.choice([[3, 1, 1], [1, 7], [2, 3, 4, 5], [3, 64, 64],
                                        [1, 2**20, 2], [3, 0, 5], "3x8x8"])
    return spec


def _get(root, path):
    for key in path:
        root = root[key]
    return root


def mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or [""]
    how = rng.randrange(6)
    at = rng.randrange(len(lines))
    if how == 0:
        del lines[at]
    elif how == 1:
        lines.insert(at, lines[rng.randrange(len(lines))])
    elif how == 2:
        lines[at] = "\t" + lines[at]
    elif how == 3:
        lines[at] = lines[at][: rng.randrange(len(lines[at]) + 1)]
    elif how == 4:
        lines.insert(at, rng.choice(["  - {type: relu}\n", "&a x: *a\n", "- [[[[[[\n", "{\n",
                                     "blocks: {b: {layers: [{type: b}]}}\n", "\ufeff\u202e\n",
                                     "  - {type: conv2d, out_channels: ${c*c*c*c}, kernel_size: 3}\n"]))
    else:
        return mutate_bytes(text.encode(), rng).decode("utf-8", "replace")
    return "".join(lines)


def mutated_spec_text(seeds: "Seeds", rng: random.Random) -> str:
    text = rng.choice(seeds.spec_texts)
    if rng.random() < 0.7:
        try:
            spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            if isinstance(spec, dict):
                return yaml.safe_dump(mutate_spec(spec, rng), sort_keys=False)
        except (yaml.YAMLError, RecursionError):
            pass
    return mutate_text(text, rng)


def mutate_npz(weights: dict[str, np.ndarray], rng: random.Random) -> bytes:
    weights = dict(weights)
    keys = list(weights)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(keys)
        how = rng.randrange(7)
        if how == 0:
            weights.pop(key, None)
        elif how == 1:
            weights[f"ghost{rng.randrange(9)}.weight"] = np.zeros(3, np.float32)
        elif how == 2 and key in weights:
            shape = list(weights[key].shape) or [1]
            shape[rng.randrange(len(shape))] += rng.choice([-1, 1, 5])
            weights[key] = np.zeros([max(s, 0) for s in shape], np.float32)
        elif how == 3 and key in weights:
            weights[key] = weights[key].astype(rng.choice([np.int8, np.float64, np.complex64,
                                                           np.bool_, np.float16]))
        elif how == 4 and key in weights:
            weights[key] = np.full(weights[key].shape, rng.choice([np.nan, np.inf, 1e38]),
                                   np.float32)
        elif how == 5 and key in weights:
            weights[key] = weights[key].reshape(-1)
        else:
            weights[key] = np.zeros((), np.float32)
    stream = io.BytesIO()
    np.savez(stream, **weights)
    data = stream.getvalue()
    return mutate_bytes(data, rng) if rng.random() < 0.3 else data


def mutate_onnx(data: bytes, rng: random.Random) -> bytes:
    """Structural mutations through the protobuf (attributes, ops, dims, opsets, external
    data, edges), or raw byte mutations."""
    import onnx
    from onnx import TensorProto, helper
    if rng.random() < 0.25:
        return mutate_bytes(data, rng)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # noqa: BLE001
        return mutate_bytes(data, rng)
    graph = model.graph
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        how = rng.randrange(10)
        node = rng.choice(graph.node) if graph.node else None
        if how == 0 and node is not None and node.attribute:
            attribute = rng.choice(node.attribute)
            if attribute.ints:
                attribute.ints[rng.randrange(len(attribute.ints))] = rng.choice(
                    [0, -1, 2**40, 7, 1])
            elif attribute.type == onnx.AttributeProto.INT:
                attribute.i = rng.choice([0, -1, 2**40, 7, 1])
            else:
                node.attribute.remove(attribute)
        elif how == 1 and node is not None and node.attribute:
            node.attribute.remove(rng.choice(node.attribute))
        elif how == 2 and node is not None:
            node.op_type = rng.choice(["Conv", "MaxPool", "Relu", "Gemm", "Reshape", "Concat",
                                       "Resize", "Loop", "If", "NoSuch", "Add", "Transpose"])
        elif how == 3 and node is not None and node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(
                [o for n in graph.node for o in n.output] + ["", "ghost"])
        elif how == 4 and graph.initializer:
            tensor = rng.choice(graph.initializer)
            if tensor.dims:
                tensor.dims[rng.randrange(len(tensor.dims))] = rng.choice([0, 1, 2**33, -1, 3])
        elif how == 5 and graph.initializer:
            tensor = rng.choice(graph.initializer)
            make_corpus._external(tensor, rng.choice(["../x.bin", "/etc/hostname", "w.bin",
                                                      "", "a/../../b"]),
                                  rng.choice([None, "0", "abc", "-1"]), None)
        elif how == 6:
            del model.opset_import[:]
            model.opset_import.append(helper.make_opsetid("", rng.choice([1, 7, 9, 13, 17,
                                                                          21, 99])))
        elif how == 7 and graph.input:
            dims = graph.input[0].type.tensor_type.shape.dim
            if dims:
                dim = dims[rng.randrange(len(dims))]
                dim.Clear()
                if rng.random() < 0.5:
                    dim.dim_value = rng.choice([0, 1, 2, 2**40])
                else:
                    dim.dim_param = "N"
        elif how == 8 and graph.initializer:
            rng.choice(graph.initializer).data_type = rng.choice(
                [TensorProto.STRING, TensorProto.INT64, TensorProto.FLOAT16, 0])
        elif node is not None:
            graph.node.insert(rng.randrange(len(graph.node) + 1), copy.deepcopy(node))
    return model.SerializeToString()


def mutate_image(data: bytes, rng: random.Random) -> bytes:
    return mutate_bytes(data, rng)


def valid_npy(rng: random.Random, shape) -> bytes:
    stream = io.BytesIO()
    np.save(stream, np.random.default_rng(rng.randrange(2**32)).random(shape, np.float32))
    return stream.getvalue()


def random_npy(rng: random.Random) -> bytes:
    shape = rng.choice([(1, 32, 32), (3, 20, 30), (1, 0, 4), (32,), (1, 1, 1, 32, 32),
                        (3, 1, 1), (1, 1, 32, 32), (3, 64, 64)])
    dtype = rng.choice([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex64,
                        np.float16])
    array = np.random.default_rng(rng.randrange(2**32)).random(shape).astype(dtype)
    if rng.random() < 0.1 and array.size:
        array.flat[0] = np.nan if array.dtype.kind == "f" else 0
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


# -- seeds -------------------------------------------------------------------------------------

@dataclass
class Seeds:
    folder: Path
    spec_texts: list[str] = field(default_factory=list)
    spec_paths: list[Path] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    onnx: list[bytes] = field(default_factory=list)
    weights: dict[str, dict] = field(default_factory=dict)  # spec name -> state_dict


def make_seeds(folder: Path) -> Seeds:
    """The corpus folder (make_corpus) plus ONNX files exported from the shipped specs."""
    make_corpus.build(folder)
    seeds = Seeds(folder)
    small = ["lenet5", "edges", "alexnet", "resnet18", "unet", "dcgan_generator", "yolov3_tiny",
             "mobilenet_v2"]
    seeds.spec_paths = sorted((folder / "specs").glob("*.yaml"))
    seeds.spec_texts = [p.read_text() for p in seeds.spec_paths]
    seeds.spec_texts += [p.read_text(errors="replace") for p in sorted(folder.glob("*.yaml"))]
    seeds.images = [(folder / n).read_bytes() for n in ("good.png", "gray16.png", "palette.png",
                                                        "cmyk.jpg", "animated.gif")]
    seeds.onnx = [(folder / "good.onnx").read_bytes()]
    exported = folder / "exported"
    exported.mkdir(exist_ok=True)
    for name in ("lenet5", "edges", "alexnet", "resnet18"):
        target = exported / f"{name}.onnx"
        done = subprocess.run([sys.executable, "-m", "convcalc", "export", str(folder / "specs" /
                               f"{name}.yaml"), "--to", "onnx", "-o", str(target)],
                              capture_output=True, env=harness.environment(), cwd=folder)
        if done.returncode == 0 and target.exists() and target.stat().st_size < 5_000_000:
            seeds.onnx.append(target.read_bytes())
    from convcalc.analysis import analyze_file
    from convcalc.executor.weights import initial_weights
    for name in ("lenet5", "edges"):
        seeds.weights[name] = initial_weights(analyze_file(folder / "specs" / f"{name}.yaml"), 0)
    del small
    return seeds


# -- entry points ---------------------------------------------------------------------------------

@dataclass
class Case:
    argv: list[str]
    writes: list[str] = field(default_factory=list)  # relative to the case folder
    memory: int | None = None  # --max-memory given
    api: str | None = None
    stdin: bytes | None = None


def write(folder: Path, name: str, data: bytes | str) -> str:
    path = folder / name
    path.write_bytes(data.encode("utf-8", "replace") if isinstance(data, str) else data)
    return name


def spec_file(folder: Path, seeds: Seeds, rng: random.Random, name: str = "s.yaml") -> str:
    if rng.random() < 0.15:
        return str(rng.choice(seeds.spec_paths))
    if rng.random() < 0.1 and seeds.onnx:
        model = rng.choice(seeds.onnx)
        return write(folder, name.replace(".yaml", ".onnx"),
                     mutate_onnx(model, rng) if rng.random() < 0.7 else model)
    return write(folder, name, mutated_spec_text(seeds, rng))


def maybe(rng: random.Random, p: float, *items: str) -> list[str]:
    return list(items) if rng.random() < p else []


def opt(rng: random.Random) -> str:
    return rng.choice(OPTION_VALUES)


def case_check(folder, seeds, rng):
    argv = ["check", spec_file(folder, seeds, rng)]
    argv += maybe(rng, 0.3, "--input", rng.choice(["8x8", "3x32x32", "1", opt(rng)]))
    argv += maybe(rng, 0.5, "--format", rng.choice(["table", "json", "markdown", "github",
                                                    "sarif", "gitlab"]))
    argv += maybe(rng, 0.2, "--strict") + maybe(rng, 0.1, "--batch", opt(rng))
    argv += maybe(rng, 0.1, "--dtype", rng.choice(["float16", "int8", "float64"]))
    if has_option("check", "--training"):  # issue 12's desk view
        argv += maybe(rng, 0.2, "--training") + maybe(rng, 0.1, "--optimizer",
                                                         rng.choice(["sgd", "adam", "lion"]))
        argv += maybe(rng, 0.2, "--depth", rng.choice(["0", "1", "2", "99", opt(rng)]))
        argv += maybe(rng, 0.1, "--all") + maybe(rng, 0.1, "--verbose")
        argv += maybe(rng, 0.2, "--columns", rng.choice(["input,kernel,stride", "rf,bytes",
                                                         "nope", "", "flops,share"]))
        argv += maybe(rng, 0.2, "--sort", rng.choice(["macs", "params", "memory", "x"]))
        argv += maybe(rng, 0.2, "--top", rng.choice(["1", "5", "0", opt(rng)]))
        argv += maybe(rng, 0.1, "--units", rng.choice(["si", "iec", "x"]))
        if rng.random() < 0.2:
            argv += ["--format", "csv"]
    return Case(argv)


def case_graph(folder, seeds, rng):
    argv = ["graph", spec_file(folder, seeds, rng)]
    argv += maybe(rng, 0.6, "-o", rng.choice(["out/g.svg", "out/g.dot", "out/g.mmd",
                                              "out/g.txt", "s.yaml", "nofolder/g.svg", "out"]))
    argv += maybe(rng, 0.3, "--format", rng.choice(["svg", "dot", "mermaid", "png"]))
    argv += maybe(rng, 0.3, "--depth", rng.choice(["1", "2", "3", "0", opt(rng)]))
    argv += maybe(rng, 0.2, "--input", rng.choice(["64", "3x32x32", opt(rng)]))
    return Case(argv, ["out", *argv[argv.index("-o") + 1:argv.index("-o") + 2]]
                if "-o" in argv else ["out"])


def case_report(folder, seeds, rng):
    argv = ["report", spec_file(folder, seeds, rng), "-o",
            rng.choice(["out/r.html", "out/r.html", "s.yaml", "nofolder/r.html", "out"])]
    if rng.random() < 0.4:
        image = write(folder, "photo.png", mutate_image(rng.choice(seeds.images), rng)
                      if rng.random() < 0.4 else rng.choice(seeds.images))
        argv += ["--image", image]
    if rng.random() < 0.2:
        argv += ["--weights", write(folder, "w.npz", mutate_npz(seeds.weights["edges"], rng))]
    argv += maybe(rng, 0.2, "--layers", rng.choice(["c1", "gain,edges", "nope", ","]))
    argv += maybe(rng, 0.2, "--input", rng.choice(["64", "3x32x32", opt(rng)]))
    return Case(argv, ["out", argv[3]])


def case_run(folder, seeds, rng):
    spec_name = rng.choice(["lenet5", "edges"])
    if rng.random() < 0.5:
        spec = str(seeds.folder / "specs" / f"{spec_name}.yaml")
    else:
        spec = spec_file(folder, seeds, rng)
    inputs = []
    for index in range(rng.randint(1, 3)):
        if rng.random() < 0.6:  # what the spec takes, so that the run gets to its layers
            own = (seeds.images[0] if spec_name == "edges" else valid_npy(rng, (1, 32, 32)))
            inputs.append(write(folder, f"i{index}.{'png' if spec_name == 'edges' else 'npy'}",
                                own))
        elif rng.random() < 0.5:
            inputs.append(write(folder, f"i{index}.npy", random_npy(rng)))
        else:
            inputs.append(write(folder, f"i{index}.png", mutate_image(rng.choice(seeds.images),
                                                                        rng)
                                if rng.random() < 0.7 else rng.choice(seeds.images)))
    argv = ["run", spec, *inputs, "--format", "json", "--out", "out"]
    if rng.random() < 0.3 and spec_name in seeds.weights:
        argv += ["--weights", write(folder, "w.npz", mutate_npz(seeds.weights[spec_name], rng))]
    memory = None
    if rng.random() < 0.5:
        memory = rng.choice([2**28, 2**30])
        argv += ["--max-memory", str(memory)]
    argv += maybe(rng, 0.2, "--resize", rng.choice(["8x8", "1x1", "64x64", opt(rng)]))
    argv += maybe(rng, 0.2, "--batch-size", rng.choice(["1", "2", "3", "0"]))
    argv += maybe(rng, 0.2, "--verify") + maybe(rng, 0.1, "--normalize", "imagenet")
    argv += maybe(rng, 0.1, "--seed", opt(rng))
    argv += maybe(rng, 0.2, "--save-layer", rng.choice(["c1", "gain", "nope", "out", "input"]))
    argv += maybe(rng, 0.2, "--save-weights", rng.choice(["out/w.npz", "saved.npz"]))
    writes = ["out", "saved.npz"]
    return Case(argv, writes, memory)


def case_rf(folder, seeds, rng):
    argv = ["rf", spec_file(folder, seeds, rng)]
    argv += maybe(rng, 0.3, "--unit", rng.choice(["0,0", "5,5", "-1,0", "1", opt(rng)]))
    argv += maybe(rng, 0.3, "--input", rng.choice(["64", "3x32x32", opt(rng)]))
    argv += maybe(rng, 0.2, "--layer", rng.choice(["c1", "conv1", "nope", "input"]))
    argv += maybe(rng, 0.3, "--format", "json") + maybe(rng, 0.05, "--verify")
    if rng.random() < 0.3:
        image = write(folder, "photo.png", mutate_image(rng.choice(seeds.images), rng)
                      if rng.random() < 0.5 else rng.choice(seeds.images))
        argv += ["--image", image, "--out", rng.choice(["rf.png", "out/rf.png", "photo.png"])]
    return Case(argv, ["rf.png", "out"])


def case_sizes(folder, seeds, rng):
    argv = ["sizes", spec_file(folder, seeds, rng)]
    argv += maybe(rng, 0.5, "--range", rng.choice(["1..64", "1..512", "100..90", opt(rng)]))
    argv += maybe(rng, 0.3, "--axis", rng.choice(["height", "width", "0", "5", opt(rng)]))
    argv += maybe(rng, 0.3, "--list") + maybe(rng, 0.3, "--format", "json")
    return Case(argv)


def case_calc(command: str):
    options = {"conv": ["--stride", "--padding", "--dilation", "--convention", "--ndim"],
               "pool": ["--stride", "--padding", "--dilation", "--convention", "--type",
                        "--ceil-mode", "--ndim"],
               "tconv": ["--stride", "--padding", "--dilation", "--output-padding",
                         "--convention", "--ndim"],
               "solve": ["--output", "--kernel", "--stride", "--padding", "--dilation",
                         "--output-padding", "--kind", "--invert", "--limit", "--type",
                         "--ceil-mode", "--convention", "--ndim"]}[command]
    flags = {"--ceil-mode", "--invert"}
    choices = {"--convention": ["torch", "tensorflow", "caffe", "onnx", "darknet", "keras"],
               "--type": ["max", "avg", "min"], "--kind": ["conv", "pool", "tconv", "x"]}

    def make(folder, seeds, rng):
        argv = [command, "--input", rng.choice(["32", "224", "7", "16x16", opt(rng)])]
        if command != "solve":
            argv += ["--kernel", rng.choice(["3", "1", "2x2", opt(rng)])]
        for option in rng.sample(options, k=rng.randint(0, min(4, len(options)))):
            if option in flags:
                argv.append(option)
            else:
                argv += [option, rng.choice(choices.get(option, [])) if option in choices and
                         rng.random() < 0.7 else opt(rng)]
        argv += maybe(rng, 0.2, "--compare") if command != "solve" else []
        argv += maybe(rng, 0.3, "--format", "json")
        return Case(argv)
    return make


def case_import_onnx(folder, seeds, rng):
    model = rng.choice(seeds.onnx)
    model = write(folder, "m.onnx", mutate_onnx(model, rng) if rng.random() < 0.8 else model)
    if rng.random() < 0.3:
        write(folder, "w.bin", b"\0" * 8192)
    argv = ["import", model, "-o", "out/m.yaml"]
    argv += maybe(rng, 0.5, "--weights-out", "out/m.npz")
    argv += maybe(rng, 0.3, "--input", rng.choice(["3x32x32", "16x16", "1", opt(rng)]))
    if rng.random() < 0.05:
        argv[3] = rng.choice(["m.onnx", "out", "nofolder/x.yaml"])
    return Case(argv, ["out"])


FACTORIES = ["raises", "returns_int", "returns_none", "exits", "exits_zero", "base_exception",
             "recursion", "prints", "good", "forward_raises", "branchy", "forward_exits",
             "not_callable", "nope", "ForwardRaises", "Branchy"]


def case_import_torch(folder, seeds, rng):
    for name in ("hostile_factories.py", "broken_module.py", "exiting_module.py"):
        shutil.copy(seeds.folder / name, folder / name)
    source = rng.choice([f"hostile_factories:{rng.choice(FACTORIES)}",
                         f"hostile_factories:{rng.choice(FACTORIES)}",
                         "broken_module:f", "exiting_module:f", "no_such:f", "os:getcwd",
                         "torch.nn:Conv2d", "torch.nn:Identity", "torch.nn:ReLU",
                         "torchvision.models:resnet18", ":", "a:b:c", "hostile_factories:"])
    argv = ["import", source, "-o", "out/t.yaml"]
    argv += maybe(rng, 0.3, "--input", rng.choice(["3x16x16", "3x1x1", "1x8x8", opt(rng)]))
    argv += maybe(rng, 0.3, "--kwargs", rng.choice(['{"in_channels": 3, "out_channels": 4, '
                                                    '"kernel_size": 3}', '{"x": 1}', "[1]",
                                                    "{", '{"num_classes": -1}', "null"]))
    argv += maybe(rng, 0.3, "--weights-out", "out/t.npz")
    return Case(argv, ["out"])


def case_export(folder, seeds, rng):
    target = rng.choice(["onnx", "pytorch"]) if has_option("export", "pytorch") else "onnx"
    out = rng.choice(["out/x.onnx", "out/x.py", "out", "s.yaml", "nofolder/x.onnx"])
    argv = ["export", spec_file(folder, seeds, rng), "--to", target, "-o", out]
    argv += maybe(rng, 0.2, "--opset", rng.choice(["13", "17", "7", "99", opt(rng)]))
    argv += maybe(rng, 0.1, "--seed", opt(rng))
    if rng.random() < 0.2:
        argv += ["--weights", write(folder, "w.npz", mutate_npz(seeds.weights["lenet5"], rng))]
    return Case(argv, ["out", out, out + ".data"])  # -o names what it may write (never the
    # spec: checked); past 2 GiB the weights go beside it in OUT.data


def case_diff(folder, seeds, rng):
    old = spec_file(folder, seeds, rng, "old.yaml")
    new = spec_file(folder, seeds, rng, "new.yaml")
    argv = ["diff", old, new]
    for _ in range(rng.randint(0, 2)):
        argv += ["--fail-on", rng.choice(["params>+5%", "macs>1G", "memory>64MiB", "rf<-10%",
                                          f"params>{opt(rng)}", f"{opt(rng)}>1", "rf<nan%",
                                          "macs>1e400"])]
    argv += maybe(rng, 0.3, "--format", rng.choice(["json", "markdown", "table"]))
    argv += maybe(rng, 0.2, "--all") + maybe(rng, 0.2, "--input", rng.choice(["64", opt(rng)]))
    return Case(argv)


def case_schema(folder, seeds, rng):
    return Case(["schema"])


def case_api(folder, seeds, rng):
    text = mutated_spec_text(seeds, rng)
    try:
        spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError, ValueError):
        spec = text
    literal = repr(spec if rng.random() < 0.7 else text)
    if len(literal) > 1_000_000:  # an alias bomb loaded with its references shared: its repr
        literal = repr(text)  # expands them (480 MB seen), which Python alone takes minutes
        # to compile; as YAML text convcalc counts the aliases before building anything
    shape = rng.choice(["(1, 1, 32, 32)", "(2, 3, 20, 30)", "(1, 3, 8, 8)", "(3, 0, 4)",
                        "(5,)", "(1, 1, 1, 1)"])
    dtype = rng.choice(["np.float32", "np.float64", "np.int8", "complex", "object", "bool"])
    kwargs = rng.choice(["", ", seed=-1", ", keep='l0'", ", keep=['nope']", ", verify=True",
                         ", weights={}", ", weights=5", ", max_memory=2**28"])
    expression = rng.choice([
        f"convcalc.check({literal})",
        f"convcalc.check({literal}, input={rng.choice(['(8, 8)', repr(opt(rng)), '(3, 16, 16)'])})",
        f"convcalc.check({literal}, dtype={rng.choice(['float16', 'x'])!r}, batch={rng.choice([1, 0, 2.5, True])})",
        f"convcalc.run({literal}, np.zeros({shape}, {dtype}){kwargs})",
        f"convcalc.compare({literal}, {repr(rng.choice(seeds.spec_texts))})",
        f"convcalc.testing.assert_clean({literal})",
    ])
    if rng.random() < 0.3 and hasattr(__import__("convcalc.api").api, "export_onnx"):
        expression = f"convcalc.api.export_onnx({literal})"
    return Case([], api=expression)


HELP: dict[str, str] = {}


def command_help(command: str) -> str:
    if command not in HELP:
        done = subprocess.run([sys.executable, "-m", "convcalc", command, "--help"],
                              capture_output=True, text=True, env=harness.environment())
        HELP[command] = done.stdout if done.returncode == 0 else ""
    return HELP[command]


def has_command(command: str) -> Callable[[], bool]:
    return lambda: bool(command_help(command))


def has_option(command: str, option: str) -> bool:
    return option in command_help(command)


@dataclass(frozen=True)
class EntryPoint:
    name: str
    make: Callable  # (case folder, seeds, rng) -> Case
    available: Callable[[], bool] = lambda: True
    weight: float = 1.0


ENTRY_POINTS = [
    EntryPoint("check", case_check, weight=2),
    EntryPoint("run", case_run, weight=2),
    EntryPoint("rf", case_rf),
    EntryPoint("sizes", case_sizes),
    EntryPoint("conv", case_calc("conv")),
    EntryPoint("pool", case_calc("pool")),
    EntryPoint("tconv", case_calc("tconv")),
    EntryPoint("solve", case_calc("solve")),
    EntryPoint("import-onnx", case_import_onnx, weight=2),
    EntryPoint("import-torch", case_import_torch, weight=0.5),
    EntryPoint("export", case_export, has_command("export"), weight=1.5),
    EntryPoint("diff", case_diff),
    EntryPoint("graph", case_graph, has_command("graph")),
    EntryPoint("report", case_report, has_command("report")),
    EntryPoint("schema", case_schema, weight=0.1),
    EntryPoint("api", case_api, weight=1.5),
]


# -- judging -------------------------------------------------------------------------------------

OVERHEAD = 2**29  # the interpreter, NumPy, onnx: what a run holds besides its arrays


def judge(case: Case, outcome: harness.Outcome, before, after, folder: Path) -> list[str]:
    limit = case.memory + OVERHEAD if case.memory else harness.MEMORY_LIMIT
    found = harness.problems(outcome, memory_limit=limit)
    if outcome.cpu_seconds > harness.TIME_LIMIT and "hang" not in found:
        found.append("hang")  # finished, but after more than 20 s of CPU
    found += harness.file_problems(before, after, [folder / w for w in case.writes])
    if case.argv[:1] == ["run"] and outcome.status in (0, 1) and outcome.out.startswith("{"):
        try:
            report = json.loads(outcome.out)
            for group in report.get("runs", []):
                for layer in group.get("layers", []):
                    if layer.get("produced") is not None and layer["predicted"] != layer["produced"]:
                        found.append("shape")
        except json.JSONDecodeError:
            found.append("json")
    if case.api is not None and outcome.status == 0 and not outcome.out.startswith(
            ("ok", "raised", "skipped")):
        found.append("api")
    return sorted(set(found))


def execute(case: Case, folder: Path, timeout: float) -> harness.Outcome:
    if case.api is not None:
        driver = str(ROOT / "tests" / "hostile" / "api_driver.py")
        if len(case.api) < 100_000:
            return harness.run([], folder, timeout=timeout, python=[driver, case.api])
        with tempfile.NamedTemporaryFile("w", suffix=".py", encoding="utf-8") as held:
            held.write(case.api)  # past the kernel's argument limit (a mutated huge literal)
            held.flush()
            return harness.run([], folder, timeout=timeout, python=[driver, f"@{held.name}"])
    return harness.run(case.argv, folder, stdin=case.stdin, timeout=timeout)


def signature(entry: str, problems: list[str], outcome: harness.Outcome) -> str:
    """What distinguishes one cause from another: the entry point, the problems and the
    last line of a traceback (or the internal error's type)."""
    text = outcome.err or outcome.out
    lines = [line for line in text.splitlines() if line.strip()]
    last = ""
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Exception" in line:
            last = line.strip()
            break
    last = "".join(c if not c.isdigit() else "#" for c in last)[:160]
    return f"{entry} | {','.join(problems)} | {last}"


# -- the campaign ----------------------------------------------------------------------------------

def campaign(work: Path, minutes: float, seed: int, only: set[str] | None,
             timeout: float) -> dict:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))  # the fuzzer's own mutations
    work.mkdir(parents=True, exist_ok=True)
    seeds = make_seeds(work / "seeds")
    seed_snapshot = harness.snapshot(seeds.folder)
    entries = [e for e in ENTRY_POINTS if (not only or e.name in only) and e.available()]
    rng = random.Random(seed)
    counts = {e.name: collections.Counter() for e in entries}
    findings: dict[str, dict] = {}
    cases_dir = work / "cases"
    shutil.rmtree(cases_dir, ignore_errors=True)
    cases_dir.mkdir()
    end = time.monotonic() + minutes * 60
    number = 0
    tally_slow: collections.Counter = collections.Counter()
    log = (work / "results.jsonl").open("w")
    while time.monotonic() < end:
        entry = rng.choices(entries, weights=[e.weight for e in entries])[0]
        number += 1
        folder = cases_dir / f"{number}"
        folder.mkdir()
        (folder / "out").mkdir()
        case_seed = rng.randrange(2**63)
        try:
            case = entry.make(folder, seeds, random.Random(case_seed))
        except (MemoryError, RecursionError):  # a mutation too large for the fuzzer itself
            shutil.rmtree(folder, ignore_errors=True)
            continue
        before = harness.snapshot(folder)
        outcome = execute(case, folder, timeout)
        if outcome.hung and outcome.cpu_seconds < timeout / 2:
            # killed with little CPU used: the machine was busy. Once more, 3x the time: a
            # hang is a case that still does not finish, or one that burns CPU
            tally_slow[entry.name] += 1
            shutil.rmtree(folder)
            folder.mkdir()
            (folder / "out").mkdir()
            case = entry.make(folder, seeds, random.Random(case_seed))
            before = harness.snapshot(folder)
            outcome = execute(case, folder, 3 * timeout)
        problems = judge(case, outcome, before, harness.snapshot(folder), folder)
        if number % 50 == 0 and harness.snapshot(seeds.folder) != seed_snapshot:
            problems.append("seeds changed")
            seed_snapshot = harness.snapshot(seeds.folder)
        tally = counts[entry.name]
        tally["cases"] += 1
        tally[f"exit {outcome.status if not outcome.hung else 'killed'}"] += 1
        tally["slow wall (>20 s)"] += outcome.seconds > harness.TIME_LIMIT and not outcome.hung
        for problem in problems:
            tally[f"problem {problem}"] += 1
        log.write(json.dumps({"n": number, "entry": entry.name, "argv": case.argv,
                              "api": case.api, "status": outcome.status,
                              "seconds": round(outcome.seconds, 3),
                              "cpu": round(outcome.cpu_seconds, 3),
                              "peak_mib": outcome.peak_bytes >> 20, "problems": problems}) + "\n")
        if problems:
            key = signature(entry.name, problems, outcome)
            found = findings.setdefault(key, {"count": 0, "first": number})
            found["count"] += 1
            if found["count"] == 1:
                keep = work / "findings" / f"{len(findings):03d}-{entry.name}"
                shutil.copytree(folder, keep, dirs_exist_ok=True)
                (keep / "CASE.txt").write_text(
                    f"argv: {case.argv}\napi: {case.api}\nproblems: {problems}\n"
                    f"status: {outcome.status}\nseconds: {outcome.seconds:.1f} "
                    f"(cpu {outcome.cpu_seconds:.1f})\n--- stdout\n{outcome.out[-3000:]}\n"
                    f"--- stderr\n{outcome.err[-5000:]}\n")
                print(f"[{number}] {key}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        if number % 25 == 0:
            write_summary(work, minutes, seed, number, counts, tally_slow, findings)
    log.close()
    return write_summary(work, minutes, seed, number, counts, tally_slow, findings)


def write_summary(work, minutes, seed, number, counts, tally_slow, findings) -> dict:
    entry_points = {name: dict(sorted(c.items())) for name, c in counts.items()}
    for name, count in tally_slow.items():
        entry_points[name]["re-run after a kill at low CPU (busy machine)"] = count
    summary = {"minutes": minutes, "seed": seed, "cases": number,
               "entry_points": entry_points, "findings": findings}
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--work", type=Path, default=Path("/tmp/convcalc-fuzz"))
    parser.add_argument("--entry", default="", help="comma-separated entry points (default all)")
    parser.add_argument("--timeout", type=float, default=harness.TIME_LIMIT)
    args = parser.parse_args()
    only = {e for e in args.entry.split(",") if e} or None
    summary = campaign(args.work, args.minutes, args.seed, only, args.timeout)
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}, indent=1))
    print(f"{len(summary['findings'])} distinct finding(s); see {args.work / 'findings'}")


if __name__ == "__main__":
    main()
