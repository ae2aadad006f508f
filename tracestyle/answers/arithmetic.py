"""Step verification for math traces: find each stated arithmetic relation, recompute it, report the first wrong one.

A statement is a computation with its stated result: "16 - 3 - 4 = 9", "9 * 2 = $18", "3 x 4 = 12 cookies",
"half of 10 is 5", "20% of 40 is 8", "1,200 / 4 equals 300", chains "2 * 3 = 6 * 4 = 24", LaTeX (\\times, \\frac).
A relation is checked only when its left side computes something (has an operator) and both sides parse to
numbers; anything else ("Step 2 is 5", "x + 5 = 10", "all 3 steps are done") is not a statement and is not
counted, so prose can never be an error. A stated result may be rounded to its own precision ("10 / 3 = 3.33").
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, field

from tracestyle.verdict import Verdict

_LATEX = [(re.compile(r"\\frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}"), r"((\1)/(\2))"),
          (re.compile(r"\\(?:times|cdot)"), " * "), (re.compile(r"\\div"), " / "),
          (re.compile(r"\\[()\[\]]|\\[,;!]|\\text\{[^{}]*\}|\\\$|\{,\}"), lambda m: "" if m.group() != "{,}" else ","),
          (re.compile(r"\*\*(?!\s*\d)|(?<!\d)\*\*"), "")]          # markdown bold, not a power
_SYMBOLS = str.maketrans({"×": "*", "·": "*", "∙": "*", "−": "-", "–": "-", "≈": "~"})
_WORDS = [(re.compile(p, re.IGNORECASE), r) for p, r in [
    (r"\bmultiplied by\b", " * "), (r"\bdivided by\b", " ÷ "), (r"\btimes\b", " * "),
    (r"\bplus\b", " + "), (r"\bminus\b", " - "), (r"\b(?:one|a) half of\b|\bhalf of\b", " 0.5 * "),
    (r"\b(?:one|a) third of\b", " (1/3) * "), (r"\b(?:one|a) quarter of\b|\b(?:one|a) fourth of\b", " 0.25 * "),
    (r"\b(?:twice|double)\b(?=\s*\$?\d)", " 2 * "), (r"\btriple\b(?=\s*\$?\d)", " 3 * "),
    (r"\bpercent\b|\bper cent\b", "%"), (r"(?<=%)\s*of\b|(?<=\d/\d)\s*of\b|(?<=\d/\d\d)\s*of\b", " * "),
    (r"\b(?:is|are|was|were)\s+(?:approximately|about|roughly)\b", " ~ "),
    (r"\b(?:is equal to|equals|equal to|is|are|was|were|makes|gives(?: us)?|comes to|would be|will be)\b", " is ")]]
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_MIXED = re.compile(r"(?<![\d./])(\d+)\s+(\d+)/(\d+)(?![\d/])")       # 1 1/2
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?|\.\d+)(?P<pct>\s*%)?|(?P<op>[-+*/^()÷])|(?P<rel>=|~|\bis\b)"
                    r"|(?P<word>[A-Za-z]+)|(?P<cur>[$€£])|(?P<other>\S))")
# words that end a quantity rather than name its unit ("9 because -18 / -2"); one letter is a variable, not a unit
_NOT_UNITS = {"because", "so", "and", "or", "then", "which", "that", "since", "for", "from", "to", "with", "of",
              "in", "on", "at", "by", "but", "thus", "hence", "if", "when", "than", "as", "plus", "minus"}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass
class StepError:
    line: int
    statement: str
    stated: float
    computed: float


@dataclass
class StepCheck:
    valid: bool
    first_error_line: int | None
    checked: int
    errors: list[StepError] = field(default_factory=list)

    def public(self) -> dict:
        out = {"valid": self.valid, "first_error_line": self.first_error_line, "checked": self.checked}
        if self.errors:
            e = self.errors[0]
            out["first_error"] = {"statement": e.statement, "stated": _fmt(e.stated), "computed": _fmt(e.computed)}
        return out


def _fmt(v: float) -> float | int:
    return int(v) if float(v).is_integer() and abs(v) < 1e15 else round(v, 6)


def normalize(line: str) -> str:
    s = re.sub(r"['’]s\b", "", line.translate(_SYMBOLS))             # possessives: "Dale's" has no variable s
    # "So -2 - 4 = -6": a negative number after a word, bracketed so it is not read as "So minus 2"
    s = re.sub(r"(?<=[A-Za-z,:]) -(\d+(?:\.\d+)?)(?![\d.:])", r" (-\1)", s)
    for rx, rep in _LATEX:
        s = rx.sub(rep, s)
    s = re.sub(r"\b\d{1,2}:\d{2}\b", " clocktime ", s)                # 6:00 is a time, not 6 and 0
    s = re.sub(r"(?<=[A-Za-z]{2})/(?=\s*\d)", " per ", s)         # "3 degrees/5% increase", "6 km/ 1/30 hour"
    s = _THOUSANDS.sub("", s)
    s = re.sub(r"(?<![\d.])(\d{1,3}) (\d{3})(?!\d|\.\d| ?\d|-)", r"\1\2", s)    # "18 000 watts"
    s = re.sub(r"\b(\d+) and (\d+)/(\d+)\b", r"(\1+\2/\3)", s)                     # "1 and 1/4 cups"
    # "25 / 1/3", "14 / 1 / 4": dividing by a fraction written without brackets
    s = re.sub(r"(?<=[/÷])(\s+)(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)(?![\d/.])", r"\1(\2/\3)", s)
    s = re.sub(r"/\s*1\s*/\s*(\d+(?:\.\d+)?)(?![\d/.])", r"/ (1/\1)", s)
    s = re.sub(r"÷\s*(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)(?![\d/.])", r"÷ (\1/\2)", s)       # "10÷1/2" = 20
    s = _MIXED.sub(r"(\1+\2/\3)", s)
    for rx, rep in _WORDS:
        s = rx.sub(rep, s)
    # "x" between two quantities is a multiplication sign, never a unit
    s = re.sub(r"(?<=[\d)%a-z])\s*[xX]\s*(?=[$€£(]?\s*\.?\d)", " * ", s)
    return re.sub(r"\*(?:\s*\*)+", "*", s)                              # "5 times * 8": one product


def _tokens(s: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(s):
        kind = m.lastgroup if m.lastgroup != "pct" else "num"
        if m.group("num") is not None:
            out.append(("num", m.group("num") + ("%" if m.group("pct") else "")))
        elif kind == "cur":
            continue
        else:
            out.append((kind, m.group(kind)))
    return out


def _is_unit(tokens: list, i: int) -> bool:
    """A word right after a number (or after "/" following one: "$5/hour") is that number's unit."""
    w = tokens[i][1]
    if len(w) == 1 or w.lower() in _NOT_UNITS:
        return False
    return i > 0 and (tokens[i - 1][0] == "num" or tokens[i - 1][0] == "word" and i > 1 and
                      tokens[i - 2][0] == "num" and _is_unit(tokens, i - 1) or
                      tokens[i - 1] == ("op", "/") and i > 1 and tokens[i - 2][0] in ("num", "word"))


