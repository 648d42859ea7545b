"""json.dumps(value, indent=2), byte for byte, at about three times its speed.

The standard library writes indented json with its pure-Python encoder (its C encoder only
writes compact json); a 10,000-layer report took it about 0.5 s. This writer handles the
values the reports hold (dicts, lists, tuples, str, int, float, bool, None) in one recursive
function; anything else goes to json.dumps, which raises as usual.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string

_CONSTANTS = {True: "true", False: "false", None: "null"}


def dumps(value, indent: int = 2) -> str:
    """The same text as json.dumps(value, indent=indent)."""
    out: list[str] = []
    _write(value, out, "\n", " " * indent)
    return "".join(out)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _scalar(value) -> str | None:
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None or value is True or value is False:
        return _CONSTANTS[value]
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    return None


def _key(key) -> str:
    if isinstance(key, str):
        return _string(key)
    text = _scalar(key)
    if text is None:
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
    return text if text.startswith('"') else _string(text)


def _write(value, out: list[str], newline: str, step: str) -> None:
    text = _scalar(value)
    if text is not None:
        out.append(text)
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + step
        separator = "{" + inner
        for key, item in value.items():
            head = separator + (_string(key) if type(key) is str else _key(key)) + ": "
            kind = type(item)
            text = (_string(item) if kind is str else int.__repr__(item) if kind is int
                    else _scalar(item))
            if text is None:
                out.append(head)
                _write(item, out, inner, step)
            else:
                out.append(head + text)
            separator = "," + inner
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + step
        texts = [_scalar(item) for item in value]
        if None not in texts:  # a list of numbers or names: one join
            out.append("[" + inner + ("," + inner).join(texts) + newline + "]")
            return
        separator = "[" + inner
        for item, text in zip(value, texts):
            out.append(separator)
            if text is None:
                _write(item, out, inner, step)
            else:
                out.append(text)
            separator = "," + inner
        out.append(newline + "]")
    else:
        out.append(json.dumps(value))  # raises TypeError, as json.dumps does
