"""Rule-based failure categories for reasoning-gym tasks, where the generator's metadata makes them checkable:
family relations (the inverse relation, the other gender), grid paths (a blocked or off-grid move, the wrong
end cell, a longer path), and the GSM8K categories for word problems with reference calculations."""

from __future__ import annotations

from tracestyle.answers.extract import normalize_entity
from tracestyle.answers.repetition import is_loop
from tracestyle.tasks.math_taxonomy import numeric_category
from tracestyle.tasks.reasoning_gym.solution import MOVES

_PAIRS = [("mother", "father"), ("son", "daughter"), ("grandmother", "grandfather"), ("grandson", "granddaughter"),
          ("husband", "wife"), ("brother", "sister"), ("mother-in-law", "father-in-law"),
          ("son-in-law", "daughter-in-law"), ("aunt", "uncle"), ("nephew", "niece")]
_OTHER_GENDER = {a: b for a, b in _PAIRS} | {b: a for a, b in _PAIRS}
_UP_DOWN = [({"mother", "father"}, {"son", "daughter"}), ({"grandmother", "grandfather"}, {"grandson", "granddaughter"}),
            ({"mother-in-law", "father-in-law"}, {"son-in-law", "daughter-in-law"}), ({"aunt", "uncle"}, {"nephew", "niece"}),
            ({"husband"}, {"wife"})]
_INVERSE = {a: down for up, down in _UP_DOWN for a in up} | {b: up for up, down in _UP_DOWN for b in down}


def family_category(answer: str, gold: str) -> str:
    a, g = normalize_entity(answer), normalize_entity(gold)
    if a in _INVERSE.get(g, set()) and a != _OTHER_GENDER.get(g):
        return "relation_inversion"        # "son" for "mother": the relation read from the other person's side
    if _OTHER_GENDER.get(g) == a:
        return "wrong_gender"
    return "wrong_relation"


def path_category(answer: str, meta: dict) -> str:
    grid, gold = meta.get("matrix"), meta.get("solution") or []
    moves = answer.lower().replace(",", " ").split()
    if not isinstance(grid, list) or not moves:
        return "wrong_answer"
    if moves == ["infeasible"]:
        return "infeasible_claimed"
    pos = next(((r, c) for r, row in enumerate(grid) for c, x in enumerate(row) if x == "*"), None)
    if pos is None:
        return "wrong_answer"
    for m in moves:
        if m not in MOVES:
            return "wrong_answer"
        pos = (pos[0] + MOVES[m][0], pos[1] + MOVES[m][1])
        if not (0 <= pos[0] < len(grid) and 0 <= pos[1] < len(grid[pos[0]])) or grid[pos[0]][pos[1]] == "X":
            return "invalid_move"          # through a blocked cell or off the grid
    if grid[pos[0]][pos[1]] != "#":
        return "wrong_destination"
    return "longer_path" if len(moves) > len(gold) else "wrong_answer"


def rg_category(row: dict, problem: dict) -> str:
    if row.get("correct"):
        return "correct"
    if is_loop(row["output"]):
        return "loop_degeneration"
    if row.get("verdict") == "no_answer" or not row.get("extracted"):
        return "no_answer"
    ds, entry = problem.get("rg_dataset"), problem.get("rg_entry") or {}
    if ds == "family_relationships":
        return family_category(row["extracted"], str(entry.get("answer", "")))
    if ds == "shortest_path":
        return path_category(row["extracted"], entry.get("metadata") or {})
    if any(s.get("calcs") for s in problem.get("steps") or []):
        return numeric_category(row, problem)
    return "wrong_answer"
