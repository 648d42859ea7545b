"""The check every importer ends with: convcalc's analysis of the imported spec must give
each layer the shape the source framework computed, and ask for exactly the weights the
source holds; otherwise the import fails naming the layer and writes nothing."""

from __future__ import annotations

from typing import Any

from convcalc.interop import ImportFailure


def verify(spec: dict, shapes: dict[str, tuple[int, ...]], weights: dict[str, Any],
           source: str, oracle: str) -> None:
    """`shapes`: layer -> the oracle's per-sample output shape (layers it does not know are
    not compared); `weights`: state_dict name -> array; `oracle` names who computed them."""
    from convcalc.analysis import analyze_text
    from convcalc.executor.weights import OPTIONAL_KEYS, expected_weights
    from convcalc.interop.spec_text import to_yaml
    report = analyze_text(to_yaml(spec), source)
    errors = [d for d in report.diagnostics if d.severity.name == "ERROR"]
    if errors:
        raise ImportFailure(source, f"convcalc rejects the imported spec: {errors[0].layer}: "
                            f"{errors[0].message}", "please report this: it is a bug in the "
                            "importer")
    for layer in report.layers:
        if layer.name not in shapes:
            continue
        seen = shapes[layer.name]
        if tuple(layer.output_shape or ()) != tuple(seen or ()):
            raise ImportFailure(source, f"layer {layer.name}: convcalc computes output "
                                f"{list(layer.output_shape or [])} but {oracle} gives "
                                f"{list(seen or [])}", "nothing was written; please report it")
    expected = expected_weights(report)
    given = {k: tuple(v.shape) for k, v in weights.items()}
    for key in sorted(set(expected) | set(given)):
        if key.endswith(OPTIONAL_KEYS) and key not in given:
            continue
        if expected.get(key) != given.get(key):
            raise ImportFailure(source, f"weight {key}: convcalc's layer has "
                                f"{list(expected.get(key) or []) if key in expected else 'none'}"
                                f", the model {list(given[key]) if key in given else 'none'}",
                                "nothing was written; please report it")
