"""A user's own KG and registers through the real CLI: one `--kg` flag on every command, registers found by the
name in their register.yaml, and inputs that cannot be checked refused with file, line and field."""

import json
import shutil

import pytest

from tracestyle.prompts import BUILTIN_DIR, load_registers

from conftest import run_cli

USER_KG = {
    "name": "library", "version": 3,
    "entities": [{"name": n, "type": t} for n, t in [
        ("Ana", "person"), ("Ben", "person"), ("Cleo", "person"), ("Dev", "person"), ("Eli", "person"),
        ("Fay", "person"), ("Gus", "person"), ("Hal", "person"),
        ("North Hall", "building"), ("South Hall", "building"), ("East Wing", "building"),
        ("Maps Room", "room"), ("Rare Books", "room"), ("Reading Room", "room"), ("Archive", "room")]],
    "relations": [
        {"name": "works_in", "head_type": "person", "tail_type": "room", "phrasings": ["works in"],
         "inverse_phrasings": ["employs"]},
        {"name": "part_of", "head_type": "room", "tail_type": "building", "phrasings": ["is part of"],
         "inverse_phrasings": ["houses"]},
        {"name": "trained", "head_type": "person", "tail_type": "person", "phrasings": ["trained"],
         "inverse_phrasings": ["was trained by"]},
    ],
    "edges": [["Ana", "works_in", "Maps Room"], ["Ben", "works_in", "Rare Books"], ["Cleo", "works_in", "Reading Room"],
              ["Dev", "works_in", "Archive"], ["Maps Room", "part_of", "North Hall"],
              ["Rare Books", "part_of", "South Hall"], ["Reading Room", "part_of", "East Wing"],
              ["Archive", "part_of", "North Hall"], ["Ana", "trained", "Ben"], ["Ben", "trained", "Cleo"],
              ["Cleo", "trained", "Dev"], ["Eli", "trained", "Fay"], ["Fay", "trained", "Gus"],
              ["Gus", "trained", "Hal"], ["Eli", "works_in", "Maps Room"], ["Hal", "works_in", "Archive"]],
}


