"""Other people's KGs: shapes exported by other projects, errors that point at the offending edge, answer sets,
KG references that resolve again, and the path verifier on hops written either way or through unknown names."""

import gc
import json

import pytest

from tracestyle.errors import InputError
from tracestyle.tasks import score
from tracestyle.tasks.kg.graph import KnowledgeGraph
from tracestyle.tasks.kg.loader import kg_from_json, load_kg
from tracestyle.tasks.kg.path import verify_kg_path
from tracestyle.tasks.kg.questions import generate_kg_problems
from tracestyle.tasks.kg.refs import get_kg, resolve_kg
from tracestyle.tasks.text import with_article

# A KG as another project exports it: metadata keys, entities by id with aliases, dict edges, a relation whose head
# type varies from edge to edge, a symmetric relation, and a relation left undeclared-phrased.
EXPORTED = {
    "version": "2.1", "domain": "ops", "metadata": {"exported_by": "someone else"},
    "entities": [
        {"id": "e1", "name": "api gateway", "type": "service", "aliases": ["gateway"]},
        {"id": "e2", "name": "auth service", "type": "service"},
        {"id": "e3", "name": "issue tracker", "type": "tool"},
        {"id": "e4", "name": "infra team", "type": "team"},
        {"id": "e5", "name": "web team", "type": "team"},
        {"id": "e6", "name": "outage", "type": "incident"},
    ],
    "relations": [
        {"name": "owned_by", "head_type": ["service", "tool"], "tail_type": "team",
         "phrasings": ["is owned by"], "inverse_phrasings": ["owns"]},
        {"name": "works_with", "phrasings": ["works with"], "symmetric": True},
        {"name": "affects", "head_type": "incident", "phrasings": ["affects"], "inverse_phrasings": ["is hit by"]},
    ],
    "edges": [
        {"source": "e1", "relation": "owned_by", "target": "e4"},
        {"source": "e3", "relation": "owned_by", "target": "e5"},
        ["infra team", "works_with", "web team"],
        {"head": "e6", "relation": "affects", "tail": "e1"},
        {"head": "e6", "relation": "affects", "tail": "e2"},
        {"head": "e2", "relation": "owned_by", "tail": "e4"},
    ],
}


def test_exported_shapes_load():
    kg = kg_from_json(EXPORTED, "exported.json")
    assert kg.name == "ops"
    assert kg.has_edge("issue tracker", "owned_by", "web team")            # head type varies (tool, service)
    assert kg.has_edge("web team", "works_with", "infra team")             # symmetric: either way
    assert kg.targets("web team", "works_with") == ["infra team"]
    assert kg.canonical["gateway"] == "api gateway"                       # alias


def test_triples_only_kg_reads_entities_and_relations_off_the_edges():
    kg = kg_from_json({"edges": [["Ada", "mentored", "Bo"], ["Bo", "mentored", "Cy"]]})
    assert kg.entities == {"Ada": "entity", "Bo": "entity", "Cy": "entity"}
    assert kg.relations["mentored"].phrasings == ("mentored",)


