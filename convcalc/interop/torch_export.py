"""A checked spec -> one readable PyTorch file: `class Net(torch.nn.Module)`, needing torch only.

The module tree follows the layer names: `layer1.0.conv1` is the attribute conv1 of element 0
of layer1. A block instance becomes an instance of a class written for its block (instances
that differ only in numbers share one class, the numbers become constructor arguments); a
run of numbered modules that feed one another (`repeat`, `downsample.0`, `features.3`) an
nn.Sequential, other numbered children an nn.ModuleList or nn.ModuleDict. The forward calls
them in the graph's order. The layer code comes from the table in torch_emit.py; a layer
with no exact PyTorch equivalent stops the export with one line naming it.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from convcalc.interop.torch_emit import Code, Ctor, Emitted, NotExportable, Site, emit

LINE = 110
RESERVED = {"self", "x", "out", "torch", "nn", "F", "super"}
IN = "\x00in{}\x00"


class ExportError(Exception):
    """The spec cannot be written as an exact PyTorch module: one line naming what and why."""


def export_pytorch(source: Any, *, input: Any = None) -> str:
    """A spec (path, YAML text or dict, as convcalc.check takes) -> the Python source text."""
    from convcalc.api import check
    report = check(source, input=input)
    errors = report.failing()
    if errors:
        first = errors[0]
        raise ExportError(f"{report.file} has errors: {first.location()}: "
                          f"{first.layer + ': ' if first.layer else ''}{first.message}")
    return Writer(report).write()


@dataclass
class Unit:
    """A node of the module tree: a layer, a block instance, or a container of them."""

    path: str
    children: dict[str, "Unit"] = field(default_factory=dict)
    node: Any = None
    instance: Any = None
    nodes: list = field(default_factory=list)  # every graph node under it, in graph order
    parts: list = field(default_factory=list)  # a split's parts `name.k` (items of its tuple)

    @property
    def key(self) -> str:
        return self.path.rpartition(".")[2]


@dataclass
class Draft:
    """One block instance written out: its __init__ entries and forward, before the
    instances of a block are grouped into classes."""

    unit: Unit
    entries: list[tuple[str, Any]]  # attribute -> Ctor (or list/dict of them)
    setup: list[str]
    forward: list[str]
    params: list[str]
    cls: str = ""
    kwargs: tuple = ()


class Writer:
    def __init__(self, report):
        self.graph = report.graph
        self.shapes = {layer.name: tuple(layer.output_shape) for layer in report.layers}
        self.shapes["input"] = tuple(report.input_shape)
        self.order = {node.name: i for i, node in enumerate(self.graph.nodes)}
        self.file = report.file
        self.name = report.name or Path(report.file).stem.strip("<>") or "net"
        self.input_shape = tuple(report.input_shape)
        self.sides: dict[str, set[str]] = {}  # layer -> side outputs read (a pool's indices)
        for node in self.graph.nodes:
            for param, side in node.layer.ref_outputs.items():
                if param in node.refs:
                    self.sides.setdefault(node.refs[param], set()).add(side)
        self.consumers: dict[str, list[str]] = {}
        for node in self.graph.nodes:
            for value in self.reads(node):
                self.consumers.setdefault(_producer(value), []).append(node.name)
        self.helpers: set[str] = set()  # classes of torch_helpers the file defines
        self.emitted = self._emit_all()
        self.root = self._tree()
        self.drafts: list[Draft] = []

    def reads(self, node) -> list[str]:
        """The values a node's forward line reads: its inputs, then the side outputs of the
        layers it refers to (`pool/indices`)."""
        return list(node.inputs) + [f"{node.refs[param]}/{side}" for param, side
                                    in node.layer.ref_outputs.items() if param in node.refs]

    # -- layers and the tree ------------------------------------------------------------------
    def _emit_all(self) -> dict[str, Emitted]:
        out, failed = {}, []
        for node in self.graph.nodes:
            sided = [p for p in node.layer.ref_outputs if p in node.refs]
            site = Site(node.name, node.type, node.layer, [self.shapes[i] for i in node.inputs],
                        self.shapes[node.name], [IN.format(i) for i in range(len(node.inputs))],
                        {p: self.shapes[r] for p, r in node.refs.items()},
                        {p: IN.format(len(node.inputs) + i) for i, p in enumerate(sided)},
                        tuple(sorted(self.sides.get(node.name, ()))))
            try:
                out[node.name] = emit(site)
                self.helpers.update(out[node.name].helpers)
            except NotExportable as err:
                failed.append(f"{node.name} ({err})" if str(err).startswith(node.type)
                              else f"{node.name} ({node.type}: {err})")
        if failed:
            more = f" (and {len(failed) - 1} more: {', '.join(failed[1:4])})" if len(failed) > 1 else ""
            raise ExportError(f"{self.file}: cannot export layer {failed[0]}{more}")
        return out

    def _tree(self) -> Unit:
        root, units = Unit(""), {}
        for node in self.graph.nodes:
            if hasattr(node.layer, "source") and node.inputs and node.inputs[0] in units:
                units[node.inputs[0]].parts.append(node)  # part k of a split
                continue
            unit = units[node.name] = self._unit(root, node.name)
            if unit.node is not None or unit.children:
                raise ExportError(f"{self.file}: layer {node.name}: its name is also the path of "
                                  "other modules; PyTorch cannot hold both")
            unit.node = node
        for name, instance in self.graph.instances.items():
            self._unit(root, name).instance = instance
        return root

    def _unit(self, root: Unit, name: str) -> Unit:
        unit, path = root, []
        for segment in name.split("."):
            if not (segment.isidentifier() or segment.isdigit()) or keyword.iskeyword(segment):
                raise ExportError(f"{self.file}: layer {name}: {segment!r} is not a Python "
                                  "attribute name (letters, digits, _; numbers for elements)")
            path.append(segment)
            unit = unit.children.setdefault(segment, Unit(".".join(path)))
        return unit

    def _collect(self, unit: Unit) -> list:
        if not unit.nodes:
            unit.nodes = ([unit.node] if unit.node is not None else []) + unit.parts + [
                n for child in unit.children.values() for n in self._collect(child)]
            unit.nodes.sort(key=lambda n: self.order[n.name])
        return unit.nodes

    def _exits(self, unit: Unit) -> set[str]:
        inside = {n.name for n in self._collect(unit)}
        last = self.graph.nodes[-1].name
        return {n for n in inside if n == last or any(c not in inside for c in
                                                      self.consumers.get(n, []))}

    def _inputs(self, unit: Unit) -> list[str]:
        inside = {n.name for n in self._collect(unit)}
        seen: list[str] = []
        for node in unit.nodes:
            seen.extend(v for v in self.reads(node) if _producer(v) not in inside and v not in seen)
        return seen

    # -- what becomes one call in a forward ---------------------------------------------------
    def callable_instance(self, unit: Unit) -> bool:
        if unit.instance is None:
            return False
        inputs = [self.graph.output_of(i) for i in unit.instance.inputs]
        exit_ = self.graph.output_of(unit.path)
        return self._exits(unit) <= {exit_} and set(self._inputs(unit)) <= set(inputs)

    def sequential(self, unit: Unit) -> bool:
        """Children 0..n-1, each one call taking the previous one's output only."""
        return unit.node is None and unit.instance is None and self.chain(unit)

    def chain(self, unit: Unit) -> bool:
        keys = list(unit.children)
        if not keys or keys != [str(i) for i in range(len(keys))]:
            return False
        previous = None
        for key in keys:
            child = unit.children[key]
            if not self._one_call(child):
                return False
            inputs = self._inputs(child)
            if len(inputs) != 1 or (previous is not None and inputs[0] != previous):
                return False
            exits = self._exits(child)
            if len(exits) != 1:
                return False
            previous = exits.pop()
        return self._exits(unit) == {previous}

    def _one_call(self, unit: Unit) -> bool:
        if unit.node is not None:
            em = self.emitted[unit.node.name]
            return (em.module is not None and em.forward == "{m}(" + IN.format(0) + ")"
                    and not em.sides and not unit.children and not unit.parts)
        if unit.instance is not None:
            return self.callable_instance(unit) and len(unit.instance.inputs) == 1
        return self.sequential(unit)

    # -- writing a scope (the Net, or a block instance) ---------------------------------------
    def scope(self, unit: Unit, inputs: list[str], exit_: str) -> tuple[list, list[str], list[str]]:
        """(__init__ entries, setup lines, forward lines) of a module whose children are
        `unit`'s; `inputs` are the graph values its forward takes."""
        items: list[tuple[list[str], str, str, str]] = []  # (inputs, expr template, output, first)
        entries, setup = [], []
        if any(key.isdigit() for key in unit.children):
            if not (self.chain(unit) and len(inputs) == 1):
                raise ExportError(f"{self.file}: {unit.path or 'the network'}: numbered layers "
                                  "that do not feed one another in order cannot be children of "
                                  "one module; name them")
            inner: list = []
            return [(None, self._child(unit, c, inner, setup)) for c in unit.children.values()], \
                setup, []
        self._walk(unit, unit, items, entries, setup)
        items.sort(key=lambda item: self.order[item[3]])
        return entries, setup, self._forward(unit, items, inputs, exit_)

    def _walk(self, scope: Unit, unit: Unit, items: list, entries: list, setup: list) -> None:
        for key, child in unit.children.items():
            ctor = self._child(scope, child, items, setup)
            if ctor is not None:
                entries.append((key, ctor))

    def _child(self, scope: Unit, child: Unit, items: list, setup: list):
        """The child's constructor (None when it holds no module); its forward items."""
        access = self._access(scope, child)
        if child.node is not None:
            em = self.emitted[child.node.name]
            items.append((self.reads(child.node), em.forward.replace("{m}", access),
                          child.node.name, child.node.name))
            setup.extend(line.replace("{m}", access) for line in em.setup)
            for part in child.parts:
                items.append((list(part.inputs), self.emitted[part.name].forward, part.name,
                              part.name))
            return em.module
        first = self._collect(child)[0].name if self._collect(child) else None
        if child.instance is not None and self.callable_instance(child):
            inputs = [self.graph.output_of(i) for i in child.instance.inputs]
            args = ", ".join(IN.format(i) for i in range(len(inputs)))
            items.append((inputs, f"{access}({args})", self.graph.output_of(child.path), first))
            return self._draft(child, inputs)
        if self.sequential(child):
            items.append((self._inputs(child), f"{access}({IN.format(0)})",
                          next(iter(self._exits(child))), first))
            inner: list = []
            return Ctor("nn.Sequential", tuple(self._child(child, c, inner, setup)
                                               for c in child.children.values()))
        members = {}
        for key, grandchild in child.children.items():
            ctor = self._child(scope, grandchild, items, setup)
            if ctor is not None:
                members[key] = ctor
        if not members:
            return None
        if list(members) == [str(i) for i in range(len(members))]:
            return Ctor("nn.ModuleList", (list(members.values()),))
        return Ctor("nn.ModuleDict", (members,))

    def _access(self, scope: Unit, unit: Unit) -> str:
        """self.layer1[0].conv1 for the module at `unit`, seen from `scope`."""
        rel = unit.path[len(scope.path) + 1:] if scope.path else unit.path
        text, parent = "self", scope
        for segment in rel.split("."):
            here = parent.children[segment]
            if segment.isdigit():
                listed = self.sequential(parent) or list(parent.children) == [
                    str(i) for i in range(len(parent.children))]
                text += f"[{segment}]" if listed and not self._has_holes(parent) else f'["{segment}"]'
            else:
                text += f".{segment}"
            parent = here
        return text

    def _has_holes(self, unit: Unit) -> bool:
        """A numbered container whose members with modules are not 0..n-1 (a ModuleDict)."""
        if self.sequential(unit):
            return False
        held = [k for k, c in unit.children.items() if self._holds_module(c)]
        return held != [str(i) for i in range(len(held))]

    def _holds_module(self, unit: Unit) -> bool:
        if unit.node is not None:
            return self.emitted[unit.node.name].module is not None
        return unit.instance is not None or any(self._holds_module(c)
                                                for c in unit.children.values())

    def _forward(self, unit: Unit, items: list, inputs: list[str], exit_: str) -> list[str]:
        uses: dict[str, list] = {}
        for index, (ins, _expr, _out, _first) in enumerate(items):
            for value in ins:
                uses.setdefault(value, []).append(index)
        uses.setdefault(exit_, []).append("return")
        params = ["x"] + [f"x{i}" for i in range(1, len(inputs))]
        where = dict(zip(inputs, params))
        chain = "x" if inputs and items and uses.get(inputs[0]) == [0] and \
            items[0][0][:1] == [inputs[0]] else "out"
        names = set(params) | {chain}
        lines = []
        for index, (ins, expr, out, _first) in enumerate(items):
            for i, value in enumerate(ins):
                expr = expr.replace(IN.format(i), where[value])
            used = uses.get(out, [])
            sides = [f"{out}/{side}" for side in self.emitted[out].sides] \
                if out in self.emitted else []
            if not used and not any(uses.get(side) for side in sides):
                continue  # read only for its shape (crop's `to`): nothing to compute
            if used == ["return"] and index == len(items) - 1 and not sides:
                lines.append(f"return {expr}")
                return lines
            nxt = items[index + 1][0] if index + 1 < len(items) else []
            if used == [index + 1] and nxt[:1] == [out]:
                target = chain
            else:
                target = self._variable(unit, out, names) if used else "_"
            where[out] = target
            for side in sides:  # `x, pool_indices = self.pool(x)`
                where[side] = self._variable(unit, side, names) if uses.get(side) else "_"
            lines.append(f"{', '.join([target] + [where[side] for side in sides])} = {expr}")
        lines.append(f"return {where[exit_]}")
        return lines

    def _variable(self, unit: Unit, value: str, taken: set[str]) -> str:
        rel = value[len(unit.path) + 1:] if unit.path and value.startswith(unit.path + ".") else value
        name = re.sub(r"\W", "_", rel.replace(".", "_"))
        if name[:1].isdigit():
            name = f"out{name}"
        if keyword.iskeyword(name) or name in RESERVED:
            name += "_"
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        taken.add(unique)
        return unique

    # -- block classes -----------------------------------------------------------------------
    def _draft(self, unit: Unit, inputs: list[str]) -> Draft:
        entries, setup, forward = self.scope(unit, inputs, self.graph.output_of(unit.path))
        params = ["x"] + [f"x{i}" for i in range(1, len(inputs))]
        draft = Draft(unit, entries, setup, forward, params)
        self.drafts.append(draft)
        return draft

    def _classes(self) -> list[Draft]:
        """Group the drafts of each block into classes, deepest blocks first; numbers that
        differ between a class's instances become its constructor arguments."""
        depth: dict[int, int] = {}
        for draft in self.drafts:  # children are drafted before their parents
            inner = [d for _k, v in draft.entries for d in _drafts_in(v)]
            depth[id(draft)] = 1 + max((depth[id(d)] for d in inner), default=0)
        classes, taken = [], {"Net"}
        for level in sorted(set(depth.values())):
            groups: dict[tuple, list[Draft]] = {}
            for draft in (d for d in self.drafts if depth[id(d)] == level):
                structure = "|".join(f"{k}={_structure(v)}" for k, v in draft.entries)
                key = (draft.unit.instance.block, structure, tuple(draft.setup),
                       tuple(draft.forward), tuple(draft.params))
                groups.setdefault(key, []).append(draft)
            for key, members in groups.items():
                name = _class_name(key[0], taken)
                self._parametrise(members, name)
                classes.append(members[0])
        return classes

    def _parametrise(self, members: list[Draft], name: str) -> None:
        leaves = [[leaf for i, (k, v) in enumerate(d.entries)
                   for leaf in _leaves(v, str(i) if k is None else k)] for d in members]
        replace: dict[int, Code] = {}
        values: dict[str, list] = {}
        for index, (label, first) in enumerate(leaves[0]):
            column = [row[index][1] for row in leaves]
            if all(_same(v, first) for v in column):
                continue
            param, code = self._argument(members, column, label, values)
            replace[index] = Code(code)
            values.setdefault(param, [row_value for row_value in self._param_values(
                members, param, column)])
        order = ["in_channels", *members[0].unit.instance.args]
        params = sorted(values, key=lambda p: order.index(p) if p in order else len(order))
        for row, draft in enumerate(members):
            draft.cls = name
            draft.kwargs = tuple((p, values[p][row]) for p in params)
        template = members[0]
        counter = iter(range(10**9))
        template.entries = [(k, _substitute(v, replace, counter)) for k, v in template.entries]
        template.signature = params  # type: ignore[attr-defined]

    def _argument(self, members: list[Draft], column: list, label: str, values: dict):
        args = [d.unit.instance.args for d in members]
        for arg in members[0].unit.instance.args:
            if all(_same(a.get(arg), v) for a, v in zip(args, column)):
                return arg, arg
        for arg in members[0].unit.instance.args:
            for k in range(2, 17):  # planes * 4
                if all(_is_int(a.get(arg)) and _is_int(v) and a[arg] * k == v
                       for a, v in zip(args, column)):
                    return arg, f"{arg} * {k}"
        channels = [self.shapes[self.graph.output_of(d.unit.instance.inputs[0])][0]
                    if d.unit.instance.inputs else None for d in members]
        if all(_is_int(v) and c == v for c, v in zip(channels, column)):
            return "in_channels", "in_channels"
        param = re.sub(r"\W", "_", label.replace(".", "_"))
        param = param if param[:1].isalpha() else f"layer{param}"
        while param in values and values[param] != column:
            param += "_"
        return param, param

    def _param_values(self, members: list[Draft], param: str, column: list) -> list:
        if param == "in_channels":
            return [self.shapes[self.graph.output_of(d.unit.instance.inputs[0])][0]
                    for d in members]
        if param in members[0].unit.instance.args:
            return [d.unit.instance.args[param] for d in members]
        return column

    # -- the file ----------------------------------------------------------------------------
    def write(self) -> str:
        net_entries, net_setup, net_forward = self.scope(self.root, ["input"],
                                                         self.graph.nodes[-1].name)
        classes = self._classes()
        body = []
        for draft in classes:
            signature = ", ".join(["self", *getattr(draft, "signature", [])])
            body.append(_class(draft.cls, f"A `{draft.unit.instance.block}` block of the spec.",
                               signature, draft.entries, draft.setup, draft.params,
                               draft.forward))
        size = "x".join(map(str, self.input_shape))
        body.append(_class("Net", f"{self.name}: takes a batch of {list(self.input_shape)} "
                           "(N, C, ...)", "self", net_entries, net_setup, ["x"], net_forward))
        from convcalc.interop.torch_helpers import HELPERS
        body = [HELPERS[name].strip() + "\n" for name in sorted(self.helpers)] + body
        text = "\n\n".join(body)
        imports = ["import torch", "from torch import nn"]
        if "F." in text:
            imports.append("import torch.nn.functional as F")
        if "math." in text:
            imports.insert(0, "import math\n")
        header = (f'"""{self.name}, written by `convcalc export --to pytorch` from {self.file}.\n\n'
                  f"Net().state_dict() has the keys and shapes that `convcalc run --save-weights` "
                  f"writes,\nso Net().load_state_dict(...) takes those weights. Input: "
                  f"{size} (C, *spatial), with a batch axis before.\n\"\"\"\n")
        main = ("\n\nif __name__ == \"__main__\":\n    net = Net().eval()\n"
                f"    print(net(torch.randn(1, {', '.join(map(str, self.input_shape))})).shape)\n")
        return header + "\n".join(imports) + "\n\n\n" + text + main


