"""PhantomWiki (PyPI `phantom-wiki`, MIT) as a multi-hop source for the KG task.

PhantomWiki generates a fictional universe (family trees, friendships, attributes) as a Prolog program and asks
questions, each with the Prolog query that answers it. SWI-Prolog runs that program here: it materialises every
relation the questions use (the derived ones such as `great_grandchild` included) into KG edges, and re-runs each
question's query, so a question is kept only when its own query gives PhantomWiki's answers. A kept question is a
KG problem: the chain of its query's relations from the entity it names to the answer, checked by the path
verifier like any other KG problem.

Each split is its own universe (different seeds): names and dates may repeat between universes (PhantomWiki draws
from fixed pools), but no fact of one is a fact of the other. Generation runs in a
subprocess because pyswip keeps one Prolog engine per process, so two universes in one process would merge.
Counting questions ("How many ...") have no path and are left out (counted in the import summary).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from random import Random

from tracestyle.errors import InputError, MissingExtraError
from tracestyle.layout import cache_root
from tracestyle.tasks.kg.questions import Chain, Framing, answer_set, make_problem
from tracestyle.tasks.kg.refs import get_kg, kg_ref

_GOAL = re.compile(r"^\s*([a-z]\w*)\((.*)\)\s*$")
_ARG = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Z_]\w*)\s*(?:,|$)')
ATTRIBUTE_TYPES = {"dob": "date", "job": "occupation", "hobby": "hobby", "gender": "gender"}
# base relations materialised beside the ones the questions use, so distractor facts come from the same family
BASE = ("son", "daughter", "wife", "husband", "mother", "father", "sister", "brother", "friend")
SPLIT_SEED = {"train": 0, "eval": 1, "test": 1}


def requirements() -> None:
    try:
        import phantom_wiki  # noqa: F401
    except ImportError:
        raise MissingExtraError("phantom-wiki", how="pip install --ignore-requires-python phantom-wiki==1.0.3 "
                                "(make setup-test does)") from None
    if shutil.which("swipl") is None:
        raise MissingExtraError("SWI-Prolog (PhantomWiki needs it)", how="apt-get install swi-prolog-nox")


def label(pred: str) -> str:
    return pred.replace("_in_law", "-in-law").replace("great_", "great-").replace("_", " ") \
        .replace("dob", "date of birth").replace("job", "occupation")


def generate_universe(out: Path, *, seed: int, size: int, questions_per_type: int, depth: int) -> Path:
    """Run PhantomWiki's generator into `out` once (a finished folder is reused; a half-written one never is)."""
    if (out / "facts.pl").exists() and (out / "questions").is_dir():
        return out
    requirements()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    cmd = [sys.executable, "-m", "phantom_wiki", "-od", str(tmp), "--seed", str(seed), "--max-family-tree-size",
           str(size), "--num-questions-per-type", str(questions_per_type), "--question-depth", str(depth), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0 or not (tmp / "facts.pl").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"PhantomWiki's generator failed ({r.returncode}): {(r.stderr or r.stdout)[-400:]}")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def read_questions(folder: Path) -> list[dict]:
    files = sorted((folder / "questions").glob("*.json")) if (folder / "questions").is_dir() else []
    files += [folder / "questions.json"] if (folder / "questions.json").exists() else []
    if not files:
        raise InputError("no PhantomWiki questions (questions/*.json or questions.json)", str(folder))
    out = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except ValueError as e:
            raise InputError(f"not JSON: {e}", str(f)) from None
        for q in data if isinstance(data, list) else [data]:
            for key in ("id", "question", "answer", "prolog"):
                if key not in q:
                    raise InputError("a PhantomWiki question needs id, question, answer and prolog", str(f), None, key)
            out.append(q)
    return out


def _args(text: str) -> list[str] | None:
    args, pos = [], 0
    while pos < len(text):
        m = _ARG.match(text, pos)
        if not m:
            return None
        args.append(m.group(1))
        pos = m.end()
    return args


def chain_of(q: dict) -> tuple[str, list[tuple[str, bool, str, str]], str] | None:
    """(start entity, [(relation, inverse, from term, to term)], answer variable) for a query that is a chain of
    binary relations from one named entity to the answer; None for counting or other shapes."""
    var = q["prolog"].get("answer")
    goals = []
    for g in q["prolog"].get("query") or []:
        m = _GOAL.match(g)
        args = _args(m.group(2)) if m else None
        if not m or not args or len(args) != 2 or m.group(1) in ("aggregate_all", "distinct"):
            return None
        goals.append((m.group(1), args[0], args[1]))
    consts = [a for _, x, y in goals for a in (x, y) if a.startswith('"')]
    if len(consts) != 1 or not var:
        return None
    cur, hops, todo = consts[0], [], list(goals)
    while todo:
        nxt = next(((g, g[1] == cur) for g in todo if cur in (g[1], g[2])), None)
        if nxt is None:
            return None
        (pred, x, y), forward = nxt
        todo.remove((pred, x, y))
        to = y if forward else x
        hops.append((pred, not forward, cur, to))
        cur = to
    return (json.loads(consts[0]), hops, var) if cur == var else None


