"""An imported spec as the YAML a person would write: top-level keys in block style, one
flow mapping per layer on one line (as the shipped specs are written), `type` and `name`
first."""

from __future__ import annotations

import re
from typing import Any

import yaml

LAYER_KEY_ORDER = ("type", "name", "inputs")
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.]+")


def safe_name(raw: str, taken: set[str]) -> str:
    """A layer name from a source name: runs of characters other than letters, digits, `_`
    and `.` become `_`, no empty parts around dots, and a numeric suffix keeps it unique."""
    name = SAFE_NAME.sub("_", raw).strip("._") or "node"
    name = re.sub(r"\.{2,}", ".", name)
    if name == "input":
        name = "input_"
    unique, n = name, 1
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
    return text.removesuffix("\n...\n").strip()  # a bare scalar ends its document


def layer_line(layer: dict) -> str:
    """{type: conv2d, name: conv1, out_channels: 64, ...} on one line."""
    ordered = {k: layer[k] for k in LAYER_KEY_ORDER if k in layer}
    ordered.update((k, v) for k, v in layer.items() if k not in ordered)
    return _flow(ordered)


def to_yaml(spec: dict, header: str = "") -> str:
    """The spec structure -> YAML text that parse_spec reads back to the same structure."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key in ("name", "description", "input"):
        if key in spec:
            lines.append(f"{key}: {_flow(spec[key])}")
    if spec.get("blocks"):
        lines.append("blocks:")
        for block_name, block in spec["blocks"].items():
            lines.append(f"  {block_name}:")
            if block.get("args"):
                lines.append(f"    args: {_flow(block['args'])}")
            lines.append("    layers:")
            lines.extend(f"      - {layer_line(layer)}" for layer in block["layers"])
    lines.append("layers:")
    lines.extend(f"  - {layer_line(layer)}" for layer in spec["layers"])
    if spec.get("expect"):
        lines.append(f"expect: {_flow(spec['expect'])}")
    return "\n".join(lines) + "\n"