def _write(tmp_path, data, name="kg.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data, indent=2))
    return p


def test_errors_name_the_edge_line_and_come_all_at_once(tmp_path):
    data = json.loads(json.dumps(EXPORTED))
    data["edges"].append(["api gateway", "owned_by", "nobody"])          # dangling
    data["edges"].append(["outage", "affects", "infra team"])            # fine: affects' tail type is free
    data["edges"].append(["web team", "owned_by", "infra team"])         # head type team not allowed
    data["colour"] = "red"
    p = _write(tmp_path, data)
    with pytest.raises(InputError) as e:
        load_kg(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:") and "3 problems" in msg
    lines = p.read_text().splitlines()
    dangling = next(i for i, ln in enumerate(lines, 1) if '"nobody"' in ln)
    # the line of the edge's first line ([ on its own line, as json.dumps(indent=2) writes it), not the entity's
    assert f"{p}:{dangling - 3}: field 'edges[6]': dangling edge: tail 'nobody'" in msg
    assert "field 'edges[8]'" in msg and "wants service or tool" in msg
    assert "field 'colour': unknown key (allowed: edges, entities, relations; metadata tolerated:" in msg


def test_error_cap(tmp_path):
    data = {"entities": ["a", "b"], "edges": [["a", "r", f"x{i}"] for i in range(40)]}
    with pytest.raises(InputError, match="and more; showing the first 20") as e:
        load_kg(_write(tmp_path, data))
    assert str(e.value).count("dangling edge") == 20


def test_questions_do_not_run_dry_on_a_fanning_kg(tmp_path):
    # 300 entities where every hop has several targets: single-answer walks find nothing at all
    ents = [f"node {i}" for i in range(300)]
    edges = [[ents[i], "links", ents[(i * 7 + k) % 300]] for i in range(300) for k in (1, 2, 3)]
    p = _write(tmp_path, {"name": "fan", "entities": ents, "edges": edges,
                          "relations": [{"name": "links", "phrasings": ["links to"], "inverse_phrasings": ["is linked from"]}]})
    with pytest.raises(InputError, match="single target") as e:
        generate_kg_problems(str(p), "train", 50, 0, {"train": (2, 3), "eval": (4, 5)})
    assert "--answer-sets" in str(e.value)
    probs = generate_kg_problems(str(p), "train", 50, 0, {"train": (2, 3), "eval": (4, 5)}, answer_sets=True)
    assert len(probs) == 50 and any(len(q["answers"]) > 1 for q in probs)
    kg = get_kg(str(p))
    for q in probs:
        assert q["answer_entity"] in q["answers"] and q["answer_match"] == "any"
        for other in q["answers"]:   # any member of the set, named after a valid path, is right
            text = f"{q['start']} links to {other}.\n#### {other}" if len(q["path"]) == 1 else f"#### {other}"
            assert score(q, text)["correct"], (q["id"], other)
        assert not score(q, "#### node 99999")["correct"]
        assert verify_kg_path(" ".join(f"{h['from']} {h['phrase']} {h['to']}." for h in q["path"]), q, kg).ok


def test_articles_agree_with_the_noun():
    assert [with_article(w) for w in ("issue", "error", "fix", "hour", "unit", "user", "team", "alert")] == \
        ["an issue", "an error", "a fix", "an hour", "a unit", "a user", "a team", "an alert"]
    from tracestyle.curate.teachers.template import template_trace
    from tracestyle.prompts import load_registers
    regs = load_registers()
    for p in generate_kg_problems("devops", "train", 60, 1):
        for r in regs.values():
            t = template_trace(p, r)
            assert " a error" not in t and " a alert" not in t and " a incident" not in t, t


def test_problems_from_a_user_kg_file_resolve_again_and_detect_changes(tmp_path):
    p = _write(tmp_path, EXPORTED, "ops.json")
    probs = generate_kg_problems(str(p), "train", 2, 0, {"train": (1, 1), "eval": (1, 1)})
    q = probs[0]
    assert q["kg"]["path"] == str(p.resolve()) and len(q["kg"]["sha256"]) == 64 and q["kg"]["builtin"] is None
    assert resolve_kg(q).has_edge(*next(iter(get_kg(str(p)).edges)))
    trace = " ".join(f"{h['from']} {h['phrase']} {h['to']}." for h in q["path"]) + f"\n#### {q['gold']}"
    s = score(q, trace)
    assert s["correct"] and s["path_valid"]
    changed = json.loads(json.dumps(EXPORTED))
    changed["edges"] = changed["edges"][:-1]
    _write(tmp_path, changed, "ops.json")
    with pytest.raises(InputError, match="has changed since the problem was made"):
        resolve_kg(q)
    (tmp_path / "ops.json").unlink()
    with pytest.raises(InputError, match="pass --kg"):
        resolve_kg(q)


def test_entity_patterns_are_cached_per_graph_not_per_id():
    def kg(names):
        return KnowledgeGraph("x", {n: "t" for n in names}, {}, set())
    seen = []
    for i in range(50):   # freed graphs hand their id() on to new ones
        g = kg([f"alpha{i}", f"beta{i}"])
        assert g.entity_pattern.findall(f"alpha{i} and beta{i}") == [f"alpha{i}", f"beta{i}"]
        seen.append(id(g))
        del g
        gc.collect()


# --- the path verifier ------------------------------------------------------------------------------------------

DEVOPS_P = {"task": "kg", "domain": "devops", "start": "disk full", "answer_entity": "failed deploys",
            "path": [{"from": "disk full", "relation": "causes", "inverse": False, "to": "ENOSPC write failure"},
                     {"from": "ENOSPC write failure", "relation": "leads_to", "inverse": False, "to": "failed deploys"}]}


def test_hops_read_in_either_direction():
    kg = get_kg("devops")
    forward = "disk full causes ENOSPC write failure. ENOSPC write failure leads to failed deploys."
    backward = "ENOSPC write failure is caused by disk full. failed deploys results from ENOSPC write failure."
    for text in (forward, backward):
        v = verify_kg_path(text, DEVOPS_P, kg)
        assert v.ok and v.details["valid_hops"] == 2, (text, v)


def test_unknown_entities_are_never_bridged():
    kg = get_kg("devops")
    text = "disk full causes a Flux Capacitor Fault, which leads to failed deploys."
    v = verify_kg_path(text, DEVOPS_P, kg)
    assert v.reason == "kg_path:hallucinated_edge" and v.details["valid_hops"] == 0
    bad = v.details["invalid_hops"]
    assert bad[0]["unknown"] == "Flux Capacitor Fault" and bad[0]["from"] == "disk full"
    assert bad[0]["written"].startswith("disk full causes") and "Flux Capacitor Fault" in bad[0]["written"]
    # in a student output scored by evaluation, too
    s = score(DEVOPS_P, text + "\n#### failed deploys")
    assert s["correct"] and s["path_valid"] is False and s["path"]["reason"] == "kg_path:hallucinated_edge"


def test_the_reported_edge_is_the_one_written():
    kg = get_kg("devops")
    v = verify_kg_path("ENOSPC write failure causes disk full.", DEVOPS_P, kg)
    h = v.details["invalid_hops"][0]
    assert v.reason == "kg_path:inverted_edge" and h["written"] == "ENOSPC write failure causes disk full"
    assert (h["from"], h["phrase"], h["to"]) == ("ENOSPC write failure", "causes", "disk full")


def test_prose_between_hops_is_not_a_hallucination():
    kg = get_kg("devops")
    text = ("Following the first link, disk full causes ENOSPC write failure. Then, ENOSPC write failure, which "
            "we found above, leads to failed deploys.\n#### failed deploys")
    assert verify_kg_path(text, DEVOPS_P, kg).ok


# The same small graph in the table shapes KG dumps come in; each must load to the same edges and make problems.
TRIPLES = [("Ada", "mentored", "Bo"), ("Bo", "mentored", "Cy"), ("Cy", "worksAt", "Lab North"),
           ("Bo", "worksAt", "Lab South"), ("Lab North", "/org/org/located_in", "Oslo"),
           ("Lab South", "/org/org/located_in", "Bergen"), ("Ada", "worksAt", "Lab South")]


def _same_graph(kg):
    assert {(h, r, t) for h, r, t in TRIPLES} == set(kg.edges)
    assert kg.relations["worksAt"].phrasings == ("works at",)
    assert kg.relations["/org/org/located_in"].phrasings == ("located in",)


@pytest.mark.parametrize("name,body", [
    ("kg.tsv", "\n".join("\t".join(t) for t in TRIPLES) + "\n"),
    ("kg.csv", "subject,predicate,object,confidence\n" + "\n".join(",".join(t) + ",0.9" for t in TRIPLES)),
    ("kg.jsonl", "\n".join(json.dumps(list(t)) for t in TRIPLES[:3]) + "\n\n"
     + "\n".join(json.dumps({"source": h, "relation": r, "target": t}) for h, r, t in TRIPLES[3:])),
    # the same column names in every shape: a table header's subj/pred/obj are a JSON edge's keys too
    ("kg_subj.jsonl", "\n".join(json.dumps({"subj": h, "pred": r, "obj": t}) for h, r, t in TRIPLES) + "\n"),
    ("kg_subj.json", json.dumps({"edges": [{"subj": h, "pred": r, "obj": t} for h, r, t in TRIPLES]})),
])
def test_edge_tables_load_and_make_problems(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(body)
    kg = load_kg(p)
    _same_graph(kg)
    probs = generate_kg_problems(str(p), "train", 4, 1, {"train": (1, 2), "eval": (1, 2)})
    assert len(probs) == 4 and all(score(pr, f"ANSWER: {pr['gold']}")["correct"] for pr in probs)


def test_networkx_node_link_json_loads(tmp_path):
    nx = pytest.importorskip("networkx")
    g = nx.MultiDiGraph()
    for i, who in enumerate(["Ada", "Bo", "Cy", "Lab North", "Lab South", "Oslo", "Bergen"]):
        g.add_node(i, name=who, type="place" if who in ("Oslo", "Bergen") else "thing")
    ids = {d["name"]: n for n, d in g.nodes(data=True)}
    for h, r, t in TRIPLES:
        g.add_edge(ids[h], ids[t], relation=r)
    p = tmp_path / "nodelink.json"
    p.write_text(json.dumps(nx.node_link_data(g, edges="links"), indent=1))
    kg = load_kg(p)
    _same_graph(kg)
    assert kg.entities["Oslo"] == "place" and kg.entities["Ada"] == "thing"


def test_table_errors_name_the_file_line(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_text("# comment line\nAda\tmentored\tBo\n\nBo\tmentored\nCy\t\tDee\nEd\tmentored\tEd\n")
    with pytest.raises(InputError) as e:
        load_kg(p)
    msg = str(e.value)
    assert "3 problems" in msg
    assert f"{p}:4: field 'columns': expected 3 cells" in msg
    assert f"{p}:5: field 'relation': empty relation" in msg
    assert f"{p}:6: field 'edges[1]': self-loop on 'Ed'" in msg
    j = tmp_path / "bad.jsonl"
    j.write_text('["Ada", "mentored", "Bo"]\n{"head": "Bo", "relation": "mentored"\n')
    with pytest.raises(InputError, match=rf"{j}:2: field 'edge': malformed JSON"):
        load_kg(j)


def test_types_given_on_edges_are_kept_and_must_agree():
    kg = kg_from_json({"edges": [{"head": "Ada", "head_type": "person", "relation": "works_at", "tail": "Lab"},
                                 {"head": "Bo", "relation": "works_at", "tail": "Lab", "tail_type": "lab"}]})
    assert kg.entities == {"Ada": "person", "Lab": "lab", "Bo": "entity"}
    with pytest.raises(InputError, match="'Lab' is typed 'city' here and 'lab' on an earlier edge"):
        kg_from_json({"edges": [{"head": "Bo", "relation": "works_at", "tail": "Lab", "tail_type": "lab"},
                                {"head": "Lab", "head_type": "city", "relation": "near", "tail": "Bo"}]})
