"""KGs as edge lists: CSV/TSV triple files and JSON Lines, one edge per line.

Why: KG dumps (Wikidata5M, FB15k-237, ConceptNet exports, triples an LLM extracted) are rarely one JSON object;
they are tables of (head, relation, tail). These readers turn such a file into the loader's `{"edges": [...]}`
with the file line of every edge, so an error still points at the line to fix.
"""

from __future__ import annotations

import csv
import io
import json

# column names read as head / relation / tail in a header row (lower-cased); the loader's edge keys, plus the
# names KG toolkits write
HEAD_NAMES = ("head", "source", "subject", "h", "from", "subj", "head_entity", "entity1", "src")
REL_NAMES = ("relation", "predicate", "type", "r", "label", "rel", "pred", "property", "edge")
TAIL_NAMES = ("tail", "target", "object", "t", "to", "obj", "tail_entity", "entity2", "dst", "value")
TYPE_COLUMNS = {"head_type": ("head_type", "source_type", "subject_type"),
                "tail_type": ("tail_type", "target_type", "object_type")}


def _header(cells: list[str]) -> dict[str, int] | None:
    """Column index of head, relation, tail (and entity types) when `cells` is a header row naming all three."""
    low = [c.strip().lower() for c in cells]
    cols = {}
    for role, names in (("head", HEAD_NAMES), ("relation", REL_NAMES), ("tail", TAIL_NAMES)):
        hit = next((i for i, c in enumerate(low) if c in names and i not in cols.values()), None)
        if hit is None:
            return None
        cols[role] = hit
    for role, names in TYPE_COLUMNS.items():
        hit = next((i for i, c in enumerate(low) if c in names), None)
        if hit is not None:
            cols[role] = hit
    return cols


def read_table(text: str, delimiter: str) -> tuple[dict, dict[tuple, int], list[tuple[int, str, str]]]:
    """(data for the loader, line of each edge, problems as (line, field, message)). A header row naming the
    head, relation and tail columns may come first (then further columns are ignored, `head_type`/`tail_type`
    read); without one every row has exactly three cells. Blank rows and rows starting with '#' are skipped."""
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE   # a TSV's quotes belong to the names
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    edges, lines, problems = [], {}, []
    cols = None
    first = True
    try:
        for row in reader:
            line = reader.line_num
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if first:
                first = False
                cols = _header(row)
                if cols is not None:
                    continue
            if cols is None:
                if len(row) != 3:
                    problems.append((line, "columns", f"expected 3 cells (head, relation, tail), got {len(row)}; "
                                     "a header row naming the columns lets a file carry more"))
                    continue
                cells = {"head": row[0], "relation": row[1], "tail": row[2]}
            else:
                need = max(cols.values())
                if len(row) <= need:
                    problems.append((line, "columns", f"expected at least {need + 1} cells as the header says, "
                                     f"got {len(row)}"))
                    continue
                cells = {role: row[i] for role, i in cols.items()}
            cells = {k: v.strip() for k, v in cells.items()}
            empty = [k for k in ("head", "relation", "tail") if not cells[k]]
            if empty:
                problems.append((line, empty[0], f"empty {empty[0]}"))
                continue
            lines[("edges", len(edges))] = line
            edges.append({k: v for k, v in cells.items() if v})
    except csv.Error as e:
        problems.append((reader.line_num, "format", f"unreadable row: {e}"))
    return {"edges": edges}, lines, problems


def read_edge_lines(text: str) -> tuple[dict, dict[tuple, int], list[tuple[int, str, str]]]:
    """One edge per line, as `[head, relation, tail]` or an object in any edge shape the loader reads."""
    edges, lines, problems = [], {}, []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            edge = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append((n, "edge", f"malformed JSON: {e.msg}"))
            continue
        lines[("edges", len(edges))] = n
        edges.append(edge)
    return {"edges": edges}, lines, problems
