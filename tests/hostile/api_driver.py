"""Evaluate one expression of the Python API for the hostile corpus and the fuzzer:
`python tests/hostile/api_driver.py "convcalc.check(123)"`, in the corpus folder (or
`@FILE`, a file holding the expression, for one longer than a command line takes).

Prints one line, `ok <True|False|->` (the result's .ok, when it has one), `skipped: ...`
(an expression Python cannot compile: a fuzzer's nesting past the parser's limit) or
`raised <Type>: <message>` for the exceptions docs/api.md documents (OSError, ValueError,
TypeError of a wrong argument, RunError, WeightsError, ImportFailure, and AssertionError from
convcalc.testing), and exits 0. Any other exception, or a TypeError raised from inside
convcalc rather than at its API, escapes with its traceback: a bug.
"""

from __future__ import annotations

import sys
import traceback
import warnings

DOCUMENTED = ("OSError", "ValueError", "InputError", "UnicodeDecodeError", "RunError",
              "WeightsError", "ImportFailure", "ExportError", "AssertionError", "TypeError")
API_FILES = ("convcalc/api.py", "convcalc/diff.py", "convcalc/testing.py")


def documented(err: BaseException) -> str | None:
    """The name under which `err` is documented, or None."""
    names = [cls.__name__ for cls in type(err).__mro__]
    found = next((name for name in DOCUMENTED if name in names), None)
    if found == "TypeError":  # a wrong argument: raised by the API itself, not deep inside
        last = traceback.extract_tb(err.__traceback__)[-1].filename.replace("\\", "/")
        if not last.endswith(API_FILES):
            return None
    return found


def main(expression: str) -> int:
    import numpy as np

    import convcalc
    import convcalc.testing
    try:  # the fuzzer's mutations can nest a literal past what Python's parser takes
        code = compile(expression, "<api case>", "eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as err:
        print(f"skipped: the expression does not compile ({type(err).__name__})")
        return 0
    warnings.simplefilter("error")  # a raw warning is a finding too
    try:
        result = eval(code, {"convcalc": convcalc, "np": np, "nan": float("nan"),  # noqa: S307
                                   "inf": float("inf")})
    except Exception as err:  # noqa: BLE001 - judged below
        name = documented(err)
        if name is None:
            raise
        line = (str(err).strip().splitlines() or [""])[0]
        print(f"raised {name}: {line}")
        return 0
    print(f"ok {getattr(result, 'ok', '-')}")
    return 0


if __name__ == "__main__":
    given = sys.argv[1]
    if given.startswith("@"):  # @FILE: an expression too long for a command line
        with open(given[1:], encoding="utf-8") as stream:
            given = stream.read()
    sys.exit(main(given))
