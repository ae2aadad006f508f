"""More task sources, each against the real component: reasoning-gym's generators and verifiers, and PhantomWiki's
universes with their Prolog queries run by SWI-Prolog."""

import json
import shutil

import pytest

from tracestyle.curate.teachers.template import template_trace
from tracestyle.prompts import load_registers
from tracestyle.reports.taxonomy import categorize
from tracestyle.tasks import get_task, score

from conftest import run_cli

pytest.importorskip("reasoning_gym", reason="reasoning-gym not installed (make setup-test)")
REGISTERS = load_registers(["normal", "gold", "titanium", "diamond"])


def _ok(r):
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("dataset", ["family_relationships", "shortest_path", "gsm_symbolic"])
def test_reasoning_gym_template_traces_pass_the_generators_own_verifier(dataset):
    task = get_task("reasoning_gym")
    train = task.load_problems(split="train", n=60, seed=0, options={"rg_dataset": dataset})
    evals = task.load_problems(split="eval", n=60, seed=0, options={"rg_dataset": dataset})
    assert not {p["question"] for p in train} & {p["question"] for p in evals}, "train and eval are separate streams"
    assert all(p["difficulty"]["steps"] >= 1 for p in train)
    for p in train:
        json.loads(json.dumps(p))                       # a problem row survives JSONL
        for reg in REGISTERS.values():
            s = score(p, template_trace(p, reg))
            assert s["correct"] and s["verdict"] == "ok", (dataset, reg.name, s)
            assert s.get("steps_valid") is not False, (dataset, reg.name, s)
        wrong = score(p, "Let's think.\n#### definitely not it")
        assert not wrong["correct"] and wrong["verdict"] == "wrong_answer"


def test_reasoning_gym_answers_in_other_conventions_and_failure_categories():
    task = get_task("reasoning_gym")
    fam = task.load_problems(split="eval", n=40, seed=1, options={"rg_dataset": "family_relationships"})
    p = next(x for x in fam if x["gold"] == "son")
    for text in ("<answer>son</answer>", "**Final answer:** Son", "They are related as follows.\nson",
                 "The answer is son."):
        assert score(p, text)["correct"], text
    row = {**score(p, "#### mother"), "output": "#### mother"}
    assert categorize(row, p) == "relation_inversion"
    row = {**score(p, "#### daughter"), "output": "#### daughter"}
    assert categorize(row, p) == "wrong_gender"
    grid = task.load_problems(split="eval", n=20, seed=1, options={"rg_dataset": "shortest_path"})
    g = next(x for x in grid if x["gold"] != "infeasible")
    first = g["gold"].split()[0]
    back = {"up": "down", "down": "up", "left": "right", "right": "left"}[first]
    longer = f"{first} {back} {g['gold']}"
    row = {**score(g, f"#### {longer}"), "output": f"#### {longer}"}
    assert not row["correct"] and categorize(row, g) == "longer_path"
    sym = task.load_problems(split="eval", n=5, seed=1, options={"rg_dataset": "gsm_symbolic"})[0]
    assert score(sym, f"The total is ${sym['gold']}.\n#### ${sym['gold']}")["correct"], "a number, however written"


def test_reasoning_gym_bad_input_names_the_field(tmp_path):
    r = run_cli("problems", "--task", "reasoning_gym", "--rg-dataset", "no_such_generator", "--n", "2",
                "--out", str(tmp_path / "p.jsonl"))
    assert r.returncode == 2 and "rg_dataset" in r.stderr and "no_such_generator" in r.stderr
    r = run_cli("problems", "--task", "reasoning_gym", "--rg-dataset", "family_relationships", "--rg-config", "[1]",
                "--n", "2", "--out", str(tmp_path / "p.jsonl"))
    assert r.returncode == 2 and "--rg-config" in r.stderr
    rows = [{"id": "a", "task": "reasoning_gym", "question": "q?", "gold": "x", "rg_dataset": "family_relationships"}]
    (tmp_path / "bad.jsonl").write_text("\n".join(json.dumps(x) for x in rows) + "\n")
    r = run_cli("generate", "--problems", str(tmp_path / "bad.jsonl"), "--registers", "normal",
                "--out", str(tmp_path / "g"))
    assert r.returncode == 2 and "bad.jsonl:1: field 'rg_entry'" in r.stderr, r.stderr
    assert not (tmp_path / "p.jsonl").exists() and not (tmp_path / "g" / "traces.jsonl").exists()


