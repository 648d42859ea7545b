"""convcalc.render.jsontext writes what json.dumps(indent=2) writes (the oracle), byte for byte."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.render import jsontext

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text() | st.just(math.inf) | st.just(-math.inf))
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.tuples(inner, inner) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(values)
def test_same_text_as_json_dumps(value):
    assert jsontext.dumps(value) == json.dumps(value, indent=2)


def test_report_json_unchanged():
    from convcalc.analysis import analyze_text
    from convcalc.render.json_report import render_json, report_dict
    text = ("input: [3, 32, 32]\nlayers:\n  - {type: conv2d, out_channels: 8, kernel_size: 3, "
            "stride: 2}\n  - {type: relu}\n  - {type: flatten}\n  - {type: linear, out_features: 5}\n")
    report = analyze_text(text, "net.yaml")
    expected = json.dumps({"version": 1, "files": [report_dict(report)]}, indent=2)
    assert render_json([report]) == expected
