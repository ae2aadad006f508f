"""Arithmetic as models write it when a computation has structure (brackets and precedence, negative numbers and
double signs, chains whose every side is an expression, named quantities defined then used), generated with its
exact values, correct or with one planted error: the step checker's recall and false-alarm measure."""

from __future__ import annotations

from fractions import Fraction
from random import Random

OPS = "+-*"


def _num(rng: Random) -> int:
    return rng.choice([rng.randint(1, 12), rng.randint(2, 60), -rng.randint(1, 9)])


def _lit(v: int) -> str:
    return str(v)


def expr(rng: Random, depth: int) -> tuple[str, Fraction, list]:
    """(text, value, tree) with brackets where precedence needs them, sometimes where it does not."""
    if depth == 0:
        v = _num(rng)
        return _lit(v), Fraction(v), ("n", v)
    a, b = expr(rng, depth - 1), expr(rng, rng.randint(0, depth - 1))
    op = rng.choice(OPS)
    val = {"+": a[1] + b[1], "-": a[1] - b[1], "*": a[1] * b[1]}[op]
    tree = ("op", op, a[2], b[2])
    return _render(tree), val, tree


def _prec(tree) -> int:
    return 3 if tree[0] == "n" else {"+": 1, "-": 1, "*": 2}[tree[1]]


def _render(tree, rng: Random | None = None) -> str:
    if tree[0] == "n":
        return _lit(tree[1])
    _, op, a, b = tree
    la, lb = _render(a), _render(b)
    if _prec(a) < _prec(tree) or (a[0] == "n" and a[1] < 0 and op == "*"):
        la = f"({la})"
    if _prec(b) < _prec(tree) or (op == "-" and _prec(b) == 1) or (b[0] == "n" and b[1] < 0 and op == "*"):
        lb = f"({lb})"
    return f"{la} {op} {lb}"


def _value(tree) -> Fraction:
    if tree[0] == "n":
        return Fraction(tree[1])
    _, op, a, b = tree
    x, y = _value(a), _value(b)
    return {"+": x + y, "-": x - y, "*": x * y}[op]


def _reduce_once(tree):
    """One evaluation step: the leftmost innermost operation replaced by its value (what a chain's next link shows)."""
    if tree[0] == "n":
        return tree, False
    _, op, a, b = tree
    if a[0] == "n" and b[0] == "n":
        return ("n", int(_value(tree))), True
    na, done = _reduce_once(a)
    if done:
        return ("op", op, na, b), True
    nb, done = _reduce_once(b)
    return ("op", op, a, nb), done


def chain(rng: Random, depth: int = 3) -> list[tuple[str, Fraction]]:
    """The links of "E0 = E1 = … = v", each Ei one reduction of the last."""
    _, _, tree = expr(rng, depth)
    links = [(_render(tree), _value(tree))]
    while tree[0] != "n":
        tree, _ = _reduce_once(tree)
        links.append((_render(tree), _value(tree)))
    return links


def _wrong(v: Fraction, rng: Random) -> int:
    return int(v) + rng.choice([-10, -3, -2, -1, 1, 2, 3, 10])


def case(rng: Random, plant: bool) -> tuple[str, int | None]:
    """(trace, 0-based line of the first error or None). Four shapes, as models write them."""
    shape = rng.randrange(4)
    name = rng.choice("BCDEFGH")
    if shape == 0:                                   # one statement with brackets, precedence, negatives
        t, v, _ = expr(rng, rng.randint(2, 3))
        stated = _wrong(v, rng) if plant else int(v)
        return f"So {t} = {stated}.", 0 if plant else None
    if shape in (1, 2):                              # a chain: every link an expression; optionally named
        links = chain(rng)
        if len(links) < 3:
            return case(rng, plant)
        texts = [t for t, _ in links]
        if plant:
            k = rng.randrange(1, len(links))         # an intermediate link (or the result) goes wrong
            texts[k] = str(_wrong(links[k][1], rng)) if k == len(links) - 1 else _plant_in(links[k][0], rng)
        head = f"{name} = " if shape == 2 else ""
        return "First, " + head + " = ".join(texts) + ".", 0 if plant else None
    # a named quantity defined, then used on a later line
    links = chain(rng, 2)
    t2, v2, _ = expr(rng, 1)
    op = rng.choice("+-*")
    total = {"+": links[-1][1] + v2, "-": links[-1][1] - v2, "*": links[-1][1] * v2}[op]
    used = f"({t2})" if op != "+" or t2.startswith("-") else t2
    stated = _wrong(total, rng) if plant else int(total)
    return (f"Let {name} = {' = '.join(t for t, _ in links)}.\nThen {name} {op} {used} = {stated}.",
            1 if plant else None)


def _plant_in(text: str, rng: Random) -> str:
    """Change one number of an expression (a copied operand gone wrong)."""
    parts = text.split(" ")
    idx = [i for i, p in enumerate(parts) if p.strip("()-").isdigit()]
    i = rng.choice(idx)
    core = parts[i].strip("()")
    new = str(int(core) + rng.choice([1, 2, 3, -1, -2])) if int(core) > 3 else str(int(core) + 5)
    parts[i] = parts[i].replace(core, new, 1)
    out = " ".join(parts)
    return out if out != text else _plant_in(text, rng)


def cases(n: int, seed: int = 0) -> list[tuple[str, int | None, bool]]:
    rng = Random(seed)
    return [(*case(rng, plant), plant) for plant in [i % 2 == 1 for i in range(n)]]