@pytest.mark.slow
def test_reasoning_gym_generate_curate_train_eval(tmp_path):
    for split, n in (("train", "12"), ("eval", "6")):
        _ok(run_cli("problems", "--task", "reasoning_gym", "--rg-dataset", "gsm_symbolic", "--split", split,
                    "--n", n, "--out", str(tmp_path / f"{split}.jsonl")))
    _ok(run_cli("generate", "--problems", str(tmp_path / "train.jsonl"), "--registers", "normal,titanium",
                "--out", str(tmp_path / "gen")))
    _ok(run_cli("curate", "--in", str(tmp_path / "gen" / "traces.jsonl"), "--task", "reasoning_gym",
                "--filters", "length,correct,steps,compliance,dedup", "--out", str(tmp_path / "cur")))
    man = json.loads((tmp_path / "cur" / "manifest.json").read_text())
    assert man["counts"]["kept"] == 24 and man["counts"]["dropped"] == 0, man["counts"]
    kept = _rows(tmp_path / "cur" / "kept.jsonl")
    assert all(r["steps"]["valid"] and r["steps"]["checked"] >= 1 for r in kept)
    _ok(run_cli("train", "--data", str(tmp_path / "cur" / "kept.jsonl"), "--steps", "2", "--batch-size", "2",
                "--max-length", "256", "--out", str(tmp_path / "a")))
    _ok(run_cli("eval", "--adapter", str(tmp_path / "a"), "--problems", str(tmp_path / "eval.jsonl"),
                "--max-new-tokens", "32", "--batch-size", "6", "--out", str(tmp_path / "e")))
    rows = _rows(tmp_path / "e" / "eval.jsonl")
    assert len(rows) == 6 and all(isinstance(r["correct"], bool) and "steps_valid" in r for r in rows)


needs_prolog = pytest.mark.skipif(shutil.which("swipl") is None, reason="SWI-Prolog not installed (make setup-test)")


@needs_prolog
def test_phantomwiki_questions_become_path_checked_kg_problems(tmp_path, monkeypatch):
    pytest.importorskip("phantom_wiki", reason="phantom-wiki not installed (make setup-test)")
    from tracestyle.tasks.kg.phantomwiki import chain_of, generate_universe, import_phantomwiki, read_questions

    monkeypatch.setenv("TRACESTYLE_CACHE", str(tmp_path / "cache"))
    folder = generate_universe(tmp_path / "u", seed=3, size=26, questions_per_type=4, depth=10)
    problems, summary = import_phantomwiki(folder, "train", 0)
    # every question kept gives PhantomWiki's own answers when SWI-Prolog runs its query over the universe
    assert summary["query_disagrees"] == 0 and summary["kept"] >= 30, summary
    assert summary["counting_or_other_shape"] == sum(chain_of(q) is None for q in read_questions(folder))
    assert max(p["difficulty"]["hops"] for p in problems) >= 3
    for p in problems:
        assert p["task"] == "kg" and p["source"]["dataset"] == "phantomwiki" and p["source"]["prolog"]["query"]
        for reg in REGISTERS.values():
            s = score(p, template_trace(p, reg))
            assert s["correct"] and s["path_valid"] is True, (reg.name, s)
    # an edge the universe does not have is caught by the path verifier
    p = next(x for x in problems if x["path"][0]["relation"] not in ("dob", "job", "hobby", "gender")
             and not x["path"][0]["inverse"])
    hop = p["path"][0]
    other = next(x["path"][-1]["to"] for x in problems if x["path"][-1]["to"] not in p["answers"]
                 and x["answer_type"] == "person" and x["path"][-1]["to"] != hop["from"])
    text = f"{hop['from']} {hop['phrase']} {other}.\n#### {p['gold']}"
    s = score(p, text)
    assert s["path_valid"] is False, s
    # a dataset made without solution traces: the path is found in the KG, the same questions are kept
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    for f in (bare / "questions").glob("*.json"):
        f.write_text(json.dumps([{k: v for k, v in q.items() if k != "solution_traces"}
                                 for q in json.loads(f.read_text())]))
    again, summary2 = import_phantomwiki(bare, "train", 0)
    assert summary2["kept"] == summary["kept"] and [p["gold"] for p in again] == [p["gold"] for p in problems]


