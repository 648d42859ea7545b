"""Pytest helpers: `assert_clean(source)` fails a test on a spec's findings.

    def test_my_network_spec():
        convcalc.testing.assert_clean("specs/my_net.yaml")
"""

from __future__ import annotations

from convcalc.api import InputLike, Report, SourceLike, check


def assert_clean(source: SourceLike, *, strict: bool = True, input: InputLike = None,
                 dtype: str = "float32", batch: int = 1) -> Report:
    """The Report of a spec with no error (and, when `strict`, no warning either; infos
    never fail). On failure, an AssertionError whose message is the diagnostics as
    `convcalc check` prints them, one `file:line:col: severity[code] ...` per line."""
    __tracebackhide__ = True  # pytest shows the message, not this frame
    report = check(source, input=input, dtype=dtype, batch=batch)
    failing = report.failing(strict)
    if failing:
        lines = [d.format() for d in report.diagnostics]
        lines.append(f"{report.file}: {len(failing)} finding(s) fail "
                     f"{'with --strict' if strict else 'the check'}")
        raise AssertionError("\n".join(lines))
    return report
