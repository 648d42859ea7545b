"""One layer on one axis, as each framework computes it: the padding it applies, the output
size, and the formula with the numbers substituted.

A rule is a function (Axis) -> Outcome built on convcalc.arithmetic; the rules and their
sources are listed in docs/calc.md (facts from design/CONVENTIONS.md):

- torch (default): floor; pools may take ceil_mode (the last window must start inside the
  input or the left padding); padding='same' only with stride 1, the odd pad after.
- tensorflow: SAME gives o = ceil(i/s), the odd pad after; VALID o = ceil((i - k_eff + 1)/s).
- caffe: conv floors; pooling always rounds up, clipped like PyTorch only when pad > 0.
- onnx: explicit pads, or auto_pad SAME_UPPER (odd pad at the end) / SAME_LOWER (at the
  beginning); pool ceil_mode clipped as PyTorch (onnx/onnx#5741, ONNX 1.16).
- darknet: conv pad=1 means p = size/2; [maxpool] padding is the total, default size - 1,
  padding // 2 before; [avgpool] is global; [deconvolutional] o = (i-1)*s + size - 2p.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from convcalc import arithmetic as ar

CONVENTIONS = ("torch", "tensorflow", "caffe", "onnx", "darknet")
KINDS = ("conv", "pool", "tconv")
SAME_WORDS = ("same", "same_upper", "same_lower")



@dataclass(frozen=True)
class Axis:
    """One spatial axis of a single-layer question. padding None = the convention's default;
    output_padding None = not given (PyTorch reads 0, Keras computes its own)."""

    size: int
    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: tuple[int, int] | str | None = None
    output_padding: int | None = None
    ceil_mode: bool = False

    @property
    def k_eff(self) -> int:
        return ar.effective_kernel(self.kernel, self.dilation)


@dataclass(frozen=True)
class Outcome:
    """What one convention makes of an Axis. `unsupported` says why it cannot express it."""

    output: int | None
    pads: tuple[int, int] | None = None
    formula: str = ""  # "o = <expression> = <output>"
    padding_formula: str = ""  # how the padding was derived, when it was
    note: str = ""  # what the convention does differently
    unsupported: str | None = None
    overhang: int = 0  # ceil mode: rows the last window reads beyond the padded input
    rounding: str = "floor"

    @property
    def ok(self) -> bool:
        return self.unsupported is None and self.output is not None and self.output > 0


def unsupported(reason: str) -> Outcome:
    return Outcome(None, unsupported=reason)


# -- formulas written out -------------------------------------------------------------------

def _sum(size: int, pads: tuple[int, int], k_eff: int) -> str:
    return f"{size} + {pads[0]} + {pads[1]} - {k_eff}"


def _window_formula(a: Axis, pads: tuple[int, int], rounding: str, out: int,
                    clipped: bool = False) -> str:
    """o = floor((i + p_b + p_a - k_eff) / s) + 1, written with a's numbers."""
    inner = _sum(a.size, pads, a.k_eff)
    body = f"({inner}) + 1" if a.stride == 1 else f"{rounding}(({inner}) / {a.stride}) + 1"
    return f"o = {body}{' - 1' if clipped else ''} = {out}"


def _k_eff_formula(a: Axis) -> str:
    return f"k_eff = {a.dilation}*({a.kernel} - 1) + 1 = {a.k_eff}" if a.dilation > 1 else ""


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# -- padding --------------------------------------------------------------------------------

def _same_pads(a: Axis, lower: bool = False) -> tuple[tuple[int, int], str]:
    before, after = ar.same_padding(a.size, a.kernel, a.stride, a.dilation)
    out = ar.same_output_size(a.size, a.stride)
    total = before + after
    text = (f"pad total = max(({out} - 1)*{a.stride} + {a.k_eff} - {a.size}, 0) = {total}")
    if lower:
        before, after = after, before
    return (before, after), f"{text}: {before} before, {after} after"


def _explicit(a: Axis) -> tuple[int, int]:
    return (0, 0) if a.padding in (None, "valid") else a.padding


def _symmetric_only(convention: str, pads: tuple[int, int]) -> str | None:
    if pads[0] != pads[1]:
        return (f"{convention} pads both sides alike (one pad per axis); "
                f"{pads[0]}:{pads[1]} needs an explicit pad layer before it")
    return None