@needs_prolog
@pytest.mark.slow
def test_phantomwiki_generate_curate_train_eval(tmp_path):
    pytest.importorskip("phantom_wiki", reason="phantom-wiki not installed (make setup-test)")
    env = {"TRACESTYLE_CACHE": str(tmp_path / "cache")}
    for split, n in (("train", "12"), ("eval", "6")):
        _ok(run_cli("problems", "--task", "phantomwiki", "--split", split, "--n", n,
                    "--out", str(tmp_path / f"{split}.jsonl"), env=env))
    train, evals = _rows(tmp_path / "train.jsonl"), _rows(tmp_path / "eval.jsonl")
    facts = lambda rows: {(h["from"], h["relation"], h["to"]) for r in rows for h in r["path"]}  # noqa: E731
    assert train[0]["kg"]["sha256"] != evals[0]["kg"]["sha256"], "train and eval are different universes"
    assert not facts(train) & facts(evals), "no fact of the train universe answers an eval question"
    # the same seed gives the same problems (PhantomWiki's own ids and trace order change from run to run)
    again = tmp_path / "again.jsonl"
    _ok(run_cli("problems", "--task", "phantomwiki", "--split", "train", "--n", "12", "--out", str(again),
                env={"TRACESTYLE_CACHE": str(tmp_path / "cache2")}))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("kg", "domain", "source")} for r in rows]  # noqa: E731
    assert strip(_rows(again)) == strip(train)
    _ok(run_cli("generate", "--problems", str(tmp_path / "train.jsonl"), "--registers", "normal,gold",
                "--out", str(tmp_path / "gen")))
    _ok(run_cli("curate", "--in", str(tmp_path / "gen" / "traces.jsonl"), "--task", "kg", "--out", str(tmp_path / "cur")))
    man = json.loads((tmp_path / "cur" / "manifest.json").read_text())
    assert man["counts"]["kept"] == 24 and man["counts"]["dropped"] == 0, man["counts"]
    _ok(run_cli("train", "--data", str(tmp_path / "cur" / "kept.jsonl"), "--steps", "2", "--batch-size", "2",
                "--max-length", "256", "--out", str(tmp_path / "a")))
    _ok(run_cli("eval", "--adapter", str(tmp_path / "a"), "--problems", str(tmp_path / "eval.jsonl"),
                "--max-new-tokens", "32", "--batch-size", "6", "--out", str(tmp_path / "e")))
    rows = _rows(tmp_path / "e" / "eval.jsonl")
    assert len(rows) == 6 and all("path_valid" in r for r in rows)
    r = run_cli("problems", "--task", "phantomwiki", "--pw-dir", str(tmp_path), "--n", "2",
                "--out", str(tmp_path / "x.jsonl"), env=env)
    assert r.returncode == 2 and "no facts.pl" in r.stderr and str(tmp_path) in r.stderr


@pytest.mark.slow
def test_reasoning_gym_in_a_tiny_grid(tmp_path):
    """A grid spec on a reasoning-gym generator: token-matched registers, a corrupted condition, the step checker
    and reasoning-gym's verifier in the results, a report."""
    import csv

    spec = tmp_path / "grid.yaml"
    # gsm_symbolic traces run ~60-250 tokens: 40 problems leave the matcher rows enough to land within 1%
    spec.write_text("task: reasoning_gym\nrg_dataset: gsm_symbolic\nregisters: [normal]\n"
                    "students: [smollm2-135m]\ntrain_n: 40\neval_n: 4\nbatch_size: 2\neval_max_new_tokens: 24\n"
                    "eval_batch_size: 4\ntoken_budget: 1200\ncorruption: [wrong_value]\n"
                    "curriculum: easy_first\nnll_sample: 2\n")
    out = tmp_path / "run"
    _ok(run_cli("grid", str(spec), "--out", str(out)))
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {x["register"] for x in rows} == {"base", "normal", "normal+wrong_value"}
    assert all(int(x["n"]) == 4 for x in rows) and "steps_valid_rate" in rows[0], rows
    tok = json.loads((out / "data" / "tokens.json").read_text())
    assert all(v["within"] for v in tok["registers"].values()), tok
    bad = _rows(out / "data" / "normal+wrong_value.jsonl")
    assert bad and all(x["corruption"]["kind"] == "wrong_value" for x in bad)
    assert "reasoning_gym" in (out / "report.md").read_text()
