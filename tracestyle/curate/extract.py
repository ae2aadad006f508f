"""Answer extraction as a named cascade (lm-eval style "strict" markers, then "flexible" fallbacks)
and matching against gold: numbers for GSM8K, entity names or option letters for KG."""

from __future__ import annotations

import re
import string

from tracestyle.curate.numbers import all_numbers, format_number, numbers_equal, parse_number
from tracestyle.curate.verdict import Verdict

# (name, pattern): the captured group is the answer text; the last match in the text wins, because
# models often restate a draft answer before the final one.
MARKERS: list[tuple[str, re.Pattern]] = [
    ("hashes", re.compile(r"####\s*([^\n]+)")),
    ("boxed", re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")),
    ("answer_label", re.compile(r"(?m)^\s*\**(?:ANSWER|Answer|Final [Aa]nswer)\**\s*[:：]\s*\**([^\n]+)")),
    ("the_answer_is", re.compile(r"(?i)\bthe (?:final |correct )?answer is\s*[:：]?\s*([^\n]+?)(?:\.\s|\.?$|\n)")),
    ("a_colon", re.compile(r"(?m)^\s*A\s*[:：]\s*([^\n]+)")),
    ("bold", re.compile(r"\*\*([^*\n]+)\*\*")),
]
STRICT = ("hashes", "boxed", "answer_label", "the_answer_is", "a_colon")


def extract_marked(text: str, names: tuple[str, ...] | None = None) -> tuple[str | None, str | None]:
    """Return (answer text, extractor name) from the first extractor in the cascade that matches."""
    for name, rx in MARKERS:
        if names and name not in names:
            continue
        hits = rx.findall(text)
        if hits:
            return hits[-1].strip().strip("*").strip(), name
    return None, None


def extract_number(text: str, flexible: bool = True) -> tuple[float | None, str | None, str]:
    """(value, raw answer text, extractor); 'none' when nothing is found."""
    raw, how = extract_marked(text)
    if raw is not None:
        v = parse_number(_strip_latex(raw))
        if v is not None:
            return v, raw, how
    if flexible:
        nums = all_numbers(text)
        if nums:
            return nums[-1], format_number(nums[-1]), "last_number"
    return None, raw, "none"


def _strip_latex(s: str) -> str:
    s = re.sub(r"\\frac\{([^{}]+)\}\{([^{}]+)\}", r"\1/\2", s)
    s = re.sub(r"\\(?:text|mathrm)\{([^{}]*)\}", r"\1", s)
    return s.replace("\\$", "$").replace("\\%", "%").replace("\\,", "").replace("{,}", ",")


def normalize_entity(s: str) -> str:
    s = s.lower().strip()
    s = s.strip(string.punctuation + " \"'`")
    s = re.sub(r"^(the|a|an)\s+", "", s)
    s = "".join(ch for ch in s if ch not in '"\'`*')
    return " ".join(s.split())


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize_entity(pred).split(), normalize_entity(gold).split()
    if not p or not g:
        return 0.0
    common = sum(min(p.count(t), g.count(t)) for t in set(g))
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def verify_number(text: str, gold: str) -> Verdict:
    value, raw, how = extract_number(text)
    if value is None:
        return Verdict(False, "no_answer", raw, {"extractor": how})
    ok = numbers_equal(value, parse_number(gold))
    return Verdict(ok, "ok" if ok else "wrong_answer", format_number(value), {"extractor": how})


_LETTER = re.compile(r"^\(?([A-D])\)?(?:[.):,\s]|$)")


def verify_kg(text: str, problem: dict) -> Verdict:
    """Free-form: exact match after normalisation (token F1 recorded); multiple choice: the letter or the entity."""
    answer = problem.get("answer_entity") or problem["gold"]
    raw, how = extract_marked(text, STRICT)
    if raw is None:
        # flexible fallback: the last KG entity named in the last line (like lm-eval's "last number")
        lines = [ln for ln in text.strip().split("\n") if ln.strip()]
        if not lines:
            return Verdict(False, "no_answer", None, {"extractor": "none"})
        raw, how = lines[-1], "last_line"
        ent = _last_entity(lines[-1], problem)
        if ent is not None:
            raw, how = ent, "last_entity"
    if problem.get("mc") and problem.get("choices"):
        m = _LETTER.match(raw.strip())
        if m:
            ok = m.group(1) == problem["gold"]
            return Verdict(ok, "ok" if ok else "wrong_answer", m.group(1), {"extractor": how})
    f1 = token_f1(raw, answer)
    ok = normalize_entity(raw) == normalize_entity(answer)
    if not ok and how != "last_line":
        # "the answer is X, the team that ..." : accept when the answer opens the captured text
        ok = normalize_entity(raw).startswith(normalize_entity(answer) + " ") or \
            normalize_entity(raw.split(",")[0]) == normalize_entity(answer)
    if not ok and how == "last_line" and f1 == 0:
        return Verdict(False, "no_answer", raw[:100], {"extractor": how, "f1": 0.0})
    return Verdict(ok, "ok" if ok else "wrong_answer", raw[:100], {"extractor": how, "f1": round(f1, 3)})


def _last_entity(line: str, problem: dict) -> str | None:
    if not problem.get("domain"):
        return None
    from tracestyle.curate.kg_graph import entity_pattern
    from tracestyle.curate.kg_questions import cached_kg

    try:
        kg = cached_kg(problem["domain"])
    except Exception:  # an unknown user KG: fall back to the line itself
        return None
    hits = entity_pattern(kg).findall(line)
    return hits[-1] if hits else None


def verify_answer(text: str, problem: dict) -> Verdict:
    if problem.get("task") == "kg":
        return verify_kg(text, problem)
    return verify_number(text, str(problem["gold"]))