def _ok(r):
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.mark.slow
def test_user_kg_problems_generate_curate_train_eval_with_one_flag(tmp_path):
    kg = tmp_path / "library.json"
    kg.write_text(json.dumps(USER_KG, indent=1))
    both = ["--train-hops", "1-3", "--eval-hops", "1-3"]
    _ok(run_cli("problems", "--task", "kg", "--kg", str(kg), "--split", "train", "--n", "12", *both,
                "--out", str(tmp_path / "train.jsonl")))
    _ok(run_cli("problems", "--task", "kg", "--kg", str(kg), "--split", "eval", "--n", "4", *both,
                "--out", str(tmp_path / "eval.jsonl")))
    first = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert first["kg"]["path"] == str(kg.resolve()) and first["domain"] == "library"
    _ok(run_cli("generate", "--problems", str(tmp_path / "train.jsonl"), "--registers", "normal,titanium",
                "--out", str(tmp_path / "gen")))
    # the KG file moves: the problems' reference no longer resolves, and --kg points at its new place
    moved = tmp_path / "elsewhere" / "library.json"
    moved.parent.mkdir()
    shutil.move(kg, moved)
    r = run_cli("curate", "--in", str(tmp_path / "gen" / "traces.jsonl"), "--task", "kg", "--out", str(tmp_path / "c0"))
    assert r.returncode == 2 and "traces.jsonl:1: field 'kg'" in r.stderr and "pass --kg" in r.stderr, r.stderr
    assert not (tmp_path / "c0").exists()
    _ok(run_cli("curate", "--in", str(tmp_path / "gen" / "traces.jsonl"), "--task", "kg", "--kg", str(moved),
                "--out", str(tmp_path / "cur")))
    man = json.loads((tmp_path / "cur" / "manifest.json").read_text())
    assert man["counts"]["kept"] == 24 and man["counts"]["dropped"] == 0, man["counts"]
    _ok(run_cli("train", "--data", str(tmp_path / "cur" / "kept.jsonl"), "--steps", "2", "--batch-size", "2",
                "--max-length", "192", "--out", str(tmp_path / "a")))
    _ok(run_cli("eval", "--adapter", str(tmp_path / "a"), "--problems", str(tmp_path / "eval.jsonl"), "--kg", str(moved),
                "--max-new-tokens", "24", "--batch-size", "4", "--out", str(tmp_path / "e")))
    rows = [json.loads(x) for x in (tmp_path / "e" / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all("path_valid" in x for x in rows)
    r = run_cli("eval", "--problems", str(tmp_path / "eval.jsonl"), "--max-new-tokens", "8", "--out", str(tmp_path / "e2"))
    assert r.returncode == 2 and "eval.jsonl:1: field 'kg'" in r.stderr


def test_kg_flag_is_the_same_on_every_command():
    for cmd in ("problems", "generate", "curate", "eval", "rsft"):
        r = run_cli(cmd, "--help")
        assert "--kg KG" in r.stdout, cmd


def test_register_named_differently_from_its_folder(tmp_path):
    regs = tmp_path / "regs"
    shutil.copytree(BUILTIN_DIR / "titanium", regs / "my-folder")
    y = regs / "my-folder" / "register.yaml"
    y.write_text(y.read_text().replace("name: titanium", "name: schema-lite"))
    assert "schema-lite" in load_registers(None, regs)
    _ok(run_cli("problems", "--task", "kg", "--split", "train", "--n", "5", "--out", str(tmp_path / "p.jsonl")))
    _ok(run_cli("generate", "--problems", str(tmp_path / "p.jsonl"), "--registers", "schema-lite",
                "--registers-dir", str(regs), "--out", str(tmp_path / "g")))
    rows = [json.loads(x) for x in (tmp_path / "g" / "traces.jsonl").read_text().splitlines()]
    assert {x["register"] for x in rows} == {"schema-lite"}
    r = _ok(run_cli("curate", "--in", str(tmp_path / "g" / "traces.jsonl"), "--task", "kg",
                    "--registers-dir", str(regs), "--out", str(tmp_path / "c")))
    man = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert man["counts"]["kept"] == 5, (man["counts"], r.stdout)


def test_grid_spec_names_a_registers_folder(tmp_path):
    from tracestyle.ablations.spec import GridSpec
    regs = tmp_path / "regs"
    shutil.copytree(BUILTIN_DIR / "gold", regs / "g2")
    y = regs / "g2" / "register.yaml"
    y.write_text(y.read_text().replace("name: gold", "name: gold-v2"))
    spec = tmp_path / "grid.yaml"
    spec.write_text("task: kg\nregisters: [normal, gold-v2]\nregisters_dir: regs\n")
    s = GridSpec.load(spec)
    assert s.registers_dir == str(regs.resolve())
    spec.write_text("task: kg\nregisters: [gold-v3]\nregisters_dir: regs\n")
    r = run_cli("grid", str(spec), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "grid.yaml:2: field 'registers'" in r.stderr and "gold-v2" in r.stderr


def test_unresolvable_kg_in_traces_is_an_input_error_not_a_silent_drop(tmp_path):
    _ok(run_cli("problems", "--task", "kg", "--split", "train", "--n", "3", "--out", str(tmp_path / "p.jsonl")))
    _ok(run_cli("generate", "--problems", str(tmp_path / "p.jsonl"), "--registers", "normal", "--out", str(tmp_path / "g")))
    lines = (tmp_path / "g" / "traces.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    row["problem"]["kg"] = {"name": "gone", "builtin": None, "path": str(tmp_path / "gone.json"), "sha256": "0" * 64}
    lines[1] = json.dumps(row)
    (tmp_path / "g" / "traces.jsonl").write_text("\n".join(lines) + "\n")
    r = run_cli("curate", "--in", str(tmp_path / "g" / "traces.jsonl"), "--task", "kg", "--out", str(tmp_path / "c"))
    assert r.returncode == 2, r.stdout
    assert f"{tmp_path / 'g' / 'traces.jsonl'}:2: field 'kg'" in r.stderr and "gone.json" in r.stderr
    assert not (tmp_path / "c").exists()


def test_traces_from_a_reasoning_teacher_are_judged_after_their_thinking(tmp_path, gsm8k_dir):
    """A reasoning teacher writes prose and wrong first tries inside <think>…</think>, then the register's trace:
    the filters judge the trace after the block (a Titanium trace stays compliant, a wrong draft sum is no step
    error); --thinking drop trains on the styled trace alone and records what it removed."""
    from tracestyle.curate.curate import CurateConfig, curate
    from tracestyle.curate.generate import generate
    from tracestyle.tasks.gsm8k.source import load_gsm8k

    regs = load_registers(["titanium"])
    probs = load_gsm8k("train", gsm8k_dir, n=4)
    generate(probs, regs, tmp_path / "gen", quiet=True)
    rows = [json.loads(x) for x in (tmp_path / "gen" / "traces.jsonl").read_text().splitlines()]
    styled = {r["problem_id"]: r["text"] for r in rows}
    for r in rows:
        r["text"] = f"<think>\nLet me think in prose. First try: 5 + 5 = 11, no wait.\n</think>\n\n{r['text']}"
    rows[-1]["text"] = "<think>\nStill thinking when the budget ran out: 5 + 5 = 10"
    src = tmp_path / "traces.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    filters = ["length", "correct", "steps", "compliance", "dedup"]
    for mode in ("keep", "drop"):
        res = curate(src, tmp_path / mode, CurateConfig(task="gsm8k", filters=filters, registers=regs,
                                                        thinking=mode), quiet=True)
        assert res["kept"] == 3 and res["with_thinking"] == 4, res
        assert res["drop_reasons"] == {"no_answer": 1}
        kept = [json.loads(x) for x in (tmp_path / mode / "kept.jsonl").read_text().splitlines()]
        for k in kept:
            if mode == "keep":
                assert k["text"].startswith("<think>") and "thinking_chars" not in k
            else:
                assert k["text"] == styled[k["problem_id"]].strip() and k["thinking_chars"] > 40