def _expr(tokens: list, lo: int, hi: int) -> str | None:
    """tokens[lo:hi] as an arithmetic expression (units dropped, "of" after a share as *), or None."""
    parts: list[str] = []
    i = lo
    while i < hi:
        kind, val = tokens[i]
        if kind == "num":
            if parts and parts[-1][-1:].isdigit():
                return None                          # two numbers side by side: a list, not an expression
            parts.append(f"({val[:-1]}/100)" if val.endswith("%") else val)
        elif kind == "op":
            if val == "/" and i + 1 < hi and tokens[i + 1][0] == "word":
                i += 2                               # "$5/hour": a rate's unit
                continue
            parts.append({"^": "**", "÷": "/"}.get(val, val))
        elif kind == "word" and _is_unit(tokens, i):
            pass
        else:
            return None
        i += 1
    return "".join(parts) or None


def _value(expr: str) -> float | None:
    try:
        tree = ast.parse(expr, mode="eval").body
    except (SyntaxError, ValueError):
        return None

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return float(n.value)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            b, e = ev(n.left), ev(n.right)
            if abs(e) > 12:
                raise ValueError("exponent too large")
            return b ** e
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError("not arithmetic")
    try:
        v = ev(tree)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None
    return v if isinstance(v, float) and math.isfinite(v) else None


