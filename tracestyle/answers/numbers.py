"""Number normalisation for answer matching: separators, currency, percent, units, fractions."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_NUM = re.compile(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?")


def parse_number(text: str) -> float | None:
    """First number in `text` as a float: '$1,234.50' -> 1234.5, '3/4' -> 0.75, '12%' -> 12; None if there is none."""
    if text is None:
        return None
    t = str(text).replace("\u2212", "-").replace("−", "-")
    m = _NUM.search(t)
    if not m:
        return None
    s = m.group(0).replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in s:
            a, b = s.split("/")
            if float(b) == 0:
                return None
            return float(Fraction(a) / Fraction(b))
        v = float(s)
    except (ValueError, ZeroDivisionError):
        return None
    return v if math.isfinite(v) else None


def all_numbers(text: str) -> list[float]:
    out = []
    for m in _NUM.finditer(text.replace("\u2212", "-")):
        v = parse_number(m.group(0))
        if v is not None:
            out.append(v)
    return out


def format_number(v: float) -> str:
    """Canonical text: 12.0 -> '12', 0.5 -> '0.5'."""
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.6f}".rstrip("0").rstrip(".")


def numbers_equal(a: float | None, b: float | None, rel: float = 1e-6) -> bool:
    if a is None or b is None:
        return False
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