def _prolog_script(facts: Path, relations: list[str], chains: dict[str, tuple]) -> str:
    lines = [f"main :- consult({json.dumps(str(facts))}),"]
    for r in relations:
        lines.append(f"  forall(({r}(A, B), A \\= B), format(\"R\\t~w\\t~w\\t~w~n\", [{r}, A, B])),")
    for qid, (_start, hops, var) in chains.items():
        goals = ", ".join(f"{p}({t1}, {t2})" if not inv else f"{p}({t2}, {t1})" for p, inv, t1, t2 in hops)
        lines.append(f"  findall({var}, ({goals}), L{len(lines)}), "
                     f"forall(member(X, L{len(lines)}), format(\"Q\\t~w\\t~w~n\", [{json.dumps(qid)}, X])),")
    lines.append("  true.")
    return "\n".join(lines) + "\n"


def run_prolog(facts: Path, relations: list[str], chains: dict[str, tuple]) -> tuple[dict, dict]:
    """SWI-Prolog over the universe: every pair of each relation, and each question's answers by its query."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "pw.pl"
        script.write_text(_prolog_script(facts, relations, chains))
        r = subprocess.run(["swipl", "-q", "-g", "main", "-t", "halt", str(script)], capture_output=True,
                           text=True, timeout=1800)
    if r.returncode != 0:
        raise InputError(f"SWI-Prolog failed on the PhantomWiki program ({r.returncode}): {r.stderr[-400:]}",
                         str(facts))
    pairs: dict[str, set] = {}
    answers: dict[str, set] = {}
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "R" and len(parts) == 4:
            pairs.setdefault(parts[1], set()).add((parts[2], parts[3]))
        elif parts[0] == "Q" and len(parts) == 3:
            answers.setdefault(parts[1], set()).add(parts[2])
    return pairs, answers


def build_kg(name: str, pairs: dict[str, set]) -> dict:
    """The KG JSON (tracestyle's loader format) of the materialised relations."""
    entities: dict[str, str] = {}
    relations, edges = [], []
    for rel in sorted(pairs):
        ps = pairs[rel]
        tail_type = ATTRIBUTE_TYPES.get(rel, "person")
        for h, t in ps:
            entities.setdefault(h, "person")
            entities.setdefault(t, tail_type)
        lab = label(rel)
        symmetric = bool(ps) and all((t, h) in ps for h, t in ps)
        if symmetric:
            relations.append({"name": rel, "head_type": "person", "tail_type": "person",
                              "phrasings": [f"is a {lab} of", f"has {lab}"], "inverse_phrasings": [f"is a {lab} of"]})
            edges += [[h, rel, t] for h, t in sorted(ps) if h < t]
        else:
            relations.append({"name": rel, "head_type": "person", "tail_type": tail_type,
                              "phrasings": [f"has {lab}"], "inverse_phrasings": [f"is the {lab} of", f"is a {lab} of"]})
            edges += [[h, rel, t] for h, t in sorted(ps)]
    return {"name": name, "source": "PhantomWiki (phantom-wiki, MIT), materialised by SWI-Prolog",
            "entities": [{"name": e, "type": t} for e, t in sorted(entities.items())],
            "relations": relations, "edges": edges}


def _walk_to(kg, start: str, hops: list[dict], goal: set) -> list[dict] | None:
    """One concrete path along the query's relations from the start to a gold answer (depth-first)."""
    def go(entity: str, i: int) -> list[dict] | None:
        if i == len(hops):
            return [] if entity in goal else None
        for nxt in kg.targets(entity, hops[i]["relation"], hops[i]["inverse"]):
            rest = go(nxt, i + 1)
            if rest is not None:
                return [{**hops[i], "from": entity, "to": nxt}] + rest
        return None
    return go(start, 0)


def import_phantomwiki(folder: Path, split: str, seed: int, *, distractors: int | None = None) -> tuple[list, dict]:
    """KG problems from a PhantomWiki folder (facts.pl + questions); writes folder/kg.json. Returns the problems
    and a summary of what was left out and why."""
    requirements()
    questions = read_questions(folder)
    summary = {"questions": len(questions), "counting_or_other_shape": 0, "query_disagrees": 0,
               "kg_disagrees": 0, "duplicates": 0}
    chains = {}
    for q in questions:
        c = chain_of(q)
        if c is None:
            summary["counting_or_other_shape"] += 1
        else:
            chains[str(q["id"])] = c
    used = sorted({h[0] for c in chains.values() for h in c[1]} | set(BASE))
    pairs, prolog_answers = run_prolog(folder / "facts.pl", used, chains)
    kg_path = folder / "kg.json"
    tmp = kg_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(build_kg(f"phantomwiki-{folder.name}", pairs)))
    os.replace(tmp, kg_path)
    kg = get_kg(str(kg_path))
    ref = kg_ref(str(kg_path), kg)
    out, seen = [], set()
    for q in questions:
        qid = str(q["id"])
        if qid not in chains:
            continue
        start, hops_t, var = chains[qid]
        gold = sorted(str(a) for a in q["answer"])
        if sorted(prolog_answers.get(qid, set())) != gold:
            summary["query_disagrees"] += 1          # the query, run here, does not give PhantomWiki's answers
            continue
        traces = q.get("solution_traces") or []
        traces = json.loads(traces) if isinstance(traces, str) else traces   # a JSON string in phantom-wiki 1.x
        # PhantomWiki lists the traces in a different order on each run: take the first in sorted order, so the
        # same universe always gives the same reference path
        traces = sorted(traces, key=lambda t: json.dumps(t, sort_keys=True))
        bind = {k: str(v) for k, v in (traces[0] if traces else {}).items()}
        hops = []
        for pred, inv, t1, t2 in hops_t:
            a = start if t1.startswith('"') else bind.get(t1)
            b = start if t2.startswith('"') else bind.get(t2)
            hops.append({"from": a, "relation": pred, "inverse": inv, "to": b, "phrase": kg.phrase(pred, inv)})
        if not all(h["from"] and h["to"] for h in hops):      # a dataset made with --skip-solution-traces
            hops = _walk_to(kg, start, hops, set(gold)) or hops
        edges_ok = all(h["from"] and h["to"] and (kg.has_edge(h["to"], h["relation"], h["from"]) if h["inverse"]
                                                 else kg.has_edge(h["from"], h["relation"], h["to"])) for h in hops)
        if not edges_ok or sorted(answer_set(kg, start, hops)) != gold:
            # e.g. a chain that comes back to its start ("the occupation of the person whose occupation is X"),
            # which KG questions never ask
            summary["kg_disagrees"] += 1
            continue
        if q["question"] in seen:
            summary["duplicates"] += 1
            continue
        seen.add(q["question"])
        key = hashlib.sha256(f"{start}|{q['question']}".encode()).hexdigest()   # ids are fresh uuids per run
        rng = Random(f"{seed}|{split}|{q['question']}")
        p = make_problem(kg, Chain(start, hops, gold, key), rng, Framing(split, seed, distractors=distractors),
                         idx=len(out), ref=ref)
        p["id"] = f"pw-{split}-s{seed}-{len(out)}"
        p["query"] = q["question"]
        p["question"] = "Facts:\n" + "\n".join(p["facts"]) + "\n\nQuestion: " + q["question"]
        p["source"] = {"dataset": "phantomwiki", "id": qid, "type": q.get("type"), "difficulty": q.get("difficulty"),
                       "prolog": q["prolog"]}
        out.append(p)
    summary["kept"] = len(out)
    return out, summary