def _side_bounds(tokens: list, lo: int, hi: int, *, leading: bool) -> tuple[int, int]:
    """The left side: the numeric expression ending at the relation. The right side: the stated result, one number
    (a fraction "3/4", a sign) with its units; "2 * 3 = 6 * 4 = 24" states 6, then computes on with it."""
    if leading:
        j = lo + (lo < hi and tokens[lo] == ("op", "-"))
        if j >= hi or tokens[j][0] != "num":
            return lo, lo
        j += 1
        if j + 1 < hi and tokens[j] == ("op", "/") and tokens[j + 1][0] == "num" and \
                (j + 3 >= hi or tokens[j + 2][0] != "op" or tokens[j + 3][0] not in ("num", "op")):
            j += 2                                   # "= 4/7", "= 4/7 of her money": a fraction
        if j < hi and tokens[j][0] == "word" and len(tokens[j][1]) == 1 and not _is_unit(tokens, j):
            return lo, lo                            # "= 5A / 5": algebra, not a stated number
        while j < hi and tokens[j][0] == "word" and _is_unit(tokens, j):
            j += 1
        return lo, j
    j, depth = hi, 0
    while j > lo and (tokens[j - 1][0] in ("num", "op") or tokens[j - 1][0] == "word" and _is_unit(tokens, j - 1)):
        depth += {")": 1, "(": -1}.get(tokens[j - 1][1], 0)
        if depth < 0:
            break                                    # "600 / (3 + 1 = 4)": the relation is inside the bracket
        j -= 1
    return j, hi


def _clause_end(tokens: list, lo: int, hi: int) -> int:
    return next((j for j in range(lo, hi) if tokens[j][0] in ("other", "word")), hi)


def _chain_link(tokens: list, lo: int, hi: int) -> bool:
    """tokens[lo:hi], between two relations, is a whole expression with an operator (a chain's middle link)."""
    part = tokens[lo:hi]
    return bool(part) and all(t[0] in ("num", "op") for t in part) and \
        any(t[0] == "op" and t[1] not in "()" for t in part[1:]) and _value(_expr(tokens, lo, hi) or "") is not None


def _balanced(expr: str) -> str:
    """Trim parentheses opened or closed outside the side ("(3 + 4) * 2 = 14)" keeps the arithmetic)."""
    drop = set()
    opens: list[int] = []
    for i, ch in enumerate(expr):
        if ch == "(":
            opens.append(i)
        elif ch == ")":
            if opens:
                opens.pop()
            else:
                drop.add(i)
    drop |= set(opens)
    return "".join(ch for i, ch in enumerate(expr) if i not in drop)


def _tolerance(stated_src: str) -> float:
    """Half a unit of the stated result's last digit: a result may be rounded to the precision it is written in."""
    digits = len(stated_src.split(".")[1].rstrip("%")) if "." in stated_src else 0
    return 0.5 * 10 ** -digits + 1e-9


def _restated(tokens: list, lo: int, hi: int, stated_end: int) -> float | None:
    """The value of the expression after a relation when it goes on past the stated number
    ("= 16 + 20 + 48 = 84", "= 4/12 + 3/12. Then ..."), else None."""
    if stated_end >= hi or tokens[stated_end][0] != "op":
        return None
    j = lo
    while j < hi and (tokens[j][0] in ("num", "op") or tokens[j][0] == "word" and _is_unit(tokens, j)):
        j += 1
    while j > lo and tokens[j - 1][0] == "word":
        j -= 1
    e = _expr(tokens, lo, j)
    return _value(_balanced(e)) if e else None


