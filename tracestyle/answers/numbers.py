"""Number normalisation for answer matching: separators, currency, percent, units, fractions."""

from __future__ import annotations

import math
import re
from fractions import Fraction

# thousands grouped by commas, by typographic spaces (no-break, thin, narrow no-break) or by plain spaces when a
# group is "000" ("1 000 000", "10 000"; "5 100" and "100 200 300" stay separate numbers: they may be a list);
# ".5" is a number; "1.2e3" scientific notation
_GROUPED = (r"\d{1,3}(?:,\d{3})+|\d{1,3}(?:[\u00a0\u202f\u2009]\d{3})+"
            r"|\d{1,3}(?: \d{3})*(?: 000)(?: \d{3})*(?![\d,])")
_NUM = re.compile(r"-?\$?\s?(?:(?:" + _GROUPED + r"|\d+)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d{1,3}(?![\w.]))?"
                  r"(?:\s*/\s*\d+(?:\.\d+)?)?")
_SEPARATORS = str.maketrans("", "", "$, \u00a0\u202f\u2009")


def parse_number(text: str) -> float | None:
    """First number in `text` as a float: '$1,234.50' -> 1234.5, '3/4' -> 0.75, '12%' -> 12; None if there is none."""
    if text is None:
        return None
    t = str(text).replace("\u2212", "-").replace("−", "-")
    m = _NUM.search(t)
    if not m:
        return None
    s = m.group(0).translate(_SEPARATORS)
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