def _producer(value: str) -> str:
    """The layer a value comes from: `pool/indices` -> pool."""
    return value.partition("/")[0]


def _class(name: str, doc: str, signature: str, entries, setup, params, forward) -> str:
    if entries and entries[0][0] is None:  # numbered children: an nn.Sequential
        lines = [f"class {name}(nn.Sequential):", f'    """{doc}"""', "",
                 f"    def __init__({signature}):",
                 _assign("        super().__init__", Ctor("", tuple(v for _k, v in entries)))]
        lines += [f"        {line}" for line in setup]
        return "\n".join(lines) + "\n"
    lines = [f"class {name}(nn.Module):", f'    """{doc}"""', "",
             f"    def __init__({signature}):", "        super().__init__()"]
    for key, value in entries:
        lines.append(_assign(f"        self.{key} = ", value))
    for line in setup:
        text = f"        {line}"
        lines.append(text + ("  # noqa: E501" if len(text) > 118 else ""))
    lines += ["", f"    def forward(self, {', '.join(params)}):"]
    lines += [f"        {line}" for line in forward]
    return "\n".join(lines) + "\n"


def _assign(prefix: str, value) -> str:
    indent = len(prefix) - len(prefix.lstrip())
    return prefix + _render(value, indent)


def _render(value, indent: int) -> str:
    flat = _flat(value)
    if indent + len(flat) + 20 <= LINE or not _breakable(value):
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, Draft):
        return f"{value.cls}(\n" + "".join(f"{pad}{k}={_render(v, indent + 4)},\n"
                                           for k, v in value.kwargs) + " " * indent + ")"
    if isinstance(value, Ctor):
        if len(value.args) == 1 and not value.shown() and isinstance(value.args[0], (list, dict)):
            return f"{value.callee}({_render(value.args[0], indent)})"  # nn.ModuleDict({ ... })
        parts = [_render(a, indent + 4) for a in value.args]
        parts += [f"{k}={_render(v, indent + 4)}" for k, v in value.shown()]
        return f"{value.callee}(\n" + "".join(f"{pad}{p},\n" for p in parts) + " " * indent + ")"
    if isinstance(value, list):
        return "[\n" + "".join(f"{pad}{_render(v, indent + 4)},\n" for v in value) + " " * indent + "]"
    return "{\n" + "".join(f'{pad}"{k}": {_render(v, indent + 4)},\n'
                           for k, v in value.items()) + " " * indent + "}"


