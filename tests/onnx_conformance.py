"""The ONNX conformance cases shipped in the onnx package (onnx.backend.test.case.node) for
the operators convcalc imports: each case's model, with every input after the first made an
initializer holding the case's data (convcalc networks have one input), imported and run.

`python tests/onnx_conformance.py` prints the count of passed cases per operator and the
reason for each case left out."""

from __future__ import annotations

import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPS = ("Conv", "ConvTranspose", "BatchNormalization", "MaxPool", "AveragePool",
       "GlobalAveragePool", "GlobalMaxPool", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
       "HardSigmoid", "HardSwish", "Elu", "Gelu", "Clip", "Add", "Mul", "Sum", "Concat",
       "Resize", "Upsample", "Pad", "Gemm", "MatMul", "Flatten", "Reshape", "Squeeze",
       "Unsqueeze", "ReduceMean", "ReduceMax", "Softmax", "LRN", "Dropout", "Identity",
       "GroupNormalization", "Cast", "Sub", "Div", "Pow", "ReduceSum", "ReduceMin",
       "Transpose", "Slice", "Split", "DepthToSpace", "SpaceToDepth", "LayerNormalization",
       "InstanceNormalization", "PRelu", "Mish", "Softplus", "LogSoftmax", "ReduceL2",
       "ReduceSumSquare")


class _OneOf(frozenset):
    """collect_testcases compares `op_type != target`: this target is a set of op types."""

    def __ne__(self, other) -> bool:
        return other not in self

    __hash__ = frozenset.__hash__


def cases():
    """The shipped cases whose single node is one of OPS."""
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = collect_testcases(_OneOf(OPS))
    return [c for c in found if c.model is not None and len(c.model.graph.node) == 1
            and c.model.graph.node[0].op_type in OPS]


@dataclass
class Outcome:
    op: str
    name: str
    passed: bool
    reason: str = ""


def run_case(case, folder: Path) -> Outcome:
    """Import the case (other inputs as initializers), compare shapes and values; a case
    with several outputs of one op (Split's parts) is one model per output, all to pass."""
    import onnx
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    op = model.graph.node[0].op_type
    inputs, outputs = (list(map(_array, part)) for part in case.data_sets[0])
    if op in OPTIONAL_OUTPUTS and len(outputs) > 1:  # keep the result, drop the statistics
        _first_output_only(model)
        outputs = outputs[:1]
    if op in EVERY_OUTPUT and len(outputs) > 1:
        for k in range(len(outputs)):
            single = onnx.ModelProto()
            single.CopyFrom(model)
            kept = single.graph.output[k]
            del single.graph.output[:]
            single.graph.output.append(kept)
            outcome = _run_one(case, single, inputs, [outputs[k]], folder, f"_{k}")
            if not outcome.passed:
                return Outcome(op, case.name, False, f"output {k}: {outcome.reason}")
        return Outcome(op, case.name, True)
    return _run_one(case, model, inputs, outputs, folder)


def _run_one(case, model, inputs, outputs, folder: Path, suffix: str = "") -> Outcome:
    import onnx
    from onnx_oracle import convcalc_run

    from onnx import numpy_helper

    from convcalc.interop import ImportFailure
    op = model.graph.node[0].op_type
    why = _left_out(model, inputs, outputs)
    if why:
        return Outcome(op, case.name, False, why)
    graph = model.graph
    for info, value in list(zip(graph.input, inputs))[1:]:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), info.name))
    path = folder / f"{case.name}{suffix}.onnx"
    onnx.save(model, str(path))
    try:
        _, ours = convcalc_run(path, np.asarray(inputs[0]))
    except ImportFailure as err:
        return Outcome(op, case.name, False, f"refused: {err.message}")
    expected = np.asarray(outputs[0])
    if ours.shape != expected.shape:
        return Outcome(op, case.name, False, f"WRONG shape {ours.shape} != {expected.shape}")
    if not np.allclose(ours, expected, rtol=max(case.rtol, 1e-4), atol=max(case.atol, 1e-5)):
        err = float(np.abs(ours - expected).max())
        return Outcome(op, case.name, False, f"WRONG values (max error {err:.3g})")
    return Outcome(op, case.name, True)


def _array(value):
    """Cases keep some data as TensorProto (Cast's float8, bfloat16, ...): as NumPy."""
    from onnx import TensorProto, numpy_helper
    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else value


EVERY_OUTPUT = ("Split",)  # several outputs, each a result: one model per output
OPTIONAL_OUTPUTS = ("LayerNormalization", "Dropout", "MaxPool", "BatchNormalization")


def _first_output_only(model) -> None:
    """Drop a node's optional trailing outputs (a mask, indices, mean and deviation, running
    statistics): the case's first output is then the network's one output."""
    node, graph = model.graph.node[0], model.graph
    kept = graph.output[0]
    del node.output[1:]
    del graph.output[:]
    graph.output.append(kept)


def _left_out(model, inputs, outputs) -> str:
    """Cases outside what a convcalc network is, with the reason."""
    if len(outputs) != 1:
        return "several outputs (masks, indices, running statistics)"
    first = np.asarray(inputs[0]) if inputs else None
    if first is None or first.dtype != np.float32:
        return f"input of dtype {first.dtype if first is not None else 'none'} (convcalc " \
               "networks take float32)"
    if np.asarray(outputs[0]).dtype != np.float32:
        return "a non-float32 output"
    if first.ndim < 2:
        return f"a {first.ndim}-D input (a convcalc input has at least two axes per sample, " \
               "[C, L])"
    return ""


def outcomes() -> list[Outcome]:
    with tempfile.TemporaryDirectory() as folder:
        return [run_case(case, Path(folder)) for case in cases()]


def summary(results: list[Outcome]) -> str:
    passed = Counter(r.op for r in results if r.passed)
    total = Counter(r.op for r in results)
    lines = [f"{op:20} {passed[op]:3d} / {total[op]:3d}" for op in sorted(total)]
    lines.append(f"{'all':20} {sum(passed.values()):3d} / {sum(total.values()):3d}")
    lines += [f"  left out {r.name}: {r.reason}" for r in results if not r.passed]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    print(summary(outcomes()))
