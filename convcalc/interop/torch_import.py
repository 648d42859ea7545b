"""A PyTorch model -> the spec a person would write, through torch.fx.

`import_torch("torchvision.models:resnet50", (3, 224, 224), {})` imports the factory's module,
calls it with the keyword arguments, puts the module in eval mode, traces it with
torch.fx.symbolic_trace (the torch.nn classes of the converter table are leaves), runs
torch.fx's ShapeProp on a batch-1 example input and converts node by node through the table
in torch_table.py. Layers are named by their module paths, so that the model's own
state_dict loads with `convcalc run --weights` unchanged; functional nodes are named by the
module that calls them and the operation (`layer1.0.add`).

Nothing is guessed: every node the table cannot convert is listed in one error; the spec is
then analysed by convcalc, and each layer's shape must equal the one ShapeProp saw, and its
weights the model's, or the import fails naming the layer.

A model fx cannot trace (Python control flow on a tensor's size, as timm's VGG head has) is
traced by PyTorch's own ONNX exporter instead (torch.onnx, TorchScript tracing: the control
flow is fixed at the example input's size) into a temporary .onnx, read by the ONNX importer:
its layers are still named by the module paths and its weights keyed as the state_dict.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import traceback
from pathlib import Path

from convcalc.interop import Imported, ImportFailure, fixed_reshape_note
from convcalc.interop.torch_convert import Conversion
from convcalc.interop.torch_table import module_converter

DEFAULT_INPUT = (3, 224, 224)
INSTALL_HINT = "pip install 'convcalc[torch]' (torch, and torchvision for its models)"


def import_torch(source: str, input: tuple[int, ...] | None, kwargs: dict) -> Imported:
    """MODULE:CALLABLE, example input (C, *spatial) or None for 3x224x224 -> Imported."""
    _require_torch(source)
    return import_module(build_model(source, kwargs), input, source)


def import_module(model, input: tuple[int, ...] | None = None, source: str = "") -> Imported:
    """A torch.nn.Module in hand -> Imported, traced in eval mode at batch 1 x `input`."""
    import torch
    source = source or type(model).__name__
    shape = tuple(input) if input else DEFAULT_INPUT
    try:
        traced = _trace(model.eval(), source)
    except _Untraceable as err:
        return _through_onnx(model, shape, source, err, given=input is not None)
    values = _propagate(traced, shape, source, torch)
    converted = Conversion(traced, values, source).run()
    size = "x".join(map(str, shape))
    spec = {"name": source.rpartition(":")[2],
            "description": f"imported from {source} by torch.fx at input {size}",
            "input": list(shape), "layers": converted.layers}
    verify(spec, converted, source)
    notes = [f"traced at input {size}" + ("" if input else " (the default; --input sets another)")]
    fixed = fixed_reshape_note(converted.layers, size)
    if fixed:
        notes.append(fixed)
    unused = _unused_weights(model, converted.weights)
    if unused:
        notes.append(f"left out {len(unused)} weight(s) of modules the eval-mode forward does "
                     f"not use: {', '.join(unused[:3])}{', ...' if len(unused) > 3 else ''}")
    return Imported(spec, converted.weights, source, tuple(notes))


class _Untraceable(ImportFailure):
    """torch.fx could not trace the model (the ONNX exporter's tracer is tried next)."""


def _through_onnx(model, shape, source: str, untraceable: ImportFailure, given: bool) -> Imported:
    """The model traced by torch.onnx (TorchScript) at batch 1 x shape, BatchNorm kept and no
    constant folded (so every parameter keeps its state_dict name), then imported as ONNX.
    If that fails too, fx's error is the one reported, with the exporter's reason."""
    import tempfile
    import warnings
    from pathlib import Path

    import torch

    from convcalc.interop.onnx_import import import_onnx
    size = "x".join(map(str, shape))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traced.onnx"
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                example = torch.from_numpy(_example(shape, 0))
                torch.onnx.export(model.eval(), example, str(path), dynamo=False,
                                  opset_version=17, input_names=["input"],
                                  dynamic_axes={"input": {0: "N"}}, do_constant_folding=False,
                                  training=torch.onnx.TrainingMode.PRESERVE)
            imported = import_onnx(path, tuple(shape))
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - the exporter runs user code
            why = err.message if isinstance(err, ImportFailure) else _summary(err)
            raise ImportFailure(source, f"{untraceable.message}; PyTorch's ONNX exporter, tried "
                                f"next, failed too: {why}", untraceable.hint) from None
    names = {layer["name"] for layer in imported.spec["layers"]}
    weights = dict(imported.weights)
    for key, value in model.state_dict().items():  # the int64 counter ONNX does not carry
        if key.endswith(".num_batches_tracked") and key.rpartition(".")[0] in names:
            weights.setdefault(key, value.numpy())
    imported = Imported(imported.spec, weights, imported.source, imported.notes,
                        imported.batch_axis)
    _check_trace(model, imported, shape, source, untraceable)
    fx_reason = untraceable.message.replace("torch.fx cannot trace it: ", "")
    spec = {**imported.spec, "name": source.rpartition(":")[2],
            "description": f"imported from {source} by torch.onnx's tracer at input {size} "
                           f"(torch.fx could not trace it)"}
    notes = [f"traced at input {size}" + ("" if given else " (the default; --input sets another)"),
             f"torch.fx could not trace it ({fx_reason}); traced by PyTorch's ONNX exporter "
             f"instead, so Python control flow is fixed as it ran at {size}",
             *(n for n in imported.notes if not n.startswith("batch axis"))]
    return Imported(spec, imported.weights, source, tuple(notes), imported.batch_axis)


def _example(shape, seed: int):
    import numpy as np
    return np.random.default_rng(seed).standard_normal((1, *shape)).astype(np.float32)


def _check_trace(model, imported: Imported, shape, source: str, untraceable) -> None:
    """A trace records the branches Python took for the example input; where they depend on
    the input's values, the trace is another network. The import must give the model's own
    output on three other inputs (of other scales and signs), or it is refused."""
    import numpy as np
    import torch

    import convcalc
    for seed, scale, shift in ((1, 1.0, 0.0), (2, 4.0, 1.0), (3, 4.0, -1.0)):
        x = (_example(shape, seed) * scale + shift).astype(np.float32)
        with torch.no_grad():
            theirs = model(torch.from_numpy(x))
        theirs = theirs.numpy() if isinstance(theirs, torch.Tensor) else None
        ours = convcalc.run(imported.spec, x, weights=imported.weights).output
        size = float(np.abs(theirs).max()) if theirs is not None and theirs.size else 0.0
        if theirs is None or ours.shape != theirs.shape or \
                not np.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * max(size, 1e-30)):
            raise ImportFailure(source, f"{untraceable.message}; PyTorch's ONNX exporter traced "
                                "it, but the trace is not the model: on another input their "
                                "outputs differ (Python control flow on the input's values)",
                                untraceable.hint)