def _conv_pads(convention: str, a: Axis) -> tuple[tuple[int, int] | None, str, str | None]:
    """(pads, how they were derived, why not) for a convolution."""
    p = a.padding
    if p in SAME_WORDS:
        if convention == "onnx":
            pads, text = _same_pads(a, lower=p == "same_lower")
            return pads, f"auto_pad {'SAME_LOWER' if p == 'same_lower' else 'SAME_UPPER'}: {text}", None
        if p != "same":
            return None, "", f"{p.upper()} is an ONNX auto_pad; {convention} has no such padding"
        if convention == "torch":
            if a.stride != 1:
                return None, "", "PyTorch accepts padding='same' only with stride 1 (it raises)"
            pads, _ = _same_pads(a)
            return pads, f"padding='same': total d*(k - 1) = {sum(pads)}, the odd pad after", None
        if convention == "tensorflow":
            pads, text = _same_pads(a)
            return pads, f"SAME: {text}", None
        if convention == "darknet":
            pad = a.kernel // 2
            return (pad, pad), f"pad=1 means p = size/2 = {pad}", None
        return None, "", f"Caffe has no 'same' padding: write pad: {a.k_eff // 2}"
    pads = _explicit(a)
    if convention in ("caffe", "darknet"):
        why = _symmetric_only(convention.capitalize(), pads)
        if why:
            return None, "", why
    return pads, "", None


# -- the rules ------------------------------------------------------------------------------

def conv(convention: str, a: Axis) -> Outcome:
    """o = floor((i + p_b + p_a - k_eff) / s) + 1 in every framework; they differ in padding."""
    pads, pad_text, why = _conv_pads(convention, a)
    if why:
        return unsupported(why)
    out = ar.conv_output_size(a.size, a.kernel, a.stride, *pads, a.dilation)
    if convention in ("tensorflow", "onnx") and a.padding in SAME_WORDS:
        formula = f"o = ceil({a.size} / {a.stride}) = {out}"
    elif convention == "tensorflow" and a.padding == "valid":
        formula = f"o = ceil(({a.size} - {a.k_eff} + 1) / {a.stride}) = {out}"
    else:
        formula = _window_formula(a, pads, "floor", out)
    note = {"torch": "", "tensorflow": "SAME: the odd pad after" if a.padding == "same" else "",
            "onnx": {"same_lower": "SAME_LOWER: the odd pad before",
                     "same": "SAME_UPPER: the odd pad after",
                     "same_upper": "SAME_UPPER: the odd pad after"}.get(a.padding, ""),
            "caffe": "", "darknet": "pad=1: p = size/2" if a.padding == "same" else ""}
    return Outcome(out, pads, formula, _join(_k_eff_formula(a), pad_text), note[convention])


def pool(convention: str, a: Axis, pool_type: str = "max") -> Outcome:
    """Floor, ceil with clipping, Caffe's ceil, TF SAME, Darknet's total padding."""
    rule = {"torch": _pool_torch, "tensorflow": _pool_tensorflow, "caffe": _pool_caffe,
            "onnx": _pool_onnx, "darknet": _pool_darknet}[convention]
    return rule(a, pool_type)


def _ceil_pool(a: Axis, pads: tuple[int, int], note: str, clip_always: bool = True) -> Outcome:
    """o = ceil((i + p_b + p_a - k_eff) / s) + 1, minus 1 if the last window would start in
    the right padding ((o-1)*s >= i + p_b); Caffe clips only when it pads."""
    span = a.size + sum(pads) - a.k_eff
    raw = ar.ceil_div(span, a.stride) + 1
    clip = (clip_always or pads[0] > 0) and (raw - 1) * a.stride >= a.size + pads[0]
    out = raw - 1 if clip else raw
    overhang = max(0, (out - 1) * a.stride + a.k_eff - (a.size + sum(pads)))
    text = ""
    if clip:
        text = (f"the last window would start at {(raw - 1) * a.stride} >= {a.size} + "
                f"{pads[0]}, in the right padding: dropped")
    return Outcome(out, pads, _window_formula(a, pads, "ceil", out, clip),
                   _join(_k_eff_formula(a), text), note, overhang=overhang, rounding="ceil")


