"""Spec -> Graph: blocks expanded, ${...} evaluated, names scoped, inputs resolved, layer
kinds constructed and checked, nodes in topological order.

Naming: a layer's name is its `name:` or, unnamed, `<type>_<i>` with i its 0-based position in
its `layers:` list. Inside a block instance names are prefixed with the instance's name, and
with `repeat: N` also with the copy's index: `layer1.0.conv1`, as PyTorch's state_dict names
(`repeat: {count: N, start: K}` numbers the copies from K).
A block's output is its last layer; the instance's name refers to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from convcalc.diagnostics import Diagnostic, diag
from convcalc.expressions import ExprError, substitute
from convcalc.layers import REGISTRY, Layer
from convcalc.layers.base import REQUIRED, InvalidValue, read_value
from convcalc.spec import (EXPECT_KEYS, BlockSpec, LayerSpec, Pos, Spec, closest,
                           did_you_mean)

INPUT = "input"
MAX_DEPTH = 32
MAX_LAYERS = 200_000  # a typo in a repeat count should not hang a CI job


@dataclass
class Node:
    """One layer of the expanded graph."""

    name: str
    type: str
    layer: Layer | None
    inputs: list[str]
    pos: Pos
    refs: dict[str, str] = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    expect_pos: Pos | None = None
    block: str | None = None


@dataclass
class GroupExpect:
    """`expect` on a block instance or a repeated layer: checks the whole group (its output's
    shape; params, MACs and FLOPs summed over its layers, as model.layer1.parameters())."""

    name: str
    expect: dict
    pos: Pos
    members: list[str]
    output: str


@dataclass
class Graph:
    file: str
    name: str | None
    input_shape: tuple[int, ...] | None
    nodes: list[Node]  # topological order; the network input is not a node
    expect: dict
    expect_pos: Pos | None
    diagnostics: list[Diagnostic]
    declared_input: tuple[int, ...] | None = None  # the spec's own input, when overridden
    groups: list[GroupExpect] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # block instance -> its output layer
    frozen: tuple[str, ...] = ()  # the spec's `frozen:` names and prefixes
    instances: dict[str, "Instance"] = field(default_factory=dict)  # block instance name -> it

    def is_frozen(self, name: str) -> bool:
        """A layer named in `frozen:`, or under a prefix there (layer1 -> layer1.0.conv1)."""
        return any(name == p or name.startswith(p + ".") for p in self.frozen)

    def output_of(self, name: str) -> str:
        """A layer's own name; a block instance's (or repeat's) name -> its last layer's."""
        seen: set[str] = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return name

    @property
    def resized(self) -> bool:
        """Analysed at another input size than the spec declares (`--input`)."""
        return self.declared_input is not None and self.declared_input != self.input_shape

    @property
    def output(self) -> Node | None:
        return self.nodes[-1] if self.nodes else None

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {INPUT: []}
        for node in self.nodes:
            out.setdefault(node.name, [])
            for name in [*node.inputs, *node.refs.values()]:
                out.setdefault(name, []).append(node.name)
        return out


@dataclass(frozen=True)
class Instance:
    """One use of a block: its block's name, its evaluated arguments and its inputs (full
    names, in the order of the using layer's `inputs:`), for exporters that keep the
    structure (a block becomes a module class)."""

    block: str
    args: dict[str, Any]
    inputs: tuple[str, ...]


# -- expansion ------------------------------------------------------------------------------

@dataclass
class _Scope:
    prefix: str
    inputs: list[str]  # the scope's inputs: the network input, or a block instance's inputs
    env: dict[str, Any]
    local: dict[str, str] = field(default_factory=dict)  # local name -> full name
    stack: tuple[str, ...] = ()


class _Builder:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.file = spec.file
        self.nodes: list[Node] = []
        self.names: dict[str, Node] = {}
        self.aliases: dict[str, str] = {}  # block instance name -> its last layer's name
        self.pending: list[tuple[Node, list[tuple[str, Pos]], _Scope]] = []
        self.found: list[Diagnostic] = list(spec.diagnostics)
        self.groups: list[GroupExpect] = []
        self.instances: dict[str, Instance] = {}

    def error(self, code: str, message: str, pos: Pos, layer: str | None = None,
              hint: str | None = None) -> None:
        self.found.append(diag(code, message, hint).at(self.file, pos.line, pos.column, layer))

    # A scope's entries are named first, so that inputs may name later layers too.
    def expand(self, layers: list[LayerSpec], scope: _Scope) -> str | None:
        previous = _resolved(scope.inputs[0]) if scope.inputs else None
        for entry in layers:
            type_name = self._eval(entry.type, scope, entry.pos, None)
            if not isinstance(type_name, str):
                self.error("invalid-value", f"layer type must be a name; got {type_name!r}",
                           entry.pos)
                continue
            local = self._eval(entry.name, scope, entry.pos, None)
            local = str(local) if local is not None else f"{type_name}_{entry.index}"
            if not local.strip() or re.fullmatch(r"input\d*", local):
                self.error("invalid-value", f"{local!r} cannot name a layer" + (
                    ": input, input1, ... name the network's or block's inputs"
                    if local.strip() else ""), entry.param_pos.get("name", entry.pos), None,
                           "choose another name")
                continue
            full = f"{scope.prefix}{local}"
            if local in scope.local:
                self.error("duplicate-name", f"two layers are named {full!r}", entry.pos, full,
                           "give each layer a unique name")
                continue
            scope.local[local] = full
            last = self.expand_entry(entry, type_name, full, previous, scope)
            previous = _resolved(full) if last is not None else previous
        return previous[len(_RESOLVED):] if previous else None

    def expand_entry(self, entry: LayerSpec, type_name: str, full: str, previous: str | None,
                     scope: _Scope) -> str | None:
        where = entry.param_pos.get("repeat", entry.pos)
        repeat = self._eval(entry.repeat, scope, where, full)
        start = 0
        if isinstance(repeat, dict) and set(repeat) <= {"count", "start"} and "count" in repeat:
            repeat, start = repeat["count"], repeat.get("start", 0)
        if repeat is not None and not (_positive(repeat) and (start == 0 or _positive(start))):
            self.error("invalid-value", f"repeat must be a positive integer or {{count: N, "
                       f"start: K}}; got {entry.repeat!r}", where, full,
                       "start numbers the copies from K (torchvision's layer2.1, layer2.2 after "
                       "a different layer2.0)")
            return None
        inputs = self._inputs(entry, scope, previous, full)
        if inputs is None:
            return None
        if len(self.nodes) + (repeat or 1) > MAX_LAYERS:
            raise _TooLarge(where, full)
        copies = [full] if repeat is None else [f"{full}.{start + i}" for i in range(repeat)]
        grouped = repeat is not None or type_name in self.spec.blocks
        first = len(self.nodes)
        current = inputs
        for copy in copies:
            if type_name in self.spec.blocks:
                out = self.expand_block(self.spec.blocks[type_name], entry, copy, current, scope)
            else:
                out = self.make_node(entry, type_name, copy, current, scope, not grouped)
            if out is None:
                return None
            current = [(_resolved(copy), entry.pos)]
        if repeat is not None:
            self.aliases[full] = copies[-1]
        if grouped and entry.expect is not None:  # checks the instance as a whole
            expect = self._expect(entry, scope, full)
            members = [node.name for node in self.nodes[first:]]
            if expect and members:
                self.groups.append(GroupExpect(full, expect, entry.param_pos.get("expect", entry.pos),
                                               members, self._final(full)))
        return full

    def _inputs(self, entry: LayerSpec, scope: _Scope, previous, full) -> list | None:
        where = entry.param_pos.get("inputs", entry.pos)
        if entry.inputs is None:
            return [(previous, where)] if previous is not None else []
        raw = self._eval(entry.inputs, scope, where, full)
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
            self.error("invalid-value", f"inputs must be a layer name or a list of names; got "
                       f"{raw!r}", where, full)
            return None
        item_pos = getattr(entry.inputs, "item_pos", None)
        if item_pos is not None and len(item_pos) == len(raw):
            return list(zip(raw, item_pos))  # point at the very name
        return [(r, where) for r in raw]

    def expand_block(self, block: BlockSpec, entry: LayerSpec, full: str, inputs, scope: _Scope):
        if block.name in scope.stack or len(scope.stack) > MAX_DEPTH:
            self.error("cycle", f"block {block.name!r} uses itself: "
                       f"{' -> '.join((*scope.stack, block.name))}", entry.pos, full)
            return None
        env = {}
        for arg, default in block.args.items():
            env[arg] = default
        for key, value in entry.params.items():
            if key not in block.args:
                self.error("unknown-parameter", f"block {block.name!r} has no argument {key!r}",
                           entry.key_pos.get(key, entry.pos), full,
                           did_you_mean(key, block.args) or
                           f"its arguments: {', '.join(block.args) or 'none'}")
                continue
            env[key] = self._eval(value, scope, entry.param_pos.get(key, entry.pos), full)
        if any(value is _FAILED for value in env.values()):
            return None  # reported where the argument is given: no cascade inside the block
        inner_inputs = [self._resolve_name(name, scope, pos, full) for name, pos in inputs]
        if any(i is None for i in inner_inputs):
            return None
        inner = _Scope(f"{full}.", inner_inputs, env, {}, (*scope.stack, block.name))
        if not block.layers:
            self.error("invalid-spec", f"block {block.name!r} has no layers", block.pos, full)
            return None
        last = self.expand(block.layers, inner)
        if last is None or last in inner_inputs:
            return None  # its layers' errors are reported
        self.aliases[full] = last
        self.instances[full] = Instance(block.name, dict(env), tuple(inner_inputs))
        return full

    def make_node(self, entry: LayerSpec, type_name: str, full: str, inputs, scope: _Scope,
                  with_expect: bool = True):
        if len(self.nodes) >= MAX_LAYERS:  # blocks of blocks can multiply past the count check
            raise _TooLarge(entry.pos, full)
        kind = REGISTRY.get(type_name)
        if kind is None:
            options = [*REGISTRY, *self.spec.blocks]
            self.error("unknown-layer-type", f"unknown layer type {type_name!r}", entry.pos, full,
                       did_you_mean(type_name, options) or "convcalc kinds lists the layer types")
            return None
        values, ok, misspelt = {}, True, set()
        known = [*kind.cls.params, "name", "inputs", "expect", "repeat"]
        for key, value in entry.params.items():
            if key not in kind.cls.params:
                ok = False
                close = closest(key, known)
                misspelt.add(close)
                self.error("unknown-parameter", f"{type_name} has no parameter {key!r}",
                           entry.key_pos.get(key, entry.pos), full,
                           f"did you mean {close!r}?" if close else f"its parameters: "
                           f"{', '.join(kind.cls.params) or 'none'}")
        for key, p in kind.cls.params.items():
            where = entry.param_pos.get(key, entry.pos)
            raw = self._eval(entry.params[key], scope, where, full) if key in entry.params \
                else p.default
            if raw is REQUIRED:
                ok = False
                if key not in misspelt:  # a misspelling of it is reported already
                    self.error("invalid-value", f"{type_name} needs {key!r}", entry.pos, full,
                               f"add {key}: ..." + (f" ({p.doc})" if p.doc else ""))
                continue
            if raw is None and p.default is REQUIRED:
                ok = False
                self.error("invalid-value", f"{key}: needs a value; got null", where, full,
                           f"give {key} a value" + (f" ({p.doc})" if p.doc else ""))
                continue
            if raw is not _FAILED and raw is not None:
                try:
                    raw = read_value(p, raw, kind.ndim)
                except InvalidValue as err:
                    ok = False
                    self.error("invalid-value", f"{key}: {err}", where, full,
                               p.doc or None)
                    continue
            ok = ok and raw is not _FAILED
            values[key] = raw
        values.update(kind.fixed)
        layer = kind.cls(type_name, kind.ndim, values) if ok else None
        expect = self._expect(entry, scope, full) if with_expect else {}
        node = Node(full, type_name, layer, [], entry.pos, expect=expect,
                    expect_pos=entry.param_pos.get("expect"), block=scope.prefix.rstrip(".") or None)
        if full in self.names:
            self.error("duplicate-name", f"two layers are named {full!r}", entry.pos, full,
                       "give each layer a unique name")
            return None
        self.names[full] = node
        self.nodes.append(node)
        refs = layer.ref_params() if layer else {}
        self.pending.append((node, list(inputs), scope, refs))
        return full

    def _expect(self, entry: LayerSpec, scope: _Scope, full: str) -> dict:
        if entry.expect is None:
            return {}
        where = entry.param_pos.get("expect", entry.pos)
        value = self._eval(entry.expect, scope, where, full)
        return self.read_expect(value, where, full)

    def read_expect(self, value: Any, where: Pos, layer: str | None) -> dict:
        """Validate an `expect:` mapping: shape/output are lists of sizes, counts integers."""
        if value is _FAILED:
            return {}
        if not isinstance(value, dict):
            self.error("invalid-value", "expect must be a mapping such as {shape: [64, 56, 56]} "
                       "or {params: 1000}", where, layer)
            return {}
        kept = {}
        for key, expected in value.items():
            if key not in EXPECT_KEYS:
                self.error("unknown-parameter", f"unknown expectation {key!r}", where, layer,
                           did_you_mean(key, EXPECT_KEYS) or f"expect takes {', '.join(EXPECT_KEYS)}")
            elif key in ("shape", "output") and not (
                    isinstance(expected, list) and expected and all(_positive(v) for v in expected)):
                self.error("invalid-value", f"expect {key}: a list of sizes such as [64, 56, 56]; "
                           f"got {expected!r}", where, layer)
            elif key not in ("shape", "output") and not (
                    isinstance(expected, int) and not isinstance(expected, bool) and expected >= 0):
                self.error("invalid-value", f"expect {key}: a whole number such as 1000; got "
                           f"{expected!r}", where, layer, "write numbers without separators")
            else:
                kept[key] = expected
        return kept

    def _eval(self, value: Any, scope: _Scope, pos: Pos, layer: str | None) -> Any:
        try:
            return substitute(value, scope.env)
        except ExprError as err:
            self.error("invalid-value", str(err), pos, layer,
                       "${...} takes integer arithmetic over the block's arguments")
            return _FAILED

    def _resolve_name(self, name: str, scope: _Scope, pos: Pos, layer: str) -> str | None:
        if name.startswith(_RESOLVED):
            return name[len(_RESOLVED):]
        if name == INPUT or re.fullmatch(r"input\d+", name):
            index = 0 if name == INPUT else int(name[5:])
            if index < len(scope.inputs):
                return scope.inputs[index]
            self.error("missing-input", f"{name!r}: this scope has {len(scope.inputs)} input(s)",
                       pos, layer, "a block's inputs are input (= input0), input1, ... in the "
                       "order of the using layer's `inputs:`")
            return None
        found = self._lookup(name, scope) or self._part(name, scope)
        if found is not None:
            return found
        self.error("unknown-reference", f"no layer named {name!r}", pos, layer,
                   did_you_mean(name, [INPUT, *scope.local, *self.names, *self.aliases]) or
                   "name an earlier layer, a block instance, or input")
        return None

    def _lookup(self, name: str, scope: _Scope) -> str | None:
        if name in scope.local:
            return scope.local[name]
        if name in self.names or name in self.aliases:
            return name
        if scope.prefix and f"{scope.prefix}{name}" in self.names:
            return f"{scope.prefix}{name}"
        return None

    def _part(self, name: str, scope: _Scope) -> str | None:
        """`<split>.<k>`: part k of a split or chunk, a node made on first use."""
        base, dot, index = name.rpartition(".")
        found = self._lookup(base, scope) if dot and index.isdigit() else None
        source = self.names.get(self._final(found)) if found else None
        if source is None or source.layer is None or not source.layer.yields_parts:
            return None
        full = f"{source.name}.{int(index)}"
        if full not in self.names:
            part = Node(full, source.type, source.layer.part(int(index)), [source.name],
                        source.pos, block=source.block)
            self.names[full] = part
            self.nodes.append(part)
        return full

    def _check_parts(self, node: Node, pos: Pos) -> None:
        """A split or chunk is read through its parts, never as a whole."""
        for name in node.inputs:
            source = self.names.get(name)
            if source is not None and source.layer is not None and source.layer.yields_parts:
                self.error("invalid-value", f"{name!r} is a {source.type}: name its parts, "
                           f"{name}.0, {name}.1, ...", pos, node.name,
                           f"e.g. inputs: [{name}.0]")
                node.layer = None

    def resolve(self) -> None:
        """Resolve every node's inputs and references now that all names are known."""
        for node, inputs, scope, refs in self.pending:
            resolved = [self._resolve_name(n, scope, p, node.name) for n, p in inputs]
            node.inputs = [self._final(r) for r in resolved if r is not None]
            if len(resolved) != len(node.inputs):
                node.layer = None
            self._check_parts(node, inputs[0][1] if inputs else node.pos)
            for param, target in refs.items():
                found = self._resolve_name(target, scope, node.pos, node.name)
                if found is None:
                    node.layer = None
                else:
                    node.refs[param] = self._final(found)
            self._check_arity(node)

    def _final(self, name: str) -> str:
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return name

    def _check_arity(self, node: Node) -> None:
        if node.layer is None:
            return
        fewest, most = node.layer.arity()
        count = len(node.inputs)
        if count < fewest or (most is not None and count > most):
            want = f"at least {fewest}" if most is None else str(fewest)
            self.error("missing-input", f"{node.type} takes {want} input(s); got {count}",
                       node.pos, node.name, "name them with inputs: [a, b]")
            node.layer = None

    def topological(self) -> list[Node]:
        """Kahn's algorithm, keeping spec order among ready nodes; report cycles."""
        order, state = [], {}

        def visit(node: Node, path: list[str]) -> None:
            if state.get(node.name) == "done":
                return
            if state.get(node.name) == "active":
                loop = path[path.index(node.name):] + [node.name]
                self.error("cycle", f"layers feed each other: {' -> '.join(loop)}", node.pos,
                           node.name, "a layer's inputs must come before it")
                raise _CycleFound
            state[node.name] = "active"
            for dep in [*node.inputs, *node.refs.values()]:
                if dep in self.names:
                    visit(self.names[dep], path + [node.name])
            state[node.name] = "done"
            order.append(node)

        try:
            for node in self.nodes:
                visit(node, [])
        except _CycleFound:
            return []
        return order


class _CycleFound(Exception):
    pass


class _TooLarge(Exception):
    """The expansion passed MAX_LAYERS: stop at once (a typo in a repeat count)."""

    def __init__(self, pos: Pos, layer: str):
        super().__init__(layer)
        self.pos, self.layer = pos, layer


_FAILED = object()
_RESOLVED = "\0"  # marks a name that is already a full name (a default input)


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _resolved(full_name: str) -> str:
    return _RESOLVED + full_name


def read_input_shape(spec: Spec, found: list[Diagnostic],
                     override: tuple[int, ...] | None = None) -> tuple[int, ...] | None:
    """The input shape (the override, e.g. --input, or the spec's): 2 to 4 positive ints."""
    value = list(override) if override is not None else spec.input
    if (isinstance(value, list) and 2 <= len(value) <= 4
            and all(_positive(v) for v in value)):
        return tuple(value)
    what = "the input (with --input)" if override is not None else "input"
    found.append(diag("invalid-value", f"{what} must be [C, L], [C, H, W] or [C, D, H, W] "
                      f"with positive integers; got {value!r}", "e.g. input: [3, 224, 224]")
                 .at(spec.file, spec.input_pos.line, spec.input_pos.column))
    return None


def build_graph(spec: Spec, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Spec -> Graph. Findings are collected in Graph.diagnostics, never raised."""
    builder = _Builder(spec)
    shape = read_input_shape(spec, builder.found, input_shape)
    top = _Scope("", [INPUT], {})
    try:
        builder.expand(spec.layers, top)
    except _TooLarge as err:
        builder.nodes, builder.pending = [], []
        builder.error("invalid-spec", f"the spec expands to more than {MAX_LAYERS:,} layers",
                      err.pos, err.layer, "check the repeat counts")
    builder.resolve()
    nodes = builder.topological()
    expect = ({} if spec.expect is None else
              builder.read_expect(spec.expect, spec.expect_pos or Pos(1, 1), None))
    declared = shape if input_shape is None else read_input_shape(spec, [])
    names = [node.name for node in nodes]
    for prefix in spec.frozen:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            from convcalc.spec import did_you_mean
            builder.error("unknown-reference", f"frozen: {prefix!r} names no layer",
                          spec.frozen_pos or Pos(1, 1), None,
                          did_you_mean(prefix, names) or "name layers or a prefix such as layer1")
    return Graph(spec.file, spec.name, shape, nodes, expect, spec.expect_pos, builder.found,
                 declared, builder.groups, dict(builder.aliases), tuple(spec.frozen),
                 dict(builder.instances))


__all__ = ["Node", "Graph", "Instance", "build_graph", "INPUT"]