def _require_torch(source: str):
    try:
        import torch
        import torch.fx
    except ImportError:
        raise ImportFailure(source, "importing a PyTorch model needs torch, which is not "
                            "installed", INSTALL_HINT) from None
    return torch


def build_model(source: str, kwargs: dict):
    """Import MODULE, find CALLABLE (dotted attributes allowed) and call it with kwargs."""
    import torch
    module_name, _, attr = source.partition(":")
    if not module_name or not attr:
        raise ImportFailure(source, "expected MODULE:CALLABLE", "e.g. torchvision.models:resnet50")
    module = _import_module(source, module_name)
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ImportFailure(source, f"{module_name} has no attribute {attr!r}",
                                "check the name after the colon")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ImportFailure(source, f"{attr} is a {type(factory).__name__}, not a callable")
    try:
        model = factory(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - user code, sys.exit too: one line
        raise ImportFailure(source, f"{attr}(**{kwargs!r}) raised {_summary(err)}",
                            "check --kwargs against the factory's parameters") from None
    if not isinstance(model, torch.nn.Module):
        raise ImportFailure(source, f"{attr}(...) returned a {type(model).__name__}, not a "
                            "torch.nn.Module", "name a factory or class that builds the model")
    return model.eval()


def _import_module(source: str, name: str):
    if os.getcwd() not in sys.path:  # as `python -m` does: the user's own packages import
        sys.path.insert(0, os.getcwd())
    try:
        if name.endswith(".py") or "/" in name or os.sep in name:
            return _import_file(source, name)
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        missing = err.name or name
        raise ImportFailure(source, f"no module named {missing!r}",
                            "check the import path, and that the package is installed in "
                            "this Python environment") from None
    except (KeyboardInterrupt, ImportFailure):
        raise
    except BaseException as err:  # noqa: BLE001 - any failure of user code, sys.exit too
        raise ImportFailure(source, f"importing {name} raised {_summary(err)}") from None


def _import_file(source: str, name: str):
    """A Python file named by its path (`net.py:Net`, as `convcalc export --to pytorch`
    writes one): run as a module named after the file, its folder first on sys.path so that
    it imports its neighbours, as `python net.py` would."""
    import importlib.util
    path = Path(name)
    if not path.is_file():
        raise ImportFailure(source, f"no file {name}" if not path.exists() else
                            f"{name} is not a file", "name a .py file, or MODULE:CALLABLE "
                            "for an installed module")
    stem = path.stem if path.stem.isidentifier() else "model"
    module_name = stem if stem not in sys.modules else f"_convcalc_import_{stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportFailure(source, f"{name} cannot be loaded as Python", "name a .py file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _summary(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _trace(model, source: str):
    """torch.fx.symbolic_trace with the table's torch.nn classes (and unknown torch.nn
    classes, which are then reported) as leaves."""
    from torch import fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualified_name: str) -> bool:
            if module_converter(m) is not None:
                return True
            return super().is_leaf_module(m, qualified_name)

    tracer = Tracer()
    try:
        graph = tracer.trace(model)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - any failure of user code, sys.exit too
        raise _Untraceable(source, f"torch.fx cannot trace it: {_summary(err)}"
                           f"{_user_frame(err)}", "fx traces code without data-dependent "
                           "control flow; wrap that part in a function fx treats as a leaf") \
            from None
    traced = fx.GraphModule(tracer.root, graph, type(model).__name__)
    traced.graph.eliminate_dead_code()
    return traced


def _user_frame(err: BaseException) -> str:
    """' at file:line (code)' for the innermost frame outside torch: the construct fx met."""
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if f"{os.sep}torch{os.sep}" not in f.filename
              and not f.filename.endswith("torch_import.py")]
    if not frames:
        return ""
    frame = frames[-1]
    code = f" ({frame.line.strip()})" if frame.line else ""
    return f", at {frame.filename}:{frame.lineno}{code}"