def _breakable(value) -> bool:
    return isinstance(value, (list, dict)) or (isinstance(value, Ctor) and bool(value.args)) \
        or (isinstance(value, Draft) and bool(value.kwargs))


def _flat(value) -> str:
    if isinstance(value, Draft):
        return f"{value.cls}({', '.join(f'{k}={_flat(v)}' for k, v in value.kwargs)})"
    if isinstance(value, Ctor):
        parts = [_flat(a) for a in value.args] + [f"{k}={_flat(v)}" for k, v in value.shown()]
        return f"{value.callee}({', '.join(parts)})"
    if isinstance(value, Code):
        return value.text
    if isinstance(value, list):
        return f"[{', '.join(_flat(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}": {_flat(v)}' for k, v in value.items()) + "}"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _drafts_in(value) -> list[Draft]:
    if isinstance(value, Draft):
        return [value]
    if isinstance(value, Ctor):
        return [d for v in (*value.args, *(v for _k, v in value.kwargs)) for d in _drafts_in(v)]
    if isinstance(value, list):
        return [d for v in value for d in _drafts_in(v)]
    if isinstance(value, dict):
        return [d for v in value.values() for d in _drafts_in(v)]
    return []


def _structure(value) -> str:
    if isinstance(value, Draft):
        return f"{value.cls}({','.join(k for k, _v in value.kwargs)})"
    if isinstance(value, Ctor):
        inner = [_structure(a) for a in value.args] + [f"{k}={_structure(v)}" for k, v in value.kwargs]
        return f"{value.callee}({','.join(inner)})"
    if isinstance(value, Code):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(_structure(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_structure(v)}" for k, v in value.items()) + "}"
    return "?" + type(value).__name__


