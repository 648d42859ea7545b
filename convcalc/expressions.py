"""`${...}` in specs: integer arithmetic over a block's arguments, by a small interpreter of
Python's expression syntax tree (numbers, argument names, + - * / // % **, min and max),
never by `eval`."""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
        ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"min": min, "max": max}
_MAX_BITS = 256
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


class ExprError(Exception):
    pass


def evaluate(expr: str, env: dict[str, Any]) -> Any:
    """Evaluate `channels * 4`, `c // 2`, `max(8, c // 4)` over env; names, numbers and
    + - * / // % ** only."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"cannot read the expression {expr!r}")
    return _eval(tree.body, env, expr)


def _eval(node: ast.AST, env: dict, expr: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExprError(f"unknown name {node.id!r} in ${{{expr}}}"
                            + (f"; arguments: {', '.join(env)}" if env else ""))
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left, env, expr), _eval(node.right, env, expr)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
            raise ExprError(f"${{{expr}}}: arithmetic takes numbers; got {left!r} and {right!r}")
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ExprError(f"exponent too large in ${{{expr}}}")
        if isinstance(node.op, ast.Pow) and _pow_too_big(left, right):
            raise ExprError(f"${{{expr}}}: a value is too large (over {_MAX_BITS} bits)")
        try:
            value = _OPS[type(node.op)](left, right)
        except (ZeroDivisionError, TypeError, OverflowError, ValueError) as err:
            raise ExprError(f"${{{expr}}}: {err}")
        return _bounded(value, expr)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _eval(node.operand, env, expr)
        if not isinstance(operand, (int, float)) or isinstance(operand, bool):
            raise ExprError(f"${{{expr}}}: arithmetic takes numbers; got {operand!r}")
        return _UNARY[type(node.op)](operand)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS and not node.keywords):
        return _call(node, env, expr)
    raise ExprError(f"${{{expr}}} may use only numbers, argument names, + - * / // % ** "
                    f"and min/max")


def _call(node: ast.Call, env: dict, expr: str) -> Any:
    """min(a, b, ...) / max(a, b, ...): two or more numbers."""
    args = [_eval(a, env, expr) for a in node.args]
    name = node.func.id  # type: ignore[attr-defined]
    if len(args) < 2:
        raise ExprError(f"${{{expr}}}: {name}() takes two or more numbers, got {len(args)}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
        raise ExprError(f"${{{expr}}}: {name}() takes numbers; got "
                        + ", ".join(repr(v) for v in args))
    return _FUNCS[name](*args)


def _pow_too_big(base: Any, exp: Any) -> bool:
    """|base| ** exp would exceed _MAX_BITS bits: exp * log2|base| > _MAX_BITS."""
    if exp <= 0 or abs(base) <= 1:
        return False
    return exp * math.log2(abs(base)) > _MAX_BITS


def _bounded(value: Any, expr: str) -> Any:
    """Every intermediate value stays real, finite and within _MAX_BITS bits."""
    if isinstance(value, complex):
        raise ExprError(f"${{{expr}}}: the result is not a real number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprError(f"${{{expr}}}: the result is not a finite number")
        if value.is_integer():
            value = int(value)
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ExprError(f"${{{expr}}}: a value is too large (over {_MAX_BITS} bits)")
    return value


def substitute(value: Any, env: dict[str, Any]) -> Any:
    """Replace ${...} in strings (a whole-string template keeps the value's type)."""
    if isinstance(value, str) and "${" in value:
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole:
            return evaluate(whole.group(1), env)
        return _TEMPLATE.sub(lambda m: str(evaluate(m.group(1), env)), value)
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    return value