def _propagate(traced, shape: tuple[int, ...], source: str, torch) -> dict:
    """ShapeProp on a batch-1 example; returns node -> its value (every node, not only
    tensors: sizes and other Python values are constants of the conversion)."""
    from torch.fx.passes.shape_prop import ShapeProp

    values: dict = {}

    class Recording(ShapeProp):
        def run_node(self, n):
            current.append(n)
            result = super().run_node(n)
            values[n] = result
            return result

    example = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
    current: list = []
    try:  # ShapeProp prints the traceback of a failing node itself: keep it off the terminal
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            Recording(traced).propagate(example)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - any failure of user code, sys.exit too
        cause = err.__cause__ or err
        where = f" at {current[-1].name}" if current else ""
        raise ImportFailure(source, f"running the model on an input of "
                            f"{'x'.join(map(str, (1, *shape)))} failed{where}: "
                            f"{_summary(cause)}",
                            "give the input size the model takes: --input 3x224x224") from None
    return values


def verify(spec: dict, converted: Conversion, source: str) -> None:
    """convcalc's analysis of the spec must give every layer ShapeProp's shape and ask for
    exactly the weights the model has; otherwise the import fails naming the layer."""
    from convcalc.interop.verify import verify as verify_import
    verify_import(spec, converted.shapes, converted.weights, source, "PyTorch")


def _unused_weights(model, used: dict) -> list[str]:
    return [key for key in model.state_dict() if key not in used]
