"""convcalc: convolution arithmetic and shape calculator for CNN specs written in YAML."""

__version__ = "0.1.0"
