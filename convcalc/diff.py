"""Two analyses compared: what a change to a network costs (`convcalc diff`, convcalc.diff).

Layers are matched by name. A layer is `added` (only in the new network), `removed` (only in
the old), `changed` (its kind, output shape, params, MACs or receptive field differ) or
`same`. Totals: params, MACs, FLOPs, memory (peak activation bytes, the analysis' liveness
walk) and rf (the receptive-field size of the network's output: the last layer that has
one, its largest axis), each with old, new, delta = new - old and percent = 100 * delta / old
(None where old is 0). Thresholds (`params>+5%`, `macs>1G`, `rf<-10%`) compare a delta.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convcalc.analysis import LayerReport

METRICS = ("params", "macs", "flops", "memory", "rf")
LAYER_FIELDS = ("kind", "output_shape", "params", "macs", "rf")
SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_RULE = re.compile(r"\s*(params|macs|flops|memory|rf)\s*(>=|<=|>|<)\s*([+-]?)\s*"
                   r"([0-9]*\.?[0-9]+)\s*(%|[kmgt]i?b?|)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Delta:
    """One figure before and after: delta = new - old; percent = 100 * delta / old."""

    old: int | None
    new: int | None

    @property
    def delta(self) -> int | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def percent(self) -> float | None:
        if self.delta is None or not self.old:
            return None
        return 100.0 * self.delta / self.old


@dataclass(frozen=True)
class LayerDiff:
    name: str
    status: str  # added | removed | changed | same
    old: LayerReport | None
    new: LayerReport | None
    changed: tuple[str, ...] = ()  # of LAYER_FIELDS


@dataclass(frozen=True)
class Threshold:
    """`metric op [sign]value[%|suffix]`: crossed when the metric's delta (or its percent)
    compares true against the value."""

    text: str
    metric: str
    op: str
    value: float
    percent: bool

    def crossed(self, delta: Delta) -> bool | None:
        """True, False, or None when it cannot be known (a percent of a zero old figure)."""
        measured = delta.percent if self.percent else delta.delta
        if measured is None:
            return False if delta.delta == 0 else None
        return {">": measured > self.value, ">=": measured >= self.value,
                "<": measured < self.value, "<=": measured <= self.value}[self.op]


@dataclass(frozen=True)
class Diff:
    old: object  # convcalc.api.Report
    new: object
    totals: dict[str, Delta]
    layers: tuple[LayerDiff, ...]

    def crossed(self, thresholds: list[Threshold]) -> list[Threshold]:
        """The thresholds this change crosses (an unknowable percent counts as crossed)."""
        return [t for t in thresholds if t.crossed(self.totals[t.metric]) is not False]


def parse_threshold(text: str) -> Threshold:
    """'params>+5%', 'macs>=1G', 'memory>64MiB', 'rf<-10%' -> Threshold (ValueError if not)."""
    match = _RULE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r}: expected METRIC OP VALUE, e.g. 'params>+5%', 'macs>1G', "
                         f"'memory>64MiB', 'rf<-10%' (metrics: {', '.join(METRICS)})")
    metric, op, sign, number, unit = match.groups()
    value = float(number) * (1 if unit == "%" else SUFFIX[unit.lower()])
    return Threshold(text.strip(), metric.lower(), op, -value if sign == "-" else value,
                     unit == "%")


def layer_rf(layer: LayerReport | None) -> int | None:
    """The largest axis of a layer's receptive-field size (None where it has none)."""
    rf = layer.receptive_field if layer else None
    sizes = rf.get("size") if rf else None
    return max(sizes) if sizes else None


def network_rf(report) -> int | None:
    for layer in reversed(report.layers):
        if layer_rf(layer) is not None:
            return layer_rf(layer)
    return None


def totals(report) -> dict[str, int | None]:
    t = report.totals
    return {"params": t.params, "macs": t.macs, "flops": t.flops,
            "memory": t.peak_activation_bytes, "rf": network_rf(report)}


def _fields(layer: LayerReport) -> dict:
    return {"kind": layer.kind, "output_shape": layer.output_shape, "params": layer.params,
            "macs": layer.macs, "rf": layer_rf(layer)}


def compare_layers(old_layers, new_layers) -> tuple[LayerDiff, ...]:
    """The new network's layers in order, then the removed ones in the old order."""
    before = {layer.name: layer for layer in old_layers}
    after = {layer.name for layer in new_layers}
    rows = []
    for layer in new_layers:
        was = before.get(layer.name)
        if was is None:
            rows.append(LayerDiff(layer.name, "added", None, layer))
            continue
        a, b = _fields(was), _fields(layer)
        changed = tuple(key for key in LAYER_FIELDS if a[key] != b[key])
        rows.append(LayerDiff(layer.name, "changed" if changed else "same", was, layer, changed))
    rows += [LayerDiff(layer.name, "removed", layer, None) for layer in old_layers
             if layer.name not in after]
    return tuple(rows)


def compare(old, new, *, input=None, dtype: str = "float32", batch: int = 1) -> Diff:
    """Two sources (anything convcalc.check takes) -> Diff, both analysed with the same
    options."""
    from convcalc.api import check
    return diff(check(old, input=input, dtype=dtype, batch=batch),
                check(new, input=input, dtype=dtype, batch=batch))


def diff(old, new) -> Diff:
    """Two Reports (convcalc.check's) -> Diff."""
    a, b = totals(old), totals(new)
    return Diff(old, new, {key: Delta(a[key], b[key]) for key in METRICS},
                compare_layers(old.layers, new.layers))
