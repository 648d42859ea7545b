"""Report -> the json contract: {"version": 1, "files": [...]}."""

from __future__ import annotations

from convcalc.analysis import Report
from convcalc.render import jsontext


def report_dict(report: Report) -> dict:
    totals = report.totals
    out = {
        "file": report.file,
        "name": report.name,
        "ok": report.ok,
        "input": list(report.input_shape) if report.input_shape else None,
        "output_shape": list(report.output_shape) if report.output_shape else None,
        "options": {"dtype": report.options.dtype, "batch": report.options.batch},
        "layers": [layer_dict(layer) for layer in report.layers],
        "totals": {
            "params": totals.params, "buffers": totals.buffers, "macs": totals.macs,
            "flops": totals.flops, "param_bytes": totals.param_bytes,
            "activation_bytes": totals.activation_bytes,
            "peak_activation_bytes": totals.peak_activation_bytes,
        },
        "diagnostics": [diagnostic_dict(d) for d in report.diagnostics],
    }
    out["totals"]["trainable_params"] = totals.trainable_params
    out["totals"]["non_trainable_params"] = totals.params - totals.trainable_params
    training = getattr(report, "training", None)
    if training is not None:
        out["options"]["optimizer"] = training.optimizer
        out["totals"]["training"] = training.totals_dict()
        for entry, row in zip(out["layers"], training.layers):
            entry["training"] = {"backward_macs": row.backward_macs, "saved_bytes": row.saved_bytes,
                                 "gradient_bytes": row.gradient_bytes,
                                 "optimizer_bytes": row.optimizer_bytes}
    return out


def layer_dict(layer) -> dict:
    out = {
        "name": layer.name, "type": layer.type, "inputs": layer.inputs,
        "output_shape": list(layer.output_shape) if layer.output_shape else None,
        "params": layer.params, "macs": layer.macs, "flops": layer.flops,
        "output_bytes": layer.output_bytes, "line": layer.line, "column": layer.column,
        "trainable_params": layer.trainable_params,
    }
    if layer.receptive_field is not None:
        out["receptive_field"] = layer.receptive_field
    elif layer.receptive_field_unknown:  # null, and why
        out["receptive_field"] = None
        out["receptive_field_unknown"] = layer.receptive_field_unknown
    return out


def diagnostic_dict(d) -> dict:
    return {"severity": d.severity.value, "code": d.code, "message": d.message,
            "layer": d.layer, "file": d.file, "line": d.line, "column": d.column,
            "hint": d.hint}


def render_json(reports: list[Report]) -> str:
    return jsontext.dumps({"version": 1, "files": [report_dict(r) for r in reports]})