def _leaves(value, label: str) -> list[tuple[str, Any]]:
    if isinstance(value, Draft):
        return [(f"{label}.{k}", v) for k, v in value.kwargs]
    if isinstance(value, Ctor):
        out = [leaf for i, a in enumerate(value.args) for leaf in _leaves(a, f"{label}.{_arg_name(value, i)}")]
        return out + [leaf for k, v in value.kwargs for leaf in _leaves(v, f"{label}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{label}.{i}")]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{label}.{k}")]
    if isinstance(value, Code):
        return []
    return [(label, value)]


POSITIONAL = {"Conv": ("in_channels", "out_channels", "kernel_size"),
              "ConvTranspose": ("in_channels", "out_channels", "kernel_size"),
              "BatchNorm": ("num_features",), "InstanceNorm": ("num_features",),
              "Linear": ("in_features", "out_features"), "GroupNorm": ("num_groups", "num_channels"),
              "LayerNorm": ("normalized_shape",), "MaxPool": ("kernel_size",),
              "AvgPool": ("kernel_size",)}


def _arg_name(ctor: Ctor, index: int) -> str:
    stem = re.sub(r"\d+d$", "", ctor.callee.rpartition(".")[2])
    names = POSITIONAL.get(stem, ())
    return names[index] if index < len(names) else f"arg{index}"


def _substitute(value, replace: dict[int, Code], counter):
    if isinstance(value, Draft):
        kwargs = tuple((k, _substitute(v, replace, counter)) for k, v in value.kwargs)
        copy = Draft(value.unit, value.entries, value.setup, value.forward, value.params,
                     value.cls, kwargs)
        return copy
    if isinstance(value, Ctor):
        args = tuple(_substitute(a, replace, counter) for a in value.args)
        kwargs = tuple((k, _substitute(v, replace, counter)) for k, v in value.kwargs)
        return Ctor(value.callee, args, kwargs, value.defaults)
    if isinstance(value, list):
        return [_substitute(v, replace, counter) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, replace, counter) for k, v in value.items()}
    if isinstance(value, Code):
        return value
    index = next(counter)
    return replace.get(index, value)


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _class_name(block: str, taken: set[str]) -> str:
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", block) if part)
    name = name if name and name[0].isalpha() else f"Block{name}"
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}{n}", n + 1
    taken.add(unique)
    return unique
