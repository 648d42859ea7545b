"""Reports -> CSV: one row per table row (every layer, or the blocks of --depth; --sort and
--top apply), raw numbers, for spreadsheets and scripts."""

from __future__ import annotations

import csv
import io

from convcalc.render.common import shape_text
from convcalc.render.summary import input_shape, kernel_stride, rows

FIELDS = ["file", "index", "name", "type", "layers", "input", "output", "kernel", "stride",
          "params", "trainable_params", "macs", "flops", "macs_share", "output_bytes"]
TRAINING = ["backward_macs", "saved_bytes", "gradient_bytes", "optimizer_bytes"]


def render_csv(reports, view=None) -> str:
    training = any(getattr(r, "training", None) is not None for r in reports)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS + (TRAINING if training else []))
    for report in reports:
        depth = view.depth if view and view.depth else None
        total = report.totals.macs
        for row in rows(report, depth, view.sort if view else None, view.top if view else None):
            kernel, stride = kernel_stride(report, row)
            cells = [report.file, row.index, row.name, row.type, len(row.layers),
                     shape_text(input_shape(report, row)), shape_text(row.last.output_shape),
                     kernel, stride, row.total("params"), row.total("trainable_params"),
                     row.total("macs"), row.total("flops"),
                     f"{row.total('macs') / total:.6f}" if total else "",
                     row.total("output_bytes")]
            if training:
                cells += [row.train_total(key) for key in TRAINING]
            writer.writerow(cells)
    return out.getvalue()
