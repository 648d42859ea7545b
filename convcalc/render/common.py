"""Number and shape formatting shared by the renderers."""

from __future__ import annotations


def shape_text(shape) -> str:
    """[64, 56, 56] -> '64x56x56'; unknown -> '?'."""
    return "x".join(map(str, shape)) if shape is not None else "?"


def count_text(n: int) -> str:
    """1234567 -> '1,234,567'."""
    return f"{n:,}"


def si_text(n: float) -> str:
    """4089184256 -> '4.09 G'; past 1000 E (floats overflow there) '1.23e+300'."""
    if abs(n) >= 10**21:
        return _scientific(n)
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6),
                        ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g}"


def bytes_text(n: int) -> str:
    """Binary units: 1536 -> '1.50 KiB'; past 1024 PiB '1.23e+300 B'."""
    if n >= 2**60:
        return f"{_scientific(n)} B"
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20),
                        ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def si_bytes_text(n: int) -> str:
    """Decimal units, as torchinfo prints: 102233184 -> '102.23 MB'."""
    if n >= 10**18:
        return f"{_scientific(n)} B"
    for unit, scale in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6),
                        ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def rf_text(rf: dict | None, key: str) -> str:
    """Receptive-field numbers per axis: one number when the axes agree."""
    if not rf or rf.get(key) is None:
        return ""
    values = rf[key]
    shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else "x".join(shown)


def _scientific(n: int | float) -> str:
    """Any size of int, exactly rounded: 10**300 - 1 -> '1.00e+300'."""
    from decimal import Decimal
    return f"{Decimal(n):.2e}"