def phantomwiki_problems(split: str, n: int, seed: int, options: dict) -> list[dict]:
    """n problems of `split` from a PhantomWiki folder the user brings (options['pw_dir']) or from a universe
    generated for this split and seed (cached under $TRACESTYLE_CACHE/phantomwiki)."""
    if split not in SPLIT_SEED:
        raise InputError(f"unknown split '{split}' (train or eval)", field="split")
    if options.get("pw_dir"):
        folder = Path(options["pw_dir"])
        if not (folder / "facts.pl").exists():
            raise InputError("not a PhantomWiki folder (no facts.pl)", str(folder), field="pw_dir")
    else:
        size, depth = int(options.get("pw_size") or 26), int(options.get("pw_depth") or 10)
        per_type = max(4, -(-n // 8))               # depth 10: 20 templates, 13 of them chains (1-4 hops)
        pw_seed = 2 * seed + SPLIT_SEED[split] + 1
        folder = cache_root() / "phantomwiki" / f"s{pw_seed}-size{size}-d{depth}-q{per_type}"
        generate_universe(folder, seed=pw_seed, size=size, questions_per_type=per_type, depth=depth)
    problems, summary = import_phantomwiki(folder, split, seed, distractors=options.get("distractors"))
    if len(problems) < n:
        raise InputError(f"PhantomWiki gave {len(problems)} usable questions, fewer than n={n} ({summary}); lower "
                         "--n or bring a larger universe", field="n")
    return Random(f"pw|{seed}|{split}").sample(problems, n)
