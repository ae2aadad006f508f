"""GSM8K answers: the number after the cascade's marker (or the last number), compared numerically."""

from __future__ import annotations

from tracestyle.answers.extract import (
    answer_region,
    clean_answer,
    extract_marked,
    gold_list,
    is_hedged,
    split_items,
)
from tracestyle.answers.numbers import all_numbers, format_number, numbers_equal, parse_number
from tracestyle.verdict import Verdict


def extract_number(text: str, flexible: bool = True, *,
                   truncated: bool | None = None) -> tuple[float | None, str | None, str]:
    """(value, raw answer text, extractor); 'none' when nothing is found."""
    raw, how = extract_marked(text, truncated=truncated)
    if raw is not None:
        v = parse_number(raw)
        if v is not None:
            return v, raw, how
    if flexible:
        nums = all_numbers(answer_region(text, truncated))
        if nums:
            return nums[-1], format_number(nums[-1]), "last_number"
    return None, raw, "none"


def gold_number(gold: str) -> float | None:
    """A gold answer as other datasets store it: a number ("1,000", "$72", "72.00"), LaTeX ("\\frac{1}{2}",
    "\\boxed{5}") or a whole GSM8K solution ending in "#### 72" (its first number is not the answer)."""
    if isinstance(gold, (int, float)):
        return float(gold)
    raw, _ = extract_marked(str(gold), ("hashes", "boxed"))
    return parse_number(clean_answer(raw if raw is not None else str(gold)))


def verify_number(text: str, gold, *, match: str = "all", truncated: bool | None = None) -> Verdict:
    golds = [g for g in (gold_number(x) for x in gold_list(gold)) if g is not None]
    value, raw, how = extract_number(text, truncated=truncated)
    if value is None:
        return Verdict(False, "no_answer", raw, {"extractor": how})
    if raw is not None and how != "last_number":
        distinct = {round(v, 9) for v in all_numbers(raw)}
        if len(golds) > 1:
            values = [v for v in (parse_number(x) for x in split_items(raw)) if v is not None]
            hit = [any(numbers_equal(v, g) for v in values) for g in golds]
            ok = all(hit) and len(values) == len(golds) if match == "all" else \
                len(values) == 1 and any(hit)
            return Verdict(ok, "ok" if ok else "wrong_answer", raw[:100], {"extractor": how, "match": match})
        if len(distinct) > 1 and is_hedged(raw):
            return Verdict(False, "hedged", raw[:100], {"extractor": how})
    ok = any(numbers_equal(value, g) for g in golds)
    return Verdict(ok, "ok" if ok else "wrong_answer", format_number(value), {"extractor": how})
