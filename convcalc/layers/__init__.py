"""Layer kinds, one module per family; importing this package fills the registry."""

from convcalc.layers import (activation, channels, conv, dense, layout, merge,  # noqa: F401
                             norm, pool, reduce, resample, slicing, tensor_ops)
from convcalc.layers import arith, blur, norm_stats, pointwise  # noqa: F401
from convcalc.layers.base import REGISTRY, Kind, Layer

__all__ = ["REGISTRY", "Kind", "Layer"]