def _pool_limits(a: Axis, pads: tuple[int, int], pool_type: str) -> str | None:
    limit = ar.max_pool_padding(a.kernel)
    if max(pads) > limit:
        return f"PyTorch pools take padding <= kernel_size/2 = {limit}; got {max(pads)}"
    if pool_type == "avg" and a.dilation > 1:
        return "PyTorch's AvgPool has no dilation"
    return None


def _pool_torch(a: Axis, pool_type: str) -> Outcome:
    if a.padding in SAME_WORDS:
        return unsupported("PyTorch pools take explicit padding, not 'same'")
    pads = _explicit(a)
    why = _pool_limits(a, pads, pool_type)
    if why:
        return unsupported(why)
    if a.ceil_mode:
        return _ceil_pool(a, pads, "ceil_mode: round up, clipped")
    return conv("torch", Axis(a.size, a.kernel, a.stride, a.dilation, pads))


def _pool_tensorflow(a: Axis, pool_type: str) -> Outcome:
    if a.ceil_mode:
        return unsupported("TensorFlow pools have no ceil mode (SAME rounds up: o = ceil(i/s))")
    outcome = conv("tensorflow", a)
    if pool_type == "avg" and a.padding == "same" and outcome.ok and sum(outcome.pads or (0, 0)):
        return _with_note(outcome, "SAME: averages skip the padded values")
    return outcome


def _pool_caffe(a: Axis, pool_type: str) -> Outcome:
    if a.padding in SAME_WORDS:
        return unsupported("Caffe has no 'same' padding")
    pads = _explicit(a)
    if a.dilation > 1:
        return unsupported("Caffe pooling has no dilation")
    why = _symmetric_only("Caffe", pads)
    if why:
        return unsupported(why)
    return _ceil_pool(a, pads, "Caffe pools always round up", clip_always=False)


def _pool_onnx(a: Axis, pool_type: str) -> Outcome:
    if a.ceil_mode and a.padding not in SAME_WORDS:
        return _ceil_pool(a, _explicit(a), "ceil_mode: round up, clipped (ONNX >= 1.16)")
    return conv("onnx", a)


def _pool_darknet(a: Axis, pool_type: str) -> Outcome:
    if pool_type == "avg":
        return Outcome(1, (0, 0), "o = 1", note="Darknet's [avgpool] is global")
    if a.ceil_mode or a.dilation > 1:
        return unsupported("Darknet's [maxpool] has no ceil mode or dilation")
    if a.padding in ("same_upper", "same_lower"):
        return unsupported(f"{a.padding.upper()} is an ONNX auto_pad")
    given = None if a.padding in (None, "same") else sum(_explicit(a))
    pads = ar.darknet_maxpool_padding(a.kernel, given)
    if a.padding not in (None, "same") and pads != _explicit(a):
        return unsupported(f"Darknet's [maxpool] puts padding // 2 before: padding={given} "
                           f"pads {pads[0]}:{pads[1]}")
    out = ar.conv_output_size(a.size, a.kernel, a.stride, *pads)
    total = sum(pads)
    derived = (f"padding = size - 1 = {total} (the default, a total): {pads[0]} before, "
               f"{pads[1]} after" if given is None else f"padding = {total} (a total)")
    formula = (f"o = floor(({a.size} + {total} - {a.kernel}) / {a.stride}) + 1 = {out}"
               if a.stride > 1 else f"o = ({a.size} + {total} - {a.kernel}) + 1 = {out}")
    note = "padding is the total, default size - 1" if given is None else ""
    return Outcome(out, pads, formula, derived, note)


def tconv(convention: str, a: Axis) -> Outcome:
    """o = (i-1)*s - p_b - p_a + d*(k-1) + output_padding + 1, and each framework's variant."""
    rule = {"torch": _tconv_torch, "onnx": _tconv_onnx, "tensorflow": _tconv_keras,
            "caffe": _tconv_caffe, "darknet": _tconv_caffe}[convention]
    return rule(a) if rule is not _tconv_caffe else rule(a, convention)


def _tconv_formula(a: Axis, pads: tuple[int, int], op: int, out: int) -> str:
    return (f"o = ({a.size} - 1)*{a.stride} - {pads[0]} - {pads[1]} + {a.dilation}*({a.kernel} - 1)"
            f" + {op} + 1 = {out}")


def _output_padding_limit(a: Axis) -> str | None:
    op = a.output_padding or 0
    if op >= max(a.stride, a.dilation):
        return f"output_padding {op} must be smaller than max(stride, dilation) = " \
               f"{max(a.stride, a.dilation)}"
    return None


