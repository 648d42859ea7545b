"""YAML text -> Spec: the spec's structure, with the line and column of every value.

PyYAML's `compose` keeps each node's start mark; values are rebuilt from the nodes as plain
dicts and lists (`YMap`, `YSeq`) that remember where each entry stands, so that every
diagnostic can point at the file. Nothing here knows layer kinds: that is the graph's job.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml

from convcalc.diagnostics import Diagnostic, SpecError, diag


@dataclass(frozen=True)
class Pos:
    """1-based line and column in the spec file."""

    line: int
    column: int


class YMap(dict):
    """A mapping that remembers its own position, each key's position and each value's."""

    pos: Pos
    key_pos: dict
    value_pos: dict


class YSeq(list):
    """A sequence that remembers its own position and each item's position."""

    pos: Pos
    item_pos: list


def _pos(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


MAX_NODES = 1_000_000  # YAML aliases can expand a small file exponentially ("billion laughs")


MAX_DEPTH = 64  # lists in lists: a spec needs a handful; Python's recursion limit is 1000


def _expanded_size(node: yaml.Node) -> int:
    """How many values the node expands to, aliases counted each time they are used; linear
    in the file (each node is counted once, by identity), so that a "billion laughs" file is
    refused before it is built. Children before parents, without recursion."""
    sizes: dict[int, int] = {}
    stack = [(node, False)]
    while stack:
        current, ready = stack.pop()
        if id(current) in sizes:
            continue
        children = _children(current)
        if ready:
            sizes[id(current)] = 1 + sum(sizes[id(child)] for child in children)
        else:
            stack.append((current, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(node)]


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _too_deep(node: yaml.Node, file: str) -> SpecError:
    """The error for values nested past MAX_DEPTH, at the first node that deep."""
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in _children(current))
    return SpecError([diag("invalid-spec", f"values nested more than {MAX_DEPTH} levels deep",
                           "a spec nests a few lists and mappings, not hundreds")
                      .at(file, *_line_col(current))])


def _build(node: yaml.Node, loader: yaml.SafeLoader, file: str, budget: list | None = None) -> Any:
    if budget is None:
        budget = [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise SpecError([diag("invalid-spec", f"the spec expands to more than {MAX_NODES:,} "
                              f"values (YAML aliases repeated inside aliases?)",
                              "write the layers out, or use blocks with repeat").at(file, 1, 1)])
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<)
        out = YMap()
        out.pos, out.key_pos, out.value_pos = _pos(node), {}, {}
        for key_node, value_node in node.value:
            key = _build(key_node, loader, file, budget)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError([diag("invalid-spec", f"a mapping key must be a plain word; got "
                                      f"{key!r}").at(file, *_line_col(key_node))])
            if key in out:
                raise SpecError([diag("invalid-spec", f"key {key!r} appears twice in one mapping",
                                      "keep one of them").at(file, *_line_col(key_node))])
            out[key] = _build(value_node, loader, file, budget)
            out.key_pos[key] = _pos(key_node)
            out.value_pos[key] = _pos(value_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        out = YSeq(_build(item, loader, file, budget) for item in node.value)
        out.pos, out.item_pos = _pos(node), [_pos(item) for item in node.value]
        return out
    if node.tag == STR_TAG and type(node) is yaml.ScalarNode:  # most scalars: the text itself
        return node.value
    return loader.construct_object(node, deep=True)


STR_TAG = "tag:yaml.org,2002:str"


def _line_col(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _char_at(text: str, line: int, col: int) -> str:
    """The character at 1-based (line, col) of text, or '' past its end."""
    lines = text.splitlines()
    row = lines[line - 1] if 0 < line <= len(lines) else ""
    return row[col - 1] if 0 < col <= len(row) else ""


def _loader_class():
    """The C loader when PyYAML has libyaml, its implicit tags memoised per (kind, text): the
    resolver's regular expressions ran for every scalar."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if base.yaml_path_resolvers:  # the tag then depends on the path too
        return base
    if base not in _LOADERS:
        resolve, cache = base.resolve, {}

        def memoised(self, kind, value, implicit):
            key = (kind, value, implicit)
            if key not in cache:
                if len(cache) > 100_000:
                    cache.clear()
                cache[key] = resolve(self, kind, value, implicit)
            return cache[key]

        _LOADERS[base] = type("SpecLoader", (base,), {"resolve": memoised})
    return _LOADERS[base]


_LOADERS: dict = {}


def load_yaml(text: str, file: str) -> Any:
    """Parse YAML text into YMap / YSeq / scalars; a syntax error becomes a SpecError."""
    loader = _loader_class()(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # the pure-Python composer (no libyaml) on hundreds of levels
            raise SpecError([diag("invalid-spec", "values nested too deeply to read",
                                  "a spec nests a few lists and mappings, not hundreds")
                             .at(file, 1, 1)]) from None
        if node is None:
            raise SpecError([diag("invalid-spec", "the file is empty",
                                  "start from a spec in specs/").at(file, 1, 1)])
        if "*" in text and _expanded_size(node) > MAX_NODES:  # aliases: count before building
            return _build(node, loader, file, [0])
        try:
            return _build(node, loader, file)
        except RecursionError:  # hundreds of levels: name where it gets deep
            raise _too_deep(node, file) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(x) for x in (err.context, err.problem) if x)
        hint = "check indentation, colons and brackets"
        if _char_at(text, line, col) == "\t":
            message, hint = "a tab character: YAML does not allow tabs here", \
                "indent with spaces, not tabs"
        raise SpecError([diag("yaml-syntax", message or "invalid YAML", hint)
                         .at(file, line, col)])
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (NUL, controls)
        before = text[:err.position]
        line, col = before.count("\n") + 1, err.position - (before.rfind("\n") + 1) + 1
        code = ord(err.character) if isinstance(err.character, str) else int(err.character)
        raise SpecError([diag("yaml-syntax", f"character U+{code:04X} is not allowed in YAML",
                              "is it a text file?").at(file, line, col)])
    except yaml.YAMLError as err:
        message = " ".join(str(err).split())  # one line
        raise SpecError([diag("yaml-syntax", message).at(file, 1, 1)])
    finally:
        loader.dispose()


# -- the Spec structure ---------------------------------------------------------------------

RESERVED = ("type", "name", "inputs", "expect", "repeat")
TOP_KEYS = ("name", "input", "blocks", "layers", "expect", "description", "frozen")
EXPECT_KEYS = ("shape", "output", "params", "macs", "flops")


@dataclass
class LayerSpec:
    """One entry of a `layers:` list, before blocks are expanded and ${...} evaluated."""

    type: Any
    pos: Pos
    name: Any = None
    inputs: Any = None
    expect: Any = None
    repeat: Any = None
    params: dict = field(default_factory=dict)
    param_pos: dict = field(default_factory=dict)  # key -> position of its value
    key_pos: dict = field(default_factory=dict)  # key -> position of the key itself
    index: int = 0


@dataclass
class BlockSpec:
    name: str
    args: dict
    layers: list[LayerSpec]
    pos: Pos
    arg_pos: dict = field(default_factory=dict)


@dataclass
class Spec:
    file: str
    name: str | None
    input: Any
    input_pos: Pos
    layers: list[LayerSpec]
    blocks: dict[str, BlockSpec]
    expect: Any = None
    expect_pos: Pos | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    frozen: tuple[str, ...] = ()  # layer names or name prefixes whose weights do not train
    frozen_pos: Pos | None = None


def unreadable(path, err: Exception) -> str:
    """One line for a spec file that cannot be read: missing, a folder, not text; or a
    model file that cannot be imported (convcalc.interop.ImportFailure)."""
    from convcalc.interop import ImportFailure
    if isinstance(err, ImportFailure):
        return f"{err}" + (f" (hint: {err.hint})" if err.hint else "")
    if isinstance(err, UnicodeDecodeError):
        return f"cannot read {path}: not a UTF-8 text file (a YAML spec is expected)"
    if isinstance(err, IsADirectoryError):
        return f"cannot read {path}: it is a folder; name a spec file in it"
    return f"cannot read {path}: {getattr(err, 'strerror', None) or err}"


def closest(word: Any, options) -> str | None:
    """The option nearest to a misspelt word (difflib ratio >= 0.6), or None."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: Any, options) -> str | None:
    match = closest(word, options)
    return f"did you mean {match!r}?" if match else None


def parse_spec(text: str, file: str) -> Spec:
    """YAML text -> Spec. Raises SpecError when the file cannot be read as a spec at all;
    collects the other structural findings in Spec.diagnostics."""
    data = load_yaml(text, file)
    if not isinstance(data, YMap):
        raise SpecError([diag("invalid-spec", "a spec is a mapping with `input:` and `layers:`",
                              "see specs/ for examples").at(file, 1, 1)])
    found: list[Diagnostic] = []
    for key in data:
        if key not in TOP_KEYS:
            found.append(diag("unknown-parameter", f"unknown top-level key {key!r}",
                              did_you_mean(key, TOP_KEYS) or f"top-level keys: {', '.join(TOP_KEYS)}")
                         .at(file, *_at(data.key_pos[key])))
    if "input" not in data or "layers" not in data:
        missing = "input" if "input" not in data else "layers"
        raise SpecError(found + [diag("invalid-spec", f"the spec has no `{missing}:`",
                                      "a spec needs input: [C, H, W] and layers: [...]")
                                 .at(file, *_at(data.pos))])
    blocks = _parse_blocks(data.get("blocks"), data.value_pos.get("blocks", data.pos), file, found)
    layers = _parse_layers(data["layers"], data.value_pos["layers"], file, found)
    if not layers and not found:
        raise SpecError([diag("invalid-spec", "the spec has no layers",
                              "list them under layers:, one `- ` per layer")
                         .at(file, *_at(data.value_pos["layers"]))])
    frozen = _parse_frozen(data.get("frozen"), data.value_pos.get("frozen"), file, found)
    for key in ("name", "description"):  # text: `name: true` or `name: 2` is YAML's bool, int
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            found.append(diag("invalid-spec", f"{key} must be text; got {value!r}",
                              f'quote it: {key}: "{value}"').at(file, *_at(data.value_pos[key])))
    name = data.get("name") if isinstance(data.get("name"), str) else None
    return Spec(file, name, data["input"], data.value_pos["input"], layers, blocks,
                data.get("expect"), data.value_pos.get("expect"), found, frozen,
                data.value_pos.get("frozen"))


def _parse_frozen(raw: Any, pos: Pos | None, file: str, found: list) -> tuple[str, ...]:
    """`frozen: [conv1, bn1, layer1]`: layers (or every layer under a prefix such as layer1,
    as model.layer1.requires_grad_(False)) whose parameters do not train."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        found.append(diag("invalid-value", f"frozen must be a list of layer names or prefixes; "
                          f"got {raw!r}", "e.g. frozen: [conv1, bn1, layer1]").at(file, *_at(pos)))
        return ()
    return tuple(raw)


def _at(pos: Pos) -> tuple[int, int]:
    return pos.line, pos.column


def _parse_blocks(raw: Any, pos: Pos, file: str, found: list) -> dict[str, BlockSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, YMap):
        found.append(diag("invalid-spec", "`blocks:` must map block names to definitions")
                     .at(file, *_at(pos)))
        return {}
    blocks = {}
    for name, body in raw.items():
        where = raw.value_pos[name]
        if not isinstance(body, YMap) or "layers" not in body:
            found.append(diag("invalid-spec", f"block {name!r} needs `layers:` (and optional "
                              f"`args:`)").at(file, *_at(where)))
            continue
        for key in body:
            if key not in ("args", "layers", "description"):
                found.append(diag("unknown-parameter", f"unknown key {key!r} in block {name!r}",
                                  did_you_mean(key, ("args", "layers")) or "a block has args and layers")
                             .at(file, *_at(body.key_pos[key])))
        args = body.get("args") or YMap()
        if not isinstance(args, dict):
            found.append(diag("invalid-spec", f"args of block {name!r} must be a mapping "
                              "of names to defaults").at(file, *_at(body.value_pos["args"])))
            args = YMap()
        layers = _parse_layers(body["layers"], body.value_pos["layers"], file, found)
        blocks[str(name)] = BlockSpec(str(name), dict(args), layers, where,
                                      getattr(args, "value_pos", {}))
    return blocks


def _parse_layers(raw: Any, pos: Pos, file: str, found: list) -> list[LayerSpec]:
    if not isinstance(raw, YSeq):
        found.append(diag("invalid-spec", "`layers:` must be a list", "write one `- ` per layer")
                     .at(file, *_at(pos)))
        return []
    layers = []
    for index, (item, item_pos) in enumerate(zip(raw, raw.item_pos)):
        if isinstance(item, str):
            layers.append(LayerSpec(item, item_pos, index=index))
        elif isinstance(item, YMap) and "type" in item:
            reserved = {k: item[k] for k in RESERVED if k in item}
            params = {k: v for k, v in item.items() if k not in RESERVED}
            layers.append(LayerSpec(reserved["type"], item_pos, reserved.get("name"),
                                    reserved.get("inputs"), reserved.get("expect"),
                                    reserved.get("repeat"), params, dict(item.value_pos),
                                    dict(item.key_pos), index))
        else:
            found.append(diag("invalid-spec", "a layer is a type name (`- relu`) or a mapping "
                              "with `type:`", "e.g. - {type: conv2d, out_channels: 64, "
                              "kernel_size: 3}").at(file, *_at(item_pos)))
    return layers
