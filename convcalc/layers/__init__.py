"""Layer kinds, one module per family; importing this package fills the registry."""

from convcalc.layers import (activation, channels, conv, dense, merge, norm,  # noqa: F401
                             pool, resample)
from convcalc.layers import arith, blur, norm_stats, pointwise  # noqa: F401
from convcalc.layers.base import REGISTRY, Kind, Layer

__all__ = ["REGISTRY", "Kind", "Layer"]
