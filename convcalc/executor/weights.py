"""Weights of a network, keyed by PyTorch state_dict names (`layer1.0.conv1.weight`).

Three sources, in this order of precedence:
- a `.npz` file (`--weights`), validated against the analysis (Layer.weight_shapes);
- a fixed kernel named in the spec (`weights: sobel_x`) or given as numbers;
- deterministic random initialisation from a seed, with PyTorch's default distributions:
  conv, transposed conv, linear and locally-connected weights and their biases
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)), fan_in =
  weight.shape[1] * prod(kernel) as PyTorch computes it; norm weights 1, biases 0; running
  mean 0, running variance 1.

Each tensor draws from its own generator seeded by (seed, crc32(name)), so adding a layer
leaves every other layer's weights unchanged.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from convcalc.analysis import Report
from convcalc.layers.base import weight_key
from convcalc.layers.conv import NAMED_KERNELS
from convcalc.files import write_whole

OPTIONAL_KEYS = ("num_batches_tracked",)  # PyTorch bookkeeping, not needed at inference
UNIFORM_INIT = ("weight", "bias")  # of layers whose weight has a fan-in (ndim >= 2)


class WeightsError(Exception):
    """A user-facing problem with weights: one line, with a hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def expected_weights(report: Report) -> dict[str, tuple[int, ...]]:
    """state_dict name -> shape, for every layer of the analysed network."""
    return {weight_key(layer.name, suffix): tuple(w.shape)
            for layer in report.layers for suffix, w in layer.weights.items()}