def line_statements(line: str) -> list[tuple[str, float, float, bool]]:
    """(statement, stated, computed, correct) for each relation on one line."""
    tokens = _tokens(normalize(line))
    rels = [i for i, t in enumerate(tokens) if t[0] == "rel"]
    out = []
    bounds = [-1] + rels + [len(tokens)]
    for k, r in enumerate(rels):
        llo, lhi = _side_bounds(tokens, bounds[k] + 1, r, leading=False)
        rlo, rhi = _side_bounds(tokens, r + 1, bounds[k + 2], leading=True)
        if rlo == rhi and k + 1 < len(rels) and _chain_link(tokens, r + 1, rels[k + 1]):
            rlo, rhi = r + 1, rels[k + 1]           # "(7 - 12 + 4) = (-5 + 4) = -1": a link whose sides compute
        left, right = tokens[llo:lhi], tokens[rlo:rhi]
        nxt = rels[k + 1] if k + 1 < len(rels) else _clause_end(tokens, r + 1, bounds[k + 2])
        if k and tokens[r][1] == tokens[rels[k - 1]][1] == "=" and llo == bounds[k] + 1 and len(left) == 1 and \
                left[0][0] == "num" and _chain_link(tokens, r + 1, nxt):
            # "2 * (3 + 4) = 14 = 7 * 2": a link stating a number, then an expression that must give it
            lv, rv = _value(left[0][1].rstrip("%")), _value(_balanced(_expr(tokens, r + 1, nxt) or ""))
            if lv is not None and rv is not None:
                ok = abs(lv - rv) <= _tolerance(left[0][1]) + 1e-9 * abs(rv)
                out.append((" ".join(v for _, v in tokens[llo: nxt]), lv, rv, ok))
            continue
        if not left or not right or not any(t[0] == "op" and t[1] not in "()" and not (
                t[1] == "/" and j + 1 < len(left) and left[j + 1][0] == "word") for j, t in enumerate(left)):
            continue
        if left[0][0] == "op" and left[0][1] not in "(-":
            continue                                 # "x - 5 = 10": an operand is not a number
        if left[0][1] == "-" and llo > bounds[k] + 1 and tokens[llo - 1][0] == "word":
            continue
        if llo > 1 and tokens[llo - 1][1] in ",." and tokens[llo - 2][0] == "num":
            continue                                 # "16,0000 / 10": a number whose grouping is unclear
        if llo > 0 and tokens[llo - 1][1].lower() == "per":
            continue                                 # "1 gallon per 2 gallons * 6 = 3": a rate, not a product
        if llo > 1 and tokens[llo - 1][0] == "word" and tokens[llo - 2][0] == "op":
            continue                                 # "25 classmates + his 1 teacher + 1 = 27": starts mid-sum
        seg = tokens[r + 1: bounds[k + 2]]
        seg = seg[:next((j for j, t in enumerate(seg) if t[0] == "other"), len(seg))]   # to the clause's end
        if any(t[0] == "word" and len(t[1]) == 1 and t[1] not in "aI" for t in seg + tokens[llo:lhi]):
            continue                                 # "8/3 = 24/Y", "2m + 55 = 215": algebra
        units = {tokens[j + 1][1].lower().rstrip("s") for j in range(llo, lhi - 1)
                 if tokens[j][0] == "num" and tokens[j + 1][0] == "word"}
        if len(units) > 1 and any(t[1] in "+-" for t in left if t[0] == "op"):
            continue                                 # "4 pounds - 6 ounces = 58 ounces": units to convert first
        nums = [t for t in left if t[0] == "num" or t[0] == "op" and t[1] not in "()"]
        if tokens[r][1] == "is" and [t[1] if t[0] == "op" else t[0] for t in nums] == ["num", "/", "num"] and \
                (_value(nums[0][1].rstrip("%")) or 0) < (_value(nums[2][1].rstrip("%")) or 0):
            continue                                 # "3/4 is equal to $15": a share of a whole, not a quotient
        le, re_ = _expr(tokens, llo, lhi), _expr(tokens, rlo, rhi)
        lv = _value(_balanced(le)) if le else None
        rv = _value(_balanced(re_)) if re_ else None
        if lv is None or rv is None:
            continue
        stated_src = next((v for kind, v in reversed(right) if kind == "num"), "")
        tol = _tolerance(stated_src) + 1e-9 * abs(lv)
        # what the right side may state: its number (or fraction), the number alone ("= 360 / 5 = 72" states
        # 360 and goes on), or the whole expression when it restates the sum ("= 16 + 20 + 48 = 84")
        lead = _value(right[1][1] if right[0] == ("op", "-") else right[0][1].rstrip("%"))
        stated = [rv, _restated(tokens, r + 1, bounds[k + 2], rhi)]
        if lead is not None and rlo + 1 < rhi:
            stated.append(-lead if right[0] == ("op", "-") else lead)
        if any(t[0] == "word" and t[1].lower().startswith("cent") for t in right):
            stated.append(rv / 100)                    # "$0.25 x 10 = 250 cents"
        computed = [lv]
        if "/100)" in le:                              # "15 / 90 * 100% = 16.66": the % as a plain number
            computed.append(_value(_balanced(re.sub(r"\((\d+(?:\.\d+)?)/100\)", r"\1", le))))
        # a decimal result may be truncated rather than rounded ("50 / 3 = 16.66")
        slack = 2 * tol if "." in stated_src else tol
        ok = any(c is not None and s is not None and abs(c - s) <= slack for c in computed for s in stated)
        if not ok and "." not in stated_src and any(t[1] in "/÷" for t in left):
            ok = rv in (math.floor(lv), math.ceil(lv))   # "50 / 3 = 16 each, with 2 remaining"; "17 buses"
        if tokens[r][1] == "~":
            ok = ok or abs(lv - rv) <= 0.01 * max(abs(lv), abs(rv)) + tol
        if not ok and stated_src.endswith("%"):
            ok = abs(lv - rv * 100) <= tol                # "8 / 40 * 100 = 20%"
        text = " ".join(v for _, v in left) + " " + tokens[r][1] + " " + " ".join(v for _, v in right)
        out.append((text, rv, lv, ok))
    return out


