"""Report -> one self-contained HTML file: the graph (pan, zoom, click a box to see its row),
the summary, the layer table (sortable, folded to blocks, with bars of params, MACs and memory),
the diagnostics linked to their layer and file:line, the receptive fields of a chosen unit on
the image for several layers, and with an image the feature maps of chosen layers from `run`.

Everything is inlined (CSS, JavaScript, the SVG, pictures as data: URIs) and nothing is
fetched, so the file opens offline and can be mailed or attached to a CI run."""

from __future__ import annotations

import base64
import io
import json
import re
from html import escape
from importlib.resources import files
from pathlib import Path

from convcalc.picture.layout import lay_out
from convcalc.picture.model import picture, shape_text
from convcalc.picture.svg import render_svg

DEFAULT_IMAGE = "chelsea.png"  # convcalc/data/images: the backdrop of the receptive fields
MAX_RF_LAYERS = 6
MAX_FEATURE_LAYERS = 4
MAX_CHANNELS = 16


def _asset(name: str) -> str:
    return files("convcalc").joinpath("data", "report", name).read_text(encoding="utf-8")


def layer_rows(report) -> list[dict]:
    """One dict per layer, as the page's table reads them."""
    rows = []
    for i, layer in enumerate(report.layers):
        rows.append({"i": i, "name": layer.name, "type": layer.type,
                     "shape": shape_text(layer.output_shape), "params": layer.params,
                     "macs": layer.macs, "flops": layer.flops, "bytes": layer.output_bytes,
                     "rf": (layer.receptive_field or {}).get("size"),
                     "rfStride": (layer.receptive_field or {}).get("stride"),
                     "line": layer.line, "block": layer.name.split(".")[0]
                     if "." in layer.name else None})
    return rows


def diagnostic_rows(report) -> list[dict]:
    graph = report.graph
    return [{"severity": d.severity.value, "code": d.code, "message": d.message,
             "hint": d.hint, "layer": (graph.output_of(d.layer) if graph else d.layer)
             if d.layer else None, "where": d.location()} for d in report.diagnostics]


def summary(report) -> dict:
    t = report.totals
    return {"name": report.name or Path(report.file).stem, "file": report.file,
            "input": shape_text(report.input_shape), "output": shape_text(report.output_shape),
            "layers": len(report.layers), "params": t.params, "macs": t.macs, "flops": t.flops,
            "paramBytes": t.param_bytes, "activationBytes": t.activation_bytes,
            "peakBytes": t.peak_activation_bytes, "dtype": report.options.dtype,
            "batch": report.options.batch,
            "errors": sum(d.severity.value == "error" for d in report.diagnostics),
            "warnings": sum(d.severity.value == "warning" for d in report.diagnostics),
            "training": training_summary(report)}


def training_summary(report) -> dict | None:
    """The cost of one training step (check --training's totals), when it was computed."""
    training = getattr(report, "training", None)
    if training is None:
        return None
    return {**training.totals_dict(), "batch": report.options.batch}


def rf_layers(report, limit: int = MAX_RF_LAYERS) -> list[dict]:
    """The last layer of each run of equal receptive-field strides (the end of each stage, on
    the way down and, in an encoder-decoder, on the way up), with its field and unit grid:
    the page draws the field of the chosen unit of each."""
    rank = len(report.input_shape or ()) - 1
    chosen: list[dict] = []
    for layer in report.layers:
        field, shape = layer.receptive_field, layer.output_shape
        if rank != 2 or not field or not shape or len(shape) != rank + 1 or \
                all(n == 1 for n in shape[1:]):  # a pooled vector (a gate): one unit
            continue
        entry = {"name": layer.name, "size": field["size"], "stride": field["stride"],
                 "padding": field["padding"], "grid": list(shape[1:])}
        if chosen and chosen[-1]["stride"] == entry["stride"]:
            chosen[-1] = entry
        else:
            chosen.append(entry)
    if len(chosen) > limit:  # keep the first, the last and evenly spaced ones between
        step = (len(chosen) - 1) / (limit - 1)
        chosen = [chosen[round(k * step)] for k in range(limit)]
    return chosen


def _data_uri(pixels, format: str = "PNG") -> str:
    from PIL import Image
    buffer = io.BytesIO()
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image.save(buffer, format=format, **({"quality": 85} if format == "JPEG" else {}))
    kind = "jpeg" if format == "JPEG" else "png"
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


MAX_BACKDROP_PIXELS = 4096 * 4096
MAX_BACKDROP_SIDE = 16384  # JPEG stops at 65,500 pixels a side; a page long before


def backdrop(report, image: Path | None) -> str | None:
    """The image the receptive fields are drawn on, at the network's input size (JPEG)."""
    from PIL import Image
    if not report.input_shape or len(report.input_shape) != 3:
        return None
    height, width = report.input_shape[1:]
    if height * width > MAX_BACKDROP_PIXELS or max(height, width) > MAX_BACKDROP_SIDE:
        return None  # a picture that large (or long) would not fit the page
    path = image or files("convcalc").joinpath("data", "images", DEFAULT_IMAGE)
    from convcalc.executor.images import open_image
    with open_image(path) as photo:  # one-line errors for broken files, bombs refused unread
        seen = photo.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    return _data_uri(seen, "JPEG")


def feature_maps(source, report, image: Path, weights, layers: list[str] | None) -> list[dict]:
    """Run the network on the image (convcalc.api.run) and keep a grid of the first
    MAX_CHANNELS maps of each chosen layer (default: the receptive-field layers)."""
    import numpy as np

    from convcalc.api import run
    from convcalc.executor.images import channel_grid, load_input

    channels, *spatial = report.input_shape
    x = load_input(Path(image), channels, len(spatial), tuple(spatial))  # (H, W, C)
    names = layers or [entry["name"] for entry in rf_layers(report, MAX_FEATURE_LAYERS)]
    result = run(source, np.moveaxis(x, -1, 0)[None], weights=weights, keep=names)
    out = []
    for name in names:
        array = result.outputs[name][0]
        if array.ndim != 3:
            continue
        maps = np.moveaxis(array[:MAX_CHANNELS], 0, -1)
        grid = channel_grid(maps, gap=max(1, maps.shape[0] // 16))
        zoom = max(1, 256 // max(grid.shape))
        out.append({"name": name, "shape": shape_text(array.shape), "shown": maps.shape[-1],
                    "uri": _data_uri(np.kron(grid, np.ones((zoom, zoom), np.uint8)))})
    return out


def render_report(report, *, source=None, image: Path | None = None, weights=None,
                  layers: list[str] | None = None) -> str:
    """The whole page as text. `source`: what convcalc.api.run reads (a path or spec text),
    needed for the feature maps of `image`; `weights`: state_dict arrays (default random)."""
    svg = render_svg(lay_out(picture(report)))
    data = {"summary": summary(report), "layers": layer_rows(report),
            "diagnostics": diagnostic_rows(report), "rf": rf_layers(report),
            "backdrop": backdrop(report, image),
            "backdropName": Path(image).name if image else f"{DEFAULT_IMAGE} (the default)",
            "features": feature_maps(source, report, image, weights, layers)
            if image is not None and source is not None and report.ok else []}
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    title = escape(f"{data['summary']['name']}: convcalc report")
    parts = {"title": title, "css": _asset("report.css"), "svg": svg, "data": blob,
             "js": _asset("report.js")}
    return re.sub(r"\{\{(title|css|svg|data|js)\}\}", lambda m: parts[m.group(1)],
                  _asset("report.html"))