def initial_weights(report: Report, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed kernels where the spec names them, PyTorch's default initialisation elsewhere.

    Tensors are drawn on two threads (NumPy's generators release the GIL while they fill);
    each has its own generator, so the values do not depend on the order."""
    weights = fixed_weights(report)
    jobs = []
    for layer in report.layers:
        shapes = {suffix: tuple(w.shape) for suffix, w in layer.weights.items()}
        fan_in = _fan_in(shapes.get("weight"))
        for suffix, shape in shapes.items():
            key = weight_key(layer.name, suffix)
            fill = layer.weights[suffix].fill
            if key not in weights:
                weights[key] = None
                jobs.append((key, suffix, shape, fan_in, fill))

    def draw(job):
        key, suffix, shape, fan_in, fill = job
        return (_init(key, suffix, shape, fan_in, seed) if fill is None
                else np.full(shape, fill, np.float32))

    order = sorted(jobs, key=lambda job: -math.prod(job[2]))  # the largest first
    if sum(math.prod(job[2]) for job in jobs) < PARALLEL_INIT_VALUES:
        drawn = [draw(job) for job in order]
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(2) as pool:
            drawn = list(pool.map(draw, order))
    for job, values in zip(order, drawn):
        weights[job[0]] = values
    return weights


PARALLEL_INIT_VALUES = 4_000_000  # below this many values, threads cost more than they save
INIT_CHUNK = 16_384  # values drawn and scaled per step: 64 KiB, in cache for the scaling


def fixed_weights(report: Report) -> dict[str, np.ndarray]:
    """The kernels the spec fixes with `weights:` (none for most networks)."""
    layers = {node.name: node.layer for node in report.graph.nodes}
    out = {}
    for layer in report.layers:
        fixed = getattr(layers[layer.name], "weights", None)
        if fixed is not None:
            shapes = {suffix: tuple(w.shape) for suffix, w in layer.weights.items()}
            out.update(_fixed(layer.name, fixed, shapes, layers[layer.name]))
    return out


def _fan_in(shape: tuple[int, ...] | None) -> int | None:
    """PyTorch: weight.size(1) * prod(kernel); locally-connected (*out, Cout, Cin, *k):
    Cin * prod(k), read as the trailing axes after Cout."""
    if shape is None or len(shape) < 2:
        return None
    return shape[1] * math.prod(shape[2:])


def _init(name: str, suffix: str, shape, fan_in: int | None, seed: int) -> np.ndarray:
    if suffix in UNIFORM_INIT and fan_in is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        values = np.empty(shape, np.float32)  # U[0, 1), then scaled in place: bound*(2u - 1)
        flat, scale, shift = values.reshape(-1), np.float32(2 * bound), np.float32(bound)
        for start in range(0, flat.size, INIT_CHUNK):  # the same stream as one fill
            chunk = flat[start:start + INIT_CHUNK]
            rng.random(dtype=np.float32, out=chunk)
            chunk *= scale
            chunk -= shift
        return values
    if suffix == "num_batches_tracked":
        return np.zeros(shape, np.int64)
    fill = 1.0 if suffix in ("weight", "running_var") else 0.0
    return np.full(shape, fill, np.float32)


def _fixed(layer: str, value, shapes: dict, node_layer) -> dict[str, np.ndarray]:
    """A named kernel or numbers: per channel (a diagonal weight, or every filter of a
    depthwise conv); into fewer channels, the average over the input channels."""
    shape = shapes["weight"]  # (Cout, Cin/groups, *k)
    kernel = _kernel_values(layer, value, shape)
    if kernel.shape == shape:
        weight = kernel
    else:
        cout, cin_g = shape[:2]
        weight = np.zeros(shape, np.float32)
        if cin_g == 1:
            weight[:, 0] = kernel
        elif cout == cin_g * getattr(node_layer, "groups", 1):
            for channel in range(cout):  # the diagonal: out channel c reads in channel c
                weight[channel, channel % cin_g] = kernel
        else:
            weight[:] = kernel / cin_g
    out = {f"{layer}.weight": weight}
    if "bias" in shapes:
        out[f"{layer}.bias"] = np.zeros(shapes["bias"], np.float32)
    return out


def _kernel_values(layer: str, value, shape) -> np.ndarray:
    kernel_shape = tuple(shape[2:])
    if isinstance(value, str):
        if value not in NAMED_KERNELS:
            raise WeightsError(f"{layer}: unknown kernel name {value!r}",
                               f"use one of {', '.join(NAMED_KERNELS)}, or give the numbers")
        kernel = np.asarray(NAMED_KERNELS[value], np.float32)
        if kernel.shape != kernel_shape:
            raise WeightsError(f"{layer}: kernel {value} is 3x3 but the layer's kernel_size is "
                               f"{list(kernel_shape)}", "use kernel_size: 3 on a 2-D conv")
        return kernel
    try:
        kernel = np.asarray(value, np.float32)
    except (TypeError, ValueError):
        raise WeightsError(f"{layer}: weights must be a kernel name or nested lists of numbers; "
                           f"got {value!r}")
    if kernel.shape not in (kernel_shape, tuple(shape)):
        raise WeightsError(f"{layer}: inline weights have shape {list(kernel.shape)}; expected "
                           f"the kernel {list(kernel_shape)} or the whole weight {list(shape)}",
                           "give one kernel (applied per channel) or every filter")
    return kernel


def load_weights(path: str | Path, report: Report) -> dict[str, np.ndarray]:
    """Read a .npz of state_dict arrays and check it against the analysis."""
    return check_weights(read_weights(path), report, str(path))


NPZ_HINT = ("save a PyTorch model's weights with numpy.savez(path, **{name: tensor.numpy() "
            "for name, tensor in model.state_dict().items()})")


def read_weights(path: str | Path) -> dict[str, "Member"]:
    """The named arrays of a .npz archive (numpy.savez's), unchecked and unread: each member's
    .npy header is read (an invalid one is refused, naming file and member); its data only
    once check_weights has compared the header with the expected shape."""
    import zipfile
    try:
        with open(path, "rb") as stream:
            magic = stream.read(6)
        if magic == b"\x93NUMPY":
            raise WeightsError(f"{path} holds one array, not an .npz archive of named arrays",
                               NPZ_HINT)
        if magic[:4] != b"PK\x03\x04":  # zip (.npz)
            raise WeightsError(f"{path} is not an .npz archive (numpy.savez writes one)", NPZ_HINT)
        with zipfile.ZipFile(path) as archive:
            return {info.filename.removesuffix(".npy"): Member.of(Path(path), archive, info)
                    for info in archive.infolist()}
    except FileNotFoundError:
        raise WeightsError(f"weights file {path} does not exist") from None
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise WeightsError(f"cannot read weights {path}: {err}", NPZ_HINT) from None


class Member:
    """One .npy member of an .npz: its header's shape and dtype; read() loads the data."""

    def __init__(self, path: Path, name: str, shape: tuple[int, ...], dtype):
        self.path, self.name, self.shape, self.dtype = path, name, shape, dtype

    @classmethod
    def of(cls, path: Path, archive, info) -> "Member":
        fmt = np.lib.format
        try:
            with archive.open(info) as stream:
                version = fmt.read_magic(stream)
                read = fmt.read_array_header_1_0 if version == (1, 0) else \
                    fmt.read_array_header_2_0
                shape, _, dtype = read(stream)
        except (OSError, ValueError, EOFError, SyntaxError, zlib.error) as err:
            raise WeightsError(f"cannot read weights {path}: member {info.filename} is not a "
                               f".npy array: {err}", NPZ_HINT) from None
        if dtype.hasobject:
            raise WeightsError(f"cannot read weights {path}: member {info.filename} holds "
                               f"Python objects (pickled data is never loaded)", NPZ_HINT)
        return cls(path, info.filename, tuple(shape), dtype)

    def read(self) -> np.ndarray:
        import zipfile
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(self.name) as stream:
                return np.lib.format.read_array(stream, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise WeightsError(f"cannot read weights {self.path}: member {self.name}: {err}",
                               NPZ_HINT) from None


def check_weights(found: dict, report: Report, source: str) -> dict[str, np.ndarray]:
    """Names and shapes against the analysis; fixed kernels of the spec fill what is absent."""
    expected = expected_weights(report)
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise WeightsError(f"{source}: {len(unexpected)} unexpected key(s): "
                           f"{_listed(unexpected)}",
                           f"the spec's weights are named like {_listed(list(expected), 3)}")
    out = fixed_weights(report)
    for key, shape in expected.items():
        if key in found:
            array = found[key]  # an array, or a .npz Member: checked by its header first
            if tuple(array.shape) != shape:
                raise WeightsError(f"{source}: {key}: expected shape {list(shape)}, got "
                                   f"{list(array.shape)}", "check the spec's layer against the "
                                   "model that saved the weights")
            if array.dtype.kind not in "fiub":
                raise WeightsError(f"{source}: {key}: expected numbers, got dtype {array.dtype}")
            array = array.read() if isinstance(array, Member) else array
            out[key] = array if key.endswith(OPTIONAL_KEYS) else array.astype(np.float32)
    missing = [key for key in expected if key not in out and not key.endswith(OPTIONAL_KEYS)]
    if missing:
        raise WeightsError(f"{source}: {len(missing)} missing key(s): {_listed(missing)}",
                           "save the whole state_dict, or drop --weights for random weights")
    return out


def _listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def save_weights(path: str | Path, weights: dict[str, np.ndarray]) -> None:
    """Write a .npz whole (a temporary file, then os.replace); numpy.load reads it back."""
    write_whole(Path(path), lambda stream: np.savez(stream, **weights))


def weight_bytes(weights: dict[str, np.ndarray]) -> int:
    return sum(array.nbytes for array in weights.values())
