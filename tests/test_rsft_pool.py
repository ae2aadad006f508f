"""Honest RSFT pools: train-split problems at the evaluation's difficulty, never an eval problem."""

import json
from collections import Counter

from tracestyle.ablations.grid import rsft_pool
from tracestyle.ablations.spec import GridSpec
from tracestyle.distill.pool import difficulty_matched
from tracestyle.tasks import get_task
from tracestyle.tasks.gsm8k.source import load_gsm8k


def test_gsm8k_pool_follows_the_eval_histogram(gsm8k_dir):
    train, test = load_gsm8k("train", gsm8k_dir, 600), load_gsm8k("test", gsm8k_dir, 100)
    chosen, rep = difficulty_matched(train + test[:5], test, 200, seed=0)
    assert rep["removed_as_eval"] == 5 and not {p["id"] for p in chosen} & {p["id"] for p in test}
    want = Counter(p["difficulty"]["steps"] for p in test)
    got = Counter(p["difficulty"]["steps"] for p in chosen)
    assert rep["missing_levels"] == []
    for lv, k in want.items():
        assert abs(got[lv] / len(chosen) - k / len(test)) <= 0.03, (lv, got, want)
    assert rep["chosen"] == len(chosen) > 100


def test_pool_reports_levels_it_cannot_match():
    kg = get_task("kg")
    easy = kg.load_problems(split="train", n=30, seed=0, options={"kg": "devops", "train_hops": (1, 2)})
    hard = kg.load_problems(split="eval", n=20, seed=0, options={"kg": "devops", "eval_hops": (4, 5)})
    chosen, rep = difficulty_matched(easy, hard, 10)
    assert chosen == [] and rep["missing_levels"] == ["4", "5"]


def test_grid_pool_is_train_side_at_eval_hops(tmp_path):
    spec = GridSpec(task="kg", kg="devops", train_hops=[1, 3], eval_hops=[4, 5], train_n=20, eval_n=20,
                    recipe="sft+rsft")
    out = tmp_path / "run"
    (out / "problems").mkdir(parents=True)
    kg = get_task("kg")
    ev = kg.load_problems(split="eval", n=20, seed=0, options=spec.task_options())
    (out / "problems" / "eval.jsonl").write_text("".join(json.dumps(p) + "\n" for p in ev))
    pool = [json.loads(x) for x in rsft_pool(spec, out, out / "problems" / "train.jsonl").read_text().splitlines()]
    assert pool and all(p["split"] == "train" and p["difficulty"]["hops"] in (4, 5) for p in pool)
    assert not {p["path_key"] for p in pool} & {p["path_key"] for p in ev}
    chosen, rep = difficulty_matched(pool, ev, 20)
    assert rep["missing_levels"] == [] and len(chosen) == 20
    assert rsft_pool(GridSpec(rsft_pool="train"), out, out / "t.jsonl") == out / "t.jsonl"
