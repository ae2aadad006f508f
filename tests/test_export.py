"""Dataset export: a folder that datasets and Parquet readers open, one config per register, with its card."""

import json

import pyarrow.parquet as pq

from tracestyle.curate.export import push_calls, push_to_hub

from conftest import run_cli


def test_export_opens_in_datasets_and_parquet(tmp_path):
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--kg", "devops", "--split", "train", "--n", "12", "--out",
                   str(probs)).returncode == 0
    assert run_cli("generate", "--problems", str(probs), "--registers", "normal,gold,titanium",
                   "--out", str(tmp_path / "gen")).returncode == 0
    assert run_cli("curate", "--in", str(tmp_path / "gen" / "traces.jsonl"), "--task", "kg",
                   "--out", str(tmp_path / "curated")).returncode == 0
    out = tmp_path / "ds"
    r = run_cli("export", str(tmp_path), "--out", str(out))   # a run folder: its curated/ is found
    assert r.returncode == 0, r.stderr
    from datasets import load_dataset, load_from_disk

    kept = [json.loads(x) for x in (tmp_path / "curated" / "kept.jsonl").read_text().splitlines()]
    for reg in ("normal", "gold", "titanium"):
        mine = [k for k in kept if k["register"] == reg]
        d = load_from_disk(str(out / reg))
        assert len(d) == len(mine) and set(d["text"]) == {k["text"] for k in mine}
        assert pq.read_table(out / "data" / f"{reg}.parquet").num_rows == len(mine)
        h = load_dataset(str(out), reg, split="train")
        assert len(h) == len(mine) and json.loads(h[0]["difficulty"])["hops"] >= 1
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: gold" in card and "data_files: data/gold.parquet" in card
    for must in ("Task: kg", "Teacher: template", "Filters: length, correct, kg_path, compliance, dedup",
                 "| gold | ", "tokens (smollm2-135m)"):
        assert must in card, must


def test_export_refuses_what_is_not_curated(tmp_path):
    r = run_cli("export", str(tmp_path), "--out", str(tmp_path / "ds"))
    assert r.returncode == 2 and "kept.jsonl" in r.stderr and not (tmp_path / "ds").exists()


def test_push_builds_the_right_calls(tmp_path):
    calls = []

    class Api:
        def __getattr__(self, name):
            return lambda **kw: calls.append((name, kw))
    push_to_hub(tmp_path, "me/traces", private=True, api=Api())
    assert calls == [("create_repo", {"repo_id": "me/traces", "repo_type": "dataset", "private": True,
                                      "exist_ok": True}),
                     ("upload_folder", {"repo_id": "me/traces", "repo_type": "dataset", "folder_path": str(tmp_path),
                                        "allow_patterns": ["README.md", "data/*.parquet"]})]
    assert push_calls(tmp_path, "me/traces")[0]["private"] is False
