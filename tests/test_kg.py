import json

import pytest

from tracestyle.errors import InputError
from tracestyle.tasks.kg.loader import load_kg
from tracestyle.tasks.kg.questions import generate_kg_problems
from tracestyle.tasks.kg.refs import get_kg


def _walk(kg, p):
    cur = p["start"]
    for h in p["path"]:
        tg = kg.targets(cur, h["relation"], h["inverse"])
        assert tg == [h["to"]], "every hop must have exactly one target"
        cur = tg[0]
    return cur


@pytest.mark.parametrize("domain", ["devops", "world"])
def test_same_seed_same_items_and_unique_answers(domain):
    a = generate_kg_problems(domain, "train", 200, seed=3)
    b = generate_kg_problems(domain, "train", 200, seed=3)
    c = generate_kg_problems(domain, "train", 200, seed=4)
    assert a == b and a != c
    kg = get_kg(domain)
    for p in a:
        assert 1 <= p["difficulty"]["hops"] <= 3
        assert _walk(kg, p) == p["answer_entity"] == p["gold"]
        for fact in (kg.fact((h["to"], h["relation"], h["from"]) if h["inverse"] else (h["from"], h["relation"], h["to"]))
                     for h in p["path"]):
            assert fact in p["facts"]


def test_splits_share_no_question_or_path():
    ranges = {"train": (1, 4), "eval": (3, 5)}  # overlapping ranges: the path hash decides
    tr = generate_kg_problems("devops", "train", 300, 0, ranges)
    ev = generate_kg_problems("devops", "eval", 300, 0, ranges)
    assert not {p["path_key"] for p in tr} & {p["path_key"] for p in ev}
    assert not {p["query"] for p in tr} & {p["query"] for p in ev}
    assert {p["difficulty"]["hops"] for p in ev} <= {3, 4, 5}


def test_multiple_choice_and_closed_book():
    ps = generate_kg_problems("world", "eval", 30, 1, mc=True, open_book=False)
    for p in ps:
        assert p["gold"] in "ABCD" and p["choices"][ord(p["gold"]) - 65] == p["answer_entity"]
        kg = get_kg("world")
        assert {kg.entities[c] for c in p["choices"]} == {p["answer_type"]}
        assert "Facts:" not in p["question"] and "Options:" in p["question"]


def _kg(tmp_path, **over):
    data = {"name": "mini", "entities": [{"name": "a", "type": "t"}, {"name": "b", "type": "t"}],
            "relations": [{"name": "r", "head_type": "t", "tail_type": "t", "phrasings": ["links to"],
                           "inverse": "r_inv", "inverse_phrasings": ["is linked from"]}],
            "edges": [["a", "r", "b"]]}
    data.update(over)
    p = tmp_path / "kg.json"
    p.write_text(json.dumps(data, indent=1))
    return p


def test_user_kg_loads_and_generates(tmp_path):
    kg = load_kg(_kg(tmp_path))
    assert kg.has_edge("a", "r", "b")
    both = {"train": (1, 1), "eval": (1, 1)}
    tr = generate_kg_problems(str(_kg(tmp_path)), "train", 1, 0, both)
    ev = generate_kg_problems(str(_kg(tmp_path)), "eval", 1, 0, both)
    assert {tr[0]["gold"], ev[0]["gold"]} == {"a", "b"}, "the two one-hop paths land on opposite sides"
    with pytest.raises(InputError, match="could not make 2 distinct"):
        generate_kg_problems(str(_kg(tmp_path)), "train", 2, 0, both)


@pytest.mark.parametrize("over,needle", [
    ({"edges": [["a", "r", "zz"]]}, "dangling edge"),
    ({"edges": [["a", "nope", "b"]]}, "unknown relation"),
    ({"edges": [["a", "r", "a"]]}, "self-loop"),
    ({"entities": [{"name": "a", "type": "t"}, {"name": "a", "type": "t"}]}, "duplicate entity"),
    ({"colour": 1}, "unknown key"),
])
def test_bad_kg_names_file_line_field(tmp_path, over, needle):
    with pytest.raises(InputError, match=needle) as e:
        load_kg(_kg(tmp_path, **over))
    assert "kg.json" in str(e.value)


def test_impossible_requests_are_clear():
    with pytest.raises(InputError, match="hop range"):
        generate_kg_problems("devops", "train", 5, 0, {"train": (0, 2), "eval": (4, 5)})
    with pytest.raises(InputError, match="unknown KG"):
        generate_kg_problems("atlantis", "train", 5)