def evaluate(expr: str) -> float | None:
    """One arithmetic expression as it is written ("3 x $1,250", "(6 + 2) * 3"), computed by the same reader as
    the step checker; None where it is not arithmetic (never executed)."""
    return _value(normalize(expr).replace("$", "").replace("^", "**").replace("÷", "/"))


# a named quantity: one capital letter ("B"), a letter and digits ("x1"), or a snake_case name ("total_cost")
_NAME = r"(?<![\w.$])([A-HJ-Z]|[A-Za-z]\d{1,2}|[A-Za-z]+_[A-Za-z0-9_]+)"
_DEFINE = re.compile(r"(?:^|[:;,(]|\.\s|(?i:\b(?:let|so|then|and|thus|hence|where)\b))\s*" + _NAME + r"\s*=(?!=)")
_CLAUSE_END = re.compile(r"[;,]\s|\.\s|\.$|\s(?:so|and|then|which)\s")
_LEADING_NUMBER = re.compile(r"^\s*[$€£]?\s*(-?\d+(?:\.\d+)?)")


def _definitions(line: str, names: dict[str, float]) -> list[tuple[int, str, float]]:
    """(end position, name, value) for each "NAME = … = value" on a line: the last side of its clause's chain,
    computed with the names known before it."""
    out = []
    for m in _DEFINE.finditer(line):
        rest = line[m.end():]
        end = _CLAUSE_END.search(rest)
        clause = rest[: end.start()] if end else rest
        last = _substitute(clause.split("=")[-1], {**names, **{n: v for _, n, v in out}})
        v = evaluate(last)
        if v is None:
            lead = _LEADING_NUMBER.match(normalize(last))
            v = float(lead.group(1)) if lead else None
        if v is not None:
            out.append((m.end() + (end.start() if end else len(rest)), m.group(1), v))
    return out


def _substitute(line: str, names: dict[str, float]) -> str:
    """Known names replaced by their values where they are used (not where they are defined)."""
    if not names:
        return line
    defined = {m.start(1) for m in _DEFINE.finditer(line)}
    rx = re.compile(r"(?<![\w.$])(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) +
                    r")(?![\w.])")
    return rx.sub(lambda m: m.group(1) if m.start(1) in defined else _num_text(names[m.group(1)]), line)


def _num_text(v: float) -> str:
    t = f"{_fmt(v)}"
    return f"({t})" if v < 0 else t


def _with_names(line: str, names: dict[str, float]) -> str:
    """The line with each name used after its definition (earlier lines, or earlier on this line) replaced."""
    defs = _definitions(line, names)
    if not names and not defs:
        return line
    out, pos, known = [], 0, dict(names)
    for end, name, value in defs:
        out.append(_substitute(line[pos:end], known))
        known[name] = value
        pos = end
    out.append(_substitute(line[pos:], known))
    names.update({n: v for _, n, v in defs})
    return "".join(out)


def check_steps(text: str) -> StepCheck:
    """Every stated relation in text, recomputed; the first wrong one's 0-based line index in text. Every link of
    a chain is a statement, and a named quantity ("B = 7 - 3 = 4", then "B * 2 = 8") is read with its value."""
    checked, errors = 0, []
    names: dict[str, float] = {}
    for i, raw in enumerate(text.split("\n")):
        line = _with_names(raw, names)
        if not any(c.isdigit() for c in line):
            continue
        for stmt, stated, computed, ok in line_statements(line):
            checked += 1
            if not ok:
                errors.append(StepError(i, stmt, stated, computed))
    return StepCheck(not errors, errors[0].line if errors else None, checked, errors)


def steps_verdict(text: str) -> Verdict:
    """The step check as a verdict (the `steps` filter and GSM8K's trace check): a trace with nothing checkable
    passes with checked: 0."""
    c = check_steps(text)
    return Verdict(c.valid, "ok" if c.valid else "steps:wrong_result", None, c.public())