def _tconv_torch(a: Axis) -> Outcome:
    if a.padding in SAME_WORDS:
        return unsupported("PyTorch's ConvTranspose has no padding='same'")
    why = _output_padding_limit(a)
    if why:
        return unsupported(why)
    pads, op = _explicit(a), a.output_padding or 0
    out = ar.transposed_output_size(a.size, a.kernel, a.stride, *pads, a.dilation, op)
    return Outcome(out, pads, _tconv_formula(a, pads, op, out))


def _tconv_onnx(a: Axis) -> Outcome:
    if a.padding not in SAME_WORDS:
        return _tconv_torch(a)
    op = a.output_padding or 0
    total = ar.transposed_same_padding(a.size, a.kernel, a.stride, a.dilation, op)
    if total < 0:
        return unsupported(f"auto_pad SAME would need a negative total padding {total}")
    half = total // 2
    pads = (total - half, half) if a.padding == "same_lower" else (half, total - half)
    out = a.size * a.stride
    text = (f"pad total = {a.stride}*({a.size} - 1) + {op} + {a.k_eff} - {out} = {total}: "
            f"{pads[0]} before, {pads[1]} after")
    word = "SAME_LOWER" if a.padding == "same_lower" else "SAME_UPPER"
    return Outcome(out, pads, f"o = {a.size}*{a.stride} = {out}", text, f"auto_pad {word}: o = i*s")


def _tconv_keras(a: Axis) -> Outcome:
    if a.padding not in (None, "valid", "same", (0, 0)):
        return unsupported("Keras Conv*DTranspose takes padding 'same' or 'valid'")
    mode = "same" if a.padding == "same" else "valid"
    out = ar.keras_transposed_output_size(a.size, a.kernel, a.stride, mode, a.dilation,
                                          a.output_padding)
    if a.output_padding is None:
        extra = "" if mode == "same" else f" + max({a.k_eff} - {a.stride}, 0)"
        formula = f"o = {a.size}*{a.stride}{extra} = {out}"
    else:
        pad = a.k_eff // 2 if mode == "same" else 0
        formula = (f"o = ({a.size} - 1)*{a.stride} + {a.k_eff} - 2*{pad} + {a.output_padding}"
                   f" = {out}")
    return Outcome(out, None, formula, _k_eff_formula(a), f"Keras {mode.upper()}")


def _tconv_caffe(a: Axis, convention: str) -> Outcome:
    name = convention.capitalize()
    if a.output_padding:
        return unsupported(f"{name}'s deconvolution has no output_padding")
    if convention == "darknet" and a.dilation > 1:
        return unsupported("Darknet's [deconvolutional] has no dilation")
    if a.padding == "same" and convention == "darknet":
        pads = (a.kernel // 2, a.kernel // 2)
    elif a.padding in SAME_WORDS:
        return unsupported(f"{name}'s deconvolution has no 'same' padding")
    else:
        pads = _explicit(a)
        why = _symmetric_only(name, pads)
        if why:
            return unsupported(why)
    out = ar.transposed_output_size(a.size, a.kernel, a.stride, *pads, a.dilation)
    formula = f"o = {a.stride}*({a.size} - 1) + {a.k_eff} - 2*{pads[0]} = {out}"
    return Outcome(out, pads, formula, _k_eff_formula(a))


def outcome(kind: str, convention: str, axis: Axis, pool_type: str = "max") -> Outcome:
    """The one entry point: `kind` conv | pool | tconv under `convention`."""
    if kind == "pool":
        return pool(convention, axis, pool_type)
    return (conv if kind == "conv" else tconv)(convention, axis)


def compare_labels(axes: list[Axis]) -> list[tuple[str, str, str | None]]:
    """(label, convention, padding override) rows of --compare: ONNX twice for 'same'."""
    rows = []
    same = any(a.padding == "same" for a in axes)
    for convention in CONVENTIONS:
        if convention == "onnx" and same:
            rows.append(("onnx SAME_UPPER", convention, "same"))
            rows.append(("onnx SAME_LOWER", convention, "same_lower"))
        else:
            rows.append((convention, convention, None))
    return rows


def _with_note(o: Outcome, note: str) -> Outcome:
    return replace(o, note=_join(o.note, note))
