"""Sliding-window rules shared by convolution and pooling kinds: padding, output sizes and
the fit diagnostics (`invalid-stride`, `skipped-input`, `non-positive-output`)."""

from __future__ import annotations

from convcalc import arithmetic as ar
from convcalc.diagnostics import Diagnostic, Severity, diag
from convcalc.layers.base import AXIS_ENDS, AXIS_NAMES, LayerError

Pads = tuple[tuple[int, int], ...]


def resolve_padding(padding, spatial, kernel, stride, dilation) -> tuple[Pads, list[Diagnostic]]:
    """Concrete (before, after) pairs; 'same' follows TensorFlow SAME (extra pad after)."""
    if padding != "same":
        return padding, []
    pads = tuple(ar.same_padding(i, k, s, d) for i, k, s, d in zip(spatial, kernel, stride, dilation))
    notes = []
    if any(s > 1 for s in stride):
        notes.append(diag(
            "same-padding",
            f"padding 'same' with stride {_axes_text(stride)} pads {_pairs_text(pads)} "
            f"(TensorFlow SAME: output ceil(input / stride), the odd pad after)",
            "PyTorch accepts padding='same' only with stride 1; write explicit padding pairs "
            "for a PyTorch model"))
    return pads, notes


def window_output(kind: str, spatial, kernel, stride, pads: Pads, dilation,
                  ceil_mode: bool = False) -> tuple[tuple[int, ...], list[Diagnostic]]:
    """Output sizes of a sliding window on every axis, and the fit diagnostics."""
    sizes = []
    for i, k, s, (pb, pa), d in zip(spatial, kernel, stride, pads, dilation):
        if ceil_mode:
            sizes.append(ar.pool_output_size(i, k, s, pb, pa, d, ceil_mode=True))
        else:
            sizes.append(ar.conv_output_size(i, k, s, pb, pa, d))
    if any(o <= 0 for o in sizes):
        axis = next(a for a, o in enumerate(sizes) if o <= 0)
        i, k, (pb, pa), d = spatial[axis], kernel[axis], pads[axis], dilation[axis]
        raise LayerError(
            "non-positive-output",
            f"{kind} output would be {list(sizes)}: on {_axis_name(len(spatial), axis)} the "
            f"padded input {i} + {pb} + {pa} = {i + pb + pa} is smaller than the effective "
            f"kernel {ar.effective_kernel(k, d)}",
            "use a larger input, more padding, or a smaller kernel or dilation")
    if ceil_mode:  # the last window may hang past the input: count that as padding after
        pads = tuple((pb, max(pa, (o - 1) * s + ar.effective_kernel(k, d) - i - pb))
                     for i, k, s, (pb, pa), d, o in zip(spatial, kernel, stride, pads, dilation,
                                                       sizes))
    notes = fit_diagnostics(spatial, kernel, stride, pads, dilation)
    return tuple(sizes), notes


def fit_diagnostics(spatial, kernel, stride, pads: Pads, dilation) -> list[Diagnostic]:
    """`invalid-stride` and `skipped-input`, grouping axes that fit alike into one finding."""
    ndim = len(spatial)
    groups: dict[tuple, list[int]] = {}
    for axis, args in enumerate(zip(spatial, kernel, stride, pads, dilation)):
        groups.setdefault(args, []).append(axis)
    notes = []
    for (i, k, s, (pb, pa), d), axes in groups.items():
        try:
            f = ar.fit(i, k, s, pb, pa, d)
        except ar.TooLarge as err:
            raise LayerError("invalid-value", f"too large to analyse: counting the input rows "
                             f"the dilated kernel leaves unread would walk {err}",
                             "use sizes below a million for stride, dilation or kernel_size "
                             "(no real network comes near)") from None
        where = " and ".join(_axis_name(ndim, a) for a in axes)
        if f.remainder:
            notes.append(_invalid_stride(f, i, k, s, pb, pa, d, where, ndim, axes))
        if f.skipped_rows:
            notes.append(_skipped_input(f, i, k, s, d, where, _axis_noun(ndim, axes[0])))
    return notes


def _skipped_input(f: ar.Fit, i, k, s, d, where, noun) -> Diagnostic:
    k_eff = ar.effective_kernel(k, d)
    unread = f"{f.skipped_rows} of {i} input {noun} are never read"
    if s <= k_eff:  # the holes of a dilated kernel
        return diag("skipped-input", f"dilation {d} with stride {s} on {where} leaves holes: "
                    f"{unread}", "use a stride that does not divide the dilation's gaps "
                    "evenly, or stack dilations with co-prime rates (Wang et al. 2018)")
    pointwise = k_eff == 1
    return diag("skipped-input",
                f"stride {s} > effective kernel {k_eff} on {where}: {unread} (between windows)"
                + (" - a 1-wide subsampling, as in ResNet's projection shortcuts" if pointwise else ""),
                f"use kernel_size >= {s}, or pool before a stride-1 layer",
                Severity.INFO if pointwise else Severity.WARNING)


def _invalid_stride(f: ar.Fit, i, k, s, pb, pa, d, where, ndim, axes) -> Diagnostic:
    k_eff = ar.effective_kernel(k, d)
    span = i + pb + pa - k_eff
    head = (f"({i} + {pb} + {pa} - {k_eff}) = {span} is not a multiple of stride {s} on {where}: "
            f"output {span // s + 1} ({span / s + 1:g} unrounded);")
    end = " and ".join(AXIS_ENDS.get(ndim, ("end",) * ndim)[a] for a in axes)
    noun = _axis_noun(ndim, axes[0])
    if f.dropped_rows == 0:
        pad_noun = noun if f.dropped_padding > 1 else noun[:-1]
        return diag("invalid-stride",
                    f"{head} only {f.dropped_padding} {pad_noun} of padding ({end}) "
                    f"{'are' if f.dropped_padding > 1 else 'is'} never read, no input pixel is lost",
                    severity=Severity.INFO)
    below, above = ar.fitting_sizes(i, k, s, pb, pa, d)
    total = ar.fitting_total_padding(i, k, s, pb + pa, d)
    before = total // 2
    hints = [f"this layer's input {above}" + (f" (or {below})" if below > 0 and below != i else "")
             + " on this axis",
             f"padding [{before}, {total - before}] (before, after; total {total})"]
    if f.remainder % d == 0:
        hints.append(f"kernel_size {k + f.remainder // d}")
    return diag("invalid-stride",
                f"{head} the last {f.dropped_rows} input {noun if f.dropped_rows > 1 else noun[:-1]}"
                f" ({end}) {'are' if f.dropped_rows > 1 else 'is'} never read",
                "use " + ", or ".join(hints) + "; `convcalc sizes` lists input sizes that fit",
                Severity.INFO if k_eff == 1 else Severity.WARNING)  # 1-wide: one more skipped row


def _axis_name(ndim: int, axis: int) -> str:
    names = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
    return names.get(ndim, tuple(f"axis {a}" for a in range(ndim)))[axis]


def _axis_noun(ndim: int, axis: int) -> str:
    return AXIS_NAMES.get(ndim, ("positions",) * ndim)[axis]


def _axes_text(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(list(values))


def _pairs_text(pads: Pads) -> str:
    return str([list(p) for p in pads])
